using Kernel.Arch;
using Kernel.Runtime;

namespace Kernel.Hv
{
    // What the kernel keeps per virtual processor: its identities, its own pages
    // for hypercall input/output and for the SynIC (SIM and SIEF), its SynIC
    // counters, and a mailbox through which another VP hands it work.
    // IA32_GS_BASE points at the running VP's record, so Vp.Current is one load.
    public unsafe struct Vp
    {
        public const int MaxVps = 64;

        public Vp* Self;                    // must stay first: GS:0
        public int Number;                  // position in the ACPI MADT (0 = the boot VP)
        public uint ApicId;
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
        public ulong Online;

        // The interrupt guard (kernel/arch/InterruptGuard.cs): nesting depth of
        // the dispatcher, and external interrupts that arrived when they could not have.
        public ulong InterruptDepth;
        public ulong ImpossibleInterrupts;
        public ulong FirstImpossibleVector, FirstImpossibleRip, FirstImpossibleRflags, FirstImpossibleDepth;

        // Mailbox: the owner runs Work(WorkArgument) when WorkPosted moves ahead of WorkDone.
        public delegate*<void*, void> Work;
        public void* WorkArgument;
        public ulong WorkPosted, WorkDone;
        public ulong WakeInterrupts;

        // The console lines this VP is writing (kernel/arch/Console.cs).
        public ConsoleLine MainLine;
        public ConsoleLine InterruptLine;

        private static Vp* s_vps;
        public static int Count;

        public static Vp* Current => (Vp*)Cpu.ThisCpu();
        public static Vp* Get(int number) => s_vps + number;

        // The boot VP's record, installed in GS before anything asks for Vp.Current.
        public static void InitializeBootVp()
        {
            s_vps = (Vp*)PageAllocator.AllocateContiguous(((ulong)(MaxVps * sizeof(Vp)) + 4095) / 4096, zero: true);
            Vp* boot = Add(Apic.Id);
            MakeCurrent(boot);
            Console.StartLineBuffering();
        }

        public static Vp* Add(uint apicId)
        {
            if (Count == MaxVps) Panic.Fail("more VPs than Vp.MaxVps"u8);
            Vp* vp = s_vps + Count;
            vp->Self = vp;
            vp->Number = Count;
            vp->Index = (uint)Count;
            vp->ApicId = apicId;
            vp->HypercallInput = (byte*)PageAllocator.Allocate(zero: true);
            vp->HypercallOutput = (byte*)PageAllocator.Allocate(zero: true);
            Count++;
            return vp;
        }

        public static void MakeCurrent(Vp* vp) => Cpu.WriteMsr(Cpu.GsBaseMsr, (ulong)vp);
    }
}
