using Internal.Runtime;

namespace Kernel.Runtime
{
    // The object heap behind `new`: a bump allocator over the kernel_heap arena
    // in boot/runtime.asm. There is no garbage collector and nothing is freed.
    public static unsafe class Heap
    {
        private static byte* s_next;
        private static byte* s_end;
        private static Kernel.Arch.SpinLock s_lock;

        // Zeroed, 16-byte-aligned bytes for kernel tables that are not objects.
        public static void* AllocateRaw(ulong size) => Allocate(null, size, -1);

        public static void* AllocateObject(MethodTable* type) => Allocate(type, type->BaseSize, -1);

        public static void* AllocateArray(MethodTable* type, int length)
        {
            if (length < 0) Panic.Fail("negative array length"u8);
            ulong size = type->BaseSize + (ulong)length * type->ComponentSize;
            return Allocate(type, size, length);
        }

        public static string AllocateString(int length)
        {
            // Every string literal carries String's MethodTable; borrow it from one.
            MethodTable* stringType = "".m_pMethodTable;
            void* s = AllocateArray(stringType, length);
            return *(string*)&s;
        }

        private static void* Allocate(MethodTable* type, ulong size, int arrayLength)
        {
            if (s_next == null)
            {
                s_next = (byte*)BootSymbols.Get()->HeapStart;
                s_end = (byte*)BootSymbols.Get()->HeapEnd;
            }
            size = (size + 15) & ~15ul;
            s_lock.Acquire();
            byte* obj = s_next;
            bool fits = size <= (ulong)(s_end - s_next);
            if (fits) s_next += size;
            s_lock.Release();
            if (!fits) Panic.Fail("kernel heap exhausted"u8);
            Memory.Zero(obj, size);
            if (type != null) *(MethodTable**)obj = type;
            if (arrayLength >= 0) *(int*)(obj + sizeof(void*)) = arrayLength;
            return obj;
        }
    }
}
