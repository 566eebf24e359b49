#!/usr/bin/env bash
# Run a guest under real KVM Hyper-V emulation by nesting.
#
# Usage:
#   tools/nested/run.sh [--trace FILE] [--trace-events LIST] [--timeout S]
#                       [--log FILE] [--debug] -- <inner qemu args...>
#
# Runs `qemu-system-x86_64 -accel kvm <inner args> -serial file:/dev/ttyS1`
# inside an outer Linux that itself runs under TCG with nested SVM.
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
#     the comma-separated kvm event list (default: kvm_hv_hypercall,
#     kvm_hv_synic_set_msr,kvm_hv_synic_set_irq,kvm_hv_notify_acked_sint;
#     names not present in the kernel are skipped with a note in the log).
#   - --log FILE: keep the outer console log (outer Linux, inner QEMU stderr).
#   - --debug: the outer kernel logs at its normal level (into the log).
#
# Exit status:
#   the inner QEMU's own status (isa-debug-exit: (value<<1)|1; QEMU error: 1),
#   124  timeout (inner QEMU or the whole nested run),
#   125  infrastructure failure (prepare failed, outer QEMU or outer Linux
#        failed, a module did not load, /dev/kvm missing, no status came back);
#        the outer console log is then printed to stderr,
#   2    bad usage of this script.
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
# - clocksource=tsc tsc=reliable: without it KVM offers no reference TSC page.
# - +rdrand: the outer kernel's RNG is ready at boot (crng init at 0.05 s);
#   without it, crng init waited on the inner QEMU's getrandom() and some
#   runs hung until the timeout.
#
# Known limit: the outer QEMU (Debian's 7.2) aborts with "tcg_handle_interrupt:
# assertion failed" when the inner guest writes CR8 (a TCG nested-SVM bug:
# cpu_interrupt without the BQL). OVMF triggers it now and then. Exit 125.
set -euo pipefail

readonly EXIT_TIMEOUT=124 EXIT_INFRA=125 EXIT_USAGE=2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project_root=$(cd "$here/../.." && pwd)
cache=${NESTED_CACHE:-$project_root/.cache/nested}

usage() {
    sed -n '4,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit "$EXIT_USAGE"
}
say() { echo "run.sh: $*" >&2; }

trace_file=
trace_events=kvm_hv_hypercall,kvm_hv_synic_set_msr,kvm_hv_synic_set_irq,kvm_hv_notify_acked_sint
timeout_s=300
log_file=
kernel_quiet="quiet loglevel=0"
while [ $# -gt 0 ]; do
    case $1 in
        --trace) [ $# -ge 2 ] || usage; trace_file=$2; shift 2 ;;
        --trace-events) [ $# -ge 2 ] || usage; trace_events=$2; shift 2 ;;
        --timeout) [ $# -ge 2 ] || usage; timeout_s=$2; shift 2 ;;
        --log) [ $# -ge 2 ] || usage; log_file=$2; shift 2 ;;
        --debug) kernel_quiet="loglevel=7"; shift ;;
        --) shift; break ;;
        *) usage ;;
    esac
done
[ $# -gt 0 ] || usage
[[ $timeout_s =~ ^[0-9]+$ ]] || { say "--timeout wants whole seconds"; exit "$EXIT_USAGE"; }
[[ $trace_events =~ ^[a-z0-9_,]+$ ]] || { say "--trace-events: bad list"; exit "$EXIT_USAGE"; }
for a in "$@"; do
    case $a in
        -serial | --serial) say "inner args must not contain $a (run.sh adds it)"; exit "$EXIT_USAGE" ;;
    esac
done

command -v qemu-system-x86_64 >/dev/null 2>&1 \
    || { say "qemu-system-x86_64 not found (apt-get install -y qemu-system-x86)"; exit "$EXIT_INFRA"; }
NESTED_CACHE=$cache "$here/prepare.sh" || { say "prepare.sh failed"; exit "$EXIT_INFRA"; }

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
io=$tmp/io
mkdir -p "$io"
chmod 0777 "$io"
log=${log_file:-$tmp/console.log}
: >"$log" || { say "cannot write $log"; exit "$EXIT_USAGE"; }

# The job runs inside the chroot (the host root, so this directory's host
# path is valid there) with the host's bash.
{
    echo '#!/bin/bash'
    printf 'exec %q %q /run/nested-io' "$here/inner.sh" "$timeout_s"
    printf ' %q' "$@"
    printf '\n'
} >"$io/job.sh"
if [ -n "$trace_file" ]; then
    echo "$trace_events" >"$io/trace-events"
fi

fifo=$tmp/guest-serial
mkfifo "$fifo"
cat "$fifo" &
cat_pid=$!

outer=(
    qemu-system-x86_64
    -accel tcg,thread=single -cpu "qemu64,+svm,+npt,+rdrand" -smp 2 -m 3072 -no-reboot
    -nodefaults -no-user-config -display none -monitor none
    -kernel "$cache/parts/vmlinuz" -initrd "$cache/initramfs.cpio.gz"
    -append "console=ttyS0 $kernel_quiet panic=-1 clocksource=tsc tsc=reliable"
    -chardev "file,id=con,append=on,path=${log//,/,,}" -serial chardev:con
    -chardev "file,id=guest,path=${fifo//,/,,}" -serial chardev:guest
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
    -virtfs "local,path=${io//,/,,},mount_tag=nestedio,security_model=none,multidevs=remap"
)
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
# Not worth a word: the outer Linux has 2 CPUs, so KVM "recommends" at most 2;
# QEMU notes the SIGTERM of a timeout, which is reported below anyway.
if [ -s "$io/inner.stderr" ]; then
    grep -v -e 'exceeds the recommended cpus supported by KVM' \
        -e 'terminating on signal 15 from pid' "$io/inner.stderr" \
        | sed 's/^/run.sh: inner qemu: /' >&2 || true
fi

if [ -f "$io/status" ]; then
    rc=$(cat "$io/status")
    if [[ $rc =~ ^[0-9]+$ ]]; then
        if [ -f "$io/timed-out" ]; then
            say "timeout: the inner QEMU ran longer than ${timeout_s}s (--log FILE keeps its thread dump)"
        fi
        exit "$rc"
    fi
fi
if [ "$outer_rc" = 124 ] || [ "$outer_rc" = 137 ]; then
    say "timeout: the nested run did not finish within $((timeout_s + 120))s; outer console:"
    cat "$log" >&2
    exit "$EXIT_TIMEOUT"
fi
if grep -q 'tcg_handle_interrupt: assertion failed' "$log"; then
    say "the outer QEMU aborted: most likely the guest wrote CR8 (mov cr8, the TPR);" \
        "QEMU 7.2's nested-SVM emulation asserts on that (use the APIC TPR register instead)"
fi
say "infrastructure failure (outer qemu status $outer_rc, no inner status); outer console:"
cat "$log" >&2
exit "$EXIT_INFRA"
