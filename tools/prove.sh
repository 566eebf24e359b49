#!/usr/bin/env bash
# tools/prove.sh [prove args...]: Perl's `prove`, with a TAP::Parser that
# reads TAP version 14.
#
# Why: the guest reports TAP version 14; Debian 12's Test::Harness (3.44)
# knows versions 12 and 13 only and fails a stream that says 14. Debian 13's
# libtest-harness-perl (3.50, pure Perl, arch all) reads it and runs on
# Debian 12's perl. It is fetched once, with a private apt configuration (the
# system's sources and packages stay untouched), into .cache/tap/, and put
# first on perl's @INC; later runs are offline.
#
# Example:
#   ./qemu-run.sh --mode tcg --test | tr -d '\r' | sed -n '/^TAP version 14$/,$p' >run.tap
#   tools/prove.sh --exec cat run.tap
# Exit: prove's status; 1 with one line on stderr when the package cannot be had.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project_root=$(cd "$here/.." && pwd)
readonly SUITE=trixie PACKAGE=libtest-harness-perl VERSION=3.50-1
cache=$project_root/.cache/tap
lib=$cache/$PACKAGE-$VERSION

die() { echo "prove.sh: $*" >&2; exit 1; }

if [ ! -f "$lib/usr/bin/prove" ]; then
  command -v perl >/dev/null 2>&1 || die "perl is missing (Debian package perl)"
  command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 || die "apt-get and dpkg are needed to fetch $PACKAGE"
  mkdir -p "$cache"
  [ -f "$cache/.gitignore" ] || echo '*' >"$cache/.gitignore"
  work=$(mktemp -d "$cache/work.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  chmod 0777 "$work"                          # _apt downloads into it
  mkdir -p "$work/lists/partial" "$work/archives/partial"
  echo "deb http://deb.debian.org/debian $SUITE main" >"$work/sources.list"
  apt_private=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$work/lists"
               -o "Dir::Cache=$work" -o "Dir::Cache::archives=$work/archives")
  apt-get "${apt_private[@]}" update >"$work/apt.log" 2>&1 || die "apt-get update for Debian $SUITE failed: $(grep -E '^(E|Err):' "$work/apt.log" | head -n1)"
  (cd "$work" && apt-get "${apt_private[@]}" download "$PACKAGE=$VERSION" >>"$work/apt.log" 2>&1) \
    || die "apt-get download $PACKAGE=$VERSION from Debian $SUITE failed: $(grep -E '^(E|Err):' "$work/apt.log" | head -n1)"
  dpkg -x "$work/${PACKAGE}_${VERSION}_all.deb" "$work/root" || die "dpkg -x ${PACKAGE}_${VERSION}_all.deb failed"
  rm -rf "$lib"
  mv "$work/root" "$lib"
  rm -rf "$work"
  trap - EXIT
fi
exec perl -I"$lib/usr/share/perl5" "$lib/usr/bin/prove" "$@"
