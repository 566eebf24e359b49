#!/usr/bin/env bash
# tools/bench.sh: `make bench`. Boots the kernel's bench mode in each mode,
# times each whole qemu-run.sh run on the host, measures the image sizes, and
# writes build/bench.json and bench/RESULTS.md (targets beside each figure; a
# miss is reported, not hidden). Nothing here is part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
samples=${BENCH_SAMPLES:-10000}
out=build/bench
mkdir -p "$out" bench

run_mode() {   # name, qemu-run.sh args... (bench mode unless the args say --test)
  local name=$1; shift
  local start end status=0 extra=(--append "bench=$samples")
  [[ " $* " != *" --test"* ]] || extra=()
  start=$(date +%s.%N)
  ./qemu-run.sh "$@" "${extra[@]}" >"$out/$name.log" 2>"$out/$name.err" || status=$?
  end=$(date +%s.%N)
  local seconds
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}')
  echo "$name $status $seconds" >>"$out/runs.txt"
  echo "bench: $name: exit $status, $seconds s" >&2
}

: >"$out/runs.txt"
run_mode tcg --mode tcg
run_mode nested-smp2 --mode nested --smp 2
run_mode nested-direct-smp2 --mode nested --kvm direct --smp 2
run_mode uefi-tcg --mode tcg --uefi
run_mode test-tcg --mode tcg --test
run_mode test-nested --mode nested --test
run_mode pingpong-nested --mode nested --smp 2 --test=cross.event_ping_pong
run_mode balloon-nested --mode nested --smp 2 --hv-balloon

ld.lld -static -nostdlib -z max-page-size=4096 -z noexecstack -T boot/linker.ld --strip-all \
  -o build/kernel.stripped.elf build/boot/*.o build/kernel.o
elf_size=$(stat -c %s build/kernel.stripped.elf)
efi_size=$( [ -f build/BOOTX64.EFI ] && stat -c %s build/BOOTX64.EFI || echo null)
# The QEMU that ran the guest, as qemu-run.sh named it ("qemu-run.sh: QEMU: pinned 10.0.2 (...)").
qemu_version=$(sed -n 's/^qemu-run\.sh: QEMU: \([a-z]*\) \([^ ]*\) .*/\2 (\1)/p' "$out/tcg.err" | head -n1)
[ -n "$qemu_version" ] || qemu_version=unknown
date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# figure NAME FROM-LOG -> "median p99" of a bench line, or nothing
figure() { grep -h "^bench: $1 " "$out/$2.log" 2>/dev/null | tr -d '\r' | sed -E 's/.*median=([0-9]+) p99=([0-9]+).*/\1 \2/' || true; }
timeline() { grep -h "^bench-timeline:" "$out/$1.log" 2>/dev/null | tr -d '\r' | sed 's/^bench-timeline: //' || true; }
wall() { awk -v m="$1" '$1 == m {print $3}' "$out/runs.txt"; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}' || echo ""; }
kv() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2}'; }

{
  echo "{"
  echo "  \"date\": \"$date_utc\", \"qemu\": \"$qemu_version\", \"samples\": $samples,"
  echo "  \"sizes\": {\"kernel_elf_stripped\": $elf_size, \"bootx64_efi\": $efi_size},"
  echo "  \"modes\": {"
  first=1
  while read -r mode status seconds; do
    [ $first -eq 1 ] || echo ","
    first=0
    printf '    "%s": {"exit": %s, "wall_seconds": %s, "timeline": "%s", "figures": {' "$mode" "$status" "$seconds" "$(timeline "$mode")"
    sep=""
    while read -r name median p99; do
      printf '%s"%s": {"median": %s, "p99": %s}' "$sep" "$name" "$median" "$p99"
      sep=", "
    done < <(grep -h "^bench: [a-z_.]* median=" "$out/$mode.log" | tr -d '\r' | sed -E 's/^bench: ([^ ]+) median=([0-9]+) p99=([0-9]+).*/\1 \2 \3/')
    pp=$(grep -h "^ping-pong:" "$out/$mode.log" | tr -d '\r' | sed -E 's/.*: ([0-9]+) round trips, median ([0-9]+) p99 ([0-9]+).*/\1 \2 \3/' || true)
    [ -z "$pp" ] || printf '%s"ping_pong": {"round_trips": %s, "median": %s, "p99": %s}' "$sep" ${pp}
    printf '}}'
  done <"$out/runs.txt"
  echo; echo "  }"; echo "}"
} >build/bench.json

verdict() { [ -z "$1" ] && echo "not measured" && return; awk -v v="$1" -v t="$2" 'BEGIN {print (v <= t) ? "met" : "MISSED"}'; }
{
  echo "# Benchmark results"
  echo
  echo "Written by \`make bench\` ($date_utc, QEMU $qemu_version, $samples samples a figure). Raw data: \`build/bench.json\`."
  echo "Cycles are guest TSC cycles. Nested means KVM's Hyper-V emulation inside an outer QEMU under TCG (\`tools/nested\`), so absolute numbers are slow and noisy; the ratios are the figures that carry over."
  echo
  echo "## Hypercall cost: C# API against the bare-assembly floor (nested, --smp 2)"
  echo
  echo "| hypercall | floor median | C# median | C# p99 | ratio | target ≤ 1.05 |"
  echo "|---|---|---|---|---|---|"
  for h in signal_event_direct signal_event_fast post_message_slow; do
    read -r fm fp <<<"$(figure "$h.floor" nested-smp2)" || true
    read -r cm cp <<<"$(figure "$h.csharp" nested-smp2)" || true
    r=$(ratio "${cm:-}" "${fm:-}")
    echo "| $h | ${fm:-–} | ${cm:-–} | ${cp:-–} | ${r:-–} | $(verdict "$r" 1.05) |"
  done
  echo
  echo "Method: each sample is \`lfence; rdtsc\` before and after one hypercall; the floor is \`boot/bench.asm\`, a loop that loads RCX/RDX/R8 and calls the hypercall page; the C# figure times one call of the kernel's typed API (\`Hypercall.SignalEventDirect\`, \`Hypercall.SignalEvent\` fast, \`Hypercall.PostMessage\` slow) with the same inputs. Median and p99 of $samples."
  echo
  echo "## SINT delivery (nested, --smp 2)"
  echo
  echo "| figure | median | p99 | target | verdict |"
  echo "|---|---|---|---|---|"
  read -r lm lp <<<"$(figure sint_latency.same_vp nested-smp2)" || true
  echo "| SINT latency, same VP: hypercall → first handler instruction | ${lm:-–} | ${lp:-–} | – | – |"
  read -r xm xp <<<"$(figure sint_latency.cross_vp nested-smp2)" || true
  echo "| SINT latency, cross-VP | ${xm:-–} | ${xp:-–} | – | – |"
  read -r dm dp <<<"$(figure sint_dispatch.csharp nested-smp2)" || true
  read -r bm bp <<<"$(figure sint_dispatch.bare nested-smp2)" || true
  r=$(ratio "${dm:-}" "${bm:-}")
  echo "| dispatch, handler entry → per-flag callback: C# / bare assembly | ${dm:-–} / ${bm:-–} | ${dp:-–} / ${bp:-–} | ≤ 1.10× | ${r:-–}×, $(verdict "$r" 1.10) |"
  echo
  echo "Method: an HvCallSignalEvent to a hyperv-testdev event connection; \`boot/bench.asm\` puts an entry that reads the TSC in front of the SINT's normal stub. Latency is that TSC minus one read just before the hypercall. Dispatch is the TSC in the C# per-flag callback minus the entry TSC, against \`bench_sint_bare\`, which only takes the SIEF word with xchg and finds the flag. The C# path saves all registers and the 512-byte SSE state before it calls C#, which is most of the gap."
  echo
  echo "## Event round trip: HvCallSignalEventDirect against a connection (nested, --smp 2, the project's KVM)"
  echo
  echo "| round trip: call → per-flag callback on the target | median | p99 | Direct / connection (median) |"
  echo "|---|---|---|---|"
  for where in same_vp cross_vp; do
    read -r dm dp <<<"$(figure "round_trip.direct.$where" nested-direct-smp2)" || true
    read -r cm cp <<<"$(figure "round_trip.connection.$where" nested-direct-smp2)" || true
    r=$(ratio "${dm:-}" "${cm:-}")
    echo "| HvCallSignalEventDirect, ${where/_/ } | ${dm:-–} | ${dp:-–} | ${r:-–} |"
    echo "| HvCallSignalEvent via a hyperv-testdev connection, ${where/_/ } | ${cm:-–} | ${cp:-–} | |"
  done
  echo
  echo "Method: one boot under \`qemu-run.sh --mode nested --kvm direct --smp 2\` (emulator figures: the outer QEMU runs L1 under TCG). Each sample is \`lfence; rdtsc\` just before the call minus the TSC read in the C# per-flag callback on the target VP; the caller waits for the callback before the next call. The Direct call is handled inside KVM (tools/nested/kvm); the connection's HvCallSignalEvent leaves KVM through an eventfd to QEMU's user space, which sets the flag and raises the SINT. Same boot, same SINT, same callback."
  echo
  echo "## VMBus channel: a request and the host's answer (nested, --smp 2, QEMU's hv-balloon)"
  echo
  read -r vm vp <<<"$(figure vmbus.packet_round_trip balloon-nested)" || true
  echo "| round trip: DM_VERSION_REQUEST into the ring → C# packet callback with DM_VERSION_RESPONSE | median | p99 |"
  echo "|---|---|---|"
  echo "| \`qemu-run.sh --mode nested --smp 2 --hv-balloon\` | ${vm:-–} | ${vp:-–} |"
  echo
  echo "Method: the Dynamic Memory channel of QEMU's hv-balloon (drivers/dynmem), opened anew for each of 200 rounds, because hv-balloon answers a version request only on a fresh channel (CLOSECHANNEL resets the device). Each sample is \`lfence; rdtsc\` just before the packet is written into the outbound ring minus the TSC read in the C# callback that \`VmbusClient.Drain\` hands the answer to: the guest's signal (HvCallSignalEvent to the channel's connection), KVM's eventfd to QEMU, QEMU's ring read and answer, its SIEF flag and SINT back, the channel interrupt. Emulator figures (the outer QEMU runs L1 under TCG)."
  echo
  echo "## Boot and size"
  echo
  tl=$(timeline tcg); hz_nested=$(kv "$(timeline nested-smp2)" tsc_hz)
  echo "| figure | value | target | verdict |"
  echo "|---|---|---|---|"
  echo "| \`kernel.elf\` stripped (test mode included) | $elf_size bytes | ≤ 131072 | $(verdict "$elf_size" 131072) |"
  echo "| \`BOOTX64.EFI\` | ${efi_size/null/not built} bytes | – | – |"
  echo "| whole \`qemu-run.sh --mode tcg\` bench run, host wall time | $(wall tcg) s | – | – |"
  echo "| whole \`qemu-run.sh --mode nested --smp 2\` bench run, host wall time | $(wall nested-smp2) s | – | – |"
  echo "| whole \`qemu-run.sh --uefi --mode tcg\` bench run (OVMF), host wall time | $(wall uefi-tcg) s | – | – |"
  echo "| direct boot to test-ready under TCG: whole \`qemu-run.sh --mode tcg --test\` run, host wall time | $(wall test-tcg) s | < 1 s | $(verdict "$(wall test-tcg)" 1) |"
  echo "| the whole Hyper-V test mode in one nested boot: \`qemu-run.sh --mode nested --test\`, host wall time | $(wall test-nested) s | < 15 s | $(verdict "$(wall test-nested)" 15) |"
  pp=$(grep -h "^ping-pong:" "$out/pingpong-nested.log" 2>/dev/null | tr -d '\r' | sed -E 's/.*: ([0-9]+) round trips, median ([0-9]+) p99 ([0-9]+).*/median \2, p99 \3 cycles over \1 round trips/' || true)
  echo "| event ping-pong between two VPs (nested), round trip | ${pp:-–} | – | – |"
  echo "| TCG boot timeline (TSC): entry → long mode → Hyper-V ready → all VPs ready → test-ready | $(kv "$tl" entry) → $(kv "$tl" long_mode) → $(kv "$tl" hv_ready) → $(kv "$tl" all_vps_ready) → $(kv "$tl" test_ready) | – | – |"
  echo "| nested boot, entry → test-ready | $(( $(kv "$(timeline nested-smp2)" test_ready) - $(kv "$(timeline nested-smp2)" entry) )) cycles at $hz_nested Hz | – | – |"
  echo
  echo "Method: sizes from \`stat\` (the ELF relinked with \`--strip-all\`); wall times from \`date\` around each whole \`qemu-run.sh\` run; the timeline is the TSC read at each milestone by \`boot/entry.asm\` and \`kernel/Kernel.cs\`."
  echo
  echo "## Caveats"
  echo
  echo "- Wall times include QEMU start-up and, for nested, the outer Linux boot (about 6 s)."
} >bench/RESULTS.md
cat bench/RESULTS.md
