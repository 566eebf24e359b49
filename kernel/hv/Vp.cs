using Kernel.Arch;

namespace Kernel.Hv
{
    // What the kernel keeps per virtual processor beyond what every processor
    // keeps (PerCpu, kernel/arch/PerCpu.cs, first): its VP index, its own pages
    // for hypercall input/output and for the SynIC (SIM and SIEF), and its
    // SynIC counters. A VP's record and its PerCpu are one address, the one
    // IA32_GS_BASE holds while the VP runs, so Vp.Current is one load of GS:0
    // too (and the entries in boot/ that read GS:0 hand over both).
    public unsafe struct Vp
    {
        public const int MaxVps = PerCpu.MaxCpus;

        public PerCpu Cpu;                  // must stay first: GS:0, and a Vp* is its PerCpu*
        public uint Index;                  // HV_X64_MSR_VP_INDEX (the MADT position without Hyper-V)
        public byte* HypercallInput;        // page-aligned: never crosses a page (TLFS 3.7)
        public byte* HypercallOutput;
        public HvMessage* Sim;              // SynIC message page: 16 slots of 256 bytes
        public byte* Sief;                  // SynIC event flags page: 16 areas of 256 bytes
        public bool SynicEnabled;
        public bool PagesZeroAtEnable;      // SIM and SIEF read all-zero right after SIMP/SIEFP were enabled
        public uint AutoEoiMask;            // bit s: SINT s is auto-EOI
        public fixed ulong SintInterrupts[16];
        public fixed ulong FlagsTaken[16];
        public fixed ulong MessagesTaken[16];
        public HvMessage* Received;         // copies of consumed messages, a ring per SINT

        private static Vp* s_vps;
        public static int Count => PerCpu.Count;     // every processor is a VP

        public static Vp* Current => (Vp*)PerCpu.Current;
        public static Vp* Get(int number) => s_vps + number;

        // The boot VP's record, installed in GS before anything asks for Vp.Current.
        public static void InitializeBootVp()
        {
            s_vps = (Vp*)PageAllocator.AllocateContiguous(((ulong)(MaxVps * sizeof(Vp)) + 4095) / 4096, zero: true);
            Vp* boot = Add(Apic.Id);
            PerCpu.MakeCurrent(&boot->Cpu);
            Console.StartLineBuffering();
        }

        public static Vp* Add(uint apicId)
        {
            Vp* vp = s_vps + PerCpu.Count;
            PerCpu.Add(&vp->Cpu, apicId);       // fails beyond MaxVps, before anything is written
            vp->Index = (uint)vp->Cpu.Number;
            vp->HypercallInput = (byte*)PageAllocator.Allocate(zero: true);
            vp->HypercallOutput = (byte*)PageAllocator.Allocate(zero: true);
            return vp;
        }
    }
}
