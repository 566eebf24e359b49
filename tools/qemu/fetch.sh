#!/usr/bin/env bash
# tools/qemu/fetch.sh: the project's pinned QEMU, the one that runs the guest
# by default (qemu-run.sh --qemu pinned): Debian's own build of the version in
# tools/qemu/pinned.sh (10.0.2 from bookworm-backports), unpacked into the
# cache, never installed.
#
# Usage: tools/qemu/fetch.sh        (cache: $QEMU_CACHE, default <project>/.cache/qemu)
# Output: one line on stdout, the tree <T> (an absolute path with no symlinks). Run it as
#     QEMU_MODULE_DIR=<T>/usr/lib/x86_64-linux-gnu/qemu \
#         <T>/usr/bin/qemu-system-x86_64 -L <T>/usr/share/qemu -L <T>/usr/share/seabios ...
# Exit: 0 ready, 1 not ready: a download, a tool or a library is missing (one line on stderr).
#
# Why each step:
# - Debian's binary packages, not a build: bookworm-backports serves QEMU 10
#   built for Debian 12, so it runs on the host's own libraries, and fetching
#   takes seconds where a build takes minutes.
# - the private apt configuration (tools/private-apt.sh): the host's apt
#   sources, lists and installed QEMU (Debian 12's 7.2, still the "system"
#   choice of qemu-run.sh) stay untouched; no root needed.
# - apt-get download of exact versions (pkg=version) + dpkg -x: the pin is
#   the version in pinned.sh, and apt checks each .deb against the signed index.
# - qemu-system-x86, qemu-system-data (ROMs and keymaps), seabios (the PC
#   BIOS; 10.0.2 wants >> 1.16.3-1~, newer than Debian 12's 1.16.2), and
#   every module package of the version (qemu-system-common,
#   qemu-system-modules-opengl/-spice, qemu-system-gui, qemu-block-extra).
#   The guest's runs load no module, but QEMU looks for a module it lacks in
#   QEMU_MODULE_DIR first and then in the host's module dir, whose 7.2
#   modules abort it ("Only modules from the same build can be loaded"): with
#   all of them here, anything that loads modules (-device help loads them
#   all) finds its own. A module whose libraries the host lacks (measured on
#   Debian 12: audio-pipewire.so, libpipewire) fails the same way when used;
#   nothing of the project's uses one. Not OVMF: qemu-run.sh --uefi passes
#   Debian's /usr/share/OVMF firmware explicitly, which boots on 10.0.2's q35.
# - -L <T>/usr/share/qemu -L <T>/usr/share/seabios: the binary's compiled-in
#   data and firmware paths are the host's /usr/share/qemu and /usr/share/seabios,
#   i.e. 7.2's; -L dirs are searched first.
# - QEMU_MODULE_DIR: without it the binary loads its modules from the host's
#   /usr/lib/x86_64-linux-gnu/qemu, which are 7.2's, and aborts ("Only modules
#   from the same build can be loaded").
# - ldd: a shared library the binary needs but the host lacks is reported with
#   the fix (tools/deps.sh qemu declares them); as root it installs them.
# - a smoke test (the machine created with those -L dirs, then quit): a
#   binary that does not start fails here, once, not in every run.
# - stamp written last, the tree moved into place whole: a half-unpacked
#   tree never counts, and later calls are offline and instant.
# - flock: parallel runs (xunit, make -j) wait for one fetch instead of racing.
# - the path printed with no symlinks: the nested runner's inner QEMU finds it
#   at the same path in the host root it shares over 9p.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project_root=$(cd "$here/../.." && pwd)
# shellcheck source=pinned.sh
. "$here/pinned.sh"
# shellcheck source=../private-apt.sh
. "$project_root/tools/private-apt.sh"
cache=${QEMU_CACHE:-$project_root/.cache/qemu}

readonly format=pinned-qemu-v1
packages=(
    "qemu-system-x86=$qemu_version" "qemu-system-common=$qemu_version" "qemu-system-data=$qemu_version"
    "qemu-system-modules-opengl=$qemu_version" "qemu-system-modules-spice=$qemu_version"
    "qemu-system-gui=$qemu_version" "qemu-block-extra=$qemu_version" "seabios=$qemu_seabios_version"
)
key=${qemu_version#*:}            # 10.0.2+ds-2+deb13u1~bpo12+1
want_stamp="$format ${packages[*]}"

die() { echo "qemu/fetch.sh: $*" >&2; exit 1; }
need_tool() { # need_tool <command> <debian package>
    command -v "$1" >/dev/null 2>&1 || die "missing '$1' (Debian package $2); tools/deps.sh qemu installs it"
}

complete() { # complete <tree>
    [ -f "$1/stamp" ] && [ "$(cat "$1/stamp")" = "$want_stamp" ] && [ -x "$1/usr/bin/qemu-system-x86_64" ]
}
report() { realpath "$cache/$key"; }
if complete "$cache/$key"; then report; exit 0; fi

need_tool flock util-linux
mkdir -p "$cache" || die "cannot create $cache"
[ -f "$cache/.gitignore" ] || echo '*' >"$cache/.gitignore"
exec 9>"$cache/.lock"
flock 9
if complete "$cache/$key"; then report; exit 0; fi
# Under the lock no other fetch runs: what a killed one left is garbage.
rm -rf "$cache"/work.* "$cache/$key.tmp"

need_tool apt-get apt
need_tool apt-cache apt
need_tool dpkg dpkg
need_tool dpkg-deb dpkg
need_tool ldd libc-bin
work=$(mktemp -d "$cache/work.XXXXXX")
tree=$cache/$key.tmp
trap 'rm -rf "$work" "$tree"' EXIT
log=$work/apt.log
echo "qemu/fetch.sh: fetching QEMU $qemu_version from $qemu_suite into $cache (once; later runs are offline)" >&2

private_apt_init "$work/apt" "$qemu_suite" || die "$private_apt_why"
LC_ALL=C apt-get "${private_apt_opts[@]}" update >>"$log" 2>&1 && ! grep -q '^Err:' "$log" \
    || die "apt-get update of $qemu_suite from $private_apt_mirror failed (network?): $(private_apt_error "$log")"
mkdir -p "$work/dl"
chmod 0777 "$work/dl"
if ! (cd "$work/dl" && LC_ALL=C apt-get "${private_apt_opts[@]}" download "${packages[@]}") >>"$log" 2>&1; then
    err=$(private_apt_error "$log")
    case $err in
        *"Can not find version"* | *"Unable to locate package"* | *"404"*)
            die "$qemu_suite no longer serves ${packages[*]} ($err); update tools/qemu/pinned.sh" ;;
        *) die "apt-get download ${packages[*]} failed: ${err:-no reason given}" ;;
    esac
fi
mkdir -p "$tree"
for deb in "$work"/dl/*.deb; do
    dpkg -x "$deb" "$tree" || die "dpkg -x $(basename "$deb") failed"
done
bin=$tree/usr/bin/qemu-system-x86_64
[ -x "$bin" ] || die "qemu-system-x86 $qemu_version holds no usr/bin/qemu-system-x86_64"

missing=$(ldd "$bin" 2>&1 | awk '/not found/ { print $1 }' | paste -sd' ')
if [ -n "$missing" ] && [ "$(id -u)" -eq 0 ]; then
    "$project_root/tools/deps.sh" qemu >&2 || true
    missing=$(ldd "$bin" 2>&1 | awk '/not found/ { print $1 }' | paste -sd' ')
fi
[ -z "$missing" ] || die "QEMU $qemu_version needs shared libraries this host lacks: $missing; tools/deps.sh qemu installs them (as root)"

# Smoke test: the PC machine with its BIOS, created and quit at once.
if ! smoke=$(echo quit | QEMU_MODULE_DIR=$tree/usr/lib/x86_64-linux-gnu/qemu timeout 30 "$bin" \
    -L "$tree/usr/share/qemu" -L "$tree/usr/share/seabios" -nodefaults -no-user-config \
    -display none -accel tcg -S -monitor stdio 2>&1); then
    die "the fetched QEMU does not start: $(echo "$smoke" | grep -v '^(qemu)\|QEMU .* monitor' | head -n1)"
fi

echo "$want_stamp" >"$tree/stamp"
rm -rf "${cache:?}/$key"
mv "$tree" "$cache/$key"
rm -rf "$work"
trap - EXIT
echo "qemu/fetch.sh: ready: $cache/$key ($("$cache/$key/usr/bin/qemu-system-x86_64" --version | head -n1))" >&2
report
