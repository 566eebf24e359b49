#!/usr/bin/env bash
# Build the outer Linux (kernel + busybox initramfs) used by tools/nested/run.sh.
#
# Why: this host's /dev/kvm has no Hyper-V emulation, so run.sh boots Debian's
# own kernel under TCG with nested SVM and runs KVM (with its Hyper-V
# emulation) in there. This script fetches and packs what that needs.
#
# Why each step:
# - apt-get download + dpkg -x (no install): we need Debian's exact kernel
#   and its kvm/9p/virtio modules, without touching the host's own system.
# - the versioned linux-image-* package: linux-image-amd64 is only a
#   metapackage that depends on it.
# - busybox-static: one static binary gives the init its shell, insmod, mount.
# - module order from each .ko's depends= string: the package carries no
#   modules.dep, and busybox insmod loads single files without resolving.
# - decompressing .ko.xz/.ko.zst here: busybox insmod may not handle them.
# - parts/ kept, .debs and unpacked trees dropped: later rebuilds of the
#   initramfs (e.g. init.sh changed) need no network and little disk.
# - stamps: when the cache is complete nothing runs, so runs stay offline.
# - flock: parallel runs (make -j) wait for one build instead of racing.
#
# Usage: tools/nested/prepare.sh        (cache: $NESTED_CACHE, default
#                                        <project>/.cache/nested)
# Exit: 0 ready, 1 a tool, a download or a step failed (one line on stderr).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project_root=$(cd "$here/../.." && pwd)
cache=${NESTED_CACHE:-$project_root/.cache/nested}
init_src=$here/init.sh

# Modules the outer init needs; their dependencies are added automatically.
targets=(virtio_pci 9pnet_virtio 9p overlay kvm_amd)
parts_format="parts-v1 ${targets[*]}"

die() { echo "prepare.sh: $*" >&2; exit 1; }

need_tool() { # need_tool <command> <debian package>
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" -ne 0 ]; then
        die "missing '$1'; install it with: sudo apt-get install -y $2"
    fi
    die "missing '$1' (Debian package $2): apt-get install -y $2"
}

sha() { sha256sum "$@" | cut -d' ' -f1; }

[ -f "$init_src" ] || die "missing $init_src"
parts=$cache/parts
initramfs=$cache/initramfs.cpio.gz
want_stamp="$parts_format init=$(sha "$init_src")"

complete() {
    [ -f "$cache/stamp" ] && [ -f "$initramfs" ] && [ -f "$parts/vmlinuz" ] \
        && [ "$(cat "$cache/stamp")" = "$want_stamp" ]
}
complete && exit 0

need_tool cpio cpio
need_tool gzip gzip
mkdir -p "$cache" || die "cannot create $cache"
# Parallel runs (make -j) must not build the cache twice at once.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache/.lock"
    flock 9
    complete && exit 0
fi
# Keep the cache out of git without touching the project's .gitignore.
[ -f "$cache/.gitignore" ] || echo '*' >"$cache/.gitignore"

# --- parts: kernel, modules in load order, busybox -------------------------
if [ ! -f "$parts/stamp" ] || [ "$(cat "$parts/stamp")" != "$parts_format" ]; then
    need_tool apt-get apt
    need_tool apt-cache apt
    need_tool dpkg dpkg
    echo "prepare.sh: fetching the outer kernel and busybox into $cache" >&2

    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null \
        | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p')
    kpkg=${kpkg%%$'\n'*}
    [ -n "$kpkg" ] || die "apt-cache depends linux-image-amd64 names no linux-image-<version> package (run apt-get update?)"

    work=$(mktemp -d "$cache/work.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    # _apt cannot write into a private dir; the download then runs as us,
    # which apt reports with a harmless warning. World-writable avoids it.
    chmod 0777 "$work"
    (cd "$work" && apt-get download "$kpkg" busybox-static >"$work/apt.log" 2>&1) \
        || die "apt-get download $kpkg busybox-static failed: $(grep -E '^(E|Err):' "$work/apt.log" | head -n1)"
    for deb in "$work"/*.deb; do
        dpkg -x "$deb" "$work/root" || die "dpkg -x $(basename "$deb") failed"
    done

    new=$work/parts
    mkdir -p "$new/modules"
    vmlinuz=$(find "$work/root/boot" -name 'vmlinuz-*' -print -quit)
    [ -n "$vmlinuz" ] || die "no /boot/vmlinuz-* in $kpkg"
    cp "$vmlinuz" "$new/vmlinuz"
    cp "$work/root/bin/busybox" "$new/busybox" || die "no bin/busybox in busybox-static"
    moddir=$(find "$work/root/lib/modules" -mindepth 1 -maxdepth 1 -type d -print -quit)
    [ -n "$moddir" ] || die "no lib/modules/<version> in $kpkg"

    # name (with '-' as '_') -> file
    declare -A modfile=()
    while IFS= read -r f; do
        n=$(basename "$f"); n=${n%%.ko*}; n=${n//-/_}
        modfile[$n]=$f
    done < <(find "$moddir/kernel" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')
    builtin=" "
    if [ -f "$moddir/modules.builtin" ]; then
        while IFS= read -r b; do
            b=$(basename "$b" .ko); builtin+="${b//-/_} "
        done <"$moddir/modules.builtin"
    fi

    declare -A seen=()
    order=()
    unpack_ko() { # unpack_ko <src> <dst.ko>
        case $1 in
            *.ko) cp "$1" "$2" ;;
            *.ko.xz) need_tool xz xz-utils; xz -dc "$1" >"$2" ;;
            *.ko.zst) need_tool zstd zstd; zstd -qdc "$1" >"$2" ;;
            *.ko.gz) gzip -dc "$1" >"$2" ;;
        esac
    }
    add_module() { # depth-first: dependencies before the module
        local m=${1//-/_} deps d
        [ -z "${seen[$m]:-}" ] || return 0
        seen[$m]=1
        if [[ $builtin == *" $m "* ]]; then return 0; fi
        [ -n "${modfile[$m]:-}" ] || die "module $m is neither built in nor in $kpkg"
        unpack_ko "${modfile[$m]}" "$new/modules/$m.ko" || die "cannot unpack module $m"
        deps=$(tr '\0' '\n' <"$new/modules/$m.ko" | sed -n 's/^depends=//p')
        for d in ${deps//,/ }; do add_module "$d"; done
        order+=("$m")
    }
    for t in "${targets[@]}"; do add_module "$t"; done
    printf '%s\n' "${order[@]}" >"$new/modules.list"
    for deb in "$work"/*.deb; do
        dpkg-deb -f "$deb" Package Version | paste -sd' '
    done | paste -sd',' >"$new/versions"
    echo "$parts_format" >"$new/stamp"

    rm -rf "$parts"
    mv "$new" "$parts"
    rm -rf "$work"
    trap - EXIT
fi

# --- initramfs ---------------------------------------------------------------
stage=$(mktemp -d "$cache/initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib/modules"
cp "$parts/busybox" "$stage/bin/busybox"
cp "$parts/modules/"*.ko "$stage/lib/modules/"
cp "$parts/modules.list" "$stage/modules.list"
cp "$init_src" "$stage/init"
chmod 0755 "$stage/bin/busybox" "$stage/init"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) \
    | gzip -6 >"$initramfs.tmp" || die "packing the initramfs failed"
mv "$initramfs.tmp" "$initramfs"
rm -rf "$stage"
trap - EXIT
echo "$want_stamp" >"$cache/stamp"
echo "prepare.sh: ready ($(cat "$parts/versions"); modules: $(tr '\n' ' ' <"$parts/modules.list"))" >&2
