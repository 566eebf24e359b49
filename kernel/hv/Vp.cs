using Kernel.Arch;

namespace Kernel.Hv
{
    // What the kernel keeps per virtual processor: its VP index and its own
    // pages for hypercall input/output and for the SynIC (SIM and SIEF).
    public unsafe struct Vp
    {
        public const int MaxVps = 64;

        public uint Index;                  // HV_X64_MSR_VP_INDEX, or the boot order without Hyper-V
        public byte* HypercallInput;        // page-aligned: never crosses a page (TLFS 3.7)
        public byte* HypercallOutput;
        public HvMessage* Sim;              // SynIC message page: 16 slots of 256 bytes
        public byte* Sief;                  // SynIC event flags page: 16 areas of 256 bytes
        public bool SynicEnabled;

        private static Vp* s_vps;
        public static int Count;

        // The boot VP only for now: every VP is the boot VP until SMP brings up more.
        public static Vp* Current => s_vps;
        public static Vp* Get(int i) => s_vps + i;

        public static void InitializeBootVp()
        {
            s_vps = (Vp*)PageAllocator.Allocate(zero: true);
            Count = 1;
            s_vps->HypercallInput = (byte*)PageAllocator.Allocate(zero: true);
            s_vps->HypercallOutput = (byte*)PageAllocator.Allocate(zero: true);
        }
    }
}
