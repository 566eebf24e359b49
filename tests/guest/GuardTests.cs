using System;
using Kernel.Runtime;
using Kernel.Arch;

namespace Kernel.TestMode
{
    // The interrupt guard (kernel/arch/InterruptGuard.cs): its self-test, and
    // the check that closes every run.
    public static unsafe class GuardTests
    {
        public static void Register()
        {
            TestRunner.Add("guard.catches_a_delivery_with_if_clear"u8, &CatchesDeliveryWithIfClear);
            TestRunner.AddClosing("guard.no_interrupt_delivered_twice"u8, &NoInterruptDeliveredTwice);
        }

        private static ulong s_selfTestInterrupts;
        private static void OnGuardTestVector(InterruptFrame* frame) => s_selfTestInterrupts++;

        // A software interrupt taken with IF clear looks exactly like the
        // emulator's redelivery: the guard must count it on this processor, with its
        // vector and saved RFLAGS. The count is then taken back.
        private static void CatchesDeliveryWithIfClear()
        {
            PerCpu* cpu = PerCpu.Current;
            ulong before = cpu->ImpossibleInterrupts;
            ulong firstVector = cpu->FirstImpossibleVector, firstRip = cpu->FirstImpossibleRip, firstRflags = cpu->FirstImpossibleRflags;
            Interrupts.SetHandler(Cpu.GuardTestVector, &OnGuardTestVector);
            s_selfTestInterrupts = 0;
            Cpu.SoftwareInterruptWithInterruptsOff();
            Interrupts.SetHandler(Cpu.GuardTestVector, null);
            ulong caught = cpu->ImpossibleInterrupts - before;
            ulong vector = cpu->FirstImpossibleVector, rflags = cpu->FirstImpossibleRflags;
            // Undo, so that the closing check sees only real deliveries.
            cpu->ImpossibleInterrupts = before;
            if (before == 0) { cpu->FirstImpossibleVector = firstVector; cpu->FirstImpossibleRip = firstRip; cpu->FirstImpossibleRflags = firstRflags; }
            Expect.Equal(1ul, s_selfTestInterrupts);    // the handler ran once
            Expect.Equal(1ul, caught);    // deliveries the guard counted
            if (before == 0)
            {
                Expect.Equal((ulong)Cpu.GuardTestVector, vector);    // the vector it recorded
                Expect.Equal(0ul, rflags & Rflags.IF);    // saved RFLAGS.IF it recorded
            }
            Expect.Equal(0ul, cpu->InterruptDepth);    // handler depth after the handler returned
        }

        private static void NoInterruptDeliveredTwice()
        {
            InterruptGuard.Report();
            for (int i = 0; i < PerCpu.Count; i++)
            {
                PerCpu* cpu = PerCpu.Get(i);
                if (cpu->ImpossibleInterrupts == 0) continue;
                byte* detail = stackalloc byte[DetailCapacity];
                Expect.Equal(0ul, cpu->ImpossibleInterrupts, Detail(i, cpu, detail));
                return;
            }
        }

        // "on VP 1 the emulator delivered an interrupt twice: vector 0x5d at RIP 0x1034a0"
        private const int DetailCapacity = 160;

        private static Text Detail(int number, PerCpu* cpu, byte* buffer)
        {
            int n = 0;
            n += Put(buffer + n, "on VP "u8);
            n += Format.Decimal((ulong)number, buffer + n);
            n += Put(buffer + n, " the emulator delivered an interrupt twice: vector "u8);
            n += Format.Hex(cpu->FirstImpossibleVector, buffer + n);
            n += Put(buffer + n, " at RIP "u8);
            n += Format.Hex(cpu->FirstImpossibleRip, buffer + n);
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
