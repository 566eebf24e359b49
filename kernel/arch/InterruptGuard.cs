using Kernel.Hv;

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
    // Counted per VP and reported by the last test of every run, so such a
    // delivery can never pass as a guest bug or hide as a flake.
    public static unsafe class InterruptGuard
    {
        // Called by the dispatchers for vectors 32-255 (kernel/arch/Interrupts.cs,
        // and kernel/hv/Synic.cs for the SINTs) before the handler, with the
        // running VP the entry read from GS.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public static void Enter(InterruptFrame* frame, Vp* vp)
        {
            if ((frame->Rflags & Rflags.IF) == 0 || vp->InterruptDepth != 0) Record(frame, vp);
            vp->InterruptDepth = vp->InterruptDepth + 1;   // not ++, which RyuJIT makes a lea and an inc through it
        }

        public static void Leave(Vp* vp) => vp->InterruptDepth = vp->InterruptDepth - 1;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static void Record(InterruptFrame* frame, Vp* vp)   // the entry's own argument order: no moves before the call
        {
            if (vp->ImpossibleInterrupts++ != 0) return;
            vp->FirstImpossibleVector = frame->Vector;
            vp->FirstImpossibleRip = frame->Rip;
            vp->FirstImpossibleRflags = frame->Rflags;
            vp->FirstImpossibleDepth = vp->InterruptDepth;
        }

        // One line per VP that saw any: "interrupt guard: VP 1: 2 impossible
        // deliveries, the first vector 0x5d at RIP 0x... RFLAGS 0x86 depth 1".
        public static void Report()
        {
            for (int i = 0; i < Vp.Count; i++)
            {
                Vp* vp = Vp.Get(i);
                if (vp->ImpossibleInterrupts == 0) continue;
                Console.Write("interrupt guard: VP "u8);
                Console.WriteDecimal((ulong)i);
                Console.Write(": "u8);
                Console.WriteDecimal(vp->ImpossibleInterrupts);
                Console.Write(" impossible deliveries (the emulator delivered an interrupt twice); the first: vector "u8);
                Console.WriteHex(vp->FirstImpossibleVector);
                Console.Write(" RIP "u8);
                Console.WriteHex(vp->FirstImpossibleRip);
                Console.Write(" RFLAGS "u8);
                Console.WriteHex(vp->FirstImpossibleRflags);
                Console.Write(" handler depth "u8);
                Console.WriteDecimal(vp->FirstImpossibleDepth);
                Console.WriteLine();
            }
        }
    }
}
