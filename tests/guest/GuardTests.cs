using Kernel.Arch;
using Kernel.Hv;

namespace Kernel.TestMode
{
    // The interrupt guard (kernel/arch/InterruptGuard.cs): its self-test, and
    // the check that closes every run.
    public static unsafe class GuardTests
    {
        public static TestCase[] All() => new TestCase[]
        {
            new TestCase("guard.catches_a_delivery_with_if_clear", &CatchesDeliveryWithIfClear),
        };

        // The last test of every run, whatever the test= filter.
        public static TestCase Closing => new TestCase("guard.no_interrupt_delivered_twice", &NoInterruptDeliveredTwice);

        private static ulong s_selfTestInterrupts;
        private static void OnGuardTestVector(InterruptFrame* frame) => s_selfTestInterrupts++;

        // A software interrupt taken with IF clear looks exactly like the
        // emulator's redelivery: the guard must count it on this VP, with its
        // vector and saved RFLAGS. The count is then taken back.
        private static void CatchesDeliveryWithIfClear()
        {
            Vp* vp = Vp.Current;
            ulong before = vp->ImpossibleInterrupts;
            ulong firstVector = vp->FirstImpossibleVector, firstRip = vp->FirstImpossibleRip, firstRflags = vp->FirstImpossibleRflags;
            Interrupts.SetHandler(Cpu.GuardTestVector, &OnGuardTestVector);
            s_selfTestInterrupts = 0;
            Cpu.SoftwareInterruptWithInterruptsOff();
            Interrupts.SetHandler(Cpu.GuardTestVector, null);
            ulong caught = vp->ImpossibleInterrupts - before;
            ulong vector = vp->FirstImpossibleVector, rflags = vp->FirstImpossibleRflags;
            // Undo, so that the closing check sees only real deliveries.
            vp->ImpossibleInterrupts = before;
            if (before == 0) { vp->FirstImpossibleVector = firstVector; vp->FirstImpossibleRip = firstRip; vp->FirstImpossibleRflags = firstRflags; }
            Expect.Equal(1ul, s_selfTestInterrupts, "the handler ran once");
            Expect.Equal(1ul, caught, "deliveries the guard counted");
            if (before == 0)
            {
                Expect.Equal((ulong)Cpu.GuardTestVector, vector, "the vector it recorded");
                Expect.Equal(0ul, rflags & Cpu.RflagsInterruptEnable, "saved RFLAGS.IF it recorded");
            }
            Expect.Equal(0ul, vp->InterruptDepth, "handler depth after the handler returned");
        }

        private static void NoInterruptDeliveredTwice()
        {
            InterruptGuard.Report();
            for (int i = 0; i < Vp.Count; i++)
            {
                Vp* vp = Vp.Get(i);
                if (vp->ImpossibleInterrupts == 0) continue;
                Expect.Equal(0ul, vp->ImpossibleInterrupts, Detail(i, vp));
                return;
            }
        }

        // "on VP 1 the emulator delivered an interrupt twice: vector 0x5d at RIP 0x1034a0"
        private static string Detail(int number, Vp* vp)
        {
            char* buffer = stackalloc char[160];
            int n = 0;
            n += Put(buffer + n, "on VP ");
            n += Format.Decimal((ulong)number, buffer + n);
            n += Put(buffer + n, " the emulator delivered an interrupt twice: vector ");
            n += Format.Hex(vp->FirstImpossibleVector, buffer + n);
            n += Put(buffer + n, " at RIP ");
            n += Format.Hex(vp->FirstImpossibleRip, buffer + n);
            string text = new string(' ', n);
            fixed (char* p = &text.GetPinnableReference())
                for (int i = 0; i < n; i++) p[i] = buffer[i];
            return text;
        }

        private static int Put(char* at, string s)
        {
            for (int i = 0; i < s.Length; i++) at[i] = s[i];
            return s.Length;
        }
    }
}
