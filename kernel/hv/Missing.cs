using Kernel.Runtime;

namespace Kernel.Hv
{
    // What each enlightenment the kernel can do without is called when the
    // hypervisor does not grant it, said once: the CPUID bit that grants it
    // (TLFS 2.4) and the QEMU flag that sets that bit. The kernel's own
    // refusals (the VMBus client) and the test mode's skips (tests/guest/Need.cs)
    // both use these words, so a log and a TAP skip name a missing feature alike.
    public static class Missing
    {
        public static Text HvInterface => HyperV.AbsentReason;
        public static Text HypercallMsrs => "the hypervisor grants no hypercall MSRs (CPUID 0x40000003 EAX bit 5; QEMU sets it with any hv- flag)"u8;
        public static Text VpIndex => "no VP index MSR (CPUID 0x40000003 EAX bit 6; QEMU hv-vpindex)"u8;
        public static Text Synic => "the hypervisor grants no SynIC access (CPUID 0x40000003 EAX bit 2; QEMU hv-synic)"u8;
        public static Text PostMessages => "the hypervisor grants no HvCallPostMessage (CPUID 0x40000003 EBX bit 4, PostMessages; QEMU hv-synic)"u8;
        public static Text SignalEvents => "the hypervisor grants no HvCallSignalEvent (CPUID 0x40000003 EBX bit 5, SignalEvents; QEMU hv-synic)"u8;
        public static Text ReferenceCounter => "no partition reference counter (CPUID 0x40000003 EAX bit 1; QEMU hv-time)"u8;
        public static Text TscPage => "no reference TSC page (CPUID 0x40000003 EAX bit 9; QEMU hv-time)"u8;
        public static Text FrequencyMsrs => "no frequency MSRs (CPUID 0x40000003 EAX bit 11; QEMU hv-frequencies)"u8;
        public static Text SyntheticTimers => "no synthetic timers (CPUID 0x40000003 EAX bit 3; QEMU hv-stimer)"u8;
        public static Text DirectTimers => "no direct-mode synthetic timers (CPUID 0x40000003 EDX bit 19; QEMU hv-stimer-direct)"u8;
        public static Text SyntheticIpi => "the hypervisor does not offer synthetic cluster IPIs (CPUID 0x40000004 EAX bit 10; QEMU hv-ipi)"u8;
    }
}
