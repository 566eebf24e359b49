#!/usr/bin/env bash
# tools/deps.sh: make sure the Debian packages the build and the runs need are
# installed. As root it installs what is missing with apt-get; otherwise it
# prints the one command that would, and fails.
#   tools/deps.sh build     nasm, lld (ld.lld, lld-link), the .NET SDK check
#   tools/deps.sh run       + qemu-system-x86
#   tools/deps.sh image     + lld-link, binutils (objcopy), ovmf, mtools, qemu-utils
#   tools/deps.sh qemu      + what tools/qemu/fetch.sh runs (the pinned QEMU 10.0.2 that
#                           runs the guest by default): apt, dpkg, util-linux (flock),
#                           libc-bin (ldd), coreutils, and the shared libraries that
#                           Debian's qemu-system-x86 10.0.2 links (its Depends:, all in
#                           Debian 12; the system's QEMU 7.2 links the same ones)
#   tools/deps.sh nested    + what tools/nested/{prepare,run,inner}.sh run on the host:
#                           qemu-system-x86, cpio, gzip, apt, dpkg, findutils,
#                           util-linux (flock), coreutils (mkfifo, timeout, sha256sum)
#   tools/deps.sh test      + perl (tools/prove.sh: the host tests read the guest's TAP with prove),
#                           gdb (tests/Kernel.Tests/GdbTests.cs attaches it to qemu-run.sh --gdb)
#   tools/deps.sh kvm       + what tools/nested/kvm/build.sh runs (the patched KVM
#                           for --kvm direct): gcc-12, make, binutils, patch,
#                           xz-utils, tar, libelf1 (kbuild's objtool links it)
#   tools/deps.sh qemu-build + what tools/nested/qemu/build.sh runs (the patched outer
#                           QEMU of the nested runner): gcc, binutils, ninja-build,
#                           pkg-config, python3 + python3-venv (Debian's /usr/bin/python3),
#                           patch, xz-utils, the -dev packages of glib, pixman, zlib, attr,
#                           cap-ng and libfdt, seabios and qemu-system-data (the BIOS and
#                           option ROMs it runs with)
set -euo pipefail

need_cmds=() need_pkgs=()
want() { command -v "$1" >/dev/null 2>&1 || { need_cmds+=("$1"); need_pkgs+=("$2"); }; }
want_file() { [ -e "$1" ] || { need_cmds+=("$1"); need_pkgs+=("$2"); }; }
# A library has no command to look for: ask dpkg whether its package is installed.
want_pkg() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ] || { need_cmds+=("$1"); need_pkgs+=("$1"); }; }
# want_pkgs <package>...: want_pkg for many, with one dpkg-query.
want_pkgs() {
  local installed p
  installed=" $(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null | awk '$2 == "install" && $4 == "installed" { printf "%s ", $1 }')"
  for p; do [[ $installed == *" $p "* ]] || { need_cmds+=("$p"); need_pkgs+=("$p"); }; done
}

for what in "${@:-build}"; do
  case "$what" in
    build)  want nasm nasm; want ld.lld lld ;;
    run)    want nasm nasm; want ld.lld lld; want qemu-system-x86_64 qemu-system-x86 ;;
    image)  want python3 python3; want lld-link lld; want objcopy binutils; want mcopy mtools; want qemu-img qemu-utils; want_file /usr/share/OVMF/OVMF_CODE.fd ovmf ;;
    qemu)   want apt-get apt; want apt-cache apt; want dpkg dpkg; want dpkg-deb dpkg; want flock util-linux
            want ldd libc-bin; want timeout coreutils; want realpath coreutils; want env coreutils
            want_pkgs libaio1 libbpf1 libc6 libcapstone4 libfdt1 libfuse3-3 libgcc-s1 libglib2.0-0 libgmp10 \
                libgnutls30 libhogweed6 libibverbs1 libjpeg62-turbo libnettle8 libnuma1 libpixman-1-0 libpmem1 \
                libpng16-16 librdmacm1 libsasl2-2 libseccomp2 libslirp0 libudev1 liburing2 libvdeplug2 libzstd1 zlib1g ;;
    nested) want qemu-system-x86_64 qemu-system-x86; want cpio cpio; want gzip gzip
            want apt-get apt; want apt-cache apt; want dpkg dpkg; want dpkg-deb dpkg; want find findutils
            want flock util-linux; want mkfifo coreutils; want timeout coreutils; want sha256sum coreutils
            want bash bash; want sed sed; want grep grep ;;
    test)   want perl perl; want gdb gdb ;;
    kvm)    want gcc-12 gcc-12; want make make; want as binutils; want ld binutils; want nm binutils
            want strip binutils; want patch patch; want xz xz-utils; want tar tar; want apt-get apt
            want dpkg dpkg; want flock util-linux; want sha256sum coreutils; want_pkg libelf1 ;;
    qemu-build) want cc gcc; want gcc gcc; want as binutils; want ld binutils; want ar binutils; want nm binutils
            want objcopy binutils; want strip binutils; want ninja ninja-build
            want pkg-config pkg-config; want_file /usr/bin/python3 python3; want_pkg python3-venv
            want patch patch; want xz xz-utils; want tar tar; want apt-get apt; want apt-cache apt
            want dpkg dpkg; want dpkg-deb dpkg; want flock util-linux; want sha256sum coreutils; want nice coreutils
            want_pkg libglib2.0-dev; want_pkg libpixman-1-dev; want_pkg zlib1g-dev; want_pkg libattr1-dev
            want_pkg libcap-ng-dev; want_pkg libfdt-dev; want_file /usr/share/seabios/bios-256k.bin seabios
            want_file /usr/share/qemu/linuxboot_dma.bin qemu-system-data; want_file /usr/share/qemu/kvmvapic.bin qemu-system-data ;;
    *) echo "deps.sh: unknown group '$what' (build, run, image, qemu, nested, test, kvm, qemu-build)" >&2; exit 2 ;;
  esac
done

if [[ " ${*:-build} " == *" build "* ]] && ! command -v dotnet >/dev/null 2>&1; then
  echo "deps.sh: the .NET SDK (dotnet, 10.0) is required and is not on PATH" >&2
  exit 1
fi

[ ${#need_pkgs[@]} -eq 0 ] && exit 0
mapfile -t pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps.sh: installing ${pkgs[*]} (missing: ${need_cmds[*]})" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${pkgs[@]}" >/dev/null
else
  echo "deps.sh: missing ${need_cmds[*]}; install them with:" >&2
  echo "  sudo apt-get install -y ${pkgs[*]}" >&2
  exit 1
fi
