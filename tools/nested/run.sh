#!/usr/bin/env bash
# Run a guest under real KVM Hyper-V emulation by nesting.
#
# Usage:
#   tools/nested/run.sh [--trace FILE] [--trace-events LIST] [--timeout S] [--log FILE]
#                       [--kernel-log FILE] [--kvm stock|direct] [--outer-qemu patched|system]
#                       [--inner-qemu PATH] [--inner-module-dir DIR] [--share DIR] [--qmp SOCKET]
#                       [--debug] -- <inner qemu args...>
#   tools/nested/run.sh [same options] --command -- <command> [args...]
#
# Runs `qemu-system-x86_64 -accel kvm <inner args> -serial file:/dev/ttyS1`
# inside an outer Linux that itself runs under TCG with nested SVM.
# With --command it runs <command> there instead, as root in the host's root
# and the caller's working directory, its stdout being this script's stdout:
# the outer Linux is then a host with a KVM that emulates Hyper-V, e.g. for
# `./qemu-run.sh --mode kvm`, the path a CI runner with /dev/kvm takes.
#   - --inner-qemu PATH: the inner QEMU (default /usr/bin/qemu-system-x86_64,
#     the host's); a host path, run from the host root the outer Linux
#     chroots into. --inner-module-dir DIR: its QEMU_MODULE_DIR (a QEMU that
#     is not the host's installed one must not load the host's modules);
#     without it the inner QEMU runs with no QEMU_MODULE_DIR. Data dirs (-L)
#     go in the inner args. stderr and the log name the QEMU that ran, as
#     the outer Linux saw it, in an "inner QEMU:" line.
#   - The inner args must not contain -serial: the guest's COM1 is routed to
#     this script's stdout, and nothing else is written to stdout.
#   - Paths in the inner args are host paths: the outer Linux chroots into the
#     host's root, shared read-only over 9p. /tmp and /var/tmp in there are
#     writable overlays (host files visible, writes go to a tmpfs), so e.g.
#     a host copy of OVMF_VARS.fd in /tmp can be used as a writable pflash.
#   - --timeout S: the inner QEMU is stopped after S seconds (default 300,
#     0 = none); the outer QEMU gets S+120 s as a backstop.
#   - --trace FILE: KVM tracepoints (tracefs in the outer Linux) are enabled
#     for the run and the `trace` file is copied to FILE. --trace-events sets
#     the comma-separated kvm event list (default: KVM_TRACE_EVENTS of
#     tools/kvm-trace-events.sh, the list qemu-run.sh --trace records; names
#     not present in the kernel are skipped with a note in the log).
#   - --log FILE: keep the outer console log (outer Linux, inner QEMU stderr).
#   - --kernel-log FILE: keep the outer Linux's kernel log (dmesg at the end
#     of the run). It is scanned on every run, kept or not (status 127).
#   - --kvm stock|direct: which KVM the outer Linux loads. stock (default):
#     Debian's kvm.ko/kvm-amd.ko. direct: the build of tools/nested/kvm/build.sh
#     (Debian's source with kvm/hyperv-direct-hypercalls.patch, loaded with
#     hv_direct_hypercalls=1); built on first use (about a minute, network),
#     cached afterwards. The log names the loaded KVM in a "NESTED: kvm:" line.
#   - --outer-qemu patched|system: the QEMU that runs the outer machine.
#     patched (default; or $NESTED_OUTER_QEMU): QEMU 10.0.2 built by
#     tools/nested/qemu/build.sh with the fixes of the two nested-SVM bugs
#     (docs/qemu-svm-bugs.md), run with -smp 2; built on first use (about
#     7 minutes, network), cached afterwards. When it cannot be had, the run
#     falls back to system with a one-line note saying why. system: the
#     host's qemu-system-x86_64 (Debian's 7.2), with -smp 1. stderr and the
#     log name the outer QEMU in an "outer QEMU:" line.
#   - --share DIR: the host directory DIR is writable at the same path inside
#     (its own 9p share, mounted over the read-only host root), so a
#     --command can leave files for the caller (a trace, a log).
#   - --qmp SOCKET: the inner QEMU's QMP monitor on the host unix socket
#     SOCKET. The outer QEMU creates it (server=on,wait=off) as its third
#     serial port, /dev/ttyS2 in the outer Linux, where the inner QEMU's
#     monitor sits (-chardev serial). Connect any time: QMP's greeting went out
#     when the inner QEMU started, so a client just sends qmp_capabilities.
#   - --debug: the outer kernel logs at its normal level (into the log).
#
# Exit status:
#   the inner QEMU's own status (isa-debug-exit: (value<<1)|1; QEMU error: 1),
#   or with --command the command's own status,
#   124  timeout (inner QEMU or the whole nested run),
#   125  infrastructure failure (prepare failed, outer QEMU or outer Linux
#        failed, a module did not load, /dev/kvm missing, no status came back);
#        the outer console log is then printed to stderr,
#   126  the requested KVM side is unavailable (--kvm direct: build.sh could
#        not build it; its one-line reason is on stderr); nothing was run,
#   127  the outer Linux's kernel log holds a kernel problem report (BUG,
#        WARNING, Oops, a stack trace, ...): the report is printed to stderr;
#        this outranks every status above except 2 and 126, even 0 (a kernel
#        that warned may have run the guest wrongly). A panic of the outer
#        Linux (panic=-1: it stops at once) leaves no log and reads as 125,
#   2    bad usage of this script.
#   (The inner status is (value<<1)|1, so a guest's isa-debug-exit value 62
#   or 63 reads as 125 or 127.)
#
# Why each step:
# - prepare.sh first: the kernel/initramfs cache must exist; it is a no-op
#   (and offline) when the cache is complete.
# - a private temp dir shared writable over 9p ("nestedio"): the inner args go
#   in as a bash job script (quoted with printf %q, so any argument survives),
#   and the exit status, inner stderr and trace come back as plain files.
# - outer -serial #1 -> log file, #2 -> FIFO -> cat -> stdout: the outer
#   console never mixes with the guest's serial output.
# - -nodefaults: no NIC/VGA/disks to emulate under TCG; it saves boot time.
# - TCG with +svm,+npt: the only way to get a KVM with Hyper-V emulation here.
# - thread=single: with multi-threaded TCG, Debian's QEMU 7.2 sometimes shuts
#   the inner guest down (an L2 triple fault with no guest exception) under a
#   heavy cross-VP interrupt load: the 100,000-round event ping-pong died
#   after 3,000-30,000 rounds every time; single-threaded, it passes (~35 s).
# - the patched outer QEMU (tools/nested/qemu/build.sh) by default: QEMU's
#   TCG nested-SVM emulation has two bugs that nested runs meet, in 7.2.22
#   and 10.0.2 alike (docs/qemu-svm-bugs.md): an injected interrupt
#   delivered twice (0001), and an abort when the inner guest writes CR8
#   with a virtual interrupt pending, which OVMF does (0002). The build
#   fixes both at the source, so the outer machine gets -smp 2 again and
#   nested UEFI runs do not abort. It runs after --kvm direct's build, so a
#   missing KVM ends the run before minutes of compiling; -L gives it the
#   BIOS and option ROMs that build.sh put beside it.
# - the fallback, the system's QEMU with -smp 1 (one outer vCPU), when the
#   build cannot be had (a tool or the network missing, a failed build) or
#   with --outer-qemu system: helper_vmrun's event injection of type INTR
#   leaves cs->exception_index set after delivering the injected interrupt;
#   when single-threaded TCG is kicked to the other outer vCPU before
#   anything resets it, the CPU loop delivers the same vector again, as an
#   exception with IF=0. The guest then counts one SINT twice. Measured: 8
#   duplicates in 400 runs of the two affected tests with -smp 2, 0 in 400
#   with -smp 1, no slower. The inner guest's VPs are threads of one inner
#   QEMU either way. The CR8 abort has no avoidance there (see Known limit).
# - clocksource=tsc tsc=reliable: without it KVM offers no reference TSC page.
# - +rdrand: the outer kernel's RNG is ready at boot (crng init at 0.05 s);
#   without it, crng init waited on the inner QEMU's getrandom() and some
#   runs hung until the timeout.
# - --kvm direct: build.sh before anything else runs, so an unbuildable KVM
#   ends the run at once (126), while stock never depends on it; the two .ko
#   go to the io dir, which the outer Linux mounts before it loads KVM.
# - the kernel log scanned even when the guest passed: a WARN or an Oops in
#   KVM (above all a patched one) can leave the inner QEMU running on and
#   would otherwise go unseen, the console being quiet. The patterns are the
#   headers of Linux's own reports plus "Call Trace:" (every stack dump); the
#   taint notes of an unsigned/out-of-tree module match none of them.
#
# Known limit (the system QEMU only): Debian's 7.2 aborts with
# "tcg_handle_interrupt: assertion failed" when the inner guest writes CR8
# while a virtual interrupt is pending (cpu_interrupt without the BQL; fixed
# by 0002 in the patched build). OVMF triggers it now and then. Exit 125.
set -euo pipefail

readonly EXIT_TIMEOUT=124 EXIT_INFRA=125 EXIT_KVM_UNAVAILABLE=126 EXIT_L1_KERNEL=127 EXIT_USAGE=2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project_root=$(cd "$here/../.." && pwd)
cache=${NESTED_CACHE:-$project_root/.cache/nested}

usage() {
    sed -n '4,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit "$EXIT_USAGE"
}
say() { echo "run.sh: $*" >&2; }

# shellcheck source=tools/kvm-trace-events.sh
. "$here/../kvm-trace-events.sh"
trace_file=
trace_events=$KVM_TRACE_EVENTS
timeout_s=300
log_file=
kernel_log_file=
kvm_side=stock
outer_qemu=${NESTED_OUTER_QEMU:-patched}
inner_qemu=/usr/bin/qemu-system-x86_64
inner_module_dir=
job_kind=qemu share_dir= qmp_socket=
kernel_quiet="quiet loglevel=0"
while [ $# -gt 0 ]; do
    case $1 in
        --trace) [ $# -ge 2 ] || usage; trace_file=$2; shift 2 ;;
        --trace-events) [ $# -ge 2 ] || usage; trace_events=$2; shift 2 ;;
        --timeout) [ $# -ge 2 ] || usage; timeout_s=$2; shift 2 ;;
        --log) [ $# -ge 2 ] || usage; log_file=$2; shift 2 ;;
        --kernel-log) [ $# -ge 2 ] || usage; kernel_log_file=$2; shift 2 ;;
        --kvm) [ $# -ge 2 ] || usage; kvm_side=$2; shift 2 ;;
        --outer-qemu) [ $# -ge 2 ] || usage; outer_qemu=$2; shift 2 ;;
        --inner-qemu) [ $# -ge 2 ] || usage; inner_qemu=$2; shift 2 ;;
        --inner-module-dir) [ $# -ge 2 ] || usage; inner_module_dir=$2; shift 2 ;;
        --command) job_kind=command; shift ;;
        --share) [ $# -ge 2 ] || usage; share_dir=$2; shift 2 ;;
        --qmp) [ $# -ge 2 ] || usage; qmp_socket=$2; shift 2 ;;
        --debug) kernel_quiet="loglevel=7"; shift ;;
        --) shift; break ;;
        *) usage ;;
    esac
done
[ $# -gt 0 ] || [ "$job_kind" = command ] || usage
[[ $timeout_s =~ ^[0-9]+$ ]] || { say "--timeout wants whole seconds"; exit "$EXIT_USAGE"; }
[[ $trace_events =~ ^[a-z0-9_,]+$ ]] || { say "--trace-events: bad list"; exit "$EXIT_USAGE"; }
case $kvm_side in stock | direct) ;; *) say "--kvm wants stock or direct"; exit "$EXIT_USAGE" ;; esac
case $outer_qemu in
    patched | system) ;;
    *) say "--outer-qemu (or NESTED_OUTER_QEMU) wants patched or system, not '$outer_qemu'"; exit "$EXIT_USAGE" ;;
esac
[[ $inner_qemu == /* ]] && [ -x "$inner_qemu" ] \
    || { say "--inner-qemu wants the absolute path of an executable, not '$inner_qemu'"; exit "$EXIT_USAGE"; }
[ -z "$inner_module_dir" ] || { [[ $inner_module_dir == /* ]] && [ -d "$inner_module_dir" ]; } \
    || { say "--inner-module-dir wants the absolute path of a directory, not '$inner_module_dir'"; exit "$EXIT_USAGE"; }
if [ "$job_kind" = command ]; then
    [ $# -gt 0 ] || { say "--command needs a command after --"; exit "$EXIT_USAGE"; }
else
    for a in "$@"; do
        case $a in
            -serial | --serial) say "inner args must not contain $a (run.sh adds it)"; exit "$EXIT_USAGE" ;;
        esac
    done
fi
if [ -n "$qmp_socket" ]; then
    [ "$job_kind" = qemu ] || { say "--qmp is for the inner QEMU (not with --command)"; exit "$EXIT_USAGE"; }
    [[ $qmp_socket != *,* ]] || { say "--qmp $qmp_socket: the path must not contain a comma"; exit "$EXIT_USAGE"; }
    [ -d "$(dirname -- "$qmp_socket")" ] || { say "--qmp $qmp_socket: no such directory"; exit "$EXIT_USAGE"; }
fi
if [ -n "$share_dir" ]; then
    [ -d "$share_dir" ] && [ -w "$share_dir" ] || { say "--share $share_dir: not a writable directory"; exit "$EXIT_USAGE"; }
    share_dir=$(cd "$share_dir" && pwd -P)
fi

command -v qemu-system-x86_64 >/dev/null 2>&1 \
    || { say "qemu-system-x86_64 not found (apt-get install -y qemu-system-x86)"; exit "$EXIT_INFRA"; }
NESTED_CACHE=$cache "$here/prepare.sh" || { say "prepare.sh failed"; exit "$EXIT_INFRA"; }
kvm_dir=
if [ "$kvm_side" = direct ]; then
    kvm_dir=$(NESTED_CACHE=$cache "$here/kvm/build.sh") \
        || { say "--kvm direct: the patched KVM is unavailable (see above)"; exit "$EXIT_KVM_UNAVAILABLE"; }
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nested-run.XXXXXX")
cat_pid=
outer_pid=
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    if [ -n "$outer_pid" ]; then kill "$outer_pid" 2>/dev/null || true; fi
    if [ -n "$cat_pid" ]; then kill "$cat_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# The outer QEMU: the patched build (two lines: the binary, its -L dir), or
# the system's with one vCPU. build.sh's stderr is shown as it comes (a
# first build reports its progress) and kept for the reason of a failure.
system_version=$(qemu-system-x86_64 --version 2>/dev/null | sed -n '1s/^QEMU emulator version \([^ ]*\).*/\1/p')
outer_bin=qemu-system-x86_64 outer_data=() outer_smp=1
outer_note="Debian's ${system_version:-system QEMU} with -smp 1 (--outer-qemu system)"
if [ "$outer_qemu" = patched ]; then
    build_err=$tmp/qemu-build.err
    build_rc=0
    { built=$(NESTED_CACHE=$cache "$here/qemu/build.sh"); } 2> >(tee "$build_err" >&2) || build_rc=$?
    wait "$!" 2>/dev/null || true # tee has written everything
    mapfile -t built_lines <<<"${built:-}"
    if [ "$build_rc" = 0 ] && [ ${#built_lines[@]} = 2 ] && [ -x "${built_lines[0]}" ] && [ -d "${built_lines[1]}" ]; then
        outer_bin=${built_lines[0]} outer_data=(-L "${built_lines[1]}") outer_smp=2
        outer_note="patched $("$outer_bin" --version | sed -n '1s/^QEMU emulator version \([^ ]*\).*/\1/p') with -smp 2 (tools/nested/qemu: $(basename "$(dirname "$(dirname "$outer_bin")")"))"
    else
        reason=$(sed -n 's/^qemu\/build\.sh: //p' "$build_err" | tail -n1)
        [ "$build_rc" != 0 ] || reason="it printed no binary and -L dir"
        outer_note="Debian's ${system_version:-system QEMU} with -smp 1 (the patched build is unavailable: ${reason:-qemu/build.sh exited with status $build_rc})"
    fi
fi
say "outer QEMU: $outer_note"

io=$tmp/io
mkdir -p "$io"
chmod 0777 "$io"
log=${log_file:-$tmp/console.log}
: >"$log" || { say "cannot write $log"; exit "$EXIT_USAGE"; }
if [ -n "$kernel_log_file" ]; then
    : >"$kernel_log_file" || { say "cannot write $kernel_log_file"; exit "$EXIT_USAGE"; }
fi
echo "NESTED: outer QEMU: $outer_note ($outer_bin)" >>"$log"

# The job runs inside the chroot (the host root, so this directory's host
# path is valid there) with the host's bash. --share mounts its 9p tag there
# (the mount point is the host path, so it exists in the read-only root);
# --command starts in the caller's directory.
{
    echo '#!/bin/bash'
    printf 'export NESTED_INNER_QEMU=%q\n' "$inner_qemu"
    if [ -n "$inner_module_dir" ]; then
        printf 'export QEMU_MODULE_DIR=%q\n' "$inner_module_dir"
    else
        echo 'unset QEMU_MODULE_DIR'
    fi
    if [ -n "$share_dir" ]; then
        printf 'mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 share %q || exit 125\n' "$share_dir"
    fi
    if [ "$job_kind" = command ]; then
        printf 'cd %q || exit 125\n' "$PWD"
        printf 'exec %q %q /run/nested-io --command' "$here/inner.sh" "$timeout_s"
    else
        [ -z "$qmp_socket" ] || echo 'export NESTED_QMP_TTY=/dev/ttyS2'
        printf 'exec %q %q /run/nested-io' "$here/inner.sh" "$timeout_s"
    fi
    printf ' %q' "$@"
    printf '\n'
} >"$io/job.sh"
if [ -n "$trace_file" ]; then
    echo "$trace_events" >"$io/trace-events"
fi
echo "$kvm_side" >"$io/kvm-side"
if [ -n "$kvm_dir" ]; then
    mkdir -p "$io/kvm"
    cp "$kvm_dir/kvm.ko" "$kvm_dir/kvm-amd.ko" "$io/kvm/"
    basename "$kvm_dir" >"$io/kvm/origin"
fi

fifo=$tmp/guest-serial
mkfifo "$fifo"
cat "$fifo" &
cat_pid=$!

outer=(
    "$outer_bin" "${outer_data[@]}"
    -accel tcg,thread=single -cpu "qemu64,+svm,+npt,+rdrand" -smp "$outer_smp" -m 3072 -no-reboot
    -nodefaults -no-user-config -display none -monitor none
    -kernel "$cache/parts/vmlinuz" -initrd "$cache/initramfs.cpio.gz"
    -append "console=ttyS0 $kernel_quiet panic=-1 clocksource=tsc tsc=reliable"
    -chardev "file,id=con,append=on,path=${log//,/,,}" -serial chardev:con
    -chardev "file,id=guest,path=${fifo//,/,,}" -serial chardev:guest
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
    -virtfs "local,path=${io//,/,,},mount_tag=nestedio,security_model=none,multidevs=remap"
)
if [ -n "$qmp_socket" ]; then
    outer+=(-chardev "socket,id=qmp,path=$qmp_socket,server=on,wait=off" -serial chardev:qmp)
fi
if [ -n "$share_dir" ]; then
    outer+=(-virtfs "local,path=${share_dir//,/,,},mount_tag=share,security_model=none,multidevs=remap")
fi
outer_rc=0
if [ "$timeout_s" -gt 0 ]; then
    outer=(timeout --kill-after=5 "$((timeout_s + 120))" "${outer[@]}")
fi
# In the background, so that a signal to this script runs cleanup at once.
"${outer[@]}" </dev/null >>"$log" 2>&1 &
outer_pid=$!
wait "$outer_pid" || outer_rc=$?
outer_pid=

# Unblock cat if the outer QEMU never opened the FIFO, then let it drain.
exec 3<>"$fifo"
exec 3>&-
wait "$cat_pid" || true
cat_pid=

if [ -n "$trace_file" ]; then
    if [ -f "$io/trace" ]; then
        cp "$io/trace" "$trace_file"
    else
        say "no trace came back"
    fi
fi

# Linux's own problem reports (see "Why each step"), with some context.
kernel_problems() { # kernel_problems <dmesg file>: prints the report, if any
    local pat
    pat='BUG: |kernel BUG at |WARNING: CPU: [0-9]+ PID: [0-9]+ at '
    pat+='|WARNING: (possible|suspicious|inconsistent|bad unlock|held lock|lock held)'
    pat+='|Oops: |: [0-9a-f]{4} \[#[0-9]+\]|general protection fault|Kernel panic'
    pat+='|(KASAN|UBSAN|KFENCE|KCSAN|KMSAN): |blocked for more than [0-9]+ seconds'
    pat+='|rcu: INFO: .*detected stall|hard LOCKUP|Call Trace:'
    grep -E -B 3 -A 8 -e "$pat" "$1" || true
}
kernel_report=
if [ -f "$io/kernel.log" ]; then
    if [ -n "$kernel_log_file" ]; then cp "$io/kernel.log" "$kernel_log_file"; fi
    kernel_report=$(kernel_problems "$io/kernel.log")
elif [ -n "$kernel_log_file" ]; then
    say "no L1 kernel log came back"
fi
# finish <status>: exit with the run's status, unless the kernel log holds
# a problem report, which explains more than any other status can.
finish() {
    [ -n "$kernel_report" ] || exit "$1"
    say "the L1 kernel reported a problem:"
    local n
    n=$(printf '%s\n' "$kernel_report" | wc -l)
    printf '%s\n' "$kernel_report" | head -n 150 | sed 's/^/  /' >&2
    if [ "$n" -gt 150 ]; then
        say "... $((n - 150)) more lines (--kernel-log FILE keeps the whole log)"
    fi
    say "exit $EXIT_L1_KERNEL instead of the run's own status $1"
    exit "$EXIT_L1_KERNEL"
}
# inner.sh wrote the first line of the inner QEMU's --version, run where it ran.
if [ -s "$io/inner-qemu" ]; then
    say "inner QEMU: $(head -n1 "$io/inner-qemu") ($inner_qemu)"
fi
# Not worth a word: the outer Linux has 1 or 2 CPUs, so KVM "recommends" no more;
# QEMU notes the SIGTERM of a timeout, which is reported below anyway.
if [ -s "$io/inner.stderr" ]; then
    grep -v -e 'exceeds the recommended cpus supported by KVM' \
        -e 'terminating on signal 15 from pid' "$io/inner.stderr" \
        | sed "s/^/run.sh: inner $job_kind: /" >&2 || true
fi

if [ -f "$io/status" ]; then
    rc=$(cat "$io/status")
    if [[ $rc =~ ^[0-9]+$ ]]; then
        if [ -f "$io/timed-out" ]; then
            say "timeout: the inner QEMU ran longer than ${timeout_s}s (--log FILE keeps its thread dump)"
        fi
        finish "$rc"
    fi
fi
if [ "$outer_rc" = 124 ] || [ "$outer_rc" = 137 ]; then
    say "timeout: the nested run did not finish within $((timeout_s + 120))s; outer console:"
    cat "$log" >&2
    finish "$EXIT_TIMEOUT"
fi
if grep -q 'tcg_handle_interrupt: assertion failed' "$log"; then
    if [ "$outer_smp" = 1 ]; then
        say "the outer QEMU aborted: most likely the inner guest wrote CR8 (OVMF does, after" \
            "each interrupt) with a virtual interrupt pending; the system QEMU asserts on that" \
            "(docs/qemu-svm-bugs.md, bug 2); the patched outer QEMU (--outer-qemu patched) does not"
    else
        say "the patched outer QEMU aborted on the assertion its 0002 patch should have removed" \
            "(docs/qemu-svm-bugs.md, bug 2): another unlocked cpu_interrupt() path?"
    fi
fi
say "infrastructure failure (outer qemu status $outer_rc, no inner status); outer console:"
cat "$log" >&2
finish "$EXIT_INFRA"
