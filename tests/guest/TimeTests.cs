using Kernel.Arch;
using Kernel.Hv;

namespace Kernel.TestMode
{
    // Partition reference time and synthetic timers, after kvm-unit-tests'
    // hyperv_clock and hyperv_stimer.
    public static unsafe class TimeTests
    {
        public static void Register()
        {
            TestRunner.Add("time.ref_counter_monotonic"u8, &CounterMonotonic);
            TestRunner.Add("time.ref_counter_rate_matches_tsc_frequency"u8, &CounterRate);
            TestRunner.Add("time.tsc_page_valid"u8, &TscPageValid);
            TestRunner.Add("time.tsc_page_agrees_with_counter"u8, &TscPageAgrees);
            TestRunner.Add("stimer.one_shot_each_timer"u8, &OneShotEachTimer);
            TestRunner.Add("stimer.periodic"u8, &Periodic);
            TestRunner.Add("stimer.auto_enable"u8, &AutoEnable);
            TestRunner.Add("stimer.busy_slot_pending_then_eom"u8, &BusySlot);
            TestRunner.Add("stimer.direct_mode_vector_without_message"u8, &DirectMode);
        }

        public const byte TimerSint = 10;
        public const byte DirectVector = 0x60;
        private const ulong Ms = 10000;     // 1 ms in 100 ns units

        private static void CounterMonotonic()
        {
            if (!Need.ReferenceCounter()) return;
            ulong previous = ReferenceTime.ReadCounter(), first = previous;
            for (int i = 0; i < 1000; i++)
            {
                ulong now = ReferenceTime.ReadCounter();
                if (!Expect.True(now >= previous)) return;    // TIME_REF_COUNT never goes back
                previous = now;
            }
            Expect.True(previous > first);    // TIME_REF_COUNT advanced over 1000 reads
        }

        // 100 ns units, checked against the TSC and HV_X64_MSR_TSC_FREQUENCY over ~50 ms.
        private static void CounterRate()
        {
            if (!Need.ReferenceCounter() || !Need.FrequencyMsrs()) return;
            ulong frequency = Cpu.ReadMsr(HvMsr.TscFrequency);
            if (!Expect.InRange(1000000, 100000000000, frequency)) return;    // TSC frequency MSR (Hz)
            ulong r0 = ReferenceTime.ReadCounter(), t0 = Cpu.ReadTsc();
            while (ReferenceTime.ReadCounter() - r0 < 50 * Ms) Cpu.Pause();
            ulong r1 = ReferenceTime.ReadCounter(), t1 = Cpu.ReadTsc();
            ulong refElapsed = r1 - r0;
            ulong tscElapsedIn100ns = (t1 - t0) * 10000000 / frequency;
            // Allow 5%: the two reads are not simultaneous, and a nested TSC is emulated.
            // TSC ticks / TSC frequency, in 100 ns units, over 50 ms of TIME_REF_COUNT
            Expect.InRange(refElapsed - refElapsed / 20, refElapsed + refElapsed / 20, tscElapsedIn100ns);
        }

        private static void TscPageValid()
        {
            if (!Need.TscPage()) return;
            ReferenceTime.EnableTscPage();
            Expect.Equal((ulong)ReferenceTime.TscPage | 1, Cpu.ReadMsr(HvMsr.ReferenceTsc));    // REFERENCE_TSC = page | enable
            Expect.True(ReferenceTime.TscPage->TscSequence != 0);    // TscSequence non-zero (the page is usable; needs a stable host TSC)
            Expect.True(ReferenceTime.TscPage->TscScale != 0);    // TscScale non-zero
        }

        // counter(before) <= page time <= counter(after), within 1 ms of slack, many times over.
        private static void TscPageAgrees()
        {
            if (!Need.ReferenceCounter() || !Need.TscPage()) return;
            ReferenceTime.EnableTscPage();
            for (int i = 0; i < 200; i++)
            {
                ulong before = ReferenceTime.ReadCounter();
                if (!Expect.True(ReferenceTime.TryReadTscPage(out ulong page))) return;    // the TSC page can be read
                ulong after = ReferenceTime.ReadCounter();
                if (!Expect.InRange(before - Ms, after + Ms, page)) return;    // TSC page time between two counter reads (1 ms slack)
            }
        }

        private static HvTimerMessagePayload* TimerPayload(HvMessage* m) => (HvTimerMessagePayload*)m->Payload;

        private static bool WaitMessages(ulong count, ulong ms)
            => Clock.WaitAtLeast(&Synic.MessagesTaken[TimerSint], count, ms);

        private static void OneShotEachTimer()
        {
            if (!Need.SyntheticTimers()) return;
            for (int timer = 0; timer < SyntheticTimer.Count; timer++)
            {
                ulong taken = Synic.MessagesTaken[TimerSint];
                ulong due = ReferenceTime.ReadCounter() + 5 * Ms;
                SyntheticTimer.StartOneShot(timer, TimerSint, due);
                bool arrived = WaitMessages(taken + 1, 2000);
                ulong now = ReferenceTime.ReadCounter();
                Clock.Delay(20);
                ulong extra = Synic.MessagesTaken[TimerSint] - taken - 1;
                SyntheticTimer.Stop(timer);
                if (!Expect.True(arrived)) return;    // a timer message within 2 s
                HvMessage* m = Synic.LastReceived(TimerSint, extra);
                Expect.Equal(HvMessageType.HvMessageTimerExpired, m->Header.Type);    // message type
                Expect.Equal((ulong)timer, TimerPayload(m)->TimerIndex);    // TimerIndex
                Expect.InRange(due, now, TimerPayload(m)->ExpirationTime);    // ExpirationTime between the due time and now
                Expect.InRange(TimerPayload(m)->ExpirationTime, now, TimerPayload(m)->DeliveryTime);    // DeliveryTime after ExpirationTime
                Expect.Equal(0ul, extra);    // a one-shot timer fires once
                if (Expect.Failed) return;
            }
        }

        private static void Periodic()
        {
            if (!Need.SyntheticTimers()) return;
            const int timer = 1;
            ulong taken = Synic.MessagesTaken[TimerSint];
            ulong start = ReferenceTime.ReadCounter();
            SyntheticTimer.StartPeriodic(timer, TimerSint, 10 * Ms);
            bool arrived = WaitMessages(taken + 4, 3000);
            SyntheticTimer.Stop(timer);
            ulong elapsed = ReferenceTime.ReadCounter() - start;
            Expect.True(arrived);    // four periodic expirations within 3 s
            Expect.True(elapsed >= 30 * Ms);    // four 10 ms periods take at least 30 ms
            HvMessage* last = Synic.LastReceived(TimerSint);
            Expect.Equal((ulong)timer, TimerPayload(last)->TimerIndex);    // TimerIndex
            ulong t1 = TimerPayload(Synic.LastReceived(TimerSint, 1))->ExpirationTime, t2 = TimerPayload(last)->ExpirationTime;
            Expect.InRange(t1 + 10 * Ms, t1 + 1000 * Ms, t2);    // successive expirations at least one period apart
        }

        private static void AutoEnable()
        {
            if (!Need.SyntheticTimers()) return;
            const int timer = 2;
            ulong taken = Synic.MessagesTaken[TimerSint];
            // Far in the future first: a one-shot that has fired clears Enable again,
            // so a near expiry would make the check depend on how fast the host runs.
            SyntheticTimer.StartAutoEnable(timer, TimerSint, ReferenceTime.ReadCounter() + 60000 * Ms);
            bool enabledByCount = SyntheticTimer.Config(timer).Enable;
            SyntheticTimer.StartAutoEnable(timer, TimerSint, ReferenceTime.ReadCounter() + 5 * Ms);
            bool arrived = WaitMessages(taken + 1, 2000);
            SyntheticTimer.Stop(timer);
            Expect.True(enabledByCount);    // writing the count set Enable
            Expect.True(arrived);    // the timer fired
            Expect.Equal((ulong)timer, TimerPayload(Synic.LastReceived(TimerSint))->TimerIndex);    // TimerIndex
        }

        // A one-shot expiry that finds the slot busy sets MessagePending and is
        // redelivered after EOM. (KVM drops, rather than queues, a periodic tick
        // that finds the slot busy, to avoid piling ticks up: so two one-shots.)
        private static void BusySlot()
        {
            if (!Need.SyntheticTimers()) return;
            HvMessage* slot = &Vp.Current->Sim[TimerSint];
            ulong taken = Synic.MessagesTaken[TimerSint];
            Cpu.DisableInterrupts();
            SyntheticTimer.StartOneShot(3, TimerSint, ReferenceTime.ReadCounter() + 2 * Ms);
            bool first = Clock.WaitForValue((ulong*)slot, 0xFFFFFFFF, (ulong)HvMessageType.HvMessageTimerExpired, 2000);
            SyntheticTimer.StartOneShot(2, TimerSint, ReferenceTime.ReadCounter() + 2 * Ms);
            bool pending = Clock.WaitForValue((ulong*)slot, 0x0000FF0000000000, 1ul << 40, 2000);
            uint indexWhileBusy = ((HvTimerMessagePayload*)slot->Payload)->TimerIndex;
            Cpu.EnableInterrupts();
            bool second = WaitMessages(taken + 2, 2000);
            SyntheticTimer.Stop(3);
            SyntheticTimer.Stop(2);
            Expect.True(first);    // timer 3's expiry reached the slot
            Expect.True(pending);    // MessagePending set when timer 2 expired into the busy slot
            Expect.Equal(3ul, indexWhileBusy);    // the slot kept timer 3's message
            if (!Expect.True(second)) return;    // EOM let timer 2's message through
            Expect.Equal(3ul, TimerPayload(Synic.LastReceived(TimerSint, 1))->TimerIndex);    // first message: timer 3
            Expect.Equal(2ul, TimerPayload(Synic.LastReceived(TimerSint))->TimerIndex);    // second message: timer 2
        }

        private static ulong s_directInterrupts;
        private static void OnDirectTimer(InterruptFrame* frame) { s_directInterrupts++; Apic.EndOfInterrupt(); }

        private static void DirectMode()
        {
            if (!Need.DirectTimers()) return;
            const int timer = 0;
            Interrupts.SetHandler(DirectVector, &OnDirectTimer);
            s_directInterrupts = 0;
            ulong taken = Synic.MessagesTaken[TimerSint];
            SyntheticTimer.StartDirect(timer, DirectVector, ReferenceTime.ReadCounter() + 5 * Ms);
            bool arrived;
            fixed (ulong* count = &s_directInterrupts) arrived = Clock.WaitForValue(count, ~0ul, 1, 2000);
            Clock.Delay(20);
            SyntheticTimer.Stop(timer);
            Interrupts.SetHandler(DirectVector, null);
            Expect.True(arrived);    // vector 0x60 arrived
            Expect.Equal(1ul, s_directInterrupts);    // one interrupt for a one-shot direct timer
            Expect.Equal(taken, Synic.MessagesTaken[TimerSint]);    // no timer message
        }
    }
}
