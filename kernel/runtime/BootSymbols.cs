using System.Runtime;
using System.Runtime.CompilerServices;

namespace Kernel.Runtime
{
    // Addresses from boot/ (linker section boundaries and assembly labels), in the
    // order boot/layout.asm lays them out. (boot/bench.asm, in the test image
    // only, has a table of its own: tests/guest/bench/BenchSymbols.cs.)
    public unsafe struct BootSymbols
    {
        public ulong ImageStart, ImageEnd;
        public ulong TextStart, TextEnd;
        public ulong RodataStart, RodataEnd;
        public ulong DataStart, DataEnd;
        public ulong BssStart, BssEnd;
        public ulong ModulesStart, ModulesEnd;
        public ulong ExTableStart, ExTableEnd;
        public ulong InterruptEntries;                 // boot/interrupts.asm: vector v enters at InterruptEntries + Interrupts.EntryStride * v
        public ulong HypercallPage;
        public ulong TscAtEntry, TscAtLongMode;        // addresses of the boot timeline qwords
        public ulong HeapStart, HeapEnd;
        public ulong TrampolineStart, TrampolineEnd, ApEntry;
        public ulong Ud2FaultRip, DivideFaultRip;      // the faulting instructions of the probe stubs
        public ulong ReadFaultRip, WriteFaultRip;
        public ulong EfiTakeOver;                      // boot/efi/entry.asm; 0 in the ELF images

        public static BootSymbols* Get() => Table();

        [RuntimeImport("boot_symbols_table")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern BootSymbols* Table();
    }
}
