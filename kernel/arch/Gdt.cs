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

            cpu.Entries[0] = 0;
            cpu.Entries[1] = 0x00AF9A000000FFFF;   // 64-bit code: present, DPL 0, L=1
            cpu.Entries[2] = 0x00CF92000000FFFF;   // data: present, writable
            cpu.TaskState->Ist1 = cpu.DoubleFaultStackTop;
            cpu.TaskState->IoMapBase = (ushort)sizeof(TaskStateSegment);  // no I/O bitmap
            ulong tssBase = (ulong)cpu.TaskState;
            ulong limit = (ulong)sizeof(TaskStateSegment) - 1;
            // 64-bit TSS descriptor (type 9, available), 16 bytes: base split over both slots.
            cpu.Entries[3] = (limit & 0xFFFF) | ((tssBase & 0xFFFFFF) << 16) | (0x89ul << 40)
                             | (((limit >> 16) & 0xF) << 48) | (((tssBase >> 24) & 0xFF) << 56);
            cpu.Entries[4] = tssBase >> 32;

            DescriptorTablePointer pointer;
            pointer.Limit = 5 * 8 - 1;
            pointer.Base = (ulong)cpu.Entries;
            Cpu.LoadGdt(&pointer, KernelCode, KernelData);
            Cpu.LoadTaskRegister(Tss);
            return cpu;
        }
    }
}
