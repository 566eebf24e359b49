using Kernel.Hv;

namespace Kernel.Arch
{
    // The local APIC, in xAPIC mode at its default MMIO base. SynIC interrupts
    // are delivered through it, so it must be software-enabled; the legacy 8259
    // PICs, when the MADT declares them, are masked first (LegacyPic).
    public static unsafe class Apic
    {
        private const ulong Base = 0xFEE00000;
        private const uint RegisterId = 0x20, RegisterTpr = 0x80, RegisterEoi = 0xB0, RegisterSvr = 0xF0;
        private const uint RegisterIcrLow = 0x300, RegisterIcrHigh = 0x310;
        private const uint SvrSoftwareEnable = 1u << 8;

        // Set when the hypervisor offers the EOI MSR (hv-vapic): one wrmsr instead of an MMIO write.
        public static bool UseHvEoiMsr;

        private static uint Read(uint register) => *(uint*)(Base + register);
        private static void Write(uint register, uint value) => *(uint*)(Base + register) = value;

        public static void Initialize()
        {
            LegacyPic.MaskIfDeclared();
            InitializeThisCpu();
        }

        // Each CPU has its own local APIC; the boot CPU also silences the PICs (if any).
        public static void InitializeThisCpu()
        {
            Write(RegisterTpr, 0);                                   // accept every priority
            Write(RegisterSvr, SvrSoftwareEnable | Interrupts.SpuriousVector);
        }

        private const uint IcrDeliveryPending = 1u << 12;
        public const uint IcrInit = 0x4500, IcrStartup = 0x4600, IcrFixed = 0x4000;   // level assert

        // Sends an interprocessor interrupt through the ICR (xAPIC: high word first).
        public static void SendIpi(uint apicId, uint command)
        {
            Write(RegisterIcrHigh, apicId << 24);
            Write(RegisterIcrLow, command);
            for (int spin = 0; spin < 1000000 && (Read(RegisterIcrLow) & IcrDeliveryPending) != 0; spin++) Cpu.Pause();
        }

        public static uint Id => Read(RegisterId) >> 24;
        public static bool SoftwareEnabled => (Read(RegisterSvr) & SvrSoftwareEnable) != 0;

        public static void EndOfInterrupt()
        {
            if (UseHvEoiMsr) Cpu.WriteMsr(HvMsr.Eoi, 0);   // TLFS 10.3.5 "EOI Assist": HV_X64_MSR_EOI
            else Write(RegisterEoi, 0);
        }
    }
}
