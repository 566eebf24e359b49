using Kernel.Runtime;

namespace Kernel.Arch
{
    // Physical memory in 4 KiB pages, tracked by a bitmap (1 = in use) built from
    // the boot memory map. Only RAM below 4 GiB is managed: that is what the
    // kernel's identity map covers.
    public static unsafe class PageAllocator
    {
        public const ulong PageSize = 4096;
        public const ulong Limit = 4ul << 30;
        private const ulong PageCount = Limit / PageSize;
        private const ulong LowMemoryEnd = 1ul << 20;    // BIOS data, option ROMs, future AP trampoline

        private static ulong* s_bitmap;
        private static SpinLock s_lock;
        private static ulong s_searchFrom;
        public static ulong FreePages { get; private set; }
        public static ulong TotalPages { get; private set; }

        public static void Initialize()
        {
            s_bitmap = (ulong*)Heap.AllocateRaw(PageCount / 8);
            Memory.Fill(s_bitmap, 0xFF, PageCount / 8);
            for (int i = 0; i < BootInfo.RegionCount; i++)
            {
                MemoryRegion r = BootInfo.Regions[i];
                if (r.Type != MemoryRegion.Usable) continue;
                ulong first = (r.Base + PageSize - 1) / PageSize;
                ulong end = (r.Base + r.Length) / PageSize;
                for (ulong page = first; page < end && page < PageCount; page++)
                    if (IsManaged(page * PageSize)) MarkFree(page);
            }
            TotalPages = FreePages;
            s_searchFrom = LowMemoryEnd / PageSize;
        }

        // A page this allocator hands out: usable RAM, above low memory, outside the kernel image.
        private static bool IsManaged(ulong address)
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

        private static bool IsUsed(ulong page) => (s_bitmap[page / 64] & (1ul << (int)(page % 64))) != 0;
        private static void MarkUsed(ulong page) { s_bitmap[page / 64] |= 1ul << (int)(page % 64); FreePages--; }
        private static void MarkFree(ulong page) { s_bitmap[page / 64] &= ~(1ul << (int)(page % 64)); FreePages++; }

        public static bool IsAllocated(ulong address) => address >= Limit || IsUsed(address / PageSize);

        // One page; its contents are unspecified unless `zero` is true.
        public static void* Allocate(bool zero = false) => (void*)AllocateContiguous(1, zero);

        // `count` physically contiguous pages; panics when none are left.
        public static ulong AllocateContiguous(ulong count, bool zero = false)
        {
            s_lock.Acquire();
            ulong first = TakeRun(count);
            s_lock.Release();
            if (first == 0) Panic.Fail("out of physical pages");
            if (zero) Memory.Zero((void*)first, count * PageSize);
            return first;
        }

        private static ulong TakeRun(ulong count)
        {
            ulong run = 0;
            for (ulong step = 0; step < PageCount; step++)
            {
                ulong page = (s_searchFrom + step) % PageCount;
                if (page == 0) run = 0;            // runs do not wrap around the end of memory
                if (IsUsed(page)) { run = 0; continue; }
                if (++run < count) continue;
                ulong first = page + 1 - count;
                for (ulong p = first; p <= page; p++) MarkUsed(p);
                s_searchFrom = page + 1;
                return first * PageSize;
            }
            return 0;
        }

        // False, with nothing changed, for an address that is not page-aligned,
        // outside managed memory, or not allocated (a double free).
        public static bool TryFree(ulong address)
        {
            if (address % PageSize != 0 || !IsManaged(address)) return false;
            ulong page = address / PageSize;
            s_lock.Acquire();
            bool used = IsUsed(page);
            if (used) MarkFree(page);
            s_lock.Release();
            return used;
        }

        public static void Free(void* page)
        {
            if (!TryFree((ulong)page))
            {
                Console.Write("\npage free refused: ");
                Console.WriteHex((ulong)page);
                Console.WriteLine();
                Panic.Fail("double free or bad address in PageAllocator.Free");
            }
        }
    }
}
