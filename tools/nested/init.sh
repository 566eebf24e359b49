#!/bin/busybox sh
# shellcheck shell=sh
# /init of the outer Linux (packed into the initramfs by prepare.sh).
#
# Why each step:
# - busybox --install: the initramfs holds only the busybox binary.
# - proc/sys/devtmpfs: insmod, mount and the serial ports need them.
# - insmod from /modules.list: the Debian .deb has no modules.dep, so
#   prepare.sh resolved the order from each module's depends= string.
# - kvm and kvm_amd last, after the 9p mounts: with /io/kvm-side "direct"
#   (run.sh --kvm direct) they come from /io/kvm/ (the patched build of
#   tools/nested/kvm/build.sh) and kvm.ko gets hv_direct_hypercalls=1; the
#   parameter is read back, so a run never silently uses the other KVM.
# - 9p "hostroot" (read-only): the host's own qemu-system-x86_64, its
#   libraries and the caller's files, with their host paths unchanged.
# - 9p "nestedio" (writable): the job script from run.sh comes in, the
#   exit status, the inner QEMU's stderr and the trace go out.
# - overlay (host dir + tmpfs) on /tmp and /var/tmp: the inner QEMU can write
#   scratch files (snapshot=on, OVMF vars) while host files there stay visible.
# - stty raw on ttyS1: the guest's COM1 bytes must reach run.sh unchanged.
# - tracefs: KVM's Hyper-V tracepoints, only when run.sh asked for them.
# - the inner QEMU waits for the refined TSC calibration (see there).
# - status lines "NESTED: ..." on the console: run.sh's log explains failures.
# - dmesg into /io/kernel.log at the end (and on failure): run.sh scans it
#   for kernel problem reports (BUG/WARNING/Oops...), which the quiet console
#   never shows; on failure its tail also goes to the console.
# - poweroff/reboot -f: QEMU runs with -no-reboot, so either ends it.

PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin
/bin/busybox --install -s

save_kernel_log() {
    if grep -q ' /io 9p ' /proc/mounts 2>/dev/null; then
        dmesg >/io/kernel.log.tmp && mv /io/kernel.log.tmp /io/kernel.log
    fi
}

fail() {
    echo "NESTED-FAIL: $*"
    echo "NESTED: last kernel messages:"
    dmesg 2>/dev/null | tail -n 20
    save_kernel_log
    sync
    poweroff -f
    reboot -f
    sleep 5
}

mkdir -p /proc /sys /dev /host /io
mount -t proc proc /proc || fail "mount proc"
mount -t sysfs sysfs /sys || fail "mount sysfs"
mount -t devtmpfs devtmpfs /dev || fail "mount devtmpfs"

kvm_mods=
while read -r mod; do
    case $mod in
        '') continue ;;
        kvm | kvm_amd) kvm_mods="$kvm_mods $mod"; continue ;;
    esac
    insmod "/lib/modules/$mod.ko" || fail "insmod $mod"
done </modules.list

p9opts=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$p9opts,ro" hostroot /host || fail "mount 9p hostroot"
mount -t 9p -o "$p9opts" nestedio /io || fail "mount 9p nestedio"
[ -f /io/job.sh ] || fail "no job.sh in the nestedio share"

kvm_side=stock
[ -f /io/kvm-side ] && kvm_side=$(cat /io/kvm-side)
for mod in $kvm_mods; do
    case $kvm_side in
        stock) insmod "/lib/modules/$mod.ko" || fail "insmod $mod" ;;
        direct)
            f=/io/kvm/$(echo "$mod" | tr _ -).ko
            args=
            [ "$mod" = kvm ] && args=hv_direct_hypercalls=1
            # shellcheck disable=SC2086  # $args is one word or none
            insmod "$f" $args || fail "insmod $f $args (the patched KVM)"
            ;;
        *) fail "unknown KVM side '$kvm_side' in /io/kvm-side" ;;
    esac
done
[ -c /dev/kvm ] || fail "/dev/kvm missing after loading kvm modules"
if [ "$kvm_side" = direct ]; then
    p=$(cat /sys/module/kvm/parameters/hv_direct_hypercalls 2>/dev/null)
    [ "$p" = Y ] || fail "the patched kvm.ko is loaded but hv_direct_hypercalls reads '$p', not Y"
    echo "NESTED: kvm: direct, patched kvm.ko + kvm-amd.ko ($(cat /io/kvm/origin 2>/dev/null)), hv_direct_hypercalls=Y"
else
    echo "NESTED: kvm: stock, Debian's kvm.ko + kvm-amd.ko"
fi

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

# KVM fixes a VM's TSC frequency (HV_X64_MSR_TSC_FREQUENCY) from tsc_khz
# when the VM is created, while TIME_REF_COUNT follows the clocksource. The
# first tsc_khz comes from a fast PIT calibration, which is off by percents
# when the emulating host is loaded; the refined one (against the HPET, about
# a second later) replaces it when the clocksource switches from tsc-early to
# tsc. Start no VM before that: a guest created earlier saw its TSC and its
# reference counter disagree by 3% (time.ref_counter_rate_matches_tsc_frequency).
cs=/sys/devices/system/clocksource/clocksource0/current_clocksource
waited=0
while [ "$(cat "$cs" 2>/dev/null)" != tsc ]; do
    [ "$waited" -lt 600 ] || fail "the TSC clocksource was not refined within 60 s (clocksource: $(cat "$cs" 2>/dev/null))"
    sleep 0.1
    waited=$((waited + 1))
done
echo "NESTED: $(dmesg | grep -o 'tsc: Refined TSC clocksource calibration: .*' | tail -n1)"
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
save_kernel_log
sync
umount /host/run/nested-io 2>/dev/null
umount /io 2>/dev/null
poweroff -f
reboot -f
