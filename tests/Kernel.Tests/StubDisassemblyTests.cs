using ELFSharp.ELF;
using Iced.Intel;
using Xunit;

namespace Kernel.Tests;

// Every intrinsic stub in boot/ is exactly the instruction sequence intended:
// decoded from the linked kernel-test.elf with Iced, up to and including its first
// ret (or the tail jump of a trampoline).
public class StubDisassemblyTests
{
    private static readonly Lazy<ELF<ulong>> s_elf = new(() => { Repo.EnsureKernelBuilt(); return ElfSymbols.Load(Repo.KernelElf); });

    // Each stub as Iced prints it (Intel syntax, hex as 20h), "symbol: instruction; ...".
    // hv_*_on_this_vp are the typed hypercalls' trampolines (boot/hypercall.asm
    // ON_THIS_VP): the running VP's record into the body's last register
    // argument, then the jump to the body.
    private const string Listing = """
        cpu_cpuid:                   mov r8,rdx; push rbx; mov eax,edi; mov ecx,esi; cpuid; mov [r8],eax; mov [r8+4],ebx; mov [r8+8],ecx; mov [r8+0Ch],edx; pop rbx; ret
        cpu_rdmsr:                   mov ecx,edi; rdmsr; shl rdx,20h; or rax,rdx; ret
        cpu_wrmsr:                   mov rax,rsi; mov ecx,edi; mov rdx,rax; shr rdx,20h; wrmsr; ret
        cpu_rdmsr_safe:              mov r8,rsi; mov ecx,edi; rdmsr; shl rdx,20h; or rax,rdx; mov [r8],rax; xor eax,eax; ret
        cpu_wrmsr_safe:              mov rax,rsi; mov ecx,edi; mov rdx,rax; shr rdx,20h; wrmsr; xor eax,eax; ret
        cpu_read_u64_safe:           mov rax,[rdi]; mov [rsi],rax; xor eax,eax; ret
        cpu_write_u8_safe:           mov [rdi],sil; xor eax,eax; ret
        cpu_ud2_safe:                ud2
        cpu_divide_safe:             mov r8,rdx; mov rax,rdi; mov rcx,rsi; xor edx,edx; div rcx; mov [r8],rax; xor eax,eax; ret
        cpu_inb:                     mov edx,edi; xor eax,eax; in al,dx; ret
        cpu_outb:                    mov eax,esi; mov edx,edi; out dx,al; ret
        cpu_ind:                     mov edx,edi; in eax,dx; ret
        cpu_outd:                    mov eax,esi; mov edx,edi; out dx,eax; ret
        cpu_rdtsc:                   rdtsc; shl rdx,20h; or rax,rdx; ret
        cpu_rdtsc_ordered:           lfence; rdtsc; shl rdx,20h; or rax,rdx; ret
        cpu_cli:                     cli; ret
        cpu_sti:                     sti; ret
        cpu_hlt:                     hlt; ret
        cpu_sti_hlt:                 sti; hlt; ret
        cpu_pause:                   pause; ret
        cpu_int_with_interrupts_off: pushfq; cli; int 0F0h; popfq; ret
        cpu_lidt:                    lidt [rdi]; ret
        cpu_sgdt:                    sgdt [rdi]; ret
        cpu_ltr:                     ltr di; ret
        cpu_str:                     xor eax,eax; str ax; ret
        cpu_invlpg:                  invlpg [rdi]; ret
        cpu_read_cr0:                mov rax,cr0; ret
        cpu_write_cr0:               mov cr0,rdi; ret
        cpu_read_cr2:                mov rax,cr2; ret
        cpu_read_cr3:                mov rax,cr3; ret
        cpu_write_cr3:               mov cr3,rdi; ret
        cpu_read_cr4:                mov rax,cr4; ret
        cpu_atomic_swap64:           mov rax,rsi; xchg [rdi],rax; ret
        cpu_this_cpu:                mov rax,gs:[0]; ret
        hv_signal_event_direct_on_this_vp: mov r9,gs:[0]; jmp hv_issue_signal_event_direct
        hv_post_message_direct_on_this_vp: mov r9,gs:[0]; jmp hv_issue_post_message_direct
        hv_post_message_on_this_vp:  mov r8,gs:[0]; jmp hv_issue_post_message
        cpu_copy_forward:            mov rcx,rdx; rep movsb [rdi],[rsi]; ret
        """;

    public static IEnumerable<object[]> Stubs() =>
        Listing.Split('\n').Select(line => line.Split(':', 2)).Select(p => new object[] { p[0], p[1].Trim() });

    [Theory]
    [MemberData(nameof(Stubs))]
    public void StubIsExactlyTheIntendedSequence(string symbol, string expected)
    {
        Assert.Equal(expected, string.Join("; ", Disassemble(symbol)));
    }

    // Decodes from the symbol until the first ret, jmp or ud2 (a stub's end).
    public static List<string> Disassemble(string symbol)
    {
        var elf = s_elf.Value;
        var (address, bytes) = elf.BytesFrom(symbol);
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(bytes), address);
        var formatter = new IntelFormatter(new FormatterOptions { HexSuffix = "h", HexPrefix = "", UppercaseHex = true });
        var resolver = new SymbolNames(elf);
        var output = new StringOutput();
        var list = new List<string>();
        while (decoder.IP < address + (ulong)bytes.Length)
        {
            var instr = decoder.Decode();
            if (instr.IsInvalid) throw new InvalidDataException($"{symbol}: invalid instruction at 0x{instr.IP:x}");
            var text = FormatWithSymbols(formatter, instr, output, resolver);
            list.Add(text);
            if (instr.FlowControl is FlowControl.Return or FlowControl.UnconditionalBranch || instr.Mnemonic == Mnemonic.Ud2) break;
        }
        return list;
    }

    private static string FormatWithSymbols(Formatter formatter, Instruction instr, StringOutput output, SymbolNames names)
    {
        if (instr.FlowControl == FlowControl.UnconditionalBranch && instr.Op0Kind == OpKind.NearBranch64 && names.TryName(instr.NearBranchTarget, out var name))
            return "jmp " + name;
        formatter.Format(instr, output);
        return output.ToStringAndReset();
    }

    private sealed class SymbolNames(ELF<ulong> elf)
    {
        public bool TryName(ulong address, out string name)
        {
            // A [RuntimeExport] C# method has two names, ilc's and the exported one
            // that assembly jumps to: the latter.
            string? found = elf.CodeSymbols().Where(s => s.Value == address).Select(s => s.Name)
                .OrderBy(n => n.StartsWith("kernel_", StringComparison.Ordinal)).FirstOrDefault();
            name = found ?? "";
            return found != null;
        }
    }

    // boot/interrupts.asm: vector v enters at interrupt_entries + EntryStride * v,
    // the address kernel/arch/Interrupts.cs gives its gate: the stride is read from
    // that file, so the check below holds the assembly to the kernel's constant.
    // Each entry pushes its vector as an imm8 (sign-extended: 0x80-0xFF arrive as
    // negative qwords, whose low byte InterruptFrame.Vector reads), jumps to its
    // common path, and is int3 up to the stride.
    private static readonly int EntryStride = KernelEntryStride();

    private static int KernelEntryStride()
    {
        var m = System.Text.RegularExpressions.Regex.Match(
            File.ReadAllText(Path.Combine(Repo.Root, "kernel", "arch", "Interrupts.cs")), @"\bconst int EntryStride = (\d+);");
        Assert.True(m.Success, "kernel/arch/Interrupts.cs declares no `const int EntryStride = N;`");
        return int.Parse(m.Groups[1].Value);
    }
    private static readonly int[] s_errorCodeVectors = [8, 10, 11, 12, 13, 14, 17, 21, 29, 30];     // SDM Vol 3A Table 7-1; AMD APM Vol 2 8.2

    private static string CommonPath(int vector) => vector switch
    {
        < 32 when s_errorCodeVectors.Contains(vector) => "exception_common",
        < 32 => "exception_no_error_code",
        >= 0x50 and < 0x60 => "sint_common",
        _ => "interrupt_common",
    };

    [Fact]
    public void EveryVectorEntersAtItsStrideWithItsVector()
    {
        var elf = s_elf.Value;
        ulong entries = elf.Address("interrupt_entries");
        var (_, bytes) = elf.BytesFrom("interrupt_entries", 256 * EntryStride);
        Assert.Equal(256 * EntryStride, bytes.Length);
        var wrong = new List<string>();
        for (int vector = 0; vector < 256; vector++)
        {
            ulong at = entries + (ulong)(vector * EntryStride);
            var entry = bytes.AsSpan(vector * EntryStride, EntryStride).ToArray();
            var decoder = Decoder.Create(64, new ByteArrayCodeReader(entry), at);
            var push = decoder.Decode();
            var jmp = decoder.Decode();
            bool pushesVector = push.Code == Code.Pushq_imm8 && push.Immediate8to64 == (sbyte)vector;
            bool jumps = jmp.Mnemonic == Mnemonic.Jmp && jmp.Op0Kind == OpKind.NearBranch64 && jmp.NearBranchTarget == elf.Address(CommonPath(vector));
            bool padded = entry.Skip(push.Length + jmp.Length).All(b => b == 0xCC);
            if (!pushesVector || !jumps || !padded || elf.Address("isr_stub_" + vector) != at)
                wrong.Add($"vector {vector} at 0x{at:x}: {push}; {jmp} (want push {(sbyte)vector}, jmp {CommonPath(vector)}, int3 to {EntryStride} bytes, isr_stub_{vector} here)");
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public void EveryFaultProbeHasAFixupEntry()
    {
        // The probe stubs' faulting instructions must be listed in .ex_table, or a
        // caught fault would become a fatal one.
        var elf = s_elf.Value;
        var (start, table) = elf.BytesFrom("__ex_table_start", 4096);
        ulong end = elf.Address("__ex_table_end");
        var faultRips = new HashSet<ulong>();
        for (int i = 0; i + 16 <= (int)(end - start); i += 16) faultRips.Add(BitConverter.ToUInt64(table, i));
        foreach (var probe in new[] { "cpu_ud2_safe.at", "cpu_divide_safe.at", "cpu_read_u64_safe.at", "cpu_write_u8_safe.at", "cpu_rdmsr_safe.at", "cpu_wrmsr_safe.at" })
            Assert.Contains(elf.Address(probe), faultRips);
    }
}
