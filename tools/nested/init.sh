#!/bin/busybox sh
# shellcheck shell=sh
# /init of the outer Linux (packed into the initramfs by prepare.sh).
#
# Why each step:
# - busybox --install: the initramfs holds only the busybox binary.
# - proc/sys/devtmpfs: insmod, mount and the serial ports need them.
# - insmod from /modules.list: the Debian .deb has no modules.dep, so
#   prepare.sh resolved the order from each module's depends= string.
# - 9p "hostroot" (read-only): the host's own qemu-system-x86_64, its
#   libraries and the caller's files, with their host paths unchanged.
# - 9p "nestedio" (writable): the job script from run.sh comes in, the
#   exit status, the inner QEMU's stderr and the trace go out.
# - overlay (host dir + tmpfs) on /tmp and /var/tmp: the inner QEMU can write
#   scratch files (snapshot=on, OVMF vars) while host files there stay visible.
# - stty raw on ttyS1: the guest's COM1 bytes must reach run.sh unchanged.
# - tracefs: KVM's Hyper-V tracepoints, only when run.sh asked for them.
# - status lines "NESTED: ..." on the console: run.sh's log explains failures.
# - poweroff/reboot -f: QEMU runs with -no-reboot, so either ends it.

PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin
/bin/busybox --install -s

fail() {
    echo "NESTED-FAIL: $*"
    sync
    poweroff -f
    reboot -f
    sleep 5
}

mkdir -p /proc /sys /dev /host /io
mount -t proc proc /proc || fail "mount proc"
mount -t sysfs sysfs /sys || fail "mount sysfs"
mount -t devtmpfs devtmpfs /dev || fail "mount devtmpfs"

while read -r mod; do
    [ -n "$mod" ] || continue
    insmod "/lib/modules/$mod.ko" || fail "insmod $mod"
done </modules.list

p9opts=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$p9opts,ro" hostroot /host || fail "mount 9p hostroot"
mount -t 9p -o "$p9opts" nestedio /io || fail "mount 9p nestedio"
[ -f /io/job.sh ] || fail "no job.sh in the nestedio share"
[ -c /dev/kvm ] || fail "/dev/kvm missing after loading kvm modules"

mount -t devtmpfs devtmpfs /host/dev || fail "mount /host/dev"
mount -t proc proc /host/proc || fail "mount /host/proc"
mount -t sysfs sysfs /host/sys || fail "mount /host/sys"
mount -t tmpfs -o mode=755 tmpfs /host/run || fail "mount /host/run"
mkdir -p /host/run/nested-io
mount --bind /io /host/run/nested-io || fail "bind nestedio"

mkdir -p /scratch
mount -t tmpfs -o mode=755 tmpfs /scratch || fail "mount /scratch"
for d in tmp var/tmp; do
    u="/scratch/$(echo "$d" | tr / _)"
    mkdir -p "$u/upper" "$u/work"
    chmod 1777 "$u/upper"
    if ! mount -t overlay overlay \
        -o "lowerdir=/host/$d,upperdir=$u/upper,workdir=$u/work" "/host/$d"; then
        echo "NESTED: overlay on /$d failed, using a plain tmpfs"
        mount -t tmpfs -o mode=1777 tmpfs "/host/$d" || fail "mount tmpfs /$d"
    fi
done

stty -F /dev/ttyS1 raw -echo 2>/dev/null || echo "NESTED: stty ttyS1 failed"

tracing=0
if [ -f /io/trace-events ]; then
    tdir=/sys/kernel/tracing
    mount -t tracefs tracefs "$tdir" || fail "mount tracefs"
    evs=
    for e in "$tdir"/events/kvm/*/; do e=${e%/}; evs="$evs ${e##*/}"; done
    echo "NESTED: kvm trace events:$evs"
    echo 8192 >"$tdir/buffer_size_kb"
    for ev in $(tr ',' ' ' </io/trace-events); do
        if [ -f "$tdir/events/kvm/$ev/enable" ]; then
            echo 1 >"$tdir/events/kvm/$ev/enable"
        else
            echo "NESTED: no trace event kvm/$ev"
        fi
    done
    echo >"$tdir/trace"
    echo 1 >"$tdir/tracing_on"
    tracing=1
fi

echo "NESTED: starting inner qemu at uptime $(cut -d' ' -f1 /proc/uptime)s"
chroot /host /bin/bash /run/nested-io/job.sh
echo "NESTED: job.sh returned $? at uptime $(cut -d' ' -f1 /proc/uptime)s"
if [ -s /io/inner.stderr ]; then
    echo "NESTED: inner qemu stderr:"
    cat /io/inner.stderr
fi

if [ "$tracing" = 1 ]; then
    echo 0 >"$tdir/tracing_on"
    cat "$tdir/trace" >/io/trace.tmp && mv /io/trace.tmp /io/trace
fi
if [ -f /io/status ]; then
    echo "NESTED-STATUS: $(cat /io/status)"
fi
sync
umount /host/run/nested-io 2>/dev/null
umount /io 2>/dev/null
poweroff -f
reboot -f
