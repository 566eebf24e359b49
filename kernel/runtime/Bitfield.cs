// Bit fields of a 64-bit register or protocol word: the one place where a
// field's shift and width turn into masks. A layout names each field once,
// as a (shift, width) pair, and reads and writes it only through these.
// Every accessor inlines, and with constant shift and width each folds to
// the shift-and-mask a hand-written one would be: hot paths may use them.
//
// Plain C#, no kernel dependencies: the host tests compile this file.
using System.Runtime.CompilerServices;

namespace Kernel.Runtime
{
    public static class Bitfield
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong Mask(int width) => width >= 64 ? ulong.MaxValue : (1ul << width) - 1;

        // The field of `width` bits at `shift` in `word`.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong Get(ulong word, int shift, int width) => (word >> shift) & Mask(width);

        // `word` with that field replaced by `value` (bits of `value` above `width` are dropped).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong Set(ulong word, int shift, int width, ulong value)
            => (word & ~(Mask(width) << shift)) | ((value & Mask(width)) << shift);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool Flag(ulong word, int bit) => ((word >> bit) & 1) != 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong WithFlag(ulong word, int bit, bool on) => on ? word | (1ul << bit) : word & ~(1ul << bit);
    }
}
