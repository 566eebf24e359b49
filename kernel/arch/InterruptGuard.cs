namespace Kernel.Arch
{
    // A permanent check that the (virtual) CPU delivered each external
    // interrupt once and only when it could. Every gate is an interrupt gate
    // (IF is cleared on entry) and no handler sets IF again, so a maskable
    // interrupt can never interrupt a handler, and its saved RFLAGS always has
    // IF set. A frame with IF clear, or a second entry while a handler runs,
    // means the emulator delivered something twice: QEMU's TCG nested SVM
    // did exactly that (helper_vmrun left exception_index set, and the vector
    // came again as an exception with IF=0; see docs/qemu-svm-bugs.md).
    // Counted per processor and reported by the last test of every run, so such a
    // delivery can never pass as a guest bug or hide as a flake.
    public static unsafe class InterruptGuard
    {
        // Called by the dispatchers for vectors 32-255 (kernel/arch/Interrupts.cs,
        // and kernel/hv/Synic.cs for the SINTs) before the handler, with the
        // running processor's record the entry read from GS.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static void Enter(InterruptFrame* frame, PerCpu* cpu)
        {
            if ((frame->Rflags & Rflags.IF) == 0 || cpu->InterruptDepth != 0) Record(frame, cpu);
            cpu->InterruptDepth = cpu->InterruptDepth + 1;   // not ++, which RyuJIT makes a lea and an inc through it
        }

        public static void Leave(PerCpu* cpu) => cpu->InterruptDepth = cpu->InterruptDepth - 1;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static void Record(InterruptFrame* frame, PerCpu* cpu)   // the entry's own argument order: no moves before the call
        {
            if (cpu->ImpossibleInterrupts++ != 0) return;
            cpu->FirstImpossibleVector = frame->Vector;
            cpu->FirstImpossibleRip = frame->Rip;
            cpu->FirstImpossibleRflags = frame->Rflags;
            cpu->FirstImpossibleDepth = cpu->InterruptDepth;
        }

        // One line per processor that saw any: "interrupt guard: VP 1: 2 impossible
        // deliveries, the first vector 0x5d at RIP 0x... RFLAGS 0x86 depth 1".
        public static void Report()
        {
            for (int i = 0; i < PerCpu.Count; i++)
            {
                PerCpu* cpu = PerCpu.Get(i);
                if (cpu->ImpossibleInterrupts == 0) continue;
                Console.Print("interrupt guard: VP %u: %u impossible deliveries (the emulator delivered an interrupt twice); the first: vector 0x%x"u8,
                    i, cpu->ImpossibleInterrupts, cpu->FirstImpossibleVector);
                Console.Print(" RIP 0x%x RFLAGS 0x%x handler depth %u\n"u8, cpu->FirstImpossibleRip, cpu->FirstImpossibleRflags, cpu->FirstImpossibleDepth);
            }
        }
    }
}
