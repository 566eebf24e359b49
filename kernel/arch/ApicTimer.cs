namespace Kernel.Arch
{
    // The local APIC timer of the calling CPU, in periodic mode (Intel SDM Vol. 3A,
    // 11.5.4 "APIC Timer"). The kernel's periodic work (a driver's once-a-second
    // report) runs on it, leaving the four Hyper-V synthetic timers to the tests.
    public static unsafe class ApicTimer
    {
        private const ulong Base = 0xFEE00000;
        private const uint RegisterLvtTimer = 0x320, RegisterInitialCount = 0x380;
        private const uint RegisterCurrentCount = 0x390, RegisterDivide = 0x3E0;
        private const uint LvtMasked = 1u << 16, LvtPeriodic = 1u << 17;
        private const uint DivideBy16 = 0x3;            // DCR bits 3,1:0 = 0,11
        private const ulong Divisor = 16;

        private static uint Read(uint register) => *(uint*)(Base + register);
        private static void Write(uint register, uint value) => *(uint*)(Base + register) = value;

        // Timer ticks per second before the divider: from the hypervisor when it says
        // (HV_X64_MSR_APIC_FREQUENCY), else measured against Clock over 10 ms.
        public static ulong MeasureFrequency()
        {
            Write(RegisterDivide, DivideBy16);
            Write(RegisterLvtTimer, LvtMasked);
            Write(RegisterInitialCount, uint.MaxValue);
            ulong start = Clock.Now100ns();
            uint before = Read(RegisterCurrentCount);
            Clock.Delay(10);
            uint after = Read(RegisterCurrentCount);
            ulong elapsed = Clock.Now100ns() - start;
            Write(RegisterInitialCount, 0);
            return elapsed == 0 ? 0 : (ulong)(before - after) * Divisor * 10_000_000 / elapsed;
        }

        // Interrupts on `vector` every `periodMs` on this CPU. False, with the timer
        // left alone, when the period does not fit the 32-bit count.
        public static bool StartPeriodic(byte vector, ulong frequency, ulong periodMs)
        {
            ulong count = frequency / Divisor * periodMs / 1000;
            if (count == 0 || count > uint.MaxValue) return false;
            Write(RegisterDivide, DivideBy16);
            Write(RegisterLvtTimer, LvtPeriodic | vector);
            Write(RegisterInitialCount, (uint)count);
            return true;
        }

        public static void Stop()
        {
            Write(RegisterLvtTimer, LvtMasked);
            Write(RegisterInitialCount, 0);
        }
    }
}
