using Kernel.Arch;

namespace Kernel.Hv
{
    // Guest crash reporting through the hypervisor (TLFS 2.5.x "Guest Crash
    // Enlightenment", QEMU hv-crash): five parameters in CRASH_P0..P4, then
    // CRASH_CTL with CrashNotify, after which the hypervisor reports the crash
    // to its host (QEMU: a GUEST_PANICKED event, and "HV crash parameters" in
    // its log) instead of the host learning only that the guest stopped.
    public static unsafe class CrashReport
    {
        public const ulong CrashNotify = 1ul << 63;
        public const ulong CodeException = 0xC5E0;   // P4 for a fatal CPU exception
        public const ulong CodePanic = 0xC5E1;       // P4 for a kernel panic (P0 = NoVector)
        public const ulong NoVector = 0xFFFF;

        public static bool Available => HyperV.Present && HyperV.HasFeature(HvFeature.GuestCrashMsrs);

        public static void Install()
        {
            Interrupts.FatalExceptionHook = &OnFatalException;
            Runtime.Panic.Hook = &OnPanic;
        }

        private static void OnFatalException(ExceptionFrame* frame)
            => Report(frame->Vector, frame->Rip, frame->ErrorCode, Cpu.ReadCr2(), CodeException);

        private static void OnPanic(ulong returnAddress) => Report(NoVector, returnAddress, 0, 0, CodePanic);

        public static void Report(ulong vector, ulong rip, ulong errorCode, ulong cr2, ulong code)
        {
            if (!Available) return;
            Console.Print("hv: reporting the crash through CRASH_P0..P4 and CRASH_CTL (P0 0x%x P1 0x%x P2 0x%x P3 0x%x P4 0x%x)\n"u8,
                vector, rip, errorCode, cr2, code);
            Cpu.WriteMsr(HvMsr.CrashP0, vector);
            Cpu.WriteMsr(HvMsr.CrashP0 + 1, rip);
            Cpu.WriteMsr(HvMsr.CrashP0 + 2, errorCode);
            Cpu.WriteMsr(HvMsr.CrashP0 + 3, cr2);
            Cpu.WriteMsr(HvMsr.CrashP0 + 4, code);
            Cpu.WriteMsr(HvMsr.CrashCtl, CrashNotify);
        }
    }
}
