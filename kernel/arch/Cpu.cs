using System.Runtime;
using System.Runtime.CompilerServices;

namespace Kernel.Arch
{
    public struct CpuidResult
    {
        public uint Eax, Ebx, Ecx, Edx;
    }

    // Operand of lgdt/lidt/sgdt/sidt: a 16-bit limit and a 64-bit base, packed.
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential, Pack = 1)]
    public struct DescriptorTablePointer
    {
        public ushort Limit;
        public ulong Base;
    }

    // The CPU intrinsics: each is one stub in boot/stubs.asm, declared here once.
    // RuntimeImport makes each call a plain direct call, with no P/Invoke frame.
    public static unsafe class Cpu
    {
        [RuntimeImport("cpu_cpuid")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void CpuidInto(uint leaf, uint subleaf, CpuidResult* result);

        public static CpuidResult Cpuid(uint leaf, uint subleaf = 0)
        {
            CpuidResult r;
            CpuidInto(leaf, subleaf, &r);
            return r;
        }

        // The end of the physical address space: CPUID 0x80000008 EAX[7:0] bits
        // (36 when the leaf is missing, as the SDM says to assume).
        public static ulong PhysicalAddressLimit
        {
            get
            {
                int bits = Cpuid(0x80000000).Eax >= 0x80000008 ? (int)(Cpuid(0x80000008).Eax & 0xFF) : 36;
                return 1ul << bits;
            }
        }

        [RuntimeImport("cpu_rdmsr")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern ulong ReadMsr(uint msr);

        [RuntimeImport("cpu_wrmsr")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void WriteMsr(uint msr, ulong value);

        // Return true when the access raised #GP (the fault is caught and recorded
        // in Interrupts.LastFault, never fatal).
        [RuntimeImport("cpu_rdmsr_safe")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern int ReadMsrSafe(uint msr, ulong* value);
        public static bool TryReadMsr(uint msr, out ulong value)
        {
            ulong v = 0;
            bool faulted = ReadMsrSafe(msr, &v) != 0;
            value = v;
            return !faulted;
        }

        [RuntimeImport("cpu_wrmsr_safe")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern int WriteMsrSafe(uint msr, ulong value);
        public static bool TryWriteMsr(uint msr, ulong value) => WriteMsrSafe(msr, value) == 0;

        [RuntimeImport("cpu_read_u64_safe")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern int ReadU64Safe(ulong address, ulong* value);
        public static bool TryRead(ulong address, out ulong value)
        {
            ulong v = 0;
            bool faulted = ReadU64Safe(address, &v) != 0;
            value = v;
            return !faulted;
        }

        [RuntimeImport("cpu_write_u8_safe")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern int WriteU8Safe(ulong address, byte value);
        public static bool TryWrite(ulong address, byte value) => WriteU8Safe(address, value) == 0;

        // Executes ud2; returns true once the #UD handler resumed execution.
        [RuntimeImport("cpu_ud2_safe")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern int Ud2Safe();
        public static bool RaiseInvalidOpcode() => Ud2Safe() != 0;

        [RuntimeImport("cpu_divide_safe")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern int DivideSafe(ulong dividend, ulong divisor, ulong* quotient);
        public static bool TryDivide(ulong dividend, ulong divisor, out ulong quotient)
        {
            ulong q = 0;
            bool faulted = DivideSafe(dividend, divisor, &q) != 0;
            quotient = q;
            return !faulted;
        }

        [RuntimeImport("cpu_inb")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern byte InByte(ushort port);
        [RuntimeImport("cpu_outb")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void OutByte(ushort port, byte value);
        [RuntimeImport("cpu_ind")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern uint InDword(ushort port);
        [RuntimeImport("cpu_outd")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void OutDword(ushort port, uint value);

        [RuntimeImport("cpu_rdtsc")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern ulong ReadTsc();

        // lfence; rdtsc: the read happens after every earlier instruction completed.
        [RuntimeImport("cpu_rdtsc_ordered")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern ulong ReadTscOrdered();

        [RuntimeImport("cpu_cli")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void DisableInterrupts();
        [RuntimeImport("cpu_sti")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void EnableInterrupts();
        [RuntimeImport("cpu_hlt")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void Halt();
        [RuntimeImport("cpu_sti_hlt")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void EnableInterruptsAndHalt();
        [RuntimeImport("cpu_pause")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void Pause();
        // Vector 0xF0 through its gate with IF clear (the interrupt guard's self-test).
        public const byte GuardTestVector = 0xF0;
        [RuntimeImport("cpu_int_with_interrupts_off")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void SoftwareInterruptWithInterruptsOff();
        [RuntimeImport("cpu_read_rflags")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern ulong ReadFlags();

        // Interrupts off on this VP until RestoreInterrupts, as Linux's
        // local_irq_save: returns the caller's RFLAGS, so that nested sections
        // leave IF as they found it.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong SaveFlagsAndDisableInterrupts()
        {
            ulong flags = ReadFlags();
            DisableInterrupts();
            return flags;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void RestoreInterrupts(ulong flags)
        {
            if ((flags & Rflags.IF) != 0) EnableInterrupts();
        }

        public static bool InterruptsEnabled() => (ReadFlags() & Rflags.IF) != 0;

        [RuntimeImport("cpu_lidt")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void LoadIdt(DescriptorTablePointer* pointer);
        [RuntimeImport("cpu_lgdt")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void LoadGdt(DescriptorTablePointer* pointer, ushort codeSelector, ushort dataSelector);
        [RuntimeImport("cpu_sgdt")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void StoreGdt(DescriptorTablePointer* pointer);
        [RuntimeImport("cpu_ltr")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void LoadTaskRegister(ushort selector);
        [RuntimeImport("cpu_str")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern ushort StoreTaskRegister();

        [RuntimeImport("cpu_invlpg")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void InvalidatePage(ulong address);

        [RuntimeImport("cpu_read_cr0")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern ulong ReadCr0();
        [RuntimeImport("cpu_write_cr0")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void WriteCr0(ulong value);
        [RuntimeImport("cpu_read_cr2")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern ulong ReadCr2();
        [RuntimeImport("cpu_read_cr3")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern ulong ReadCr3();
        [RuntimeImport("cpu_write_cr3")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void WriteCr3(ulong value);
        [RuntimeImport("cpu_read_cr4")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern ulong ReadCr4();

        // Atomically stores `value` and returns what was there (xchg with memory is locked).
        [RuntimeImport("cpu_atomic_swap64")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern ulong AtomicSwap(ulong* address, ulong value);

        // Atomically sets `bits` in *address (lock or).
        [RuntimeImport("cpu_atomic_or32")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void AtomicOr32(uint* address, uint bits);

        // The running processor's PerCpu record (GS:0; PerCpu.Current).
        [RuntimeImport("cpu_this_cpu")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void* ThisCpu();
        public const uint GsBaseMsr = 0xC0000101;

        [RuntimeImport("cpu_crash_ud")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void CrashInvalidOpcode();
        [RuntimeImport("cpu_crash_divide")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern ulong CrashDivide(ulong dividend, ulong divisor);

        // Points RSP at `stackTop` and pushes: used by crash=df to prove the #DF IST stack.
        [RuntimeImport("cpu_crash_stack_overflow")] [MethodImpl(MethodImplOptions.InternalCall)]
        public static extern void CrashWithStack(ulong stackTop);
    }
}
