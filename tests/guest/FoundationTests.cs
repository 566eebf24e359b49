using System;
using System.Runtime.CompilerServices;
using Internal.Runtime.CompilerHelpers;
using Kernel.Arch;
using Kernel.Runtime;

namespace Kernel.TestMode
{
    // Tests of the foundation: boot, CPU, exceptions, memory, runtime.
    public static unsafe class FoundationTests
    {
        public static void Register()
        {
            TestRunner.Add("boot.long_mode_active"u8, &LongModeActive);
            TestRunner.Add("boot.sse_enabled"u8, &SseEnabled);
            TestRunner.Add("boot.command_line"u8, &CommandLineReached);
            TestRunner.Add("boot.memory_map"u8, &MemoryMapHasRam);
            TestRunner.Add("cpu.vendor"u8, &CpuVendor);
            TestRunner.Add("cpu.tsc_advances"u8, &TscAdvances);
            TestRunner.Add("gdt.tss_loaded"u8, &TssLoaded);
            TestRunner.Add("idt.double_fault_uses_ist"u8, &DoubleFaultUsesIst);
            TestRunner.Add("exceptions.ud"u8, &InvalidOpcodeArrives);
            TestRunner.Add("exceptions.gp"u8, &GeneralProtectionArrives);
            TestRunner.Add("exceptions.pf"u8, &PageFaultArrives);
            TestRunner.Add("exceptions.de"u8, &DivideErrorArrives);
            TestRunner.Add("paging.null_page_unmapped"u8, &NullPageUnmapped);
            TestRunner.Add("paging.text_read_only_executable"u8, &TextIsReadOnlyExecutable);
            TestRunner.Add("paging.rodata_read_only_no_execute"u8, &RodataIsReadOnlyNoExecute);
            TestRunner.Add("paging.data_writable_no_execute"u8, &DataIsWritableNoExecute);
            TestRunner.Add("paging.text_write_faults"u8, &WritingTextFaults);
            TestRunner.Add("pages.allocations_distinct_aligned"u8, &AllocationsDistinctAndAligned);
            TestRunner.Add("pages.zeroed_on_request"u8, &ZeroedOnRequest);
            TestRunner.Add("pages.free_then_reuse"u8, &FreeThenReuse);
            TestRunner.Add("pages.double_free_refused"u8, &DoubleFreeRefused);
            TestRunner.Add("pages.kernel_image_not_free"u8, &KernelImageNeverHandedOut);
            TestRunner.Add("pages.highest_run_comes_from_the_top"u8, &HighestRunComesFromTheTop);
            TestRunner.Add("format.decimal"u8, &FormatDecimal);
            TestRunner.Add("format.negative"u8, &FormatNegative);
            TestRunner.Add("format.hex"u8, &FormatHex);
            TestRunner.Add("statics.eager_constructor_ran"u8, &EagerConstructorRan);
            TestRunner.Add("statics.object_reference_static"u8, &ObjectReferenceStatic);
        }

        // ---- boot -------------------------------------------------------------

        private static void LongModeActive()
        {
            ulong efer = Cpu.ReadMsr(Efer.Msr);
            Expect.Equal(Efer.LMA, efer & Efer.LMA);    // EFER.LMA (long mode active)
            Expect.Equal(Efer.NXE, efer & Efer.NXE);    // EFER.NXE (no-execute enabled)
            Expect.Equal(Cr0.PG, Cpu.ReadCr0() & Cr0.PG);    // CR0.PG
        }

        private static void SseEnabled()
        {
            ulong cr0 = Cpu.ReadCr0(), cr4 = Cpu.ReadCr4();
            Expect.Equal(0ul, cr0 & Cr0.EM);    // CR0.EM clear
            Expect.Equal(Cr0.MP, cr0 & Cr0.MP);    // CR0.MP set
            Expect.Equal(Cr4.OSFXSR, cr4 & Cr4.OSFXSR);    // CR4.OSFXSR set
            Expect.Equal(Cr4.OSXMMEXCPT, cr4 & Cr4.OSXMMEXCPT);    // CR4.OSXMMEXCPT set
            double x = 1.5;
            Expect.Equal(3ul, (ulong)(x * 2));    // a double multiply
        }

        private static void CommandLineReached()
        {
            // We are in test mode, so the boot loader's command line reached C# with "test" on it.
            Expect.True(BootInfo.HasOption("test"u8));    // "test" on the command line
            Expect.False(BootInfo.HasOption("tes"u8));    // a prefix of an option is not the option
        }

        private static void MemoryMapHasRam()
        {
            ulong usable = 0;
            for (int i = 0; i < BootInfo.RegionCount; i++)
                if (BootInfo.Regions[i].Type == MemoryRegion.Usable) usable += BootInfo.Regions[i].Length;
            Expect.True(BootInfo.RegionCount >= 2);    // at least two memory map regions
            Expect.InRange(16ul << 20, 1ul << 40, usable);    // usable RAM in the memory map
        }

        // ---- CPU --------------------------------------------------------------

        private static void CpuVendor()
        {
            CpuidResult r = Cpu.Cpuid(0);
            ulong vendorTail = ((ulong)r.Ecx << 32) | r.Edx;     // "ineI"/"ntel" or "cAMD"/"enti"
            bool intel = r.Ebx == 0x756E6547 && vendorTail == 0x6C65746E_49656E69;   // "GenuineIntel"
            bool amd = r.Ebx == 0x68747541 && vendorTail == 0x444D4163_69746E65;     // "AuthenticAMD"
            Expect.True(intel || amd);    // CPUID 0 vendor is GenuineIntel or AuthenticAMD
            Expect.True(r.Eax >= 1);    // CPUID 0 max basic leaf >= 1
            // CPUID.1:EDX bit 25/26: SSE/SSE2, which the kernel's code requires.
            Expect.Equal(3ul << 25, Cpu.Cpuid(1).Edx & (3u << 25));    // CPUID.1:EDX SSE and SSE2
        }

        private static void TscAdvances()
        {
            ulong a = Cpu.ReadTsc();
            ulong b = Cpu.ReadTsc();
            Expect.True(b > a);    // a later RDTSC reads more
            BootSymbols* s = BootSymbols.Get();
            ulong entry = *(ulong*)s->TscAtEntry, longMode = *(ulong*)s->TscAtLongMode;
            Expect.True(entry != 0 && longMode >= entry && a > longMode);    // boot timeline: entry <= long mode < now
        }

        private static void TssLoaded()
        {
            Expect.Equal(Gdt.Tss, Cpu.StoreTaskRegister());    // TR selector
            DescriptorTablePointer gdt;
            Cpu.StoreGdt(&gdt);
            ulong descriptor = ((ulong*)gdt.Base)[Gdt.Tss / 8];
            Expect.Equal(0xBul, (descriptor >> 40) & 0xF);    // TSS descriptor type (busy 64-bit TSS)
        }

        private static void DoubleFaultUsesIst()
        {
            Expect.Equal((ulong)Gdt.DoubleFaultIst, (ulong)Interrupts.GateIst(8));    // IDT[8].IST
            Expect.Equal(0ul, (ulong)Interrupts.GateIst(14));    // IDT[14].IST
        }

        // ---- exceptions: each arrives at its vector with the faulting RIP, and we resume

        private static void ExpectFault(ulong vector, ulong rip, ulong faultsBefore)
        {
            Expect.Equal(faultsBefore + 1, Interrupts.LastFault.Count);    // faults caught
            Expect.Equal(vector, Interrupts.LastFault.Vector);    // vector
            Expect.Equal(rip, Interrupts.LastFault.Rip);    // RIP of the faulting instruction
        }

        private static void InvalidOpcodeArrives()
        {
            ulong before = Interrupts.LastFault.Count;
            Expect.True(Cpu.RaiseInvalidOpcode());    // ud2 resumed through its fix-up
            ExpectFault(6, BootSymbols.Get()->Ud2FaultRip, before);
        }

        private static void GeneralProtectionArrives()
        {
            ulong before = Interrupts.LastFault.Count;
            Expect.False(Cpu.TryRead(0x8000000000000000, out _));    // read of a non-canonical address
            ExpectFault(13, BootSymbols.Get()->ReadFaultRip, before);
            Expect.Equal(0ul, Interrupts.LastFault.ErrorCode);    // #GP error code
        }

        private static void PageFaultArrives()
        {
            ulong before = Interrupts.LastFault.Count;
            Expect.False(Cpu.TryRead(0x238, out _));    // read inside the null page
            ExpectFault(14, BootSymbols.Get()->ReadFaultRip, before);
            Expect.Equal(0x238ul, Interrupts.LastFault.Cr2);    // CR2
            Expect.Equal(0ul, Interrupts.LastFault.ErrorCode);    // #PF error code: not present, read, supervisor
        }

        private static void DivideErrorArrives()
        {
            ulong before = Interrupts.LastFault.Count;
            Expect.False(Cpu.TryDivide(7, 0, out _));    // divide by zero
            ExpectFault(0, BootSymbols.Get()->DivideFaultRip, before);
            Expect.True(Cpu.TryDivide(7, 2, out ulong q) && q == 3);    // 7 / 2 still divides after the fault
        }

        // ---- paging attributes of the kernel image ----------------------------

        private static void NullPageUnmapped() => Expect.Equal(0ul, Paging.Translate(0) & Paging.Present);    // page 0 present bit

        private static void TextIsReadOnlyExecutable()
        {
            ulong code = (ulong)(delegate*<void>)&TextIsReadOnlyExecutable;
            ulong pte = Paging.Translate(code);
            Expect.Equal(Paging.Present, pte & Paging.Present);    // present
            Expect.Equal(0ul, pte & Paging.Writable);    // writable bit of text
            Expect.Equal(0ul, pte & Paging.NoExecute);    // no-execute bit of text
            // hypercall page is read-only and executable
            Expect.Equal(0ul, Paging.Translate(BootSymbols.Get()->HypercallPage) & (Paging.Writable | Paging.NoExecute));
        }

        private static void RodataIsReadOnlyNoExecute()
        {
            ulong pte = Paging.Translate(BootSymbols.Get()->RodataStart);
            Expect.Equal(Paging.Present, pte & Paging.Present);    // present
            Expect.Equal(0ul, pte & Paging.Writable);    // writable bit of rodata
            Expect.Equal(Paging.NoExecute, pte & Paging.NoExecute);    // no-execute bit of rodata
        }

        private static ulong s_dataProbe = 42;

        private static void DataIsWritableNoExecute()
        {
            ulong address;
            fixed (ulong* p = &s_dataProbe) address = (ulong)p;
            ulong pte = Paging.Translate(address);
            Expect.Equal(Paging.Writable, pte & Paging.Writable);    // writable bit of data
            Expect.Equal(Paging.NoExecute, pte & Paging.NoExecute);    // no-execute bit of data
            ulong bss = Paging.Translate(BootSymbols.Get()->BssStart);
            Expect.Equal(Paging.Writable | Paging.NoExecute, bss & (Paging.Writable | Paging.NoExecute));    // bss is writable, no-execute
        }

        private static void WritingTextFaults()
        {
            ulong code = (ulong)(delegate*<void>)&WritingTextFaults;
            ulong before = Interrupts.LastFault.Count;
            Expect.False(Cpu.TryWrite(code, 0xCC));    // write into kernel text
            Expect.Equal(before + 1, Interrupts.LastFault.Count);    // faults caught
            Expect.Equal(14ul, Interrupts.LastFault.Vector);    // vector
            Expect.Equal(code, Interrupts.LastFault.Cr2);    // CR2
            Expect.Equal(3ul, Interrupts.LastFault.ErrorCode);    // #PF error code: present | write
        }

        // ---- physical page allocator ------------------------------------------

        private static void AllocationsDistinctAndAligned()
        {
            ulong free = PageAllocator.FreePages;
            ulong a = (ulong)PageAllocator.Allocate(), b = (ulong)PageAllocator.Allocate();
            Expect.True(a != b);    // two allocations differ
            Expect.Equal(0ul, (a | b) % PageAllocator.PageSize);    // page alignment
            Expect.Equal(free - 2, PageAllocator.FreePages);    // free count after two allocations
            Expect.True(PageAllocator.IsAllocated(a) && PageAllocator.IsAllocated(b));    // both marked allocated
            PageAllocator.Free((void*)a);
            PageAllocator.Free((void*)b);
            Expect.Equal(free, PageAllocator.FreePages);    // free count restored
        }

        private static void ZeroedOnRequest()
        {
            byte* page = (byte*)PageAllocator.Allocate();
            Memory.Fill(page, 0xA5, PageAllocator.PageSize);
            PageAllocator.Free(page);
            // Next-fit search: force the same page back by scanning until we get it.
            byte* again = null;
            for (int i = 0; i < 1 << 20 && again != page; i++)
            {
                byte* p = (byte*)PageAllocator.Allocate(zero: true);
                if (p != page) { PageAllocator.Free(p); continue; }
                again = p;
            }
            Expect.True(again == page);    // the dirtied page came back
            if (again == page)
            {
                Expect.True(Memory.IsZero(again, PageAllocator.PageSize));    // page zeroed on request
                PageAllocator.Free(again);
            }
        }

        private static void FreeThenReuse()
        {
            ulong free = PageAllocator.FreePages;
            ulong run = PageAllocator.AllocateContiguous(8);
            Expect.Equal(free - 8, PageAllocator.FreePages);    // free count after 8 contiguous pages
            for (ulong i = 0; i < 8; i++) Expect.True(PageAllocator.TryFree(run + i * PageAllocator.PageSize));    // free each page
            Expect.Equal(free, PageAllocator.FreePages);    // free count restored
        }

        private static void DoubleFreeRefused()
        {
            ulong page = (ulong)PageAllocator.Allocate();
            Expect.True(PageAllocator.TryFree(page));    // first free
            ulong free = PageAllocator.FreePages;
            Expect.False(PageAllocator.TryFree(page));    // second free of the same page
            Expect.Equal(free, PageAllocator.FreePages);    // free count unchanged by the refused free
            Expect.False(PageAllocator.TryFree(page + 8));    // free of an unaligned address
        }

        private static void KernelImageNeverHandedOut()
        {
            BootSymbols* s = BootSymbols.Get();
            Expect.True(PageAllocator.IsAllocated(s->TextStart));    // kernel text is not free
            Expect.True(PageAllocator.IsAllocated(s->BssEnd - 4096));    // kernel bss is not free
            Expect.False(PageAllocator.TryFree(s->TextStart));    // freeing kernel text is refused
        }

        // What the balloon takes (PageAllocator.TakeHighestRun): a run of free pages
        // from the top of memory, far from where the kernel allocates.
        private static void HighestRunComesFromTheTop()
        {
            ulong free = PageAllocator.FreePages;
            ulong low = (ulong)PageAllocator.Allocate();
            ulong first = PageAllocator.TakeHighestRun(8, out ulong count);
            Expect.Equal(8ul, count);    // pages in the run
            Expect.Equal(0ul, first % PageAllocator.PageSize);    // an address, page-aligned
            Expect.True(first > low);    // above what Allocate hands out
            ulong marked = 0;
            for (ulong i = 0; i < count; i++) if (PageAllocator.IsAllocated(first + i * PageAllocator.PageSize)) marked++;
            Expect.Equal(8ul, marked);    // every page of the run marked allocated
            Expect.Equal(free - 9, PageAllocator.FreePages);    // free count after the run and one page
            for (ulong i = 0; i < count; i++) PageAllocator.Free((void*)(first + i * PageAllocator.PageSize));
            PageAllocator.Free((void*)low);
            Expect.Equal(free, PageAllocator.FreePages);    // free count restored
        }

        // ---- number formatting ------------------------------------------------

        private static ReadOnlySpan<byte> Formatted(byte* buffer, int length) => new ReadOnlySpan<byte>(buffer, length);

        private static void FormatDecimal()
        {
            byte* b = stackalloc byte[Format.MaxDigits];
            Expect.Equal("0"u8, Formatted(b, Format.Decimal(0ul, b)));
            Expect.Equal("1234567890"u8, Formatted(b, Format.Decimal(1234567890ul, b)));
            Expect.Equal("18446744073709551615"u8, Formatted(b, Format.Decimal(ulong.MaxValue, b)));
        }

        private static void FormatNegative()
        {
            byte* b = stackalloc byte[Format.MaxDigits];
            Expect.Equal("-1"u8, Formatted(b, Format.Decimal(-1L, b)));
            Expect.Equal("-9223372036854775808"u8, Formatted(b, Format.Decimal(long.MinValue, b)));
        }

        private static void FormatHex()
        {
            byte* b = stackalloc byte[Format.MaxDigits];
            Expect.Equal("0x0"u8, Formatted(b, Format.Hex(0, b)));
            Expect.Equal("0xdeadbeef"u8, Formatted(b, Format.Hex(0xDEADBEEF, b)));
            Expect.Equal("0x00ff"u8, Formatted(b, Format.Hex(0xFF, b, 4)));
            Expect.Equal("0xffffffffffffffff"u8, Formatted(b, Format.Hex(ulong.MaxValue, b)));
        }

        // ---- statics ----------------------------------------------------------

        private static void EagerConstructorRan()
        {
            Expect.True(StaticsProbe.TscAtConstruction != 0);    // the static constructor stored a TSC reading
            Expect.True(StaticsProbe.TscAtConstruction < Cpu.ReadTsc());    // it ran before now
            Expect.True(StartupCodeHelpers.EagerConstructorsRun >= 1);    // eager constructors counted at start-up
        }

        private static void ObjectReferenceStatic()
        {
            Expect.True(StaticsProbe.Allocated != null);    // an object-reference static is allocated
            if (StaticsProbe.Allocated != null) Expect.Equal(StaticsProbe.TscAtConstruction, StaticsProbe.Allocated.Tsc);    // the object the static constructor made
            Expect.True(StartupCodeHelpers.StaticBasesAllocated >= 1);    // GC static bases allocated at start-up
        }
    }

    // A static constructor that ilc cannot run at compile time (it reads the TSC),
    // so it must run at start-up from the EagerCctor table.
    [EagerStaticClassConstruction]
    public static class StaticsProbe
    {
        public static readonly ulong TscAtConstruction;
        public static readonly Record Allocated;      // an object reference: lives in a GC static base

        public sealed class Record { public ulong Tsc; }

        static StaticsProbe()
        {
            TscAtConstruction = Cpu.ReadTsc();
            Allocated = new Record { Tsc = TscAtConstruction };
        }
    }
}
