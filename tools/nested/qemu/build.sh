#!/usr/bin/env bash
# Build the outer QEMU of tools/nested/run.sh: Debian's QEMU 10.0.2 source
# with the fixes of the two bugs of TCG's nested-SVM emulation that the
# nested runs meet (the patches next to this script; docs/qemu-svm-bugs.md).
#
# Why: Debian 12's QEMU 7.2 (and 10.0.2 as shipped) delivers an injected
# interrupt twice when single-threaded TCG switches vCPUs right after a VMRUN
# (0001), and aborts with "tcg_handle_interrupt: assertion failed" when a
# nested guest writes CR8 with a virtual interrupt pending, which OVMF does
# (0002). With both fixed the outer machine can have two vCPUs again and
# nested UEFI runs stop aborting. run.sh falls back to the system's QEMU
# (with -smp 1) when this build cannot be had.
#
# Why each step:
# - a private apt configuration (tools/private-apt.sh: sources list, lists
#   and cache dirs in the work tree, -o Dir::...): the source and meson come
#   from bookworm-backports, which the host need not have configured, and the
#   host's /etc/apt and package lists stay untouched. The mirror is the one
#   the host's apt already uses for Debian's main release (apt-cache policy).
# - apt-get source --tar-only: the mirror serves the orig tarball of this
#   version but not its .dsc and debian.tar.xz (404), so the source is the
#   upstream 10.0.2 as Debian repacked it (+ds: non-free blobs removed),
#   without debian/patches; apt checks the tarball against the signed index.
# - the version pinned in tools/qemu/pinned.sh, shared with the QEMU that
#   runs the guest (tools/qemu/fetch.sh): the patches are proven to apply to
#   exactly this source; a newer one is a deliberate change.
# - meson and python3-pycotap from bookworm-backports, unpacked (dpkg -x),
#   used through PYTHONPATH, never installed: QEMU 10 needs meson >= 1.5
#   (bookworm has 1.0), and the +ds tarball has no vendored meson wheel.
# - Debian's /usr/bin/python3 (--python): configure would take the first
#   python3 on PATH (a pyenv shim, say), whose venv module and site
#   packages are unknown; python3-venv provides Debian's.
# - patch --fuzz=0, in order: a patch that needs fuzz is stale and stops the
#   build with its name, before the compile.
# - meson.build's edk2 blob unpacking turned off (sed, checked): the +ds
#   tarball ships no edk2-*.fd.bz2, and meson would unpack them whenever
#   bzip2 is installed, --disable-install-blobs or not.
# - configure for x86_64-softmmu only, without default features, TCG, virtfs
#   (run.sh shares / and its io dir over 9p; needs attr and cap-ng) and
#   system libfdt; no docs, tools, guest agent, audio or debug info;
#   --disable-download: nothing is fetched from PyPI or git.
# - ninja qemu-system-x86_64: only the emulator; "all" would also build the
#   unit tests and the test helpers (about a third more objects).
# - nice -n 10: the build takes minutes of both cores, and may start in the
#   middle of a test session whose guests have timeouts.
# - share/ holds exactly what the outer machine loads (it boots -nodefaults
#   with -kernel on the PC machine, TCG's APIC with its VAPIC ROM): the PC
#   BIOS bios-256k.bin from Debian's seabios package, linuxboot_dma.bin and
#   kvmvapic.bin from Debian's qemu-system-data (the host's QEMU, which the
#   nested runner needs anyway). The +ds tarball has no ROM binaries, and
#   configure builds the option ROMs only with a 32-bit libgcc
#   (gcc-multilib), too much for two small ROMs whose interface to QEMU
#   (fw_cfg, the VAPIC port) has not changed in years. run.sh passes the dir
#   with -L; copies, not links, so the build keeps working when the host's
#   packages change.
# - a smoke test (the machine created with that -L, then quit): a missing
#   ROM or a binary that does not start fails here, not in a nested run.
# - a failed patch, configure, compile or smoke test leaves <key>.failed
#   beside the log: those fail the same way every time, so later calls of
#   this same script say why at once instead of spending minutes on it again
#   (and run.sh falls back at once); an edited build.sh tries again, and a
#   missing tool or network is retried on every call.
# - cache dir <version>-<sha256(patches):12>: new patches or a new source
#   get their own build; the stamp (with the format below) is written last,
#   so a half-built dir never counts. Later runs are offline, instant.
# - flock: parallel runs (make -j) wait for one build instead of racing.
# - work tree removed afterwards (about 1 GB while building); the build log
#   is kept: in the cache dir, or beside it when a step failed.
#
# Usage: tools/nested/qemu/build.sh   (cache: $NESTED_CACHE, default
#          <project>/.cache/nested)
# Output: two lines on stdout: the qemu-system-x86_64 to run, and the
#         directory to give it with -L.
# Exit: 0 ready, 1 a tool, a download, a patch or the compile failed
#       (one line on stderr).
set -euo pipefail

readonly format=outer-qemu-v1
readonly configure_args=(
    --target-list=x86_64-softmmu --without-default-features
    --enable-tcg --enable-virtfs --enable-attr --enable-cap-ng --enable-fdt=system
    --disable-install-blobs --disable-docs --disable-tools --disable-guest-agent
    --audio-drv-list= --disable-debug-info --disable-download
)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project_root=$(cd "$here/../../.." && pwd)
# qemu_version (Debian's source package version) and qemu_suite: the one place to change them.
# shellcheck source=../../qemu/pinned.sh
. "$project_root/tools/qemu/pinned.sh"
readonly suite=$qemu_suite
# shellcheck source=../../private-apt.sh
. "$project_root/tools/private-apt.sh"
cache=${NESTED_CACHE:-$project_root/.cache/nested}
python=/usr/bin/python3
# ROM -> where it comes from (Debian package): see "Why each step".
declare -A roms=(
    [bios-256k.bin]="/usr/share/seabios/bios-256k.bin seabios"
    [linuxboot_dma.bin]="/usr/share/qemu/linuxboot_dma.bin qemu-system-data"
    [kvmvapic.bin]="/usr/share/qemu/kvmvapic.bin qemu-system-data"
)

die() { echo "qemu/build.sh: $*" >&2; exit 1; }
say() { echo "qemu/build.sh: $*" >&2; }

# Prerequisites (need_tool, need_pkg, need_file); as root, tools/deps.sh qemu-build installs them.
need_group=qemu-build
. "$project_root/tools/nested/need.sh"

mapfile -t patches < <(find "$here" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' | LC_ALL=C sort)
[ ${#patches[@]} -gt 0 ] || die "no NNNN-*.patch next to $0"
patch_sha=$(cat "${patches[@]}" | sha256sum | cut -d' ' -f1)
upstream=${qemu_version#*:}        # 10.0.2+ds-2+deb13u1~bpo12+1
upstream=${upstream%-*}            # 10.0.2+ds
src_name=qemu-${upstream%+ds}      # the tarball's top directory, qemu-10.0.2

qd=$cache/qemu
key=${qemu_version#*:}-${patch_sha:0:12}
out=$qd/$key
want_stamp="$format qemu=$qemu_version patches=$patch_sha"

failed=$qd/$key.failed

complete() {
    [ -f "$out/stamp" ] && [ -x "$out/bin/qemu-system-x86_64" ] \
        && [ "$(cat "$out/stamp")" = "$want_stamp" ] || return 1
    local r
    for r in "${!roms[@]}"; do [ -f "$out/share/$r" ] || return 1; done
}
report() { printf '%s\n%s\n' "$out/bin/qemu-system-x86_64" "$out/share"; }
if complete; then report; exit 0; fi
self_sha=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
earlier_failure() { # <key>.failed: this script's sha256, then the reason
    [ -f "$failed" ] && [ "$(head -n1 "$failed")" = "$self_sha" ] || return 0
    die "an earlier build failed: $(sed -n 2p "$failed") (remove $failed to try again)"
}
earlier_failure

# --- build -----------------------------------------------------------------
need_tool flock util-linux
mkdir -p "$qd" || die "cannot create $qd"
[ -f "$cache/.gitignore" ] || echo '*' >"$cache/.gitignore"
exec 9>"$qd/.lock"
flock 9
if complete; then report; exit 0; fi
earlier_failure
# Under the lock no other build runs: what a killed build left is garbage.
rm -rf "$qd"/work.* "$out.tmp"

need_tool apt-get apt
need_tool apt-cache apt
need_tool dpkg dpkg
need_tool dpkg-deb dpkg
need_tool tar tar
need_tool xz xz-utils
need_tool patch patch
need_tool ninja ninja-build
need_tool pkg-config pkg-config
need_tool cc gcc
need_tool objcopy binutils
need_tool strip binutils
need_tool nice coreutils
need_file "$python" python3
need_pkg python3-venv
for p in libglib2.0-dev libpixman-1-dev zlib1g-dev libattr1-dev libcap-ng-dev libfdt-dev; do need_pkg "$p"; done
for r in "${!roms[@]}"; do
    read -r rom_file rom_pkg <<<"${roms[$r]}"
    need_file "$rom_file" "$rom_pkg"
done

log=$qd/$key.log
: >"$log" || die "cannot write $log"
# fail <reason>: a failure that the same inputs would repeat (see above).
fail() { printf '%s\n%s\n' "$self_sha" "$*" >"$failed"; die "$*"; }
step() { echo "=== $(date +%T) $*" >>"$log"; }
work=$(mktemp -d "$qd/work.XXXXXX")
trap 'rm -rf "$work" "$out.tmp"' EXIT
say "building QEMU $qemu_version with $(printf '%s ' "${patches[@]##*/}")(about 6 minutes of 2 idle cores; log: $log)"

# --- the private apt configuration ---------------------------------------
apt_dir=$work/apt
mkdir -p "$work/dl"
private_apt_init "$apt_dir" "$suite" deb-src || die "$private_apt_why"
mirror=$private_apt_mirror
apt_opts=("${private_apt_opts[@]}")
# apt-get source downloads into dl as _apt, too (see tools/private-apt.sh).
chmod -R 0777 "$work"
apt_error() { private_apt_error "$log"; }
step "apt-get update ($mirror $suite)"
LC_ALL=C apt-get "${apt_opts[@]}" update >>"$log" 2>&1 && ! grep -q '^Err:' "$log" \
    || die "apt-get update of $suite from $mirror failed (network?): $(apt_error)"
step "apt-get source --download-only --tar-only qemu=$qemu_version"
if ! (cd "$work/dl" && LC_ALL=C apt-get "${apt_opts[@]}" source --download-only --tar-only "qemu=$qemu_version") >>"$log" 2>&1; then
    err=$(apt_error)
    case $err in
        *"Can not find version"* | *"Unable to find a source package"* | *"404"*)
            die "$suite no longer serves qemu $qemu_version ($err); update qemu_version in $0 and check that the patches still apply" ;;
        *) die "downloading the qemu $qemu_version source failed: ${err:-see $log}" ;;
    esac
fi
tarball=$work/dl/qemu_$upstream.orig.tar.xz
[ -f "$tarball" ] || die "apt-get source left no $(basename "$tarball")"
step "apt-get download meson python3-pycotap"
(cd "$work/dl" && LC_ALL=C apt-get "${apt_opts[@]}" download meson python3-pycotap) >>"$log" 2>&1 \
    || die "apt-get download meson python3-pycotap from $suite failed: $(apt_error)"
py=$work/py
for deb in "$work"/dl/*.deb; do
    step "dpkg -x $(basename "$deb")"
    dpkg -x "$deb" "$py" >>"$log" 2>&1 || die "dpkg -x $(basename "$deb") failed (see $log)"
done
meson_version=$(dpkg-deb -f "$work"/dl/meson_*.deb Version)
dpkg --compare-versions "$meson_version" ge 1.5 \
    || die "$suite serves meson $meson_version; QEMU 10 needs 1.5 or newer"
export PYTHONPATH=$py/usr/lib/python3/dist-packages
"$python" -c 'import mesonbuild, pycotap' 2>>"$log" || die "the unpacked meson/pycotap do not import with $python (see $log)"

# --- source, patches, configure, make --------------------------------------
step "tar -xJf $(basename "$tarball")"
tar -xJf "$tarball" -C "$work" >>"$log" 2>&1 || die "extracting $(basename "$tarball") failed (see $log)"
rm -f "$tarball"
src=$work/$src_name
[ -f "$src/configure" ] || die "$(basename "$tarball") has no $src_name/configure"

# patch_trouble <output>: "<file>: <first complaint>" from patch's messages.
patch_trouble() {
    awk '/^checking file |^patching file / { f = $3 }
        /FAILED|malformed|Only garbage|Reversed|fuzz/ { print f ": " $0; exit }
        /can.t find file/ { print "a file it changes is missing"; exit }' "$1"
}
for p in "${patches[@]}"; do
    step "patch -p1 --fuzz=0 < ${p##*/}"
    if ! (cd "$src" && LC_ALL=C patch -p1 --fuzz=0 -N -i "$p") >"$work/patch.out" 2>&1; then
        cat "$work/patch.out" >>"$log"
        fail "${p##*/} does not apply with no fuzz to qemu $qemu_version: $(patch_trouble "$work/patch.out") (log: $log)"
    fi
    cat "$work/patch.out" >>"$log"
done

unpack_line='    unpack_edk2_blobs = bzip2.found()'
[ "$(grep -cxF "$unpack_line" "$src/meson.build")" = 1 ] \
    || fail "$src_name/meson.build no longer has '${unpack_line# *}': check how it unpacks the edk2 blobs"
sed -i "s/^    unpack_edk2_blobs = bzip2.found()\$/    unpack_edk2_blobs = false/" "$src/meson.build"

build=$work/build
mkdir -p "$build"
step "configure --python=$python ${configure_args[*]}"
if ! (cd "$build" && LC_ALL=C "$src/configure" --python="$python" "${configure_args[@]}") >>"$log" 2>&1; then
    why=$(grep -E '^(ERROR|error):|ERROR: ' "$log" | head -n1 || true)
    fail "configure failed: ${why:-see the log}; build log kept at $log"
fi
jobs=$(nproc 2>/dev/null || echo 2)
step "ninja -j$jobs qemu-system-x86_64"
if ! (cd "$build" && LC_ALL=C nice -n 10 ninja -j"$jobs" qemu-system-x86_64) >>"$log" 2>&1; then
    why=$(grep -E 'error:|Error [0-9]|FAILED:' "$log" | head -n1 | sed "s|$work/||g" || true)
    fail "compiling QEMU failed: ${why:-see the log}; build log kept at $log"
fi

mkdir -p "$out.tmp/bin" "$out.tmp/share"
[ -f "$build/qemu-system-x86_64" ] || fail "the build made no qemu-system-x86_64 (see $log)"
strip -o "$out.tmp/bin/qemu-system-x86_64" "$build/qemu-system-x86_64" || die "strip qemu-system-x86_64 failed"
for r in "${!roms[@]}"; do
    read -r rom_file rom_pkg <<<"${roms[$r]}"
    cp "$rom_file" "$out.tmp/share/$r" || die "cannot copy $rom_file"
done

# Smoke test: the PC machine with its BIOS, created and quit at once.
step "smoke test"
if ! smoke=$(echo quit | timeout 30 "$out.tmp/bin/qemu-system-x86_64" -L "$out.tmp/share" -nodefaults -no-user-config \
    -display none -accel tcg -cpu qemu64,+svm,+npt -S -monitor stdio 2>&1); then
    echo "$smoke" >>"$log"
    fail "the built QEMU does not start: $(echo "$smoke" | grep -v '^(qemu)\|QEMU .* monitor' | head -n1)"
fi
version=$("$out.tmp/bin/qemu-system-x86_64" --version | head -n1)
step "done: $version; $(stat -c %s "$out.tmp/bin/qemu-system-x86_64") bytes"

rm -rf "$out"
mv "$log" "$out.tmp/build.log"
echo "$want_stamp" >"$out.tmp/stamp"
mv "$out.tmp" "$out"
rm -rf "$work"
trap - EXIT
say "ready: $out ($version, meson $meson_version)"
report
