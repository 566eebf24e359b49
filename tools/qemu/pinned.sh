# shellcheck shell=bash
# tools/qemu/pinned.sh: the one place that pins the project's QEMU version.
# Sourced by tools/qemu/fetch.sh (Debian's binary packages of it, the QEMU
# that runs the guest by default) and tools/nested/qemu/build.sh (its source,
# patched, the outer QEMU of the nested runner).
#
# Why bookworm-backports: it serves Debian 13's QEMU rebuilt for Debian 12,
# so the binary runs on Debian 12's own libraries (the same ones Debian 12's
# QEMU 7.2 links against), and the host's apt sources need not know it.
# Changing qemu_version is a deliberate step: the nested patches
# (tools/nested/qemu/*.patch) are proven against exactly this source.

# Debian's package version of qemu (binary packages and source).
readonly qemu_version=1:10.0.2+ds-2+deb13u1~bpo12+1
# Debian's seabios of the same suite: qemu-system-x86 10.0.2 depends on
# seabios >> 1.16.3-1~, newer than Debian 12's 1.16.2 (the PC BIOS it loads).
readonly qemu_seabios_version=1.16.3-2~bpo12+1
readonly qemu_suite=bookworm-backports
