#!/usr/bin/env bash
# qemu-run.sh: boot the kernel under QEMU and report what the guest reported.
#
# Usage: ./qemu-run.sh [--mode tcg|kvm|nested|auto] [--kvm stock|direct] [--smp N]
#                      [--test[=NAME]] [--append ARGS] [--timeout S] [--hv FLAGS|none]
#                      [--trace FILE] [--uefi|--gen2] [--qemu pinned|system] [--hv-balloon]
#                      [--qmp SOCKET] [--exec-trace FILE] [--gdb[=PORT]] [--image test|minimal]
#                      [--idle] [-- extra qemu args]
#
# --image picks the kernel (make builds both):
#   test     (default) build/kernel-test.elf, BOOTX64.EFI: the guest tests (--test),
#            the bench (--append bench), count mode (--append count), crash=.
#   minimal  build/kernel.elf, BOOTX64-minimal.EFI: the enlightened guest alone. It
#            prints "ready: N VPs enlightened, VMBus connected" and, told
#            exit-when-ready (added here unless --idle), leaves with status 0;
#            with --idle it idles, its drivers at work, until --timeout.
#
# Modes:
#   tcg     QEMU's software CPU. No Hyper-V interface: the guest skips those tests.
#   kvm     this host's KVM with its Hyper-V emulation (-accel kvm, hv-* flags).
#   nested  KVM's Hyper-V emulation one level down: an outer QEMU (TCG, with SVM)
#           boots Debian's Linux, whose KVM runs the kernel (tools/nested/).
#   auto    (default) kvm if this host's KVM offers Hyper-V, else nested if the
#           nested pieces can be had, else tcg. Says which, and why.
#
# --kvm picks the hypervisor side under kvm and nested modes:
#   stock   (default) KVM as the kernel ships it: HvCallSignalEventDirect and
#           HvCallPostMessageDirect answer INVALID_HYPERCALL_CODE.
#   direct  the project's KVM, which implements them (tools/nested/kvm: built from
#           Debian's sources for the nested Linux on first use; in kvm mode the
#           host must have loaded it with kvm.hv_direct_hypercalls=1).
# The guest is told which (hv-direct=implemented|absent on its command line) and
# checks that the hypervisor answers accordingly.
#
# --qemu (or $QEMU_RUN_QEMU) picks the QEMU that runs the guest, in every mode
# (under nested, the inner QEMU; the outer one is tools/nested/run.sh's choice):
#   pinned  (default) the project's pinned QEMU, Debian's 10.0.2 from
#           bookworm-backports (tools/qemu/pinned.sh), fetched into .cache/qemu by
#           tools/qemu/fetch.sh on first use (seconds, network), offline afterwards.
#   system  this host's qemu-system-x86_64 (Debian 12's 7.2). Guest tests that need
#           a newer QEMU skip there, saying so.
# stderr names the QEMU in a "qemu-run.sh: QEMU: <choice> <version> (<path>)" line.
#
# --hv-balloon adds QEMU's Hyper-V Dynamic Memory device (QEMU 8.2+: the pinned
# QEMU; modes kvm and nested, with hv-synic): -device hv-balloon with status
# reports on and a 256 MiB memdev to hot-add from, which QEMU maps at a 32 GiB
# boundary (the alignment a guest may ask for), hence maxmem=33G. The guest's
# VMBus driver opens its channel at boot (drivers/dynmem).
#
# --qmp SOCKET puts the guest QEMU's QMP monitor on the host unix socket SOCKET
# (created by QEMU, server=on,wait=off). In nested mode the socket is the outer
# machine's third serial port, which the inner QEMU's monitor sits on
# (tools/nested/run.sh --qmp). tests/Kernel.Tests drives hv-balloon through it.
#
# --exec-trace FILE (tcg) writes the guest PC of every executed instruction to FILE,
# one "Trace" line each (QEMU's -d exec,nochain with one instruction per translation
# block: -accel tcg,one-insn-per-tb=on from QEMU 8.1, -singlestep before, as in 7.2).
# tools/count-instructions.py counts the hot paths' instructions from it; restrict
# the log with `-- -dfilter START..END` (it is about 120 bytes an instruction).
#
# --uefi boots build/gen2.img (make image) under OVMF like a Hyper-V Generation 2
# VM: UEFI firmware, a GPT disk with an EFI System Partition, BOOTX64.EFI. The
# command line goes into a per-run copy of the disk (EFI/BOOT/CMDLINE.TXT).
#
# --gen2 (implies --uefi) also shapes the machine like a Generation 2 VM: q35
# without the PC-AT legacy devices (GEN2_MACHINE below says which, and what was
# measured). Modes tcg, kvm and nested.
#
# --gdb[=PORT] (tcg mode; auto then means tcg) starts QEMU halted (-S) with its
# gdbstub on 127.0.0.1:PORT, by default the first port from 1234 up that no TCP
# socket here uses, and prints on stderr the one gdb command line that attaches
# with the kernel's symbols (the ELF keeps its symbol table), and the
# name ilc gives a C# method (Kernel.Hv.Hypercall.SignalEventDirect is
# kernel_Kernel_Hv_Hypercall__SignalEventDirect). With --uefi (or --gen2) QEMU is
# not halted: OVMF loads BOOTX64.EFI where it chooses, the kernel (told gdb-wait)
# prints that address and waits, and the gdb line follows, with BOOTX64.EFI's COFF
# symbols moved there and the kernel let go. There is no timeout, since a human is
# stepping, unless --timeout is given. gdb's kill ends the run (status 5); gdb
# detaching lets the guest run on to its own end.
# kvm and nested refuse --gdb (69). kvm: KVM's guest debugging (breakpoints
# through the debug registers or int3 in guest memory) has never run under this
# script, because no machine this project tests on has a KVM with Hyper-V (its
# kvm mode runs inside the nested Linux, where no gdb could be attached from
# here). nested: the guest's QEMU runs inside the nested Linux, which has no
# network, so its gdbstub port cannot be reached from this host.
#
# Guest serial (COM1) goes to stdout. Exit status:
#   0  the guest finished and reported no failure
#   1  a guest test failed
#   2  the guest crashed: exception, panic, or a reset/power-off with no report (triple fault)
#   3  timeout
#   4  QEMU (or another required tool) is missing
#   5  --gdb: gdb killed QEMU before the guest reported a result
#   64 bad usage             69 the requested mode or KVM side is not available here
#   70 the nested runner itself failed
#   71 the nested Linux (L1, the hypervisor's kernel) logged a problem: BUG, WARNING, Oops
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KERNEL="$ROOT/build/kernel-test.elf" EFI_APP="$ROOT/build/BOOTX64.EFI"

# The guest's isa-debug-exit codes (kernel/arch/GuestExit.cs): QEMU exits (code << 1) | 1.
QEMU_PASSED=33 QEMU_FAILED=35 QEMU_CRASHED=37
EXIT_PASSED=0 EXIT_FAILED=1 EXIT_CRASHED=2 EXIT_TIMEOUT=3 EXIT_NO_QEMU=4 EXIT_GDB_KILLED=5
EXIT_USAGE=64 EXIT_UNAVAILABLE=69 EXIT_INFRA=70 EXIT_HOST_KERNEL=71

# KVM's tracepoints recorded by --trace, one list for kvm and nested mode: KVM_TRACE_EVENTS.
# shellcheck source=tools/kvm-trace-events.sh
. "$ROOT/tools/kvm-trace-events.sh"

# --gen2: q35 shaped like a Hyper-V Generation 2 VM, which has no 8259 PIC, 8254 PIT,
# HPET, i8042 or PS/2, floppy, DMA or Super I/O, and COM ports only as an optional
# debugging UART. Each option was measured alone and together with Debian's OVMF
# 2022.11 and QEMU 7.2 (./qemu-run.sh --uefi --mode tcg --smp 2 --test -- -machine X):
# OVMF boots and every guest test gives the plain q35 result with each of them.
# OVMF needs neither the PIT nor the PIC: it masks both 8259s at once and runs its
# timer on the local APIC (-trace pic_ioport_write -trace apic_local_deliver: the LVT
# timer fires a few hundred times per boot, as often with pit=off and pic=off).
#   pic=off     no i8259 pair (ports 0x20-0x21, 0xa0-0xa1, ELCR 0x4d0-0x4d1)
#   pit=off     no i8254 (0x40-0x43), and with it no PC speaker (0x61)
#   hpet=off    no HPET at 0xfed00000
#   i8042=off   no i8042 (0x60, 0x64), PS/2 keyboard and mouse, and also no port 92
#               (A20) and no vmport/vmmouse
#   vmport=off  VMware's backdoor port (gone with i8042=off anyway; explicit)
#   usb=off     no USB controller (-nodefaults already adds none)
#   smbus=off   no ICH9 SMBus controller and its eight SPD EEPROMs
#   sata=off    no ICH9 AHCI at 00:1f.2: the disk is on its own PCI AHCI (-device ahci)
# What stays, because QEMU 7.2's q35 cannot drop it: the ICH9 LPC bridge with its
# reset port 0xcf9 and APM port 0xb2, the mc146818 RTC/CMOS (0x70-0x71), the i8257 DMA
# controllers (0x00-0x0f, 0x81-0x8f, 0xc0-0xdf), ports 0x80 and 0xf0, ACPI's PM and
# hotplug ports, the I/O APIC and fw_cfg (which OVMF needs). The kernel touches none.
# -nodefaults leaves no NIC and no VGA; the one COM port is the -serial the run adds
# (COM1, the guest's console); and isa-debug-exit (port 0xf4) stays: it is how the
# guest reports its result to this script (a real Gen2 VM has none, and the kernel
# powers off through UEFI instead).
# tests/Kernel.Tests/Gen2Tests.cs checks the machine from QEMU's monitor.
# The pinned QEMU (10.0.2) clears PCAT_COMPAT in the MADT with pic=off, so the kernel
# leaves the 8259's ports alone (kernel/arch/LegacyPic.cs); QEMU 7.2 (--qemu system)
# still sets it (hw/i386/acpi-common.c), and the kernel then masks an 8259 that is not
# there. The boot log's "pic:" line says which.
# Under KVM (kvm, nested) pic=off removes QEMU's 8259 but not KVM's in-kernel one, which
# KVM_CREATE_IRQCHIP always creates (measured with QEMU 7.2, whose MADT still declares it: "an 8259 answered" in the nested run).
# kernel-irqchip=split would remove it (measured: port 0x20 reads 0xff), but then
# messages.busy_slot_sets_pending_and_eom_redelivers fails: after EOM the queued message
# never arrives. QEMU's SynIC learns of EOM through a resample irqfd, which KVM accepts
# only with the full in-kernel irqchip (kvm_arch_irqfd_allowed); so it is not used.
GEN2_MACHINE="q35,pic=off,pit=off,hpet=off,i8042=off,vmport=off,usb=off,smbus=off,sata=off"

DEFAULT_HV="hv-relaxed,hv-vpindex,hv-synic,hv-time,hv-stimer,hv-stimer-direct,hv-vapic,hv-runtime,hv-frequencies,hv-tlbflush,hv-ipi,hv-crash"

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit $EXIT_USAGE; }
die() { echo "qemu-run.sh: $1" >&2; exit "${2:-$EXIT_USAGE}"; }

mode=auto kvm_side=stock smp=1 append="" timeout="" hv="$DEFAULT_HV" trace="" exec_trace="" test_arg="" extra=() image=test idle=0 uefi=0 gen2=0 balloon=0 qmp= gdb=0 gdb_port=""
qemu_choice=${QEMU_RUN_QEMU:-pinned}
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) [ $# -ge 2 ] || usage; mode=$2; shift 2 ;;
    --mode=*) mode=${1#*=}; shift ;;
    --kvm) [ $# -ge 2 ] || usage; kvm_side=$2; shift 2 ;;
    --kvm=*) kvm_side=${1#*=}; shift ;;
    --smp) [ $# -ge 2 ] || usage; smp=$2; shift 2 ;;
    --smp=*) smp=${1#*=}; shift ;;
    --test) test_arg="test"; shift ;;
    --test=*) [ -n "${1#*=}" ] || die "--test= needs a test name prefix"; test_arg="test=${1#*=}"; shift ;;
    --append) [ $# -ge 2 ] || usage; append="$append $2"; shift 2 ;;
    --append=*) append="$append ${1#*=}"; shift ;;
    --timeout) [ $# -ge 2 ] || usage; timeout=$2; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    --hv) [ $# -ge 2 ] || usage; hv=$2; shift 2 ;;
    --hv=*) hv=${1#*=}; shift ;;
    --trace) [ $# -ge 2 ] || usage; trace=$2; shift 2 ;;
    --trace=*) trace=${1#*=}; shift ;;
    --exec-trace) [ $# -ge 2 ] || usage; exec_trace=$2; shift 2 ;;
    --exec-trace=*) exec_trace=${1#*=}; shift ;;
    --uefi) uefi=1; shift ;;
    --qemu) [ $# -ge 2 ] || usage; qemu_choice=$2; shift 2 ;;
    --qemu=*) qemu_choice=${1#*=}; shift ;;
    --gen2) uefi=1 gen2=1; shift ;;
    --hv-balloon) balloon=1; shift ;;
    --qmp) [ $# -ge 2 ] || usage; qmp=$2; shift 2 ;;
    --qmp=*) qmp=${1#*=}; shift ;;
    --gdb) gdb=1 gdb_port=free; shift ;;
    --gdb=*) gdb=1 gdb_port=${1#*=}; shift ;;
    --image) [ $# -ge 2 ] || usage; image=$2; shift 2 ;;
    --image=*) image=${1#*=}; shift ;;
    --idle) idle=1; shift ;;
    -h|--help) usage ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

case "$mode" in tcg|kvm|nested|auto) ;; *) die "--mode must be tcg, kvm, nested or auto, not '$mode'" ;; esac
case "$kvm_side" in stock|direct) ;; *) die "--kvm must be stock or direct, not '$kvm_side'" ;; esac
case "$image" in
  test) [ "$idle" = 0 ] || die "--idle is for --image minimal: the test image always leaves with its status" ;;
  minimal)
    KERNEL="$ROOT/build/kernel.elf" EFI_APP="$ROOT/build/BOOTX64-minimal.EFI"
    [ -z "$test_arg" ] || die "--test needs the test image: the minimal image has no test mode (drop --image minimal)"
    [ "$idle" = 1 ] || append="$append exit-when-ready" ;;
  *) die "--image must be test or minimal, not '$image'" ;;
esac
case "$qemu_choice" in pinned|system) ;; *) die "--qemu (or QEMU_RUN_QEMU) must be pinned or system, not '$qemu_choice'" ;; esac
[[ "$smp" =~ ^[1-9][0-9]*$ ]] || die "--smp must be a positive number, not '$smp'"
[ -z "$timeout" ] || [[ "$timeout" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a whole number of seconds, not '$timeout'"
[ "$hv" = none ] || [[ "$hv" =~ ^hv-[a-z0-9-]+(,hv-[a-z0-9-]+(=[a-z0-9]+)?)*$ ]] || die "--hv takes a comma-separated list of hv-* flags, or 'none'"
if [ -n "$qmp" ]; then
  [[ "$qmp" != *,* ]] || die "--qmp: the socket path must not contain a comma (QEMU option syntax)"
  [ -d "$(dirname -- "$qmp")" ] || die "--qmp $qmp: no directory $(dirname -- "$qmp")"
  [ ! -e "$qmp" ] || [ -S "$qmp" ] || die "--qmp $qmp: exists and is not a socket"
fi
[ "$gdb" = 0 ] || [ "$gdb_port" = free ] || { [[ "$gdb_port" =~ ^[1-9][0-9]{0,4}$ ]] && [ "$gdb_port" -le 65535 ]; } \
  || die "--gdb=PORT takes a TCP port number, 1-65535, not '$gdb_port' (--gdb alone picks a free one)"
# --gdb: only TCG's gdbstub has been proven here (the header says why kvm and nested refuse).
if [ "$gdb" = 1 ]; then
  case "$mode" in
    kvm)    die "--gdb is offered in tcg mode only: KVM's guest debugging has never run under this script (no machine this project tests on has a KVM with Hyper-V); use --mode tcg" $EXIT_UNAVAILABLE ;;
    nested) die "--gdb is offered in tcg mode only: under nested the guest's QEMU runs inside the nested Linux, which has no network, so its gdbstub cannot be reached from here; use --mode tcg" $EXIT_UNAVAILABLE ;;
    auto)   mode=tcg; echo "qemu-run.sh: mode tcg: --gdb is offered in tcg mode only" >&2 ;;
  esac
fi
# Missing Debian packages: installed when we are root, else the apt-get line is printed.
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
  "$ROOT/tools/deps.sh" run >&2 || true
  command -v qemu-system-x86_64 >/dev/null 2>&1 || die "qemu-system-x86_64 is missing (Debian package qemu-system-x86)" $EXIT_NO_QEMU
fi
# The QEMU that runs the guest: qemu=(the command, with its data dirs), and
# qemu_modules, its module dir (pinned: its own; system: the built-in one).
# The pinned tree's binary would otherwise load the host's 7.2 modules and
# abort; a system QEMU must not be handed another build's module dir.
if [ "$qemu_choice" = pinned ]; then
  tree=$("$ROOT/tools/qemu/fetch.sh") \
    || die "the pinned QEMU could not be had (tools/qemu/fetch.sh, above); --qemu system runs this host's" $EXIT_NO_QEMU
  qemu_bin=$tree/usr/bin/qemu-system-x86_64 qemu_modules=$tree/usr/lib/x86_64-linux-gnu/qemu
  qemu_data=(-L "$tree/usr/share/qemu" -L "$tree/usr/share/seabios")
  qemu=(env "QEMU_MODULE_DIR=$qemu_modules" "$qemu_bin" "${qemu_data[@]}")
else
  qemu_bin=$(command -v qemu-system-x86_64) qemu_modules="" qemu_data=()
  qemu=(env -u QEMU_MODULE_DIR "$qemu_bin")
fi
qemu_version=$("${qemu[@]}" --version 2>&1 | sed -n '1s/^QEMU emulator version //p')
[ -n "$qemu_version" ] || die "$qemu_bin --version does not name a QEMU version: $("${qemu[@]}" --version 2>&1 | head -n1)" $EXIT_NO_QEMU
echo "qemu-run.sh: QEMU: $qemu_choice $qemu_version ($qemu_bin)" >&2
if [ "$uefi" = 1 ]; then
  GEN2_IMG="$ROOT/build/gen2.img"
  OVMF_CODE=/usr/share/OVMF/OVMF_CODE.fd OVMF_VARS=/usr/share/OVMF/OVMF_VARS.fd
  [ -f "$GEN2_IMG" ] || die "$GEN2_IMG is missing: run 'make image' first" $EXIT_USAGE
  [ -f "$EFI_APP" ] || die "$EFI_APP is missing: run 'make image' first" $EXIT_USAGE
  [ -f "$OVMF_CODE" ] && [ -f "$OVMF_VARS" ] || die "OVMF is missing (Debian package ovmf; 'tools/deps.sh image' installs it)" $EXIT_NO_QEMU
  command -v mcopy >/dev/null 2>&1 || die "mcopy is missing (Debian package mtools)" $EXIT_NO_QEMU
else
  [ -f "$KERNEL" ] || die "$KERNEL is missing: run 'make' first" $EXIT_USAGE
fi

# ---- choose the mode ----------------------------------------------------------
kvm_has_hyperv() {
  # KVM's Hyper-V emulation is what answers CPUID 0x40000001 with "Hv#1"; ask
  # QEMU to start a KVM guest with the SynIC and see whether KVM accepts it.
  # The probe VM never runs: its monitor reads "quit" at once. KVM refusing the
  # flags makes QEMU exit with an error before that.
  # 60 s: QEMU starts in well under a second on hardware, but in seconds
  # when this host is itself emulated (the nested L1 of make test).
  [ -w /dev/kvm ] || return 1
  echo quit | timeout 60 "${qemu[@]}" -accel kvm -cpu host,hv-vpindex,hv-synic -machine pc -display none \
    -S -monitor stdio -serial none -nodefaults >/dev/null 2>&1
}

if [ "$mode" = auto ]; then
  if kvm_has_hyperv; then
    mode=kvm; why="this host's KVM accepts Hyper-V SynIC guests"
  elif "$ROOT/tools/nested/prepare.sh" >/dev/null 2>&1; then
    # prepare.sh is a no-op when .cache/nested is complete, else it fetches Debian's kernel and busybox.
    mode=nested; why="this host's KVM has no Hyper-V emulation; the nested Linux (tools/nested) can run it"
  else
    mode=tcg; why="no KVM with Hyper-V here, and tools/nested/prepare.sh failed (run it to see why); Hyper-V tests will skip"
  fi
  echo "qemu-run.sh: mode $mode: $why" >&2
fi
if [ "$mode" = kvm ] && ! kvm_has_hyperv; then
  die "--mode kvm: this host's KVM does not run Hyper-V-enlightened guests (no writable /dev/kvm, or KVM refused hv-synic); use --mode nested" $EXIT_UNAVAILABLE
fi
if [ "$mode" = tcg ] && [ -n "$trace" ]; then
  die "--trace needs KVM (mode kvm or nested): TCG has no Hyper-V to trace" $EXIT_UNAVAILABLE
fi
if [ -n "$exec_trace" ] && [ "$mode" != tcg ]; then
  die "--exec-trace needs --mode tcg: only QEMU's software CPU can log every instruction" $EXIT_UNAVAILABLE
fi
if [ "$balloon" = 1 ]; then
  [ "$mode" != tcg ] || die "--hv-balloon needs KVM (mode kvm or nested): QEMU's VMBus needs the SynIC, which TCG does not emulate" $EXIT_UNAVAILABLE
  [[ ",$hv," == *",hv-synic,"* ]] || die "--hv-balloon needs hv-synic among the --hv flags (the device sits on QEMU's VMBus)" $EXIT_UNAVAILABLE
  "${qemu[@]}" -device help 2>/dev/null | grep -q '"hv-balloon"' \
    || die "--hv-balloon: this QEMU ($qemu_choice $qemu_version) has no hv-balloon device (QEMU 8.2 and newer; --qemu pinned has it)" $EXIT_UNAVAILABLE
fi
if [ "$mode" = tcg ] && [ "$kvm_side" = direct ]; then
  die "--kvm direct needs KVM (mode kvm or nested): TCG has no Hyper-V" $EXIT_UNAVAILABLE
fi
# In kvm mode the host's own kvm.ko decides; it must be the side that was asked for.
if [ "$mode" = kvm ]; then
  direct_param=/sys/module/kvm/parameters/hv_direct_hypercalls
  host_side=stock
  [ "$(cat "$direct_param" 2>/dev/null)" = Y ] && host_side=direct
  [ "$host_side" = "$kvm_side" ] || die "--kvm $kvm_side: this host's KVM is the $host_side side ($direct_param: $(cat "$direct_param" 2>/dev/null || echo absent)); the project's KVM is loaded with kvm.hv_direct_hypercalls=1 (tools/nested/kvm)" $EXIT_UNAVAILABLE
fi
# --gdb: a human is stepping, so no timeout unless one was asked for.
[ -n "$timeout" ] || [ "$gdb" = 1 ] || case "$mode" in tcg) timeout=60 ;; kvm) timeout=60 ;; nested) timeout=600 ;; esac

# ---- the guest's QEMU command line -------------------------------------------
# Under KVM with Hyper-V the guest learns which side answers the Direct calls.
if [ "$mode" != tcg ] && [ "$hv" != none ]; then
  if [ "$kvm_side" = direct ]; then append="$append hv-direct=implemented"; else append="$append hv-direct=absent"; fi
fi
# --uefi --gdb: the kernel says where OVMF loaded it and waits for gdb (below).
[ "$gdb" = 0 ] || [ "$uefi" = 0 ] || append="$append gdb-wait"
cmdline="$test_arg$append"
cmdline="${cmdline# }"
memory=256
[ "$balloon" = 0 ] || memory=256M,maxmem=33G
guest=(-m "$memory" -smp "$smp" -display none -no-reboot -nodefaults -device isa-debug-exit,iobase=0xf4,iosize=0x04)
scratch=()
if [ "$uefi" = 1 ]; then
  # Per run: a writable copy of the firmware variables (pflash unit 1) and of the
  # disk with this run's command line. Under /tmp, which the nested runner's inner
  # QEMU can also write (tools/nested/run.sh).
  vars=$(mktemp /tmp/qemu-run-vars.XXXXXX) disk=$(mktemp /tmp/qemu-run-gen2.XXXXXX) cmdfile=$(mktemp /tmp/qemu-run-cmdline.XXXXXX)
  scratch=("$vars" "$disk" "$cmdfile")
  cp "$OVMF_VARS" "$vars"
  cp --sparse=always "$GEN2_IMG" "$disk"
  printf '%s\n' "$cmdline" >"$cmdfile"
  # The ESP starts at 1 MiB (tools/hyperv/mkgen2.py). The image too, whichever
  # one make image put on the disk (GEN2_IMAGE).
  mcopy -o -i "$disk@@1048576" "$cmdfile" ::/EFI/BOOT/CMDLINE.TXT
  mcopy -o -i "$disk@@1048576" "$EFI_APP" ::/EFI/BOOT/BOOTX64.EFI
  # q35 with the disk on AHCI (UEFI, no legacy IDE boot); --gen2 also drops the legacy devices.
  machine=q35
  [ "$gen2" = 0 ] || machine=$GEN2_MACHINE
  guest+=(-machine "$machine" -drive if=pflash,format=raw,readonly=on,file="$OVMF_CODE" -drive if=pflash,format=raw,file="$vars"
          -drive if=none,id=gen2disk,format=raw,file="$disk" -device ahci,id=ahci -device ide-hd,drive=gen2disk,bus=ahci.0)
else
  guest+=(-kernel "$KERNEL" -append "$cmdline")
fi
case "$mode" in
  tcg) cpu="qemu64" ;;
  *)   if [ "$hv" = none ]; then cpu="qemu64"; else cpu="qemu64,$hv"; fi
       # hv-crash: the guest's CRASH_CTL write makes QEMU log "HV crash parameters"
       # (guest_errors); panic=none lets the guest still report its own exit status.
       guest+=(-device hyperv-testdev -action panic=none -d guest_errors)
       # QEMU's VMBus host needs the SynIC; without hv-synic it only complains on stderr.
       [[ ",$hv," != *",hv-synic,"* ]] || guest+=(-device vmbus-bridge)
       [ "$balloon" = 0 ] || guest+=(-object memory-backend-ram,id=dm-memory,size=256M
                                     -device hv-balloon,id=dm,memdev=dm-memory,status-report=on) ;;
esac
# The QMP monitor: in nested mode run.sh wires it through the outer machine.
monitor=()
[ -z "$qmp" ] || [ "$mode" = nested ] || monitor=(-qmp "unix:$qmp,server=on,wait=off")
guest+=(-cpu "$cpu")

# ---- --gdb: the gdbstub's port --------------------------------------------------
# In use: the local port of any TCP socket of this network namespace, in any
# state (/proc/net/tcp and tcp6, hex). Read from /proc rather than probed with a
# connection, which another QEMU's gdbstub would take for a debugger.
port_in_use() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v port="$hex" 'FNR > 1 { split($2, local_address, ":"); if (local_address[2] == port) found = 1 } END { exit !found }' \
    /proc/net/tcp $( [ ! -e /proc/net/tcp6 ] || echo /proc/net/tcp6 )
}
if [ "$gdb" = 1 ]; then
  if [ "$gdb_port" = free ]; then
    # From 1234, gdb's and QEMU's (-s) customary port, up. Another run may take the
    # same port before this QEMU listens on it; QEMU then fails to bind, and the run
    # ends with status 69 (below).
    for ((candidate = 1234; candidate < 1234 + 1000; candidate++)); do
      port_in_use "$candidate" || { gdb_port=$candidate; break; }
    done
    [ "$gdb_port" != free ] || die "--gdb: no free TCP port in 1234-2233 for the gdbstub; name one with --gdb=PORT" $EXIT_UNAVAILABLE
  elif port_in_use "$gdb_port"; then
    die "--gdb=$gdb_port: a TCP socket here already uses port $gdb_port; pick another, or --gdb alone for a free one" $EXIT_UNAVAILABLE
  fi
  guest+=(-gdb "tcp:127.0.0.1:$gdb_port")        # only 127.0.0.1: whoever connects can read and write the guest
  # gdb retries a refused connection for 15 s (set tcp auto-retry, connect-timeout),
  # so the line can be printed before QEMU has opened its socket.
  if [ "$uefi" = 0 ]; then
    # -S: halted before the first instruction (the reset vector), with the kernel
    # already in guest memory (gdb reads its code there at once), so breakpoints
    # can be set before it runs.
    guest+=(-S)
    echo "qemu-run.sh: gdb: QEMU waits, halted, for gdb on 127.0.0.1:$gdb_port; to attach with the kernel's symbols:" >&2
    printf "    gdb -ex 'target remote 127.0.0.1:%s' %q\n" "$gdb_port" "$KERNEL" >&2
  else
    # Not halted: until OVMF has loaded BOOTX64.EFI, at an address it chooses, there
    # is no kernel to debug and nowhere to put its symbols. The kernel (gdb-wait)
    # prints where it is and spins; gdb_uefi_line answers with the gdb line, and gdb
    # attaching stops the guest.
    [[ "$ROOT" != *"'"* ]] || die "--uefi --gdb: the gdb line quotes the path of BOOTX64.EFI in '...', which cannot hold the ' in $ROOT" $EXIT_USAGE
    echo "qemu-run.sh: gdb: QEMU listens for gdb on 127.0.0.1:$gdb_port; the kernel will say where OVMF loaded it and wait, and the gdb line to attach follows then" >&2
  fi
  echo "qemu-run.sh: gdb: ilc names a C# method <assembly>_<namespace>_<type>__<method>, dots as _: for Kernel.Hv.Hypercall.SignalEventDirect, 'break kernel_Kernel_Hv_Hypercall__SignalEventDirect'" >&2
  if [ -n "$timeout" ]; then limit_note="--timeout $timeout holds: the run ends after ${timeout}s"; else limit_note="no timeout (a human is stepping; --timeout S sets one)"; fi
  echo "qemu-run.sh: gdb: $limit_note; gdb's kill ends the run (status 5), detach lets the guest run on" >&2
fi

# ---- run ------------------------------------------------------------------------
# --uefi --gdb: the guest's serial output, passed through unchanged but for the
# kernel's gdb-wait line (kernel/arch/EfiBoot.cs WaitForGdb), which is answered on
# stderr with the gdb line: attach, load BOOTX64.EFI's COFF symbols (the Makefile
# keeps them) moved by where OVMF put the image against the ImageBase it was linked
# at, and clear the byte the kernel spins on. The guest runs on at gdb's continue.
gdb_uefi_line() {
  local line efi=$EFI_APP lfanew linked offset
  # PE/COFF: e_lfanew at 0x3C; ImageBase at 24 into the PE32+ optional header, 24 past "PE\0\0".
  lfanew=$(od -An -t u4 -j 60 -N 4 "$efi" | tr -d ' ')
  linked=0x$(od -An -t x8 -j $((lfanew + 48)) -N 8 "$efi" | tr -d ' ')
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s\n' "$line"
    if [[ "$line" =~ ^efi:\ gdb-wait:\ loaded\ at\ (0x[0-9a-f]+)\;\ waiting\ until\ gdb\ clears\ the\ byte\ at\ (0x[0-9a-f]+) ]]; then
      offset=$(printf '%#x' $(( BASH_REMATCH[1] - linked )))       # two's complement when OVMF loaded it lower
      echo "qemu-run.sh: gdb: the kernel waits, loaded at ${BASH_REMATCH[1]} (linked at $(printf '%#x' $((linked)))); to attach with its symbols there:" >&2
      printf "    gdb -ex 'target remote 127.0.0.1:%s' -ex 'add-symbol-file %q -o %s' -ex 'set var *(char *)%s = 0'\n" \
        "$gdb_port" "$efi" "$offset" "${BASH_REMATCH[2]}" >&2
    fi
  done
}
log=$(mktemp /tmp/qemu-run.XXXXXX)
errors=$(mktemp /tmp/qemu-run-stderr.XXXXXX)
trap 'rm -f "$log" "$errors" "${scratch[@]}"' EXIT
set +e
case "$mode" in
  tcg)
    accel=(-accel tcg) logging=(-d cpu_reset,guest_errors -D "$log")
    if [ -n "$exec_trace" ]; then
      # Every TB one instruction and no chaining, so -d exec logs each executed
      # instruction once. QEMU 8.1 turned -singlestep into this accelerator property.
      major=${qemu_version%%.*} minor=${qemu_version#*.}; minor=${minor%%[.( ]*}
      if [ "$major" -gt 8 ] || { [ "$major" -eq 8 ] && [ "$minor" -ge 1 ]; }; then accel=(-accel tcg,one-insn-per-tb=on)
      else accel=(-accel tcg -singlestep); fi
      logging=(-d exec,nochain -D "$exec_trace")
    fi
    limit=()
    [ -z "$timeout" ] || limit=(timeout -k 5 "$timeout")
    run_tcg() {
      "${limit[@]}" "${qemu[@]}" "${accel[@]}" "${guest[@]}" "${monitor[@]}" -serial stdio \
        "${logging[@]}" "${extra[@]}" </dev/null
    }
    # Under --gdb, QEMU's stderr is kept (and shown after the run, as in kvm mode):
    # it says whether gdb killed QEMU or QEMU could not listen on the port.
    if [ "$gdb" = 0 ]; then run_tcg; status=$?
    elif [ "$uefi" = 0 ]; then run_tcg 2>"$errors"; status=$?
    else run_tcg 2>"$errors" | gdb_uefi_line; status=${PIPESTATUS[0]}
    fi ;;
  kvm)
    tracing=/sys/kernel/tracing
    # Turns KVM_TRACE_EVENTS on (1) or off (0) in this host's tracefs; an event
    # this kernel does not have is left out.
    kvm_trace_events() {
      local event
      for event in ${KVM_TRACE_EVENTS//,/ }; do
        [ ! -e "$tracing/events/kvm/$event/enable" ] || echo "$1" >"$tracing/events/kvm/$event/enable"
      done
    }
    if [ -n "$trace" ]; then
      # The same tracepoints as nested mode, in this host's own tracefs (root only).
      [ "$(id -u)" -eq 0 ] || die "--trace in kvm mode needs root (it uses this host's tracefs)" $EXIT_UNAVAILABLE
      [ -d "$tracing/events" ] || mount -t tracefs tracefs "$tracing" 2>/dev/null || true
      [ -d "$tracing/events/kvm" ] || die "--trace: this host's tracefs ($tracing) has no kvm events" $EXIT_UNAVAILABLE
      # A whole test mode fills the default per-CPU buffer and would lose its
      # first events (the guest OS ID write): 8 MiB per CPU, as nested mode.
      echo 8192 >"$tracing/buffer_size_kb"
      : >"$tracing/trace"
      kvm_trace_events 1
    fi
    timeout -k 5 "$timeout" "${qemu[@]}" -accel kvm "${guest[@]}" "${monitor[@]}" -serial stdio "${extra[@]}" </dev/null 2>"$errors"
    status=$?
    if [ -n "$trace" ]; then
      kvm_trace_events 0
      cp "$tracing/trace" "$trace"
    fi ;;
  nested)
    [ -x "$ROOT/tools/nested/run.sh" ] || die "--mode nested: tools/nested/run.sh is missing" $EXIT_UNAVAILABLE
    # The inner QEMU is this run's QEMU: the outer Linux runs it from the host's
    # root (shared over 9p) at the same path.
    nested_args=(--timeout "$timeout" --kvm "$kvm_side" --inner-qemu "$qemu_bin")
    [ -z "$qemu_modules" ] || nested_args+=(--inner-module-dir "$qemu_modules")
    [ -z "$trace" ] || nested_args+=(--trace "$trace")        # run.sh's default events: KVM_TRACE_EVENTS
    [ -z "$qmp" ] || nested_args+=(--qmp "$qmp")
    "$ROOT/tools/nested/run.sh" "${nested_args[@]}" -- "${qemu_data[@]}" "${guest[@]}" "${extra[@]}" 2>"$errors"
    status=$? ;;
esac
set -e
# -d guest_errors also logs OVMF probing for a TPM at 0xFED40000: expected, not news.
# --hv-balloon: QEMU warns that the device's 32 GiB alignment is beyond what memory
# devices usually need; it is what hv-balloon asks for, and maxmem allows for it.
grep -v -e "HV crash parameters" -e "Invalid read at addr 0xFED4" \
  -e "hv-balloon.*the alignment (0x800000000) exceeds the expected maximum alignment" "$errors" >&2 || true

# The hypervisor's own record of a guest crash (kernel/hv/CrashReport.cs wrote
# CRASH_P0..P4 and CRASH_CTL): vector, RIP, error code, CR2, reason code.
if crash=$(grep -o 'HV crash parameters: ([^)]*)' "$errors" | tail -1) && [ -n "$crash" ]; then
  read -r p0 p1 p2 p3 p4 <<<"$(sed 's/.*(\(.*\))/\1/' <<<"$crash")"
  echo "qemu-run.sh: the hypervisor reported a guest crash: P0 (vector) $p0, P1 (RIP) $p1, P2 (error code) $p2, P3 (CR2) $p3, P4 (code) $p4" >&2
  [ "$status" = "$QEMU_PASSED" ] || [ "$status" = "$QEMU_FAILED" ] || status=$QEMU_CRASHED
fi

# --gdb: QEMU ends with status 0 when gdb kills it ("Terminated via GDBstub"), and
# with 1 when it cannot listen on the port (another run took it after the check).
if [ "$gdb" = 1 ]; then
  if [ "$status" = 0 ] && grep -q "Terminated via GDBstub" "$errors"; then
    echo "qemu-run.sh: gdb killed QEMU before the guest reported a result" >&2; exit $EXIT_GDB_KILLED
  fi
  if [ "$status" = 1 ] && grep -q "gdbstub\|tcp:127.0.0.1:$gdb_port" "$errors"; then
    echo "qemu-run.sh: --gdb: QEMU could not open its gdbstub on 127.0.0.1:$gdb_port (above)" >&2; exit $EXIT_UNAVAILABLE
  fi
fi

case "$status" in
  "$QEMU_PASSED") exit $EXIT_PASSED ;;
  "$QEMU_FAILED") echo "qemu-run.sh: a guest test failed" >&2; exit $EXIT_FAILED ;;
  "$QEMU_CRASHED") echo "qemu-run.sh: the guest crashed (see its report above)" >&2; exit $EXIT_CRASHED ;;
  124) echo "qemu-run.sh: timeout: the guest did not finish within ${timeout}s" >&2; exit $EXIT_TIMEOUT ;;
  0)
    echo "qemu-run.sh: the guest reset or powered off without reporting a result (a triple fault?)" >&2
    if [ -s "$log" ]; then
      echo "qemu-run.sh: CPU state at the last reset:" >&2
      awk '/^CPU Reset/ {block=""} {block = block $0 "\n"} END {printf "%s", block}' "$log" | head -12 >&2
    fi
    exit $EXIT_CRASHED ;;
  125) [ "$mode" = nested ] && { echo "qemu-run.sh: the nested runner failed (see above)" >&2; exit $EXIT_INFRA; }
       echo "qemu-run.sh: QEMU refused its command line" >&2; exit $EXIT_INFRA ;;
  126) [ "$mode" = nested ] && { echo "qemu-run.sh: --kvm $kvm_side: that KVM could not be had (see above)" >&2; exit $EXIT_UNAVAILABLE; }
       echo "qemu-run.sh: QEMU exited with unexpected status 126" >&2; exit $EXIT_CRASHED ;;
  127) [ "$mode" = nested ] && { echo "qemu-run.sh: the nested Linux's kernel (L1, the hypervisor) reported a problem (see above)" >&2; exit $EXIT_HOST_KERNEL; }
       echo "qemu-run.sh: QEMU exited with unexpected status 127" >&2; exit $EXIT_CRASHED ;;
  *) echo "qemu-run.sh: QEMU exited with unexpected status $status" >&2; exit $EXIT_CRASHED ;;
esac
