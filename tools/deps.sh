#!/usr/bin/env bash
# tools/deps.sh: make sure the Debian packages the build and the runs need are
# installed. As root it installs what is missing with apt-get; otherwise it
# prints the one command that would, and fails.
#   tools/deps.sh build     nasm, lld (ld.lld, lld-link), the .NET SDK check
#   tools/deps.sh run       + qemu-system-x86
#   tools/deps.sh image     + ovmf, mtools, qemu-utils
#   tools/deps.sh nested    + cpio (the nested mode's initramfs)
set -euo pipefail

need_cmds=() need_pkgs=()
want() { command -v "$1" >/dev/null 2>&1 || { need_cmds+=("$1"); need_pkgs+=("$2"); }; }
want_file() { [ -e "$1" ] || { need_cmds+=("$1"); need_pkgs+=("$2"); }; }

for what in "${@:-build}"; do
  case "$what" in
    build)  want nasm nasm; want ld.lld lld ;;
    run)    want nasm nasm; want ld.lld lld; want qemu-system-x86_64 qemu-system-x86 ;;
    image)  want python3 python3; want lld-link lld; want mcopy mtools; want qemu-img qemu-utils; want_file /usr/share/OVMF/OVMF_CODE.fd ovmf ;;
    nested) want qemu-system-x86_64 qemu-system-x86; want cpio cpio ;;
    *) echo "deps.sh: unknown group '$what' (build, run, image, nested)" >&2; exit 2 ;;
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
