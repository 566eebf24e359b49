namespace Kernel.Arch
{
    // The control-register, EFER and RFLAGS bits the kernel sets or checks, named
    // as the Intel SDM names them. boot/x86.inc names the same bits for the way
    // to long mode (PVH entry, UEFI take-over, the AP trampoline).

    // SDM Vol 3A 2.5 "Control Registers", CR0.
    public static class Cr0
    {
        public const ulong MP = 1ul << 1;       // monitor coprocessor: SSE with FWAIT semantics
        public const ulong EM = 1ul << 2;       // set, SSE instructions raise #UD
        public const ulong WP = 1ul << 16;      // supervisor writes honour read-only pages
        public const ulong PG = 1ul << 31;
    }

    // SDM Vol 3A 2.5, CR4.
    public static class Cr4
    {
        public const ulong PAE = 1ul << 5;
        public const ulong OSFXSR = 1ul << 9;       // SSE and FXSAVE/FXRSTOR enabled
        public const ulong OSXMMEXCPT = 1ul << 10;  // SIMD floating-point exceptions raise #XM
    }

    // SDM Vol 3A 2.2.1 "Extended Feature Enable Register".
    public static class Efer
    {
        public const uint Msr = 0xC0000080;
        public const ulong LME = 1ul << 8;      // long mode enable
        public const ulong LMA = 1ul << 10;     // long mode active (read-only)
        public const ulong NXE = 1ul << 11;     // the XD (no-execute) bit in page tables
    }

    // SDM Vol 1 3.4.3 "EFLAGS Register".
    public static class Rflags
    {
        public const ulong IF = 1ul << 9;       // maskable interrupts enabled
    }
}
