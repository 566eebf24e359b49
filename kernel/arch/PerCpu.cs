using Kernel.Runtime;

namespace Kernel.Arch
{
    // What every processor keeps for itself, whatever runs it: its identities,
    // whether it is online, its work mailbox (Smp) and the interrupt guard's
    // counts (InterruptGuard). Small, so that what follows it in a VP record
    // (kernel/hv/Vp.cs) is within a byte's displacement too; the console keeps
    // its per-processor lines itself (Console.cs).
    // IA32_GS_BASE points at the running processor's record, whose first field
    // points at itself, so PerCpu.Current is one load of GS:0 (boot/stubs.asm
    // cpu_this_cpu). Under Hyper-V each record is the first field of the VP's
    // record (kernel/hv/Vp.cs), which adds what the hypervisor gives each VP:
    // the two are one address, as Linux keeps its per-CPU data apart from the
    // hypervisor's per-VP data.
    public unsafe struct PerCpu
    {
        public const int MaxCpus = 64;

        public PerCpu* Self;                // must stay first: GS:0
        public int Number;                  // position in the ACPI MADT (0 = the boot processor)
        public uint ApicId;
        public ulong Online;

        // The interrupt guard (InterruptGuard.cs): nesting depth of the
        // dispatcher, and external interrupts that arrived when they could not have.
        public ulong InterruptDepth;
        public ulong ImpossibleInterrupts;
        public ulong FirstImpossibleVector, FirstImpossibleRip, FirstImpossibleRflags, FirstImpossibleDepth;

        // Mailbox (Smp.cs): the owner runs Work(WorkArgument) when WorkPosted moves ahead of WorkDone.
        public delegate*<void*, void> Work;
        public void* WorkArgument;
        public ulong WorkPosted, WorkDone;
        public ulong WakeInterrupts;

        // Every processor's record, by Number: a table in the statics (zero
        // at start, like all of them), which costs the boot nothing to set up.
        private static Table s_all;
        private struct Table { public fixed ulong Records[MaxCpus]; }
        public static int Count;

        public static PerCpu* Current => (PerCpu*)Cpu.ThisCpu();
        public static PerCpu* Get(int number) => (PerCpu*)s_all.Records[number];

        // Makes `cpu`, zeroed and owned by its caller (the VP records), the
        // next processor's record.
        public static void Add(PerCpu* cpu, uint apicId)
        {
            if (Count == MaxCpus) Panic.Fail("more processors than PerCpu.MaxCpus"u8);
            cpu->Self = cpu;
            cpu->Number = Count;
            cpu->ApicId = apicId;
            s_all.Records[Count] = (ulong)cpu;
            Count++;
        }

        public static void MakeCurrent(PerCpu* cpu) => Cpu.WriteMsr(Cpu.GsBaseMsr, (ulong)cpu);
    }
}
