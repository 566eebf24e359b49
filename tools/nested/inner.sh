#!/usr/bin/env bash
# Runs inside the outer Linux, chrooted into the host root (started by the
# job script that run.sh writes): runs the inner QEMU under KVM, or with
# --command any command (run.sh --command).
#
# Usage: inner.sh <timeout-seconds, 0 = none> <io dir> <inner qemu args...>
#        inner.sh <timeout-seconds, 0 = none> <io dir> --command <command> [args...]
# The inner QEMU is $NESTED_INNER_QEMU (default /usr/bin/qemu-system-x86_64);
# the job script sets it, and QEMU_MODULE_DIR, from run.sh's options.
#
# Why each step:
# - -serial file:/dev/ttyS1: the outer QEMU's second port is run.sh's stdout;
#   a --command writes its stdout there.
# - stdin from /dev/null: the outer console is no terminal for the guest.
# - stderr to <io>/inner.stderr: run.sh shows it on the host.
# - own watchdog instead of timeout(1): on a hang it first writes where each
#   QEMU thread sleeps (kernel stack) to the outer console, i.e. run.sh's log.
# - <io>/inner-qemu: the inner QEMU's --version as it runs here, so run.sh
#   can say which QEMU ran the guest.
# - $NESTED_QMP_TTY (run.sh --qmp): the inner QEMU's QMP monitor on that
#   serial port (the outer machine's third, a host socket on the other side);
#   QEMU's tty backend sets the line raw.
# - <io>/status last: its presence tells run.sh the nested run completed.
set -uo pipefail

timeout_s=$1
io=$2
shift 2

qemu_bin=${NESTED_INNER_QEMU:-/usr/bin/qemu-system-x86_64}
if [ "${1:-}" = --command ]; then
    shift
    # Its own process group, so that the watchdog stops the command's children (QEMU) too.
    setsid "$@" </dev/null >/dev/ttyS1 2>"$io/inner.stderr" &
else
    version=$("$qemu_bin" --version 2>&1 | head -n1)
    echo "$version" >"$io/inner-qemu"
    echo "NESTED: inner QEMU: $version ($qemu_bin${QEMU_MODULE_DIR:+, QEMU_MODULE_DIR=$QEMU_MODULE_DIR})"
    monitor=()
    [ -z "${NESTED_QMP_TTY:-}" ] || monitor=(-chardev "serial,id=qmp,path=$NESTED_QMP_TTY" -mon chardev=qmp,mode=control)
    "$qemu_bin" -accel kvm "$@" "${monitor[@]}" -serial file:/dev/ttyS1 \
        </dev/null 2>"$io/inner.stderr" &
fi
qemu=$!

watchdog=
if [ "$timeout_s" -gt 0 ]; then
    (
        sleep "$timeout_s"
        : >"$io/timed-out"
        echo "NESTED: inner qemu timed out after ${timeout_s}s; its threads:"
        for t in /proc/"$qemu"/task/*; do
            echo "-- task ${t##*/} $(cat "$t/comm" 2>/dev/null)" \
                "$(grep '^State' "$t/status" 2>/dev/null) wchan=$(cat "$t/wchan" 2>/dev/null)"
            cat "$t/stack" 2>/dev/null
        done
        kill -TERM -- "$qemu" "-$qemu" 2>/dev/null
        sleep 5
        kill -KILL -- "$qemu" "-$qemu" 2>/dev/null
    ) &
    watchdog=$!
fi

wait "$qemu"
rc=$?
if [ -n "$watchdog" ]; then
    kill "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
fi
if [ -f "$io/timed-out" ]; then
    rc=124
fi
echo "$rc" >"$io/status"
