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
            if (length < 0) Panic.Fail("negative array length");
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
            if (!fits) Panic.Fail("kernel heap exhausted");
            Memory.Zero(obj, size);
            if (type != null) *(MethodTable**)obj = type;
            if (arrayLength >= 0) *(int*)(obj + sizeof(void*)) = arrayLength;
            return obj;
        }
    }

    public static unsafe class Memory
    {
        // A copy that may overlap (memmove): forward with rep movsb when the
        // destination is below the source, else byte by byte from the end.
        public static void Copy(void* destination, void* source, ulong count)
        {
            byte* d = (byte*)destination, s = (byte*)source;
            if (d < s) CopyForward(d, s, count);
            else { for (ulong i = count; i > 0; i--) d[i - 1] = s[i - 1]; }
        }

        // rep movsb (boot/stubs.asm): lowest byte first; the regions may overlap only if destination is below source.
        [System.Runtime.RuntimeImport("cpu_copy_forward")] [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.InternalCall)]
        public static extern void CopyForward(void* destination, void* source, ulong count);

        public static void Zero(void* destination, ulong count)
        {
            ulong* q = (ulong*)destination;
            ulong words = count / 8;
            for (ulong i = 0; i < words; i++) q[i] = 0;
            byte* b = (byte*)destination;
            for (ulong i = words * 8; i < count; i++) b[i] = 0;
        }

        public static void Fill(void* destination, byte value, ulong count)
        {
            byte* b = (byte*)destination;
            for (ulong i = 0; i < count; i++) b[i] = value;
        }

        public static bool IsZero(void* source, ulong count)
        {
            byte* b = (byte*)source;
            for (ulong i = 0; i < count; i++) if (b[i] != 0) return false;
            return true;
        }

        public static bool Equal(void* a, void* b, ulong count)
        {
            byte* x = (byte*)a, y = (byte*)b;
            for (ulong i = 0; i < count; i++) if (x[i] != y[i]) return false;
            return true;
        }
    }
}
