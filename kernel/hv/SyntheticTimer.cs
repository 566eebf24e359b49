using Kernel.Arch;

namespace Kernel.Hv
{
    // Synthetic timers (TLFS 12.5): four per VP, each counting partition
    // reference time. At expiry the hypervisor posts an HvMessageTimerExpired
    // message to the timer's SINT, or, in direct mode, raises an APIC vector
    // with no message at all.
    public static class SyntheticTimer
    {
        public const int Count = 4;

        public static bool Available => HyperV.Present && HyperV.Has(HvPartitionPrivilege.AccessSyntheticTimerRegs) && Synic.Available;
        public static bool DirectModeAvailable => Available && HyperV.HasFeature(HvFeature.DirectSyntheticTimers);

        // One-shot: fires once at absolute reference time `expiration`.
        public static void StartOneShot(int timer, byte sint, ulong expiration)
        {
            HvStimerConfig config = default;
            config.Sint = sint;
            config.Enable = true;
            Arm(timer, config, expiration);
        }

        // Periodic: fires every `period` (100 ns units).
        public static void StartPeriodic(int timer, byte sint, ulong period)
        {
            HvStimerConfig config = default;
            config.Sint = sint;
            config.Periodic = true;
            config.Enable = true;
            Arm(timer, config, period);
        }

        // Auto-enable: configured without Enable; writing the count enables the timer.
        public static void StartAutoEnable(int timer, byte sint, ulong expiration)
        {
            HvStimerConfig config = default;
            config.Sint = sint;
            config.AutoEnable = true;
            Arm(timer, config, expiration);
        }

        // Direct mode: the expiry raises `vector` through the local APIC, no message.
        public static void StartDirect(int timer, byte vector, ulong expiration)
        {
            HvStimerConfig config = default;
            config.DirectMode = true;
            config.ApicVector = vector;
            config.Enable = true;
            Arm(timer, config, expiration);
        }

        // Config first, then count: the count write is what starts (or auto-enables) the timer.
        private static void Arm(int timer, HvStimerConfig config, ulong count)
        {
            Cpu.WriteMsr(HvMsr.StimerConfig(timer), config.Value);
            Cpu.WriteMsr(HvMsr.StimerCount(timer), count);
        }

        public static void Stop(int timer)
        {
            Cpu.WriteMsr(HvMsr.StimerConfig(timer), 0);
            Cpu.WriteMsr(HvMsr.StimerCount(timer), 0);
        }

        public static HvStimerConfig Config(int timer)
        {
            HvStimerConfig c;
            c.Value = Cpu.ReadMsr(HvMsr.StimerConfig(timer));
            return c;
        }
    }
}
