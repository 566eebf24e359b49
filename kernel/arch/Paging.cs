using Kernel.Runtime;

namespace Kernel.Arch
{
    // The kernel's own page tables, replacing the coarse boot map of boot/entry.asm.
    // Everything below 4 GiB stays identity-mapped (physical = virtual, which is
    // also what the hypervisor's GPAs mean), but with real permissions:
    //   - page 0 is not present, so null dereferences fault;
    //   - kernel text (and the hypercall page) is read-only and executable;
    //   - rodata is read-only and no-execute; data and bss are writable, no-execute;
    //   - all other memory is writable and no-execute; what is not RAM is uncached.
    public static unsafe class Paging
    {
        public const ulong Present = 1, Writable = 1 << 1, WriteThrough = 1 << 3, CacheDisable = 1 << 4;
        public const ulong LargePage = 1 << 7, NoExecute = 1ul << 63;
        public const ulong AddressMask = 0x000FFFFFFFFFF000;
        private const ulong LargePageSize = 2ul << 20;

        public static void Initialize()
        {
            BootSymbols* image = BootSymbols.Get();
            ulong* pml4 = NewTable();
            ulong* pdpt = NewTable();
            pml4[0] = (ulong)pdpt | Present | Writable;
            for (ulong gib = 0; gib < 4; gib++)
            {
                ulong* pd = NewTable();
                pdpt[gib] = (ulong)pd | Present | Writable;
                for (ulong i = 0; i < 512; i++)
                {
                    ulong start = (gib * 512 + i) * LargePageSize;
                    // 4 KiB pages for the null page and the image, which the UEFI
                    // firmware may have loaded anywhere below 4 GiB.
                    if (start == 0 || (start < image->ImageEnd && start + LargePageSize > image->ImageStart))
                        pd[i] = (ulong)MapSmallPages(start, image) | Present | Writable;
                    else
                        pd[i] = start | Present | Writable | LargePage | CacheAttributes(start, LargePageSize)
                                | (IsFirmwareCode(start, LargePageSize) ? 0 : NoExecute);
                }
            }
            Cpu.WriteCr3((ulong)pml4);
        }

        // A 2 MiB range that holds (part of) the kernel image, in 4 KiB pages.
        private static ulong* MapSmallPages(ulong start, BootSymbols* image)
        {
            ulong* pt = NewTable();
            for (ulong i = 0; i < 512; i++)
            {
                ulong address = start + i * PageAllocator.PageSize;
                if (address == 0) continue;     // the null page stays unmapped
                ulong flags = Present | Writable | (IsFirmwareCode(address, PageAllocator.PageSize) ? 0 : NoExecute);
                if (address >= image->TextStart && address < image->TextEnd) flags = Present;
                else if (address >= image->RodataStart && address < image->RodataEnd) flags = Present | NoExecute;
                pt[i] = address | flags | CacheAttributes(address, PageAllocator.PageSize);
            }
            return pt;
        }

        // Write-back for RAM; uncached for anything else (MMIO such as the local APIC).
        private static ulong CacheAttributes(ulong start, ulong length)
        {
            for (int i = 0; i < BootInfo.RegionCount; i++)
            {
                MemoryRegion r = BootInfo.Regions[i];
                if (r.Type == MemoryRegion.Usable && start >= r.Base && start + length <= r.Base + r.Length) return 0;
            }
            return start < (1ul << 20) ? 0 : CacheDisable | WriteThrough;   // low memory: BIOS areas, cacheable
        }

        // UEFI runtime services code (GuestExit powers off through ResetSystem) must stay executable.
        private static bool IsFirmwareCode(ulong start, ulong length)
        {
            for (int i = 0; i < BootInfo.RegionCount; i++)
            {
                MemoryRegion r = BootInfo.Regions[i];
                if (r.Type == MemoryRegion.FirmwareCode && start < r.Base + r.Length && r.Base < start + length) return true;
            }
            return false;
        }

        // Makes one 4 KiB page of the kernel's low 2 MiB executable (the AP
        // start-up trampoline runs there); everything else there stays no-execute.
        public static void MakeExecutable(ulong address)
        {
            ulong* table = (ulong*)(Cpu.ReadCr3() & AddressMask);
            for (int level = 3; level > 0; level--)
            {
                ulong entry = table[(address >> (12 + 9 * level)) & 511];
                if ((entry & Present) == 0 || (entry & LargePage) != 0) Panic.Fail("MakeExecutable: not a 4 KiB mapping"u8);
                table = (ulong*)(entry & AddressMask);
            }
            table[(address >> 12) & 511] &= ~NoExecute;
            Cpu.InvalidatePage(address);
        }

        private static ulong* NewTable() => (ulong*)PageAllocator.Allocate(zero: true);

        private static SpinLock s_lock;
        public static ulong TablesAddedByMapRam;      // page-table pages MapRam allocated

        // Identity-maps RAM that was not there at boot (hot-added memory, which
        // PageAllocator.AddZone hands here first): writable, no-execute, write-back;
        // 2 MiB pages where the range allows, 4 KiB pages at unaligned ends. The
        // range must be unmapped: nothing that is mapped changes, so no TLB entry
        // can be stale (an x86 TLB does not cache not-present entries).
        public static void MapRam(ulong start, ulong length)
        {
            s_lock.Acquire();
            ulong* pml4 = (ulong*)(Cpu.ReadCr3() & AddressMask);
            ulong end = start + length;
            for (ulong a = start & ~(PageAllocator.PageSize - 1); a < end;)
            {
                ulong* pdpt = ChildTable(pml4, a >> 39);
                ulong* pd = ChildTable(pdpt, (a >> 30) & 511);
                if (a % LargePageSize == 0 && end - a >= LargePageSize)
                {
                    if ((pd[(a >> 21) & 511] & Present) != 0) Panic.Fail("Paging.MapRam: the range is already mapped"u8);
                    pd[(a >> 21) & 511] = a | Present | Writable | LargePage | NoExecute;
                    a += LargePageSize;
                    continue;
                }
                ulong* pt = ChildTable(pd, (a >> 21) & 511);
                if ((pt[(a >> 12) & 511] & Present) != 0) Panic.Fail("Paging.MapRam: the range is already mapped"u8);
                pt[(a >> 12) & 511] = a | Present | Writable | NoExecute;
                a += PageAllocator.PageSize;
            }
            s_lock.Release();
        }

        // The table an entry points to, made (empty) when the entry is not present.
        private static ulong* ChildTable(ulong* table, ulong index)
        {
            ulong entry = table[index];
            if ((entry & Present) == 0)
            {
                ulong* child = NewTable();
                TablesAddedByMapRam++;
                table[index] = (ulong)child | Present | Writable;
                return child;
            }
            if ((entry & LargePage) != 0) Panic.Fail("Paging.MapRam: the range is already mapped (large page)"u8);
            return (ulong*)(entry & AddressMask);
        }

        // The leaf entry that maps `address` in the live tables (CR3), with the
        // permission bits of the whole walk folded in: writable and user only if
        // every level allows it, no-execute if any level sets it. 0 if unmapped.
        public static ulong Translate(ulong address)
        {
            ulong* table = (ulong*)(Cpu.ReadCr3() & AddressMask);
            ulong writable = Writable, noExecute = 0;
            for (int level = 3; level >= 0; level--)
            {
                ulong entry = table[(address >> (12 + 9 * level)) & 511];
                if ((entry & Present) == 0) return 0;
                writable &= entry;
                noExecute |= entry & NoExecute;
                if (level == 0 || (entry & LargePage) != 0)
                    return (entry & ~(Writable | NoExecute)) | writable | noExecute;
                table = (ulong*)(entry & AddressMask);
            }
            return 0;
        }

        // Writing into the read-only text range (the hypercall page before the
        // hypervisor fills it, a bench's stand-in page): SDM Vol 3A 2.5, with
        // CR0.WP clear supervisor writes go through read-only pages, under
        // these tables and under the boot or firmware ones alike. Interrupts
        // stay off so that nothing else runs with write protection off.

        public static void FillReadOnly(byte* destination, byte value, ulong count)
            => WriteReadOnly(destination, null, value, count);

        public static void CopyToReadOnly(byte* destination, byte* source, ulong count)
            => WriteReadOnly(destination, source, 0, count);

        // Copies source, or without one fills with value.
        private static void WriteReadOnly(byte* destination, byte* source, byte value, ulong count)
        {
            ulong flags = Cpu.SaveFlagsAndDisableInterrupts();
            ulong cr0 = Cpu.ReadCr0();
            Cpu.WriteCr0(cr0 & ~Cr0.WP);
            if (source != null) Memory.Copy(destination, source, count);
            else Memory.Fill(destination, value, count);
            Cpu.WriteCr0(cr0);
            Cpu.RestoreInterrupts(flags);
        }
    }
}
