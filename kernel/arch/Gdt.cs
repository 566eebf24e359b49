using System.Runtime.InteropServices;
using Kernel.Runtime;

namespace Kernel.Arch
{
    // The 64-bit task-state segment: in long mode it only holds stack pointers.
    // Intel SDM Vol. 3A, 8.7 "Task Management in 64-bit Mode".
    [StructLayout(LayoutKind.Explicit, Size = 104)]
    public struct TaskStateSegment
    {
        [FieldOffset(4)] public ulong Rsp0;
        [FieldOffset(36)] public ulong Ist1;
        [FieldOffset(44)] public ulong Ist2;
        [FieldOffset(102)] public ushort IoMapBase;
    }

    // One CPU's GDT and TSS. The TSS exists for its IST stacks: a double fault
    // (for example a kernel stack overflow) switches to a known-good stack, so
    // the handler can still report it instead of the CPU triple-faulting.
    public static unsafe class Gdt
    {
        // KernelCode and KernelData are the boot GDT's selectors too (boot/x86.inc).
        public const ushort KernelCode = 0x08, KernelData = 0x10, Tss = 0x18;
        public const int DoubleFaultIst = 1;
        private const int IstStackPages = 4;

        public struct PerCpu
        {
            public ulong* Entries;              // null, code, data, TSS (two slots)
            public TaskStateSegment* TaskState;
            public ulong DoubleFaultStackTop;
        }

        // Builds and loads the GDT and TSS of the calling CPU.
        public static PerCpu Install()
        {
            PerCpu cpu;
            byte* page = (byte*)PageAllocator.Allocate(zero: true);
            cpu.Entries = (ulong*)page;
            cpu.TaskState = (TaskStateSegment*)(page + 64);
            ulong stack = PageAllocator.AllocateContiguous(IstStackPages);
            cpu.DoubleFaultStackTop = stack + IstStackPages * PageAllocator.PageSize;

            // From SegmentDescriptor's named fields rather than read back from
            // the boot GDT (boot/x86.inc BOOT_GDT): the TSS descriptor has to be
            // built here at run time anyway, from the same fields.
            // tests/Kernel.Tests/SegmentDescriptorTests.cs checks that the code
            // and data descriptors are the boot GDT's.
            cpu.Entries[0] = 0;
            cpu.Entries[1] = SegmentDescriptor.KernelCode64.Value;
            cpu.Entries[2] = SegmentDescriptor.KernelData.Value;
            cpu.TaskState->Ist1 = cpu.DoubleFaultStackTop;
            cpu.TaskState->IoMapBase = (ushort)sizeof(TaskStateSegment);  // no I/O bitmap
            var tss = TssDescriptor.Available((ulong)cpu.TaskState, (uint)sizeof(TaskStateSegment) - 1);
            cpu.Entries[3] = tss.Low.Value;     // two slots
            cpu.Entries[4] = tss.High;

            DescriptorTablePointer pointer;
            pointer.Limit = 5 * 8 - 1;
            pointer.Base = (ulong)cpu.Entries;
            Cpu.LoadGdt(&pointer, KernelCode, KernelData);
            Cpu.LoadTaskRegister(Tss);
            return cpu;
        }
    }
}
