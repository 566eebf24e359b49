using System.Runtime.CompilerServices;

// Two instructions the kernel's hot paths want inline, which RyuJIT emits for
// these intrinsics of the core library: each method's body calls itself, a
// call the compiler always replaces (as in .NET's own System.Private.CoreLib).
// tests/Kernel.Tests/InterruptSaveTests.cs finds `xchg` and `bsf` in the SINT
// path's code, so a compiler that stopped expanding them would fail there.

namespace System.Threading
{
    public static class Interlocked
    {
        // xchg with a memory operand: locked (SDM Vol 2B XCHG).
        [Intrinsic]
        public static long Exchange(ref long location1, long value) => Exchange(ref location1, value);
    }
}

namespace System.Runtime.Intrinsics.X86
{
    [Intrinsic]
    public abstract class X86Base
    {
        [Intrinsic]
        public abstract class X64
        {
            public static bool IsSupported => IsSupported;

            // bsf: the index of the lowest set bit (undefined for 0).
            [Intrinsic]
            internal static ulong BitScanForward(ulong value) => BitScanForward(value);
        }
    }
}
