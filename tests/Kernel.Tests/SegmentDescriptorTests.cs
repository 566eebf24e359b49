using ELFSharp.ELF;
using Kernel.Arch;
using Xunit;

namespace Kernel.Tests;

// kernel/arch/SegmentDescriptor.cs (the same file the kernel compiles) builds
// the per-CPU GDT's descriptors from the SDM's named fields; boot/x86.inc
// builds the boot GDT's from its own bit constants. These check the two against
// each other in the built image, and both against the SDM's layout.
public class SegmentDescriptorTests
{
    private static readonly Lazy<ELF<ulong>> s_elf = new(() => { Repo.EnsureKernelBuilt(); return ElfSymbols.Load(Repo.MinimalKernelElf); });

    // BOOT_GDT as assembled into the PVH entry and the AP trampoline (the UEFI
    // entry assembles the same macro): null, 64-bit code, data, 32-bit code.
    [Theory]
    [InlineData("boot_gdt")]
    [InlineData("tramp_gdt")]
    public void BootGdtHoldsTheKernelsDescriptors(string table)
    {
        var elf = s_elf.Value;
        byte[] gdt = elf.BytesAt(elf.Address(table), 4 * 8);
        ulong Entry(int index) => BitConverter.ToUInt64(gdt, index * 8);
        Assert.Equal(0ul, Entry(0));
        Assert.Equal(SegmentDescriptor.KernelCode64.Value, Entry(1));   // Gdt.KernelCode, 0x08
        Assert.Equal(SegmentDescriptor.KernelData.Value, Entry(2));     // Gdt.KernelData, 0x10
        Assert.Equal(SegmentDescriptor.Code32.Value, Entry(3));         // the trampoline's 32-bit code, 0x18
    }

    // The flat descriptors every x86-64 kernel writes (SDM Vol 3A 3.4.5: limit
    // 0xFFFFF with G, present, DPL 0, code execute/read or data read/write; L for
    // 64-bit code, D/B for 32-bit code and data).
    [Fact]
    public void FlatDescriptorsHaveTheSdmLayout()
    {
        Assert.Equal(0x00AF9A000000FFFFul, SegmentDescriptor.KernelCode64.Value);
        Assert.Equal(0x00CF92000000FFFFul, SegmentDescriptor.KernelData.Value);
        Assert.Equal(0x00CF9A000000FFFFul, SegmentDescriptor.Code32.Value);
        var code = SegmentDescriptor.KernelCode64;
        Assert.Equal((0u, 0xFFFFFu), (code.Base, code.Limit));
        Assert.True(code.Long && !code.DefaultBig && code.Granularity && code.Present && code.CodeOrData);
        Assert.Equal(0, code.Dpl);
    }

    // SDM Vol 3A "TSS Descriptor in 64-bit mode" (Figure 8-4): limit 15:0, base
    // 23:0, type 9 with P (0x89), limit 19:16, base 31:24; base 63:32 in the
    // second qword.
    [Fact]
    public void TssDescriptorSplitsBaseAndLimit()
    {
        ulong tssBase = 0xFFFF_8123_4567_89ABul;
        uint limit = 0xA_BCDE;
        var tss = TssDescriptor.Available(tssBase, limit);
        ulong expected = (limit & 0xFFFFul) | ((tssBase & 0xFFFFFF) << 16) | (0x89ul << 40)
                         | (((ulong)limit >> 16 & 0xF) << 48) | ((tssBase >> 24 & 0xFF) << 56);
        Assert.Equal(expected, tss.Low.Value);
        Assert.Equal(tssBase >> 32, tss.High);
        Assert.Equal((uint)tssBase, tss.Low.Base);
        Assert.Equal(limit, tss.Low.Limit);
        Assert.Equal(SegmentDescriptor.TypeTssAvailable, tss.Low.Type);
        Assert.False(tss.Low.CodeOrData);
    }
}
