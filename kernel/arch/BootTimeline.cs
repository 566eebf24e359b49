using System.Runtime.CompilerServices;

namespace Kernel.Arch
{
    // The boot milestones after long mode (boot/entry.asm records the TSC at
    // entry and at long mode). Each is a call of its own that the compiler may
    // not inline, so that it reads the TSC at the milestone (the bench's
    // bench-timeline line) and tools/count-instructions.py finds the milestone
    // in QEMU's exec trace by its symbol (the boot's instruction counts).
    // Ready is the end of the boot: the test image's test mode, or the
    // minimal image's ready line.
    public static class BootTimeline
    {
        public static ulong RuntimeStarted, HvReady, AllVpsReady, Ready;

        [MethodImpl(MethodImplOptions.NoInlining)] public static void MarkRuntimeStarted() => RuntimeStarted = Cpu.ReadTsc();
        [MethodImpl(MethodImplOptions.NoInlining)] public static void MarkHvReady() => HvReady = Cpu.ReadTsc();
        [MethodImpl(MethodImplOptions.NoInlining)] public static void MarkAllVpsReady() => AllVpsReady = Cpu.ReadTsc();
        [MethodImpl(MethodImplOptions.NoInlining)] public static void MarkReady() => Ready = Cpu.ReadTsc();
    }
}
