using System;
using Kernel.Runtime;
using Kernel.Arch;
using Kernel.Hv;

namespace Kernel.TestMode
{
    // The interrupt guard (kernel/arch/InterruptGuard.cs): its self-test, and
    // the check that closes every run.
    public static unsafe class GuardTests
    {
        public static void Register()
        {
            TestRunner.Add("guard.catches_a_delivery_with_if_clear"u8, &CatchesDeliveryWithIfClear);
        }

        // The last test of every run, whatever the test= filter.
        public static TestCase Closing => new TestCase("guard.no_interrupt_delivered_twice"u8, &NoInterruptDeliveredTwice);

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
            Expect.Equal(1ul, s_selfTestInterrupts, "the handler ran once"u8);
            Expect.Equal(1ul, caught, "deliveries the guard counted"u8);
            if (before == 0)
            {
                Expect.Equal((ulong)Cpu.GuardTestVector, vector, "the vector it recorded"u8);
                Expect.Equal(0ul, rflags & Rflags.IF, "saved RFLAGS.IF it recorded"u8);
            }
            Expect.Equal(0ul, vp->InterruptDepth, "handler depth after the handler returned"u8);
        }

        private static void NoInterruptDeliveredTwice()
        {
            InterruptGuard.Report();
            for (int i = 0; i < Vp.Count; i++)
            {
                Vp* vp = Vp.Get(i);
                if (vp->ImpossibleInterrupts == 0) continue;
                byte* detail = stackalloc byte[DetailCapacity];
                Expect.Equal(0ul, vp->ImpossibleInterrupts, Detail(i, vp, detail));
                return;
            }
        }

        // "on VP 1 the emulator delivered an interrupt twice: vector 0x5d at RIP 0x1034a0"
        private const int DetailCapacity = 160;

        private static Text Detail(int number, Vp* vp, byte* buffer)
        {
            int n = 0;
            n += Put(buffer + n, "on VP "u8);
            n += Format.Decimal((ulong)number, buffer + n);
            n += Put(buffer + n, " the emulator delivered an interrupt twice: vector "u8);
            n += Format.Hex(vp->FirstImpossibleVector, buffer + n);
            n += Put(buffer + n, " at RIP "u8);
            n += Format.Hex(vp->FirstImpossibleRip, buffer + n);
            buffer[n] = 0;                                 // a Text ends in a zero byte
            return new Text(buffer);                       // Expect copies it: the report comes after the test
        }

        private static int Put(byte* at, ReadOnlySpan<byte> s)
        {
            Memory.Copy(at, s.Pointer, (ulong)s.Length);
            return s.Length;
        }
    }
}
