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
# The TCG test run takes a third of a second, so host noise (QEMU's start-up, the
# page cache) can swing one run by half a second: its figure is the median of five.
for i in 1 2 3 4 5; do run_mode "test-tcg.$i" --mode tcg --test; done
run_mode test-nested --mode nested --test
run_mode pingpong-nested --mode nested --smp 2 --test=cross.event_ping_pong
run_mode balloon-nested --mode nested --smp 2 --hv-balloon

# Exact instruction counts of the hot paths (count mode under TCG, QEMU's exec
# trace: tools/count-instructions.py), on both QEMUs the project runs.
for q in pinned system; do
  rm -f "$out/counts-$q.json"
  python3 tools/count-instructions.py --qemu "$q" --json "$out/counts-$q.json" >"$out/counts-$q.log" 2>&1 \
    || echo "bench: count-instructions.py --qemu $q failed (see $out/counts-$q.log)" >&2
done
# The counts beside their floors and targets: $out/counts.json for bench.json, $out/counts.md for RESULTS.md.
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
runs = {q: json.load(open(f"{out}/counts-{q}.json")) for q in ("pinned", "system") if os.path.exists(f"{out}/counts-{q}.json")}
API_SLACK, DISPATCH_RATIO = 15, 2.0     # the targets: API <= floor + 15 instructions; dispatch <= 2x the bare handler
HYPERCALLS = [("signal_event_direct", "HvCallSignalEventDirect (memory form, NewlySignaled output)"),
              ("post_message_direct", "HvCallPostMessageDirect (16-byte payload)"),
              ("signal_event_fast", "HvCallSignalEvent (register form)"),
              ("post_message", "HvCallPostMessage (16-byte payload)")]
DISPATCH = [("sint_dispatch.event", "an event flag (per-flag callback)"), ("sint_dispatch.message", "a message (per-message callback)")]
result, md = {"runs": runs, "targets": {}}, []
if "pinned" not in runs:
    md.append("Not measured: tools/count-instructions.py failed (build/bench/counts-pinned.log).")
else:
    p = runs["pinned"]["paths"]
    same = "system" in runs and runs["system"]["paths"] == p
    boot_same = "system" in runs and runs["system"]["boot"] == runs["pinned"]["boot"]
    result["identical_on_both_qemus"] = same
    md.append("| path | C#: to / from / total | floor: to / from / total | C# − floor | target | verdict |")
    md.append("|---|---|---|---|---|---|")
    for key, what in HYPERCALLS:
        c, f = p[key]["csharp"], p[key]["floor"]
        ok = c["total"] <= f["total"] + API_SLACK
        result["targets"][key] = {"target": f"<= floor + {API_SLACK}", "limit": f["total"] + API_SLACK, "met": ok}
        miss = "" if ok else f" by {c['total'] - f['total'] - API_SLACK}"
        md.append(f"| {what}: API call → hypercall instruction, and back | {c['to']} / {c['from']} / **{c['total']}** | {f['to']} / {f['from']} / {f['total']} | +{c['total'] - f['total']} | ≤ floor + {API_SLACK} = {f['total'] + API_SLACK} | {'met' if ok else 'MISSED' + miss} |")
    for key, what in DISPATCH:
        # Both ways held to the ratio: the whole dispatch, and the way to the callback alone.
        c, f = p[key]["csharp"], p[key]["floor"]
        r, rt = c["total"] / f["total"], c["to"] / f["to"]
        ok = r <= DISPATCH_RATIO and rt <= DISPATCH_RATIO
        result["targets"][key] = {"target": f"<= {DISPATCH_RATIO}x floor, to the callback and in all", "ratio": round(r, 3), "to_ratio": round(rt, 3), "met": ok}
        md.append(f"| SINT dispatch of {what}: vector entry → callback, and callback's return → iretq | {c['to']} / {c['from']} / **{c['total']}** | {f['to']} / {f['from']} / {f['total']} | to the callback {rt:.2f}×, in all {r:.2f}× | ≤ {DISPATCH_RATIO:g}× both | {'met' if ok else 'MISSED'} |")
    b = runs["pinned"]["boot"]
    md.append("")
    md.append("| boot under TCG (no Hyper-V, 1 VP, 256 MiB), instructions | to long mode | runtime started | Hyper-V ready | all VPs ready | test-ready | total |")
    md.append("|---|---|---|---|---|---|---|")
    md.append(f"| from pvh_entry, per phase | {b['long_mode']} | {b['runtime_started']} | {b['hv_ready']} | {b['all_vps_ready']} | {b['test_ready']} | {b['total']} |")
    md.append("")
    v = {q: runs[q]["qemu"].split(" (/")[0] for q in runs}   # "pinned 10.0.2 (Debian ...)", without the path
    md.append((f"Both QEMUs, {v.get('pinned')} (`-accel tcg,one-insn-per-tb=on`) and {v.get('system')} (`-singlestep`), count every path identically"
               + (" and the boot too." if boot_same else "; the boot differs (see build/bench/counts-*.json).")) if same
              else "**The two QEMUs count differently** (see build/bench/counts-pinned.json and counts-system.json): a failure of the method.")
json.dump(result, open(f"{out}/counts.json", "w"), indent=2, sort_keys=True)
open(f"{out}/counts.md", "w").write("\n".join(md) + "\n")
PY

# Both images, as ELF without symbols and as UEFI application; the Makefile owns the link lines.
make -s build/kernel.stripped.elf build/kernel-test.stripped.elf build/BOOTX64-minimal.stripped.EFI build/BOOTX64.stripped.EFI
minimal_elf_size=$(stat -c %s build/kernel.stripped.elf)
test_elf_size=$(stat -c %s build/kernel-test.stripped.elf)
minimal_efi_size=$(stat -c %s build/BOOTX64-minimal.stripped.EFI)
test_efi_size=$(stat -c %s build/BOOTX64.stripped.EFI)
# The QEMU that ran the guest, as qemu-run.sh named it ("qemu-run.sh: QEMU: pinned 10.0.2 (...)").
qemu_version=$(sed -n 's/^qemu-run\.sh: QEMU: \([a-z]*\) \([^ ]*\) .*/\2 (\1)/p' "$out/tcg.err" | head -n1)
[ -n "$qemu_version" ] || qemu_version=unknown
date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# figure NAME FROM-LOG -> "median p99" of a bench line, or nothing
figure() { grep -h "^bench: $1 " "$out/$2.log" 2>/dev/null | tr -d '\r' | sed -E 's/.*median=([0-9]+) p99=([0-9]+).*/\1 \2/' || true; }
timeline() { grep -h "^bench-timeline:" "$out/$1.log" 2>/dev/null | tr -d '\r' | sed 's/^bench-timeline: //' || true; }
wall() { awk -v m="$1" '$1 == m {print $3}' "$out/runs.txt"; }
# walls NAME -> the wall times of runs NAME.1, NAME.2, ..., sorted; median and range of them
walls() { awk -v m="$1." 'index($1, m) == 1 {print $3}' "$out/runs.txt" | sort -n; }
wall_median() { walls "$1" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
wall_range() { walls "$1" | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "–" hi}'; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}' || echo ""; }
kv() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2}'; }

{
  echo "{"
  echo "  \"date\": \"$date_utc\", \"qemu\": \"$qemu_version\", \"samples\": $samples,"
  echo "  \"sizes\": {\"minimal\": {\"elf_stripped\": $minimal_elf_size, \"efi\": $minimal_efi_size, \"target\": 65536},"
  echo "            \"test\": {\"elf_stripped\": $test_elf_size, \"efi\": $test_efi_size, \"target\": 131072}},"
  echo "  \"instruction_counts\": $(cat "$out/counts.json"),"
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
  echo
  echo "## Instruction counts: the C# paths against their bare-assembly floors (exact, TCG)"
  echo
  echo "Executed instructions, which do not depend on the machine: what a kernel engineer wants to know is how much the C# layer adds on the way to vmcall and from the interrupt to the handler, and under the nested emulator a hypercall costs tens of thousands of cycles, in which a few dozen instructions disappear."
  echo
  cat "$out/counts.md"
  echo
  echo "Method: \`tools/count-instructions.py\` boots the kernel's count mode (\`--append count\`, \`tests/guest/bench/CountMode.cs\`) under TCG with \`qemu-run.sh --exec-trace\`: QEMU's \`-d exec,nochain\` with one instruction per translation block logs each executed instruction once (filtered to the kernel image with \`-dfilter\`), and the script counts the lines between PCs it reads from \`build/kernel-test.elf\`'s symbol table (a rep-prefixed string instruction is one instruction, however many iterations). Under TCG there is no Hyper-V, so count mode stands in for it for its own duration: the hypercall page gets \`xor eax, eax; ret\`, two instructions like the hypervisor's \`vmcall; ret\`, which are counted on neither side; for dispatch, zeroed SIM and SIEF pages in which count mode sets flag 43 of SINT 12 or writes a 16-byte message, then raises the vector with \`int\` (IF set). *To* counts from the API function's first instruction to the hypercall page, or from the vector's entry stub to the callback's first instruction; *from* counts from the first instruction after the page (or after the callback) to the caller's instruction after its call, or to iretq included. Each path runs three times after a call that is not counted; the repeats must agree. The floors (\`boot/bench.asm\`) are what bare assembly must do for the same job from the same typed arguments: the hypercall floors write the same input block (reserved fields zero) into the same per-VP page and load RCX, RDX and R8, without argument checks or bookkeeping; the dispatch floor \`bench_sint_bare\` saves the same registers as the kernel's interrupt entry (\`SAVE_VOLATILE\`, \`boot/abi.inc\`), scans the SINT's 32 SIEF words, takes a set one with xchg and finds its flags with bsf, copies a message out, frees the slot and writes EOM when one is pending, and calls the same callbacks. \`tests/Kernel.Tests/InstructionCountTests.cs\` holds every C# count to a budget (\`make test\`) and checks that each hypercall floor's count equals its length decoded with Iced."
  echo
  echo "## Hypercall cost in cycles: C# API against the bare-assembly floor (nested, --smp 2: emulator figures)"
  echo
  echo "Cycles are guest TSC cycles under the nested emulator (KVM's Hyper-V emulation inside an outer QEMU whose CPU is TCG, \`tools/nested\`): a hypercall costs tens of thousands of them, so the figures are slow and noisy and say nothing of a few instructions; the instruction counts above are the measure of the C# layer. Both sides run in the same boot, so the ratio is shown."
  echo
  echo "| hypercall | floor median | C# median | C# p99 | C# / floor |"
  echo "|---|---|---|---|---|"
  for h in signal_event_direct signal_event_fast post_message_slow; do
    read -r fm fp <<<"$(figure "$h.floor" nested-smp2)" || true
    read -r cm cp <<<"$(figure "$h.csharp" nested-smp2)" || true
    r=$(ratio "${cm:-}" "${fm:-}")
    echo "| $h | ${fm:-–} | ${cm:-–} | ${cp:-–} | ${r:-–} |"
  done
  echo
  echo "Method: each sample is \`lfence; rdtsc\` before and after one hypercall; the floor is \`boot/bench.asm\` \`bench_hypercall_floor\`, a loop that loads RCX/RDX/R8 and calls the hypercall page with the input the C# call left in the page; the C# figure times one call of the kernel's typed API (\`Hypercall.SignalEventDirect\`, \`Hypercall.SignalEvent\` fast, \`Hypercall.PostMessage\` slow) with the same inputs. Median and p99 of $samples."
  echo
  echo "## SINT delivery in cycles (nested, --smp 2: emulator figures)"
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
  echo "| dispatch, handler entry → per-flag callback: C# / bare assembly | ${dm:-–} / ${bm:-–} | ${dp:-–} / ${bp:-–} | ≤ 2× | ${r:-–}×, $(verdict "$r" 2) |"
  read -r dm dp <<<"$(figure sint_dispatch_return.csharp nested-smp2)" || true
  read -r bm bp <<<"$(figure sint_dispatch_return.bare nested-smp2)" || true
  r=$(ratio "${dm:-}" "${bm:-}")
  echo "| dispatch, handler entry → back in the interrupted code (callback and iretq included): C# / bare assembly | ${dm:-–} / ${bm:-–} | ${dp:-–} / ${bp:-–} | ≤ 2× | ${r:-–}×, $(verdict "$r" 2) |"
  echo
  echo "Method: an HvCallSignalEvent to a hyperv-testdev event connection; \`boot/bench.asm\` puts an entry that reads the TSC in front of the SINT's stub. Latency is that TSC minus one read just before the hypercall. Dispatch is the TSC in the C# per-flag callback, and the TSC read right after the handler's iretq (\`bench_sint_entry_exit\` points the frame's RIP at a trampoline that reads it and resumes the interrupted code), minus the entry TSC, for the kernel's path and for \`bench_sint_bare\`, the floor of the instruction counts above, which calls the same callback; both in the same boot, interleaved (one sample of each in turn, which goes first alternating), so that the host's load, which moves every nested figure, moves both alike. Under the nested emulator the outer QEMU runs the guest's code through TCG, and each interrupt passes through L1, so the guest's TLB and TCG's lookup of translated blocks start cold: a path pays for every page of code and data it touches and every jump into another page, besides its instructions. The C# path touches two pages the floor does not (\`synic_interrupt\`'s code, which ilc places away from the stubs, and the VP's record, \`kernel/hv/Vp.cs\`), which is why its cycles ratio is above its instruction ratio."
  echo
  echo "## Event round trip in cycles: HvCallSignalEventDirect against a connection (nested, --smp 2, the project's KVM: emulator figures)"
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
  echo "Emulator figures (the outer QEMU runs L1 under TCG); both calls in the same boot, so the ratio is shown."
  echo
  echo "Method: one boot under \`qemu-run.sh --mode nested --kvm direct --smp 2\`. Each sample is \`lfence; rdtsc\` just before the call minus the TSC read in the C# per-flag callback on the target VP; the caller waits for the callback before the next call. The Direct call is handled inside KVM (tools/nested/kvm); the connection's HvCallSignalEvent leaves KVM through an eventfd to QEMU's user space, which sets the flag and raises the SINT. Same boot, same SINT, same callback."
  echo
  echo "## VMBus channel in cycles: a request and the host's answer (nested, --smp 2, QEMU's hv-balloon: emulator figures)"
  echo
  read -r vm vp <<<"$(figure vmbus.packet_round_trip balloon-nested)" || true
  echo "| round trip: DM_VERSION_REQUEST into the ring → C# packet callback with DM_VERSION_RESPONSE | median | p99 |"
  echo "|---|---|---|"
  echo "| \`qemu-run.sh --mode nested --smp 2 --hv-balloon\` | ${vm:-–} | ${vp:-–} |"
  echo
  echo "Method: the Dynamic Memory channel of QEMU's hv-balloon (drivers/dynmem), opened anew for each of 200 rounds, because hv-balloon answers a version request only on a fresh channel (CLOSECHANNEL resets the device). Each sample is \`lfence; rdtsc\` just before the packet is written into the outbound ring minus the TSC read in the C# callback that \`VmbusPackets.Drain\` hands the answer to: the guest's signal (HvCallSignalEvent to the channel's connection), KVM's eventfd to QEMU, QEMU's ring read and answer, its SIEF flag and SINT back, the channel interrupt. Emulator figures (the outer QEMU runs L1 under TCG)."
  echo
  echo "## Boot and size"
  echo
  tl=$(timeline tcg); hz_nested=$(kv "$(timeline nested-smp2)" tsc_hz)
  echo "| figure | value | target | verdict |"
  echo "|---|---|---|---|"
  echo "| minimal image \`build/kernel.elf\`, stripped | $minimal_elf_size bytes | ≤ 65536 | $(verdict "$minimal_elf_size" 65536) |"
  echo "| minimal image as UEFI application \`build/BOOTX64-minimal.EFI\`, no symbol table | $minimal_efi_size bytes | ≤ 65536 | $(verdict "$minimal_efi_size" 65536) |"
  echo "| test image \`build/kernel-test.elf\` (test mode, bench), stripped | $test_elf_size bytes | ≤ 131072 | $(verdict "$test_elf_size" 131072) |"
  echo "| test image as UEFI application \`build/BOOTX64.EFI\`, no symbol table | $test_efi_size bytes | ≤ 131072 | $(verdict "$test_efi_size" 131072) |"
  echo "| whole \`qemu-run.sh --mode tcg\` bench run, host wall time | $(wall tcg) s | – | – |"
  echo "| whole \`qemu-run.sh --mode nested --smp 2\` bench run, host wall time | $(wall nested-smp2) s | – | – |"
  echo "| whole \`qemu-run.sh --uefi --mode tcg\` bench run (OVMF), host wall time | $(wall uefi-tcg) s | – | – |"
  echo "| direct boot to test-ready under TCG: whole \`qemu-run.sh --mode tcg --test\` run, host wall time, median of 5 (range) | $(wall_median test-tcg) s ($(wall_range test-tcg) s) | < 1 s | $(verdict "$(wall_median test-tcg)" 1) |"
  echo "| the whole Hyper-V test mode in one nested boot: \`qemu-run.sh --mode nested --test\`, host wall time | $(wall test-nested) s | < 15 s | $(verdict "$(wall test-nested)" 15) |"
  pp=$(grep -h "^ping-pong:" "$out/pingpong-nested.log" 2>/dev/null | tr -d '\r' | sed -E 's/.*: ([0-9]+) round trips, median ([0-9]+) p99 ([0-9]+).*/median \2, p99 \3 cycles over \1 round trips/' || true)
  echo "| event ping-pong between two VPs (nested, emulator figure), round trip | ${pp:-–} | – | – |"
  echo "| TCG boot timeline (TSC, emulator figure; the instructions per phase are above): entry → long mode → runtime started → Hyper-V ready → all VPs ready → test-ready | $(kv "$tl" entry) → $(kv "$tl" long_mode) → $(kv "$tl" runtime_started) → $(kv "$tl" hv_ready) → $(kv "$tl" all_vps_ready) → $(kv "$tl" test_ready) | – | – |"
  echo "| nested boot, entry → test-ready (emulator figure) | $(( $(kv "$(timeline nested-smp2)" test_ready) - $(kv "$(timeline nested-smp2)" entry) )) cycles at $hz_nested Hz | – | – |"
  echo
  echo "Method: sizes from \`stat\` (each ELF relinked with \`--strip-all\` by \`make build/kernel[-test].stripped.elf\`; the EFI applications relinked without their COFF symbol table by \`make build/BOOTX64[-minimal].stripped.EFI\`); wall times from \`date\` around each whole \`qemu-run.sh\` run (the TCG test run: the median of five); the timeline is the TSC read at each milestone by \`boot/entry.asm\` and \`kernel/Kernel.cs\`."
  echo
  echo "## Caveats"
  echo
  echo "- Wall times include QEMU start-up and, for nested, the outer Linux boot (about 6 s)."
  echo "- The typed hypercalls' target, floor + 15 instructions, is met by the register-form HvCallSignalEvent only; the C# that ilc compiles cannot meet it for the memory-form calls. Their checks alone take 9 to 13 instructions (a compare and a branch per check, the zero-extension RyuJIT gives each byte or ushort argument it compares, the subtraction of the message type's range check), and the rest of the 15 does not cover what each of them adds besides: counting the call (\`Hypercall.Issued\`: 1); the RBP frame RyuJIT gives a method of more than three basic blocks (push, mov, pop: 3); System V's RDI and RSI, which come before RDX, RCX and R8 and which the page ignores (2 xors); and the running VP's input page, which only a GS-relative load finds and C# reaches only through assembly (\`boot/hypercall.asm\` ON_THIS_VP: the empty argument the typed call passes, the trampoline's load of GS:0 and its two jumps: 4; a call to a stub instead costs its call and ret and, for every argument that must survive it, a push, a move and a pop). On top of that HvCallSignalEventDirect returns NewlySignaled only when the call succeeded (a test and a branch, and a shift and an or to put it in the result, where the floor returns the byte as it is: 5) and keeps the output page across the page's call (a push, a move, a pop: 3): 29 over its floor. HvCallPostMessage copies the payload through a call (call, ret and three moves: 5 more than the floor's inline rep movsb) and keeps the input page across it (a push and a pop: 2): 26. HvCallPostMessageDirect has seven arguments, one on the stack under System V: its body takes a frame to read it, and VpIndex and Vtl travel packed in one argument so that the VP's record still fits a register; with its five checks that makes 41."
  echo "- The C# dispatch counts the interrupt and each flag (\`Vp.SintInterrupts\`, \`Vp.FlagsTaken\`) after the callback, off the way to it; the floor counts nothing. What the C# way to the per-flag callback adds to the floor's, instruction by instruction: the entry pushes the vector, jumps to the common stub, clears DF, passes the frame and the VP's record and calls C# (6); the C# entry's RBP frame and saved registers, over the floor's four pushes (4 more: RBP, its frame pointer, and an alignment push, because RyuJIT's register allocator keeps the handler in a fifth callee-saved register); the VP's record kept (1); the interrupt guard (\`kernel/arch/InterruptGuard.cs\`: 5); the SINT number from the vector (2); the raw-handler test (3) and the event handler's load (1); the SIEF area's address (1 more); RyuJIT's xchg, which moves the zero through a second register, and bsf's clearing with lea and and instead of btr (2 more); the handler's null test and ilc's test for a fat function pointer (4); one fewer for the flag number (lea and and)."
} >bench/RESULTS.md
cat bench/RESULTS.md
