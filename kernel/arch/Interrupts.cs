using System;
using System.Runtime;
using System.Runtime.InteropServices;
using Kernel.Runtime;

namespace Kernel.Arch
{
    // The stack image boot/interrupts.asm builds for an external interrupt
    // (vectors 32-255): the caller-saved registers it pushed (all that a call
    // into C# may change; the callee-saved ones the C# code keeps by the ABI),
    // the vector, then what the CPU pushed. Cpu is a slot the entry leaves for
    // alignment, which the dispatcher fills in with the processor that took
    // the interrupt (the entry reads it from GS), so that handlers need not
    // look it up again.
    public unsafe struct InterruptFrame
    {
        public PerCpu* Cpu;
        public ulong R11, R10, R9, R8, Rdi, Rsi, Rdx, Rcx, Rax;
        private ulong _pushedVector;
        public ulong Rip, Cs, Rflags, Rsp, Ss;

        // The entry pushes the vector with push imm8, which sign-extends:
        // vectors 0x80-0xFF fill the slot's upper bytes with ones. Its low
        // byte is the vector (one movzx, as a qword load is one mov).
        public byte Vector => (byte)_pushedVector;
    }

    // The stack image for an exception (vectors 0-31): the same registers, the
    // vector and the error code (0 where the CPU pushes none). Below it the
    // entry also saved rbx, rbp, r12-r15 and the FXSAVE image: an exception
    // can come from any instruction, and it is rare, so it keeps everything.
    // Vectors 0-31 sign-extend to themselves, so Vector is the whole slot.
    public struct ExceptionFrame
    {
        public ulong R11, R10, R9, R8, Rdi, Rsi, Rdx, Rcx, Rax;
        public ulong Vector, ErrorCode;
        public ulong Rip, Cs, Rflags, Rsp, Ss;
    }

    // What the last caught exception looked like (see Cpu.Try*: those stubs list
    // their faulting instruction in the .ex_table, and we resume them there).
    public struct FaultRecord
    {
        public ulong Vector, ErrorCode, Rip, Cr2;
        public ulong Count;
    }

    public static unsafe class Interrupts
    {
        public const int ExceptionCount = 32;
        public const byte SpuriousVector = 0xFF;
        // boot/interrupts.asm ENTRY_STRIDE: vector v enters at BootSymbols.InterruptEntries + EntryStride * v.
        public const int EntryStride = 8;

        private struct Gate
        {
            public ushort OffsetLow, Selector;
            public byte Ist, TypeAttributes;
            public ushort OffsetMiddle;
            public uint OffsetHigh, Reserved;
        }

        // First of the statics: ilc addresses a class's first static field
        // RIP-relative in one instruction, and every interrupt reads this one.
        private static delegate*<InterruptFrame*, void>* s_handlers;
        private static Gate* s_idt;
        public static FaultRecord LastFault;

        // Hook for the Hyper-V crash MSRs (kernel/hv): called with the frame of a fatal exception.
        public static delegate*<ExceptionFrame*, void> FatalExceptionHook;

        public static void Initialize()
        {
            s_idt = (Gate*)PageAllocator.Allocate(zero: true);
            s_handlers = (delegate*<InterruptFrame*, void>*)PageAllocator.Allocate(zero: true);
            ulong stub = BootSymbols.Get()->InterruptEntries;      // vector 0's entry; each next one EntryStride on
            for (int vector = 0; vector < 256; vector++, stub += EntryStride)
            {
                Gate* gate = &s_idt[vector];
                gate->OffsetLow = (ushort)stub;
                gate->Selector = Gdt.KernelCode;
                gate->Ist = vector == 8 ? (byte)Gdt.DoubleFaultIst : (byte)0;
                gate->TypeAttributes = 0x8E;    // present, DPL 0, 64-bit interrupt gate (IF cleared on entry)
                gate->OffsetMiddle = (ushort)(stub >> 16);
                gate->OffsetHigh = (uint)(stub >> 32);
            }
            LoadOnThisCpu();
        }

        public static void LoadOnThisCpu()
        {
            DescriptorTablePointer pointer;
            pointer.Limit = 256 * 16 - 1;
            pointer.Base = (ulong)s_idt;
            Cpu.LoadIdt(&pointer);
        }

        public static int GateIst(int vector) => s_idt[vector].Ist & 7;

        public static ulong GateAddress(int vector)
            => s_idt[vector].OffsetLow | ((ulong)s_idt[vector].OffsetMiddle << 16) | ((ulong)s_idt[vector].OffsetHigh << 32);

        // Points a vector's gate at other code (the bench's timing entries); every VP shares the IDT.
        public static void SetGateAddress(int vector, ulong address)
        {
            Gate* gate = &s_idt[vector];
            gate->OffsetLow = (ushort)address;
            gate->OffsetMiddle = (ushort)(address >> 16);
            gate->OffsetHigh = (uint)(address >> 32);
        }

        public static void SetHandler(byte vector, delegate*<InterruptFrame*, void> handler) => s_handlers[vector] = handler;

        // External interrupts but the SINTs (kernel/hv/Synic.cs has those), from
        // boot/interrupts.asm interrupt_common, with the running processor. An export
        // rather than an UnmanagedCallersOnly entry: the hot path has no use
        // for the reverse P/Invoke frame (RuntimeExport methods take the
        // platform ABI, and the entry saved all a call may clobber).
        [RuntimeExport("interrupt_dispatch")]
        private static void DispatchInterrupt(InterruptFrame* frame, PerCpu* cpu)
        {
            var handler = s_handlers[frame->Vector];
            if (handler == null) { Unhandled(frame); return; }
            InterruptGuard.Enter(frame, cpu);
            frame->Cpu = cpu;
            handler(frame);
            InterruptGuard.Leave(cpu);
        }

        private static void Unhandled(InterruptFrame* frame)
        {
            if (frame->Vector == SpuriousVector) return;    // spurious APIC interrupts need no EOI
            Console.Print("\nunexpected interrupt, vector %d\n"u8, frame->Vector);
            Panic.Fail("interrupt with no handler"u8);
        }

        // Exceptions, from boot/interrupts.asm exception_common.
        [UnmanagedCallersOnly(EntryPoint = "exception_dispatch")]
        private static void DispatchException(ExceptionFrame* frame)
        {
            if (TryResumeAtFixup(frame)) return;
            ReportFatalException(frame);
        }

        // The .ex_table (boot/abi.inc EXTABLE) pairs a faulting RIP with a RIP to resume at.
        private static bool TryResumeAtFixup(ExceptionFrame* frame)
        {
            BootSymbols* symbols = BootSymbols.Get();
            for (ulong* entry = (ulong*)symbols->ExTableStart; entry < (ulong*)symbols->ExTableEnd; entry += 2)
            {
                if (entry[0] != frame->Rip) continue;
                LastFault.Vector = frame->Vector;
                LastFault.ErrorCode = frame->ErrorCode;
                LastFault.Rip = frame->Rip;
                LastFault.Cr2 = frame->Vector == 14 ? Cpu.ReadCr2() : 0;
                LastFault.Count++;
                frame->Rip = entry[1];
                return true;
            }
            return false;
        }

        private static void ReportFatalException(ExceptionFrame* frame)
        {
            ulong cr2 = Cpu.ReadCr2();
            Console.EnterEmergencyMode();
            Console.Print("\nFATAL EXCEPTION %s (vector %d) error code 0x%x"u8, ExceptionName((int)frame->Vector), frame->Vector, frame->ErrorCode);
            Console.Print(" RIP 0x%016x CR2 0x%016x RSP 0x%016x\n"u8, frame->Rip, cr2, frame->Rsp);
            if (FatalExceptionHook != null) FatalExceptionHook(frame);
            GuestExit.Exit(GuestExit.Status.Crashed);
        }

        public static Text ExceptionName(int vector)
        {
            switch (vector)
            {
                case 0: return "#DE divide error"u8;
                case 1: return "#DB debug"u8;
                case 2: return "NMI"u8;
                case 3: return "#BP breakpoint"u8;
                case 4: return "#OF overflow"u8;
                case 5: return "#BR bound range exceeded"u8;
                case 6: return "#UD invalid opcode"u8;
                case 7: return "#NM device not available"u8;
                case 8: return "#DF double fault"u8;
                case 9: return "coprocessor segment overrun"u8;
                case 10: return "#TS invalid TSS"u8;
                case 11: return "#NP segment not present"u8;
                case 12: return "#SS stack-segment fault"u8;
                case 13: return "#GP general protection"u8;
                case 14: return "#PF page fault"u8;
                case 16: return "#MF x87 floating-point error"u8;
                case 17: return "#AC alignment check"u8;
                case 18: return "#MC machine check"u8;
                case 19: return "#XM SIMD floating-point"u8;
                case 20: return "#VE virtualization exception"u8;
                case 21: return "#CP control protection"u8;
                case 28: return "#HV hypervisor injection"u8;
                case 29: return "#VC VMM communication"u8;
                case 30: return "#SX security exception"u8;
                default: return "reserved exception"u8;
            }
        }
    }
}
