using Kernel.Arch;

namespace Kernel.TestMode
{
    // Exceptions raised on purpose, with no fix-up: each must end in the fatal
    // exception report. Used by the crash= command line option.
    public static unsafe class Crash
    {
        public static void InvalidOpcode() => Cpu.CrashInvalidOpcode();

        public static void GeneralProtection() => *(ulong*)0x8000000000000000ul = 1;   // non-canonical address

        public static void PageFault() => *(ulong*)0x10 = 1;                           // inside the unmapped null page

        public static void DivideError() => Cpu.CrashDivide(1, 0);
    }
}
