using System.Runtime;
using System.Runtime.CompilerServices;
using Kernel.Hv;

namespace Kernel.TestMode
{
    // Addresses in boot/bench.asm, which only the test image links, in the order
    // of its own table (bench_symbols_table); the kernel's BootSymbols knows
    // nothing of the bench.
    public unsafe struct BenchSymbols
    {
        public ulong SintEntry;             // bench_sint_entry: reads the TSC, then continues at *Continue
        public ulong SintEntryExit;         // bench_sint_entry_exit: ... and again after the handler's iretq
        public ulong SintBare;              // bench_sint_bare: the floor for SINT dispatch
        public ulong* Continue;             // where the two entries continue: the vector's normal stub or SintBare
        public ulong* EntryTsc, ExitTsc;    // the TSCs they read
        public SintFloor* Floor;            // what SintBare reads
        public HypercallPages* Pages;       // the hypercall floors' input and output pages

        public static BenchSymbols* Get() => Table();

        [RuntimeImport("bench_symbols_table")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern BenchSymbols* Table();
    }

    // boot/bench.asm bench_hypercall_pages: the floors' input and output pages.
    public unsafe struct HypercallPages
    {
        public byte* Input, Output;
    }

    // boot/bench.asm bench_sint_floor: what the bare SINT handler reads where the C# path reads the running VP's record.
    public unsafe struct SintFloor
    {
        public ulong* Area;
        public HvMessage* Slot;
        public HvMessage* Copy;
        public delegate*<int, int, void> OnFlag;
        public delegate*<int, HvMessage*, void> OnMessage;
    }
}
