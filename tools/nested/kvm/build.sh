#!/usr/bin/env bash
# Build the patched KVM (kvm.ko + kvm-amd.ko) that `tools/nested/run.sh
# --kvm direct` loads into the outer Linux instead of Debian's own modules.
#
# Why: stock KVM does not implement HvCallSignalEventDirect and
# HvCallPostMessageDirect; hyperv-direct-hypercalls.patch (next to this
# script) adds them behind the kvm.ko parameter hv_direct_hypercalls.
#
# Why each step:
# - the kernel from prepare.sh's parts/versions: the modules must match the
#   exact kernel run.sh boots (vermagic, symbol CRCs), so that kernel's
#   package and version decide everything; prepare.sh runs first (a no-op
#   when its cache is complete) so that file is the booted kernel's.
# - apt-get download <pkg>=<version> + dpkg -x (no install): Debian's
#   linux-source, linux-headers (flavour + common) and linux-kbuild of that
#   very version, without touching the host's own system. Pinned: a newer
#   source would build modules the booted kernel refuses.
# - only arch/x86/kvm, virt/kvm and the patched files out of the source
#   tarball: the headers packages hold the rest of what an external-module
#   build needs, and the whole tree would take 1.4 GB of disk.
# - patch --dry-run --fuzz=0 against the source tarball's own files: proves
#   the patch applies with no fuzz to Debian's source of this version (not
#   only to the headers copy), and stops a stale patch before the compile.
# - the flavour's Makefile rewritten: it includes the common tree by its
#   installed path (/usr/src/...), which we never install.
# - the patch applied in the -common tree: it is the build's srctree, so the
#   patched headers there are the ones kvm.ko is compiled against.
# - CONFIG_KVM_INTEL= : the outer CPU is AMD (svm), kvm-intel is not needed.
# - vermagic and dependencies compared with Debian's kvm.ko and the
#   initramfs module list: a mismatch would only show as a failed insmod
#   deep inside a nested run.
# - strip --strip-debug: 2.6 MB instead of 23 MB copied into each run.
# - cache dir named <image-package>_<version>-<sha256(patch):12>: a new
#   patch or a new runner kernel gets its own build; the stamp is written
#   last, so a half-built dir never counts. Later runs are offline, instant.
# - flock: parallel runs (make -j) wait for one build instead of racing.
# - work tree and .debs removed afterwards (0.2-0.3 GB while building);
#   the build log is kept: in the cache dir, or beside it when a step failed.
#
# Usage: tools/nested/kvm/build.sh   (cache: $NESTED_CACHE, default
#          <project>/.cache/nested; patch: $NESTED_KVM_PATCH, default
#          tools/nested/kvm/hyperv-direct-hypercalls.patch)
# Output: the cache dir (kvm.ko, kvm-amd.ko, stamp, build.log) on stdout.
# Exit: 0 ready, 1 a tool, a download, the patch or the compile failed
#       (one line on stderr).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project_root=$(cd "$here/../../.." && pwd)
cache=${NESTED_CACHE:-$project_root/.cache/nested}
patch_file=${NESTED_KVM_PATCH:-$here/hyperv-direct-hypercalls.patch}
format=kvm-direct-v1
param=hv_direct_hypercalls

die() { echo "kvm/build.sh: $*" >&2; exit 1; }
say() { echo "kvm/build.sh: $*" >&2; }

# Prerequisites (need_tool, need_pkg, need_file); as root, tools/deps.sh kvm installs them.
need_group=kvm
. "$project_root/tools/nested/need.sh"

# modinfo without kmod: the .modinfo strings are NUL-separated key=value.
# awk reads to the end: an early exit would kill tr with SIGPIPE (pipefail).
modinfo_field() { tr '\0' '\n' <"$1" | awk -v k="$2=" 'index($0, k) == 1 && !n++ { print substr($0, length(k) + 1) }'; }

[ -f "$patch_file" ] || die "no patch at $patch_file"
patch_sha=$(sha256sum "$patch_file" | cut -d' ' -f1)

# --- which kernel the runner boots ---------------------------------------
NESTED_CACHE=$cache "$project_root/tools/nested/prepare.sh" \
    || die "tools/nested/prepare.sh failed (it says why above); the runner's kernel is unknown"
versions=$cache/parts/versions
[ -f "$versions" ] || die "prepare.sh left no $versions"
# e.g. "Package: busybox-static Version: 1:1.35.0-4,Package: linux-image-6.1.0-56-amd64 Version: 6.1.192-2"
kline=$(tr ',' '\n' <"$versions" | grep -E '^Package: linux-image-' | head -n1 || true)
[[ $kline =~ ^Package:\ (linux-image-[^ ]+)\ Version:\ ([^ ]+)$ ]] \
    || die "no 'Package: linux-image-... Version: ...' entry in $versions"
kpkg=${BASH_REMATCH[1]}
kver=${BASH_REMATCH[2]}
# linux-image-<abi>-<flavour>[-unsigned], e.g. linux-image-6.1.0-56-amd64
[[ $kpkg =~ ^linux-image-([0-9]+\.[0-9]+)(\.[0-9]+-[0-9]+)-([a-z0-9-]+[a-z0-9])$ ]] \
    || die "cannot derive the kernel ABI from package name $kpkg"
mm=${BASH_REMATCH[1]}
abi=${BASH_REMATCH[1]}${BASH_REMATCH[2]}
flavour=${BASH_REMATCH[3]%-unsigned}
[[ $kver == "$mm".* ]] || die "$kpkg has version $kver, not $mm.*: cannot name its linux-source package"
src_pkg=linux-source-$mm
pkgs=("$src_pkg" "linux-headers-$abi-$flavour" "linux-headers-$abi-common" "linux-kbuild-$mm")

kd=$cache/kvm-direct
key=${kpkg}_${kver//:/%3a}-${patch_sha:0:12}
out=$kd/$key
want_stamp="$format $kpkg=$kver patch=$patch_sha"

complete() {
    [ -f "$out/stamp" ] && [ -f "$out/kvm.ko" ] && [ -f "$out/kvm-amd.ko" ] \
        && [ "$(cat "$out/stamp")" = "$want_stamp" ]
}
if complete; then echo "$out"; exit 0; fi

# --- build -----------------------------------------------------------------
need_tool flock util-linux
mkdir -p "$kd" || die "cannot create $kd"
exec 9>"$kd/.lock"
flock 9
if complete; then echo "$out"; exit 0; fi
# Under the lock no other build runs: what a killed build left is garbage.
rm -rf "$kd"/work.* "$out.tmp"

need_tool apt-get apt
need_tool dpkg dpkg
need_tool tar tar
need_tool xz xz-utils
need_tool patch patch
need_tool make make
need_tool ld binutils
need_tool strip binutils
need_pkg libelf1 # objtool (linux-kbuild) links it

log=$kd/$key.log
: >"$log" || die "cannot write $log"
step() { echo "=== $(date +%T) $*" >>"$log"; }
work=$(mktemp -d "$kd/work.XXXXXX")
trap 'rm -rf "$work" "$out.tmp"' EXIT
say "building KVM with $(basename "$patch_file") for $kpkg $kver (about a minute; log: $log)"

# _apt cannot write into a private dir; the download then runs as us,
# which apt reports with a harmless warning. World-writable avoids it.
chmod 0777 "$work"
pinned=()
for p in "${pkgs[@]}"; do pinned+=("$p=$kver"); done
step "apt-get download ${pinned[*]}"
if ! (cd "$work" && LC_ALL=C apt-get download "${pinned[@]}") >>"$log" 2>&1; then
    err=$(grep -E '^(E|Err):' "$log" | head -n1 || true)
    case $err in
        *"was not found"* | *"Unable to locate package"* | *"Can't select"*)
            what=${pinned[*]}
            if [[ $err =~ Version\ \'([^\']+)\'\ for\ \'([^\']+)\' ]]; then
                what=${BASH_REMATCH[2]}=${BASH_REMATCH[1]}
            elif [[ $err =~ Unable\ to\ locate\ package\ ([^ ]+) ]]; then
                what=${BASH_REMATCH[1]}
            fi
            die "the package mirror does not serve $what (apt-get: $err); try apt-get update, or, if Debian has moved on, remove $cache/parts so the runner boots the current kernel" ;;
        *) die "apt-get download ${pinned[*]} failed: ${err:-see $log}" ;;
    esac
fi
root=$work/root
for deb in "$work"/*.deb; do
    step "dpkg -x $(basename "$deb")"
    dpkg -x "$deb" "$root" >>"$log" 2>&1 || die "dpkg -x $(basename "$deb") failed (see $log)"
    rm -f "$deb"
done

# Files the patch changes, as -p1 paths: each "--- a/x" followed by "+++ b/x"
# (a new file has /dev/null on the --- side and is not looked up).
mapfile -t touched < <(awk '
    /^--- / { old = $2; next_is_new = 1; next }
    next_is_new && /^\+\+\+ / { if (old != "/dev/null") { sub(/^[^\/]*\//, "", old); print old } }
    { next_is_new = 0 }' "$patch_file" | LC_ALL=C sort -u)
[ ${#touched[@]} -gt 0 ] || die "$patch_file changes no existing file (not a unified diff?)"

tarball=$root/usr/src/$src_pkg.tar.xz
[ -f "$tarball" ] || die "$src_pkg has no usr/src/$src_pkg.tar.xz"
src=$work/src/$src_pkg
mkdir -p "$work/src"
members=("$src_pkg/arch/x86/kvm" "$src_pkg/virt/kvm")
for f in "${touched[@]}"; do
    case $f in arch/x86/kvm/* | virt/kvm/*) ;; *) members+=("$src_pkg/$f") ;; esac
done
step "tar -xJf $src_pkg.tar.xz ${members[*]}"
if ! tar -xJf "$tarball" -C "$work/src" "${members[@]}" >>"$log" 2>&1; then
    missing=$(sed -n 's/^tar: \(.*\): Not found in archive$/\1/p' "$log" | head -n1)
    [ -z "$missing" ] || die "the patch does not apply: it changes ${missing#"$src_pkg"/}, which $src_pkg $kver does not have"
    die "extracting from $src_pkg.tar.xz failed (see $log)"
fi
rm -f "$tarball"

# patch_trouble <output>: "<file>: <first complaint>" from patch's messages.
patch_trouble() {
    awk '/^checking file |^patching file / { f = $3 }
        /FAILED|malformed|Only garbage|Reversed/ { print f ": " $0; exit }
        /can.t find file/ { missing = 1 }
        missing && /^[|][+][+][+] / { p = $2; sub(/^[^\/]*\//, "", p); print p ": no such file"; exit }' "$1"
}
step "patch --dry-run -p1 --fuzz=0 in $src_pkg"
if ! (cd "$src" && LC_ALL=C patch --dry-run -p1 --fuzz=0 -i "$patch_file") >"$work/patch.out" 2>&1; then
    cat "$work/patch.out" >>"$log"
    die "the patch does not apply with no fuzz to $src_pkg $kver: $(patch_trouble "$work/patch.out") (log: $log)"
fi
cat "$work/patch.out" >>"$log"

# The headers tree: the flavour dir (config, Module.symvers) includes the
# common dir, which gets the KVM sources and becomes the patched srctree.
hdr=$root/usr/src/linux-headers-$abi-$flavour
common=$root/usr/src/linux-headers-$abi-common
[ -f "$hdr/Makefile" ] && [ -d "$common" ] || die "linux-headers-$abi-$flavour/-common lack usr/src/linux-headers-$abi-*"
sed -i "s|^include /usr/src/|include $root/usr/src/|" "$hdr/Makefile"
grep -q "^include $common/Makefile\$" "$hdr/Makefile" \
    || die "linux-headers-$abi-$flavour's Makefile does not include the common tree as expected"
for d in arch/x86/kvm virt/kvm; do
    rm -rf "${common:?}/$d"
    mkdir -p "$(dirname "$common/$d")"
    cp -a "$src/$d" "$common/$d"
done
for f in "${touched[@]}"; do
    [ -f "$common/$f" ] || die "the patch changes $f, which is not part of an out-of-tree KVM build (only headers and arch/x86/kvm, virt/kvm are)"
    cmp -s "$src/$f" "$common/$f" || die "$f differs between $src_pkg and linux-headers-$abi-common: the dry run does not cover the build"
done
step "patch -p1 --fuzz=0 in linux-headers-$abi-common"
if ! (cd "$common" && LC_ALL=C patch -p1 --fuzz=0 -i "$patch_file") >"$work/patch.out" 2>&1; then
    cat "$work/patch.out" >>"$log"
    die "the patch does not apply to linux-headers-$abi-common: $(patch_trouble "$work/patch.out") (log: $log)"
fi
cat "$work/patch.out" >>"$log"

# The compiler Debian built this kernel with (gcc-12 for 6.1): the headers
# package sets CC to it, so the modules get the same code generation.
cc=$(sed -n 's/^CC = .*\(gcc-[0-9][0-9]*\).*/\1/p' "$hdr/.kernelvariables" 2>/dev/null || true)
need_tool "${cc:-gcc-12}" "${cc:-gcc-12}"

jobs=$(nproc 2>/dev/null || echo 2)
step "make -C $hdr M=$common/arch/x86/kvm CONFIG_KVM_INTEL= -j$jobs modules"
if ! LC_ALL=C make -C "$hdr" M="$common/arch/x86/kvm" CONFIG_KVM_INTEL= -j"$jobs" modules >>"$log" 2>&1; then
    why=$(grep -E 'error:|Error [0-9]|undefined!' "$log" | head -n1 | sed "s|$common/||g" || true)
    die "compiling kvm.ko failed: ${why:-see the log}; build log kept at $log"
fi

# Checks: the booted kernel must accept these modules, and init.sh must
# be able to load them from the initramfs's module set and set $param.
mkdir -p "$out.tmp"
for m in kvm kvm-amd; do
    [ -f "$common/arch/x86/kvm/$m.ko" ] || die "the build made no $m.ko (see $log)"
    strip --strip-debug -o "$out.tmp/$m.ko" "$common/arch/x86/kvm/$m.ko" || die "strip $m.ko failed"
done
stock_vermagic=$(modinfo_field "$cache/parts/modules/kvm.ko" vermagic)
for m in kvm kvm-amd; do
    vm=$(modinfo_field "$out.tmp/$m.ko" vermagic)
    [ "$vm" = "$stock_vermagic" ] \
        || die "$m.ko has vermagic '$vm', the booted kernel's kvm.ko '$stock_vermagic'"
    for d in $(modinfo_field "$out.tmp/$m.ko" depends | tr ',' ' '); do
        [ "$d" = kvm ] || grep -qx "$d" "$cache/parts/modules.list" \
            || die "$m.ko needs module $d, which the initramfs does not load (add it to prepare.sh's targets)"
    done
done
tr '\0' '\n' <"$out.tmp/kvm.ko" | grep -x "parmtype=$param:bool" >/dev/null \
    || die "the built kvm.ko has no bool parameter $param: the patch does not add it"
step "done: $(cd "$out.tmp" && ls -l kvm.ko kvm-amd.ko | awk '{print $5, $9}' | paste -sd' ')"

rm -rf "$out"
mv "$log" "$out.tmp/build.log"
echo "$want_stamp" >"$out.tmp/stamp"
mv "$out.tmp" "$out"
rm -rf "$work"
trap - EXIT
say "ready: $out ($(stat -c %s "$out/kvm.ko") + $(stat -c %s "$out/kvm-amd.ko") bytes, vermagic $stock_vermagic)"
echo "$out"
