namespace Kernel.Runtime
{
    // memmove, memset and friends over raw memory: the runtime's own (the core
    // library has no Buffer or Span), used by the heap, the drivers and the tests.
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
