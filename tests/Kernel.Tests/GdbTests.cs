using System.Reflection.PortableExecutable;
using System.Text.RegularExpressions;
using Iced.Intel;
using Xunit;

namespace Kernel.Tests;

// qemu-run.sh --gdb, driven by Debian's gdb in batch mode through the very
// command line qemu-run.sh printed, so that the line is proven to attach and to
// bring the kernel's symbols: the ELF's on the direct boot, BOOTX64.EFI's COFF
// symbols moved to where OVMF loaded it under --uefi.
//
// Under TCG there is no Hyper-V: the guest test hv.absent_is_reported_cleanly
// calls Hypercall.SignalEventDirect(HV_PARTITION_ID_SELF, vp 0, vtl 0, sint 1,
// flag 1), which refuses it before the input page is written, because
// HyperV.HypercallPageEnabled is false. So gdb does what a human would to follow
// a path this machine cannot reach: it breaks on SignalEventDirect and checks the
// caller's arguments, checks that the flag is clear and sets it, and breaks at the
// hypercall page, hv_hypercall_page, before its first instruction (under TCG
// still int3). There the C# code has built the input and loaded the registers of
// TLFS 3.7: gdb reads the control, input and output in RCX, RDX and R8, and the
// running VP's input page through IA32_GS_BASE (the Vp record), where it finds
// HvSignalEventDirectInput as the TLFS lays it out; then it kills QEMU.
public partial class GdbTests
{
    private const string GuestTest = "hv.absent_is_reported_cleanly";

    [GeneratedRegex(@"^    (gdb .+)$", RegexOptions.Multiline)]
    private static partial Regex GdbLine();

    [GeneratedRegex(@"'break (\S+)'")]
    private static partial Regex BreakHint();

    [GeneratedRegex(@"qemu-run.sh: gdb: the kernel waits, loaded at (0x[0-9a-f]+)")]
    private static partial Regex UefiLoadedAt();

    // Where each build passes the arguments. System V (the ELF): SignalEventDirect's
    // (partition, vp, vtl, sint, flag) in rdi, esi, dl, cl, r8w. Microsoft x64 (the
    // PE): the 8-byte HvCallResult comes back in rax, so partition, vp, vtl, sint are
    // in rcx, edx, r8l, r9l and flag on the stack past the return address and the
    // 32-byte home area. At the hypercall page both have the TLFS's control, input
    // and output in rcx, rdx, r8.
    private const string SystemVEntry = "$rdi, $esi, $dl, $cl, $r8w";
    private const string MicrosoftEntry = "$rcx, $edx, $r8l, $r9l, *(unsigned short *)($rsp + 40)";
    private const string PageRegisters = "$rcx, $rdx, $r8";

    // HyperV.HypercallPageEnabled where SignalEventDirect reads it: the byte its
    // first RIP-relative byte compare names (decoded with Iced), as an address in
    // the ELF, or as an offset in BOOTX64.EFI (from the image's own bytes).
    private static ulong HypercallPageEnabled(bool uefi, string symbol)
    {
        ulong ip;
        byte[] code;
        if (uefi)
        {
            ip = UefiImage.MapRva(symbol);
            using var pe = new PEReader(File.OpenRead(UefiImage.Efi));
            code = pe.GetSectionData((int)ip).GetContent(0, 128).ToArray();
        }
        else (ip, code) = ElfSymbols.Load(Repo.KernelElf).BytesFrom(symbol, 128);
        var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(code));
        decoder.IP = ip;
        while (decoder.IP < ip + (ulong)code.Length)
        {
            var instruction = decoder.Decode();
            if (instruction.Mnemonic == Mnemonic.Cmp && instruction.IsIPRelativeMemoryOperand && instruction.MemorySize == MemorySize.UInt8)
                return instruction.IPRelativeMemoryAddress;
        }
        throw new InvalidDataException($"{symbol}: no RIP-relative byte compare (HyperV.HypercallPageEnabled) in its first {code.Length} bytes");
    }

    [Theory]
    [InlineData("direct")]      // PVH, build/kernel-test.elf
    [InlineData("uefi")]        // OVMF, build/BOOTX64.EFI in build/gen2.img
    public void PrintedLineAttachesBreaksInSignalEventDirectAndReadsTheInputPage(string boot)
    {
        bool uefi = boot == "uefi";
        if (uefi) UefiImage.EnsureBuilt(); else Repo.EnsureKernelBuilt();
        string entryArguments = uefi ? MicrosoftEntry : SystemVEntry;
        // Only what tools/deps.sh declares for a TCG run and for the tests (gdb is in
        // its test group), as on a fresh machine (FreshMachineTests.cs).
        var groups = uefi ? new[] { "build", "run", "qemu", "image", "test" } : new[] { "build", "run", "qemu", "test" };
        using var path = RestrictedPath.For(groups);
        var env = new Dictionary<string, string> { ["PATH"] = path.Value };
        // --timeout only as a net: should this test's process die, QEMU does not stay behind.
        // qemu-run.sh prints the gdb line before QEMU runs: its stderr is read as it comes.
        using var run = new RunningProcess(Path.Combine(Repo.Root, "qemu-run.sh"), $"{(uefi ? "--uefi " : "")}--mode tcg --gdb --test={GuestTest} --timeout 300", env);
        run.WaitUntil(() => GdbLine().IsMatch(run.Stderr) && BreakHint().IsMatch(run.Stderr), TimeSpan.FromSeconds(90), "no gdb line on stderr");
        string stderr = run.Stderr;
        string gdbLine = GdbLine().Match(stderr).Groups[1].Value;
        string symbol = BreakHint().Match(stderr).Groups[1].Value;
        Assert.Equal("kernel_Kernel_Hv_Hypercall__SignalEventDirect", symbol);

        // The VP record (kernel/hv/Vp.cs) at IA32_GS_BASE: its PerCpu
        // (kernel/arch/PerCpu.cs: 112 bytes), Index, then HypercallInput at offset 120. The input page fields are
        // HvSignalEventDirectInput's (kernel/hv/HvDef.cs; TLFS): TargetPartition @0,
        // TargetVp @8, TargetVtl @12, TargetSint @13, FlagNumber @14.
        const string inputPage = "(*(unsigned char **)($gs_base + 120))";
        string fields(string page) =>
            $"*(unsigned long *){page}, *(unsigned int *)({page} + 8), *(unsigned char *)({page} + 12), *(unsigned char *)({page} + 13), *(unsigned short *)({page} + 14)";
        ulong enabled = HypercallPageEnabled(uefi, symbol);
        if (uefi) enabled += Convert.ToUInt64(UefiLoadedAt().Match(stderr).Groups[1].Value, 16);
        string enabledByte = $"*(unsigned char *)0x{enabled:x}";
        var script = string.Join("\n",
            // `*`: at the symbol itself; gdb would put `break SYMBOL` after a
            // push rbp; mov rbp, rsp it recognises, which moves nothing the test reads.
            $"break *{symbol}",
            "continue",
            $"printf \"entry: partition=%#lx vp=%u vtl=%u sint=%u flag=%u\\n\", {entryArguments}",
            $"printf \"entry input page: %#lx partition=%#lx vp=%u vtl=%u sint=%u flag=%u\\n\", {inputPage}, {fields(inputPage)}",
            $"printf \"hypercall page enabled: %u\\n\", {enabledByte}",
            $"set var {enabledByte} = 1",
            "break hv_hypercall_page",
            "continue",
            $"printf \"page: control=%#lx input=%#lx output=%#lx\\n\", {PageRegisters}",
            $"printf \"page input page: %#lx partition=%#lx vp=%u vtl=%u sint=%u flag=%u\\n\", {inputPage}, {fields(inputPage)}",
            "x/2gx $rdx",
            "kill",
            "");
        var dir = Directory.CreateTempSubdirectory("gdb-test");
        try
        {
            string steps = Path.Combine(dir.FullName, "steps.gdb"), shell = Path.Combine(dir.FullName, "attach.sh");
            File.WriteAllText(steps, script);
            // The printed line as a shell runs it when pasted, plus batch mode: no .gdbinit, the steps, then exit.
            File.WriteAllText(shell, $"{gdbLine} -nx -batch -x {steps}\n");
            var gdb = Repo.Run("/bin/bash", shell, TimeSpan.FromSeconds(60), env);
            string output = gdb.Output;
            // Batch mode ends with the status of its last command, and stops at the first that fails.
            Assert.True(gdb.ExitCode == 0, $"gdb exit {gdb.ExitCode}:\n{output}");

            // gdb put the symbol where the image has it (the ELF symbol table; the PE's
            // link map moved by where OVMF loaded it), and the guest hit it there.
            ulong Where(string name) => uefi
                ? Convert.ToUInt64(UefiLoadedAt().Match(stderr).Groups[1].Value, 16) + UefiImage.MapRva(name)
                : ElfSymbols.Load(Repo.KernelElf).Address(name);
            ulong address = Where(symbol);
            Assert.Contains($"Breakpoint 1 at 0x{address:x}", output);
            Assert.Matches($@"Breakpoint 1, 0x0*{address:x} in {symbol} \(\)", output);
            Assert.Contains("entry: partition=0xffffffffffffffff vp=0 vtl=0 sint=1 flag=1", output);
            // Nothing has written the input page yet (so what is read at the page is this call's).
            Assert.Matches(@"entry input page: 0x[0-9a-f]+ partition=0 vp=0 vtl=0 sint=0 flag=0", output);
            // Without Hyper-V there is no hypercall page: the C# code alone would never have reached it.
            Assert.Contains("hypercall page enabled: 0", output);
            // At the page, by its address: in BOOTX64.EFI the page is the uninitialised
            // tail of .text, where gdb sets a break by the symbol but names the stop `??`.
            Assert.Matches($@"Breakpoint 2, 0x0*{Where("hv_hypercall_page"):x} in ", output);
            var registers = Regex.Match(output, @"page: control=(0x[0-9a-f]+) input=(0x[0-9a-f]+) output=(0x[0-9a-f]+)");
            Assert.True(registers.Success, output);
            Assert.Equal("0xc0", registers.Groups[1].Value);                         // HvCallSignalEventDirect, memory form, no reps
            var page = Regex.Match(output, @"page input page: (0x[0-9a-f]+) partition=(\S+) vp=(\d+) vtl=(\d+) sint=(\d+) flag=(\d+)");
            Assert.True(page.Success, output);
            Assert.Equal(page.Groups[1].Value, registers.Groups[2].Value);           // the input GPA = this VP's input page
            Assert.NotEqual(registers.Groups[2].Value, registers.Groups[3].Value);
            Assert.Equal("0xffffffffffffffff", page.Groups[2].Value);           // HV_PARTITION_ID_SELF
            Assert.Equal(new[] { "0", "0", "1", "1" }, new[] { page.Groups[3].Value, page.Groups[4].Value, page.Groups[5].Value, page.Groups[6].Value });
            // The same bytes as a human would dump them: TargetPartition, then vp 0, vtl 0, sint 1, flag 1 in the next quadword.
            Assert.Matches($@"{registers.Groups[2].Value}:\s+0xffffffffffffffff\s+0x0001010000000000", output);
            Assert.Contains("[Inferior 1 (process 1) killed]", output);

            // gdb's kill ended QEMU, and qemu-run.sh says so with its own status.
            var ended = run.WaitForExit(TimeSpan.FromSeconds(30));
            Assert.True(ended.ExitCode == 5, $"qemu-run.sh exit {ended.ExitCode}:\n{ended.Output}\n\ngdb:\n{output}");
            Assert.Contains("gdb killed QEMU before the guest reported a result", ended.Stderr);
            if (uefi) Assert.Contains("efi: gdb-wait: released", ended.Stdout);     // the printed line's last -ex freed the kernel
        }
        finally { dir.Delete(recursive: true); }
    }
}
