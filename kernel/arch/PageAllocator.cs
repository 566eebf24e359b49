using System;
using Kernel.Runtime;

namespace Kernel.Arch
{
    // Physical memory in 4 KiB pages, tracked by bitmaps (1 = in use), one per
    // zone. Zone 0 is the RAM below 4 GiB that the boot memory map describes
    // (what Paging.Initialize identity-maps). Memory the hypervisor hot-adds
    // later (the Dynamic Memory protocol) becomes a zone of its own: mapped
    // first, then its bitmap kept in its own first pages.
    public static unsafe class PageAllocator
    {
        public const ulong PageSize = 4096;
        public const ulong Limit = 4ul << 30;            // the end of zone 0
        private const ulong BootPageCount = Limit / PageSize;
        private const ulong LowMemoryEnd = 1ul << 20;    // BIOS data, option ROMs, the AP trampoline
        public const int MaxZones = 16;

        private struct Zone
        {
            public ulong FirstPage, PageCount;          // page frame numbers [FirstPage, FirstPage + PageCount)
            public ulong* Bitmap;
            public ulong SearchFrom;                    // zone-relative: where the next search starts
        }

        private static Zone* s_zones;
        private static int s_zoneCount;
        private static SpinLock s_lock;
        public static ulong FreePages { get; private set; }
        public static ulong TotalPages { get; private set; }   // zone 0's usable pages plus every hot-added page
        public static ulong HotAddedPages { get; private set; }
        public static int ZoneCount => s_zoneCount;

        public static void Initialize()
        {
            s_zones = (Zone*)Heap.AllocateRaw((ulong)(MaxZones * sizeof(Zone)));
            Zone* boot = &s_zones[0];
            boot->FirstPage = 0;
            boot->PageCount = BootPageCount;
            boot->Bitmap = (ulong*)Heap.AllocateRaw(BootPageCount / 8);
            Memory.Fill(boot->Bitmap, 0xFF, BootPageCount / 8);
            s_zoneCount = 1;
            for (int i = 0; i < BootInfo.RegionCount; i++)
            {
                MemoryRegion r = BootInfo.Regions[i];
                if (r.Type != MemoryRegion.Usable) continue;
                ulong first = (r.Base + PageSize - 1) / PageSize;
                ulong end = (r.Base + r.Length) / PageSize;
                for (ulong page = first; page < end && page < BootPageCount; page++)
                    if (IsManagedAtBoot(page * PageSize)) MarkFree(boot, page);
            }
            TotalPages = FreePages;
            boot->SearchFrom = LowMemoryEnd / PageSize;
        }

        // A page zone 0 hands out: usable RAM, above low memory, outside the kernel image.
        private static bool IsManagedAtBoot(ulong address)
        {
            BootSymbols* s = BootSymbols.Get();
            if (address < LowMemoryEnd || address >= Limit) return false;
            if (address >= s->ImageStart && address < s->ImageEnd) return false;
            for (int i = 0; i < BootInfo.RegionCount; i++)
            {
                MemoryRegion r = BootInfo.Regions[i];
                if (r.Type == MemoryRegion.Usable && address >= r.Base && address + PageSize <= r.Base + r.Length) return true;
            }
            return false;
        }

        private static bool IsUsed(Zone* z, ulong index) => (z->Bitmap[index / 64] & (1ul << (int)(index % 64))) != 0;
        private static void MarkUsed(Zone* z, ulong index) { z->Bitmap[index / 64] |= 1ul << (int)(index % 64); FreePages--; }
        private static void MarkFree(Zone* z, ulong index) { z->Bitmap[index / 64] &= ~(1ul << (int)(index % 64)); FreePages++; }

        private static Zone* ZoneOf(ulong page)
        {
            for (int i = 0; i < s_zoneCount; i++)
                if (page >= s_zones[i].FirstPage && page - s_zones[i].FirstPage < s_zones[i].PageCount) return &s_zones[i];
            return null;
        }

        // True for anything the allocator would not hand out now: allocated, or not managed at all.
        public static bool IsAllocated(ulong address)
        {
            Zone* z = ZoneOf(address / PageSize);
            return z == null || IsUsed(z, address / PageSize - z->FirstPage);
        }

        // One page; its contents are unspecified unless `zero` is true.
        public static void* Allocate(bool zero = false) => (void*)AllocateContiguous(1, zero);

        // `count` physically contiguous pages; panics when none are left. Zone 0
        // first: it is mapped from boot on, and low addresses suit every device.
        public static ulong AllocateContiguous(ulong count, bool zero = false)
        {
            s_lock.Acquire();
            ulong first = 0;
            for (int i = 0; i < s_zoneCount && first == 0; i++) first = TakeRun(&s_zones[i], count);
            s_lock.Release();
            if (first == 0) Panic.Fail("out of physical pages"u8);
            if (zero) Memory.Zero((void*)first, count * PageSize);
            return first;
        }

        private static ulong TakeRun(Zone* z, ulong count)
        {
            ulong run = 0;
            for (ulong step = 0; step < z->PageCount; step++)
            {
                ulong index = (z->SearchFrom + step) % z->PageCount;
                if (index == 0) run = 0;            // runs do not wrap around the end of the zone
                if (IsUsed(z, index)) { run = 0; continue; }
                if (++run < count) continue;
                ulong first = index + 1 - count;
                for (ulong i = first; i <= index; i++) MarkUsed(z, i);
                z->SearchFrom = index + 1;
                return (z->FirstPage + first) * PageSize;
            }
            return 0;
        }

        // For the balloon: up to `max` contiguous free pages, from the top of the
        // highest zone that has any, so that the kernel's own allocations (from
        // the bottom of zone 0) and the balloon keep out of each other's way.
        // Returns the address of the run's first page (as AllocateContiguous does)
        // and sets `count`; count 0 when no page is free.
        public static ulong TakeHighestRun(ulong max, out ulong count)
        {
            count = 0;
            if (max == 0) return 0;
            s_lock.Acquire();
            ulong first = 0;
            for (int i = s_zoneCount - 1; i >= 0 && count == 0; i--)
            {
                Zone* z = &s_zones[i];
                ulong top = HighestFree(z);
                if (top == ulong.MaxValue) continue;
                ulong index = top;          // the run grows down from the top free page
                while (index > 0 && top - index + 1 < max && !IsUsed(z, index - 1)) index--;
                for (ulong page = index; page <= top; page++) MarkUsed(z, page);
                count = top - index + 1;
                first = (z->FirstPage + index) * PageSize;
            }
            s_lock.Release();
            return first;
        }

        // The highest free index of a zone, or ulong.MaxValue; skips full words.
        private static ulong HighestFree(Zone* z)
        {
            for (ulong word = (z->PageCount + 63) / 64; word > 0; word--)
            {
                ulong bits = ~z->Bitmap[word - 1];
                if (bits == 0) continue;
                for (int bit = 63; bit >= 0; bit--)
                {
                    ulong index = (word - 1) * 64 + (ulong)bit;
                    if ((bits & (1ul << bit)) != 0 && index < z->PageCount) return index;
                }
            }
            return ulong.MaxValue;
        }

        // False, with nothing changed, for an address that is not page-aligned,
        // not managed, or not allocated (a double free).
        public static bool TryFree(ulong address)
        {
            if (address % PageSize != 0) return false;
            ulong page = address / PageSize;
            s_lock.Acquire();
            Zone* z = ZoneOf(page);
            bool used = z != null && (z != &s_zones[0] || IsManagedAtBoot(address)) && IsUsed(z, page - z->FirstPage);
            if (used) MarkFree(z, page - z->FirstPage);
            s_lock.Release();
            return used;
        }

        public static void Free(void* page)
        {
            if (!TryFree((ulong)page))
            {
                Console.Print("\npage free refused: 0x%x\n"u8, (ulong)page);
                Panic.Fail("double free or bad address in PageAllocator.Free"u8);
            }
        }

        // Why AddZone would refuse [firstPage, firstPage + count), or null if it would not.
        public static Text CheckNewZone(ulong firstPage, ulong count)
        {
            if (count < 2) return "fewer than two pages (one holds the zone's bitmap)"u8;
            if (firstPage + count < firstPage || firstPage + count > Cpu.PhysicalAddressLimit / PageSize)
                return "beyond the CPU's physical address width (CPUID 0x80000008)"u8;
            if (firstPage < BootPageCount) return "below 4 GiB, inside zone 0"u8;
            if (s_zoneCount == MaxZones) return "no zone left (PageAllocator.MaxZones)"u8;
            for (int i = 0; i < s_zoneCount; i++)
                if (firstPage < s_zones[i].FirstPage + s_zones[i].PageCount && s_zones[i].FirstPage < firstPage + count)
                    return "overlaps memory the allocator already has"u8;
            for (int i = 0; i < BootInfo.RegionCount; i++)
            {
                MemoryRegion r = BootInfo.Regions[i];
                if (firstPage * PageSize < r.Base + r.Length && r.Base < (firstPage + count) * PageSize)
                    return "overlaps a region of the boot memory map"u8;
            }
            return default;     // empty: no refusal
        }

        // Hot-added RAM: identity-maps it (Paging.MapRam), keeps its bitmap in
        // its own first pages, frees the rest. Returns the pages added (all of
        // them, the bitmap's included, which count as in use), or 0 with nothing
        // changed when CheckNewZone refuses the range.
        public static ulong AddZone(ulong firstPage, ulong count)
        {
            if (!CheckNewZone(firstPage, count).IsEmpty) return 0;
            Paging.MapRam(firstPage * PageSize, count * PageSize);
            ulong bitmapBytes = (count + 63) / 64 * 8;
            ulong bitmapPages = (bitmapBytes + PageSize - 1) / PageSize;
            var bitmap = (ulong*)(firstPage * PageSize);
            Memory.Fill(bitmap, 0xFF, bitmapPages * PageSize);     // all in use until freed below
            s_lock.Acquire();
            Zone* z = &s_zones[s_zoneCount];
            z->FirstPage = firstPage;
            z->PageCount = count;
            z->Bitmap = bitmap;
            z->SearchFrom = bitmapPages;
            for (ulong i = bitmapPages; i < count; i++) MarkFree(z, i);
            TotalPages += count;
            HotAddedPages += count;
            s_zoneCount++;          // last: the zone is complete before any search can see it
            s_lock.Release();
            return count;
        }
    }
}
