#!/usr/bin/env python3
"""tools/count-instructions.py: exact instruction counts of the kernel's hot paths.

Boots the kernel's count mode (tests/guest/bench/CountMode.cs) under TCG with QEMU
logging the PC of every executed instruction:

    ./qemu-run.sh --mode tcg --qemu Q --append count --exec-trace FIFO -- -dfilter IMAGE

(qemu-run.sh --exec-trace: -d exec,nochain with one instruction per translation
block, so each executed instruction is one "Trace" line; -dfilter keeps the log
to the kernel image, so the BIOS before it is left out). The trace streams
through a FIFO and is never stored: a whole boot is about 9 million lines.

Counted, in executed instructions, each PC read from build/kernel-test.elf's symbol
table:
  - each typed hypercall, the C# API and its floor in boot/bench.asm: from the
    function's first instruction to the hypercall page ("to"), and from the
    first instruction after the page's two (the stand-in's `xor eax, eax; ret`,
    where the hypervisor writes `vmcall; ret`) to the caller's instruction after
    its call ("from");
  - SINT dispatch, C# and floor, for a flag and for a message: from the
    vector's entry (the instruction after `int`) to the callback's first
    instruction ("to"), and from the first instruction after the callback's
    (which calls nothing) to iretq, included ("from");
  - the boot, from the kernel's first instruction (pvh_entry) to each
    milestone: long mode, runtime started, Hyper-V ready (under TCG: found
    absent), all VPs ready, test-ready.
A rep-prefixed string instruction is one instruction however many iterations
it runs (QEMU 7.2 logs each iteration; consecutive lines with the same PC are
one instruction). Each window ran 3 times after a call that was not counted;
the repeats must agree, or the run fails.

Usage: tools/count-instructions.py [--qemu pinned|system] [--json FILE]
Prints a table; --json writes the counts for tools/bench.sh and the host test
(tests/Kernel.Tests/InstructionCountTests.cs).
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ELF = os.path.join(ROOT, "build", "kernel-test.elf")
PAGE = "hv_hypercall_page"
STANDIN_PAGE_INSTRUCTIONS = 2   # xor eax, eax; ret

# name: (C# entry, floor entry): the typed API and boot/bench.asm's floor.
HYPERCALLS = {
    "signal_event_direct": ("kernel_Kernel_Hv_Hypercall__SignalEventDirect", "bench_floor_signal_event_direct"),
    "post_message_direct": ("kernel_Kernel_Hv_Hypercall__PostMessageDirect", "bench_floor_post_message_direct"),
    "signal_event_fast": ("kernel_Kernel_Hv_Hypercall__SignalEvent", "bench_floor_signal_event"),
    "post_message": ("kernel_Kernel_Hv_Hypercall__PostMessage", "bench_floor_post_message"),
}
# name: the callback the window's interrupt must reach. The C# path enters at
# the vector's stub, the floor at boot/bench.asm's bare handler.
SINT_VECTOR = 0x50 + 12
DISPATCH = {
    "sint_dispatch.event": "kernel_Kernel_TestMode_CountMode__OnFlag",
    "sint_dispatch.message": "kernel_Kernel_TestMode_CountMode__OnMessage",
}
DISPATCH_ENTRY = {"csharp": "isr_stub_%d" % SINT_VECTOR, "floor": "bench_sint_bare"}
RAISE = "bench_count_raise_sint"    # int imm8 (2 bytes), then ret
MILESTONES = [   # (phase, the symbol reached at its end)
    ("long_mode", "long_mode_entry"),
    ("runtime_started", "kernel_Kernel_Arch_BootTimeline__MarkRuntimeStarted"),
    ("hv_ready", "kernel_Kernel_Arch_BootTimeline__MarkHvReady"),
    ("all_vps_ready", "kernel_Kernel_Arch_BootTimeline__MarkAllVpsReady"),
    ("test_ready", "kernel_Kernel_Arch_BootTimeline__MarkReady"),
]


class CountError(Exception):
    pass


def elf_symbols(path, sizes=None):
    """Name -> address of every symbol in an ELF64 file's SHT_SYMTAB (and name -> size into `sizes`)."""
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise CountError(path + " is not an ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    symbols = {}
    for sh in sections:
        if sh[1] != 2:      # SHT_SYMTAB
            continue
        strtab = sections[sh[6]]
        for off in range(sh[4], sh[4] + sh[5], 24):
            name_off, _info, _other, _shndx, value, _size = struct.unpack_from("<IBBHQQ", data, off)
            end = data.index(b"\0", strtab[4] + name_off)
            name = data[strtab[4] + name_off:end].decode()
            if name and name not in symbols:
                symbols[name] = value
                if sizes is not None:
                    sizes[name] = _size
    return symbols


def run_trace(qemu, symbols):
    """Boots count mode and reads its trace; returns (serial output, boot marks, windows)."""
    # PCs as the log prints them (16 hex digits): the loop compares bytes and
    # turns a PC into a number only inside a window.
    field = lambda address: b"%016x" % address
    begin, end = field(symbols["bench_count_begin"]), field(symbols["bench_count_end"])
    milestone_pcs = {field(symbols[s]): phase for phase, s in MILESTONES}
    boot = {}
    windows, window = [], None
    index = -1           # instructions seen so far, minus one
    first_pc = None
    with tempfile.TemporaryDirectory(prefix="count-instructions.") as tmp:
        fifo = os.path.join(tmp, "trace")
        os.mkfifo(fifo)
        out, err = open(os.path.join(tmp, "stdout"), "w+"), open(os.path.join(tmp, "stderr"), "w+")
        command = [os.path.join(ROOT, "qemu-run.sh"), "--mode", "tcg", "--qemu", qemu, "--append", "count",
                   "--timeout", "300", "--exec-trace", fifo, "--",
                   "-dfilter", "0x%x..0x%x" % (symbols["__image_start"], symbols["__image_end"] - 1)]
        proc = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=ROOT)
        opened = threading.Event()

        def unblock():   # QEMU may fail before it opens the log: then open the FIFO's other end ourselves
            proc.wait()
            if not opened.is_set():
                with open(fifo, "wb"):
                    pass
        threading.Thread(target=unblock, daemon=True).start()
        with open(fifo, "rb", buffering=1 << 20) as trace:
            opened.set()
            previous = None
            for line in trace:
                if line[0] != 84:   # "T"race; e.g. "Stopped execution of TB chain before ...": that TB did not run
                    continue
                slash = line.index(b"/") + 1          # "Trace 0: <host> [<cs base>/<pc>/<flags>/<cflags>]"
                pc = line[slash:slash + 16]
                if pc == previous:
                    continue   # the same rep-prefixed instruction, one more iteration
                previous = pc
                index += 1
                if first_pc is None:
                    first_pc = int(pc, 16)
                if window is not None:
                    if pc == end:
                        windows.append(window)
                        window = None
                    else:
                        window.append(int(pc, 16))
                elif pc == begin:
                    window = []
                elif pc in milestone_pcs and milestone_pcs[pc] not in boot:
                    boot[milestone_pcs[pc]] = index
        status = proc.wait()
        out.seek(0)
        err.seek(0)
        serial, errors = out.read(), err.read()
    if status != 0:
        raise CountError("%s exited with status %d\n--- stdout\n%s\n--- stderr\n%s" % (" ".join(command), status, serial[-3000:], errors[-3000:]))
    if first_pc != symbols["pvh_entry"]:
        raise CountError("the trace does not start at pvh_entry (0x%x) but at %s" % (symbols["pvh_entry"], hex(first_pc) if first_pc is not None else "nothing"))
    version = next((l.split("QEMU: ", 1)[1].strip() for l in errors.splitlines() if l.startswith("qemu-run.sh: QEMU: ")), qemu)
    return serial, boot, windows, version


def first(pcs, start, predicate, what):
    for i in range(start, len(pcs)):
        if predicate(pcs[i]):
            return i
    raise CountError("window without " + what)


def returned(pcs, start, call_pc, what):
    # The instruction after the call: a call is at most 15 bytes, and nothing on
    # the measured path runs in the caller's next bytes before it returns.
    return first(pcs, start, lambda pc: call_pc < pc <= call_pc + 15, what)


def hypercall_counts(pcs, entry, symbols):
    page = symbols[PAGE]
    a = first(pcs, 0, lambda pc: pc == entry, "the entry")
    p = first(pcs, a, lambda pc: pc == page, "the hypercall page")
    q = first(pcs, p, lambda pc: not page <= pc < page + 4096, "a return from the hypercall page")
    if q - p != STANDIN_PAGE_INSTRUCTIONS:
        raise CountError("the hypercall page ran %d instructions, not %d" % (q - p, STANDIN_PAGE_INSTRUCTIONS))
    r = returned(pcs, q, pcs[a - 1], "the return to the caller")
    if any(pc == page for pc in pcs[q:r]):
        raise CountError("more than one hypercall in one call")
    return {"to": p - a, "from": r - q}


def dispatch_counts(pcs, entry, callback, callback_size, symbols):
    raise_pc = symbols[RAISE]
    i = first(pcs, 0, lambda pc: pc == raise_pc, "the int instruction")
    a = i + 1
    if pcs[a] != entry:
        raise CountError("the interrupt entered at 0x%x, not at 0x%x" % (pcs[a], entry))
    c = first(pcs, a, lambda pc: pc == callback, "the callback")
    # The callbacks call nothing, so they return with the first PC outside them
    # (the dispatcher may have entered them with a tail jump).
    r = first(pcs, c, lambda pc: not callback <= pc < callback + callback_size, "the callback's return")
    e = first(pcs, r, lambda pc: pc == raise_pc + 2, "the return from the interrupt")
    if any(pc == callback for pc in pcs[r:e]):
        raise CountError("the callback ran more than once")
    return {"to": c - a, "from": e - r}


def count(qemu):
    sizes = {}
    symbols = elf_symbols(ELF, sizes)
    serial, boot, windows, version = run_trace(qemu, symbols)
    names = [line.split(":", 1)[1].strip() for line in serial.splitlines() if line.startswith("count-window:")]
    if not names or len(windows) % len(names):
        raise CountError("%d windows for %d names (%s)" % (len(windows), len(names), ", ".join(names)))
    repeats = len(windows) // len(names)
    counts = {}
    for k, name in enumerate(names):
        path, side = name.rsplit(".", 1)
        results = []
        for pcs in windows[k * repeats:(k + 1) * repeats]:
            if path in HYPERCALLS:
                entry = HYPERCALLS[path][0 if side == "csharp" else 1]
                results.append(hypercall_counts(pcs, symbols[entry], symbols))
            elif path in DISPATCH:
                callback = DISPATCH[path]
                if not sizes.get(callback):
                    raise CountError(callback + " has no size in the symbol table")
                results.append(dispatch_counts(pcs, symbols[DISPATCH_ENTRY[side]], symbols[callback], sizes[callback], symbols))
            else:
                raise CountError("unknown window " + name)
        if any(r != results[0] for r in results):
            raise CountError("%s: the %d repeats disagree: %s" % (name, repeats, results))
        counts.setdefault(path, {})[side] = dict(results[0], total=results[0]["to"] + results[0]["from"])
    missing = [phase for phase, _ in MILESTONES if phase not in boot]
    if missing:
        raise CountError("the boot never reached " + ", ".join(missing))
    phases, last = {}, 0
    for phase, _ in MILESTONES:
        phases[phase] = boot[phase] - last
        last = boot[phase]
    phases["total"] = last
    return {"qemu": version, "repeats": repeats, "paths": counts, "boot": phases}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qemu", default="pinned", choices=["pinned", "system"])
    parser.add_argument("--json", help="write the counts here")
    args = parser.parse_args()
    try:
        result = count(args.qemu)
    except CountError as e:
        print("count-instructions.py: " + str(e), file=sys.stderr)
        return 1
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, sort_keys=True)
            f.write("\n")
    print("instructions (QEMU %s, TCG): path: C# to/from/total | floor to/from/total" % result["qemu"])
    for path, sides in result["paths"].items():
        c, f = sides.get("csharp"), sides.get("floor")
        print("  %-24s %4d/%4d/%4d | %4d/%4d/%4d" % (path, c["to"], c["from"], c["total"], f["to"], f["from"], f["total"]))
    print("  boot: " + ", ".join("%s %d" % kv for kv in result["boot"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
