using ELFSharp.ELF;
using Iced.Intel;
using Xunit;

namespace Kernel.Tests;

// The external-interrupt entries (boot/interrupts.asm interrupt_common and
// sint_common, and the bench's bare handler in boot/bench.asm) save the
// caller-saved general registers and only the XMM registers of boot/abi.inc
// VOLATILE_XMM, not the whole 512-byte FXSAVE area. The System V ABI lets a
// callee change every XMM register, MXCSR's status flags and the x87 state, so
// that is right only while no code those entries can reach touches another XMM
// register, changes MXCSR or uses the x87 or MMX registers. This proves it over
// the built image (build/kernel-test.elf), with Iced:
//  - every function reachable from the entries: the stubs of vectors 32-255 and
//    bench_sint_bare, following direct calls and jumps, and at an indirect call
//    or jump every function whose address the image takes anywhere (a
//    RIP-relative operand or an immediate in code, a pointer in a data
//    section). Functions are the symbol table's (ilc gives sizes; a nasm label
//    runs to the next one), each decoded whole;
//  - in them, the XMM registers any instruction uses (Iced's used registers,
//    implicit ones included), which must be exactly what the entries save;
//  - and every instruction that touches an XMM register is a move or a logical
//    operation, which SDM Vol 2 lists with no SIMD floating-point exceptions,
//    so MXCSR stays as it was; and none uses an x87 or MMX register.
// Excluded, each for its reason: the 32-bit start of pvh_entry (it runs before
// long mode, once), and the address of the IDT's entries in BootSymbols
// (interrupt_entries, which kernel/arch/Interrupts.cs turns into gates: the CPU
// enters those, nothing calls them; vectors 0-31 go to exception_common, which
// keeps the full save).
public class InterruptSaveTests
{
    private static readonly Lazy<ELF<ulong>> s_elf = new(() => { Repo.EnsureKernelBuilt(); return ElfSymbols.Load(Repo.KernelElf); });
    private static readonly Lazy<Reachable> s_reachable = new(() => new Reachable(s_elf.Value));

    // What an entry stores with movaps before its call into C#, and loads back after it.
    private static (SortedSet<int> Stored, SortedSet<int> Loaded) SavedXmm(string entry)
    {
        var elf = s_elf.Value;
        var (address, bytes) = elf.BytesFrom(entry, 512);
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(bytes), address);
        var stored = new SortedSet<int>();
        var loaded = new SortedSet<int>();
        bool called = false;
        while (decoder.IP < address + (ulong)bytes.Length)
        {
            var instr = decoder.Decode();
            if (instr.Mnemonic == Mnemonic.Call) called = true;
            if (instr.Mnemonic == Mnemonic.Iretq) break;
            if (instr.Mnemonic != Mnemonic.Movaps) continue;
            if (!called && instr.Op0Kind == OpKind.Memory && instr.Op1Register.IsXMM()) stored.Add(instr.Op1Register - Register.XMM0);
            if (called && instr.Op1Kind == OpKind.Memory && instr.Op0Register.IsXMM()) loaded.Add(instr.Op0Register - Register.XMM0);
        }
        return (stored, loaded);
    }

    private static string Names(IEnumerable<int> xmm) => xmm.Any() ? string.Join(", ", xmm.Select(i => "xmm" + i)) : "none";

    [Theory]
    [InlineData("interrupt_common")]
    [InlineData("sint_common")]
    [InlineData("bench_sint_bare")]
    public void EntrySavesExactlyTheXmmRegistersTheReachableCodeUses(string entry)
    {
        var used = s_reachable.Value.Xmm;
        var (stored, loaded) = SavedXmm(entry);
        TestContext.Current.TestOutputHelper?.WriteLine($"{entry}: saves {Names(stored)}, restores {Names(loaded)}; the {s_reachable.Value.Functions.Count} functions it can reach use {Names(used)}");
        Assert.True(used.SetEquals(stored), $"{entry} saves {Names(stored)}, but the code it can reach uses {Names(used)}: change VOLATILE_XMM in boot/abi.inc");
        Assert.True(stored.SetEquals(loaded), $"{entry} saves {Names(stored)} but restores {Names(loaded)}");
    }

    [Fact]
    public void ReachableCodeLeavesMxcsrAndTheX87Alone()
    {
        var bad = s_reachable.Value.Violations;
        TestContext.Current.TestOutputHelper?.WriteLine($"{s_reachable.Value.Functions.Count} functions, {s_reachable.Value.Instructions} instructions reachable from the interrupt entries; {bad.Count} touch MXCSR, x87 or MMX");
        Assert.True(bad.Count == 0, "instructions reachable from an interrupt entry that the entry does not save for:\n" + string.Join("\n", bad.Take(20)));
    }

    // The analysis finds what it must: the interrupt path's own functions, and
    // through the handler tables' indirect calls the handlers themselves.
    [Theory]
    [InlineData("synic_interrupt")]
    [InlineData("interrupt_dispatch")]
    [InlineData("kernel_Kernel_Hv_Synic__TakeMessage")]
    [InlineData("kernel_Kernel_Arch_Smp__OnWake")]
    [InlineData("kernel_Kernel_TestMode_CountMode__OnFlag")]
    public void AnalysisReaches(string function)
    {
        Assert.Contains(s_elf.Value.Address(function), s_reachable.Value.Functions);
    }

    // Data movement and logic: SDM Vol 2, "SIMD Floating-Point Exceptions: None".
    private static readonly HashSet<Mnemonic> s_mxcsrNeutral = new()
    {
        Mnemonic.Movaps, Mnemonic.Movups, Mnemonic.Movapd, Mnemonic.Movupd, Mnemonic.Movdqa, Mnemonic.Movdqu,
        Mnemonic.Movq, Mnemonic.Movd, Mnemonic.Movss, Mnemonic.Movsd, Mnemonic.Movlps, Mnemonic.Movhps,
        Mnemonic.Movlpd, Mnemonic.Movhpd, Mnemonic.Xorps, Mnemonic.Xorpd, Mnemonic.Pxor, Mnemonic.Por, Mnemonic.Pand,
        Mnemonic.Punpcklqdq, Mnemonic.Punpckldq, Mnemonic.Pshufd, Mnemonic.Pinsrq, Mnemonic.Pextrq,
    };

    private sealed class Reachable
    {
        public readonly HashSet<ulong> Functions = new();
        public readonly SortedSet<int> Xmm = new();
        public readonly List<string> Violations = new();
        public int Instructions;

        private readonly ELF<ulong> _elf;
        private readonly ulong[] _starts;
        private readonly Dictionary<ulong, ulong> _ends = new();
        private readonly Dictionary<ulong, string> _names = new();
        private readonly (ulong From, ulong To) _excluded;

        public Reachable(ELF<ulong> elf)
        {
            _elf = elf;
            _excluded = (elf.Address("pvh_entry"), elf.Address("long_mode_entry"));
            // Functions: named code symbols, nasm's local labels (name.label) aside.
            var symbols = elf.CodeSymbols().Where(s => !s.Name.Contains('.') && elf.IsCode(s.Value)).ToList();
            _starts = symbols.Select(s => s.Value).Distinct().OrderBy(a => a).ToArray();
            for (int i = 0; i < _starts.Length; i++)
            {
                ulong start = _starts[i], size = symbols.Where(s => s.Value == start).Max(s => s.Size);
                ulong next = i + 1 < _starts.Length ? _starts[i + 1] : start + size;
                _ends[start] = size > 0 ? start + size : next;
                _names[start] = symbols.First(s => s.Value == start).Name;
            }
            var addressTaken = AddressTaken();
            var roots = Enumerable.Range(32, 224).Select(v => elf.Address("isr_stub_" + v)).Append(elf.Address("bench_sint_bare"));
            var work = new Queue<ulong>();
            void Reach(ulong address)
            {
                ulong? f = Containing(address);
                if (f is ulong start && Functions.Add(start)) work.Enqueue(start);
            }
            foreach (var root in roots) Reach(root);
            bool indirect = false;
            while (work.Count > 0)
            {
                ulong start = work.Dequeue();
                foreach (var instr in Decode(start))
                {
                    Instructions++;
                    Inspect(start, instr);
                    if (instr.FlowControl is FlowControl.Call or FlowControl.UnconditionalBranch or FlowControl.ConditionalBranch
                        && instr.Op0Kind == OpKind.NearBranch64)
                        Reach(instr.NearBranchTarget);
                    if (!indirect && instr.FlowControl is FlowControl.IndirectCall or FlowControl.IndirectBranch)
                    {
                        indirect = true;        // from here on, whatever a pointer may reach
                        foreach (var f in addressTaken) Reach(f);
                    }
                }
            }
        }

        private ulong? Containing(ulong address)
        {
            if (address >= _excluded.From && address < _excluded.To) return null;
            int i = Array.BinarySearch(_starts, address);
            if (i < 0) i = ~i - 1;
            return i >= 0 && address < _ends[_starts[i]] ? _starts[i] : null;
        }

        private IEnumerable<Instruction> Decode(ulong start)
        {
            ulong end = _ends[start];
            var decoder = Decoder.Create(64, new ByteArrayCodeReader(_elf.BytesAt(start, (int)(end - start))), start);
            while (decoder.IP < end)
            {
                var instr = decoder.Decode();
                if (instr.IsInvalid) throw new InvalidDataException($"{_names[start]}: cannot decode at 0x{instr.IP:x}");
                yield return instr;
            }
        }

        // Every function whose address appears in the image: as a RIP-relative
        // operand or an immediate in code, or as a pointer in a data section
        // (BootSymbols.InterruptEntries, the IDT's entries, aside).
        private HashSet<ulong> AddressTaken()
        {
            var taken = new HashSet<ulong>();
            void Note(ulong address) { if (Containing(address) is ulong f) taken.Add(f); }
            foreach (ulong start in _starts)
            {
                if (Containing(start) is null) continue;
                foreach (var instr in Decode(start))
                {
                    if (instr.IsIPRelativeMemoryOperand) Note(instr.IPRelativeMemoryAddress);
                    for (int op = 0; op < instr.OpCount; op++)
                        if (instr.GetOpKind(op) is OpKind.Immediate32 or OpKind.Immediate64 or OpKind.Immediate32to64)
                            Note(instr.GetImmediate(op));
                }
            }
            ulong entries = _elf.Address("interrupt_entries");
            foreach (var (address, bytes) in _elf.LoadedData())
                for (int off = (int)((8 - address % 8) % 8); off + 8 <= bytes.Length; off += 8)
                {
                    ulong pointer = BitConverter.ToUInt64(bytes, off);
                    if (pointer != entries) Note(pointer);
                }
            return taken;
        }

        private void Inspect(ulong function, Instruction instr)
        {
            bool xmm = false;
            foreach (var used in new InstructionInfoFactory().GetInfo(instr).GetUsedRegisters())
            {
                var reg = used.Register;
                if (reg.IsXMM()) { Xmm.Add(reg - Register.XMM0); xmm = true; }
                else if (reg.IsYMM() || reg.IsZMM()) { Violations.Add(Describe(function, instr, "a YMM/ZMM register")); xmm = true; }
                else if (reg is >= Register.ST0 and <= Register.ST7 || reg is >= Register.MM0 and <= Register.MM7)
                    Violations.Add(Describe(function, instr, "an x87 or MMX register"));
            }
            if (xmm && !s_mxcsrNeutral.Contains(instr.Mnemonic)) Violations.Add(Describe(function, instr, "an SSE instruction that may set MXCSR flags"));
            if (instr.Mnemonic is Mnemonic.Ldmxcsr or Mnemonic.Vldmxcsr or Mnemonic.Fxrstor or Mnemonic.Fxrstor64
                or Mnemonic.Xrstor or Mnemonic.Xrstor64 or Mnemonic.Xrstors or Mnemonic.Xrstors64 or Mnemonic.Emms or Mnemonic.Fninit)
                Violations.Add(Describe(function, instr, "it loads MXCSR or the x87 state"));
        }

        private string Describe(ulong function, Instruction instr, string why)
            => $"  {_names[function]}+0x{instr.IP - function:x}: {instr} ({why})";
    }
}
