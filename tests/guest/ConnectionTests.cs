using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;

namespace Kernel.TestMode
{
    // Events and messages through QEMU's hyperv-testdev (TLFS 11.8.4, 11.9):
    // SINT routes, event connections (HvCallSignalEvent) and message
    // connections (HvCallPostMessage) in both directions, as kvm-unit-tests'
    // hyperv_connections. The Direct calls are in DirectTests.
    public static unsafe class ConnectionTests
    {
        public static void Register()
        {
            TestRunner.Add("synic.route_raises_sint"u8, &RouteRaisesSint);
            TestRunner.Add("events.signal_sets_exactly_its_flag"u8, &SignalSetsExactlyItsFlag);
            TestRunner.Add("events.slow_form_sets_flag"u8, &SlowFormSetsFlag);
            TestRunner.Add("events.already_set_raises_no_interrupt"u8, &AlreadySetRaisesNoInterrupt);
            TestRunner.Add("events.masked_sint_raises_no_interrupt"u8, &MaskedSintRaisesNoInterrupt);
            TestRunner.Add("messages.echoed_into_sim_slot"u8, &MessageEchoedIntoSimSlot);
            TestRunner.Add("messages.busy_slot_sets_pending_and_eom_redelivers"u8, &BusySlotPendingThenEom);
        }

        private const ulong WaitMs = 2000;       // async delivery (QEMU's event loop) bound
        private const ulong QuietMs = 100;       // how long "no interrupt" is watched for

        private static void RouteRaisesSint()
        {
            if (!Need.TestDevice()) return;
            const int sint = 3;
            ulong interrupts = Synic.Interrupts[sint], flags = Synic.FlagsTaken[sint], messages = Synic.MessagesTaken[sint];
            TestDevice.CreateSintRoute(0, sint);
            TestDevice.RaiseSint(0, sint);
            bool arrived = Clock.WaitAtLeast(&Synic.Interrupts[sint], interrupts + 1, WaitMs);
            TestDevice.DestroySintRoute(0, sint);
            Expect.True(arrived);    // SINT 3 interrupt within 2 s
            Expect.Equal(interrupts + 1, Synic.Interrupts[sint]);    // SINT 3 interrupts
            Expect.Equal(flags, Synic.FlagsTaken[sint]);    // event flags consumed
            Expect.Equal(messages, Synic.MessagesTaken[sint]);    // messages consumed
        }

        private static int s_lastFlag;
        private static void RecordFlag(int sint, int flag) => s_lastFlag = flag;

        // With interrupts off, watch the SIEF page itself: exactly bit `conn` of the
        // SINT's area becomes set. Then let the interrupt in: one interrupt, one flag.
        private static void SignalAndCheckFlag(bool fast)
        {
            const int sint = 5;
            uint conn = fast ? 9u : 10u;
            TestDevice.CreateEventConnection(conn, 0, sint);
            Synic.EventHandlers[sint] = &RecordFlag;
            s_lastFlag = -1;
            ulong interrupts = Synic.Interrupts[sint];
            ulong* area = Synic.SiefArea(Vp.Current, sint);

            Cpu.DisableInterrupts();
            HvCallResult r = fast ? Hypercall.SignalEvent(conn, 0) : Hypercall.SignalEventSlow(conn, 0);
            bool set = Clock.WaitForValue(&area[conn / 64], 1ul << (int)(conn % 64), 1ul << (int)(conn % 64), WaitMs);
            ulong otherBits = 0;
            for (int w = 0; w < 32; w++) otherBits |= w == conn / 64 ? area[w] & ~(1ul << (int)(conn % 64)) : area[w];
            Cpu.EnableInterrupts();
            bool interrupted = Clock.WaitAtLeast(&Synic.Interrupts[sint], interrupts + 1, WaitMs);
            Clock.Delay(QuietMs);

            Synic.EventHandlers[sint] = null;
            TestDevice.DestroyEventConnection(conn);
            Expect.Equal(HvStatus.Success, r.Status, fast ? "HvCallSignalEvent (fast) status"u8 : "HvCallSignalEvent (memory form) status"u8);
            Expect.True(set);    // flag `conn` set in the SINT's SIEF area
            Expect.Equal(0ul, otherBits);    // no other flag set in the area
            Expect.True(interrupted);    // an interrupt arrived
            Expect.Equal(interrupts + 1, Synic.Interrupts[sint]);    // exactly one interrupt
            Expect.Equal((ulong)conn, (ulong)(long)s_lastFlag);    // the handler was given flag `conn`
            Expect.Equal(0ul, area[conn / 64] & (1ul << (int)(conn % 64)));    // the handler cleared the flag
        }

        private static void SignalSetsExactlyItsFlag()
        {
            if (!Need.TestDevice() || !Need.SignalEvents()) return;
            SignalAndCheckFlag(fast: true);
        }

        private static void SlowFormSetsFlag()
        {
            if (!Need.TestDevice() || !Need.SignalEvents()) return;
            SignalAndCheckFlag(fast: false);
        }

        private static ulong s_rawInterrupts;
        private static void CountOnly(int sint) => s_rawInterrupts++;

        private static void AlreadySetRaisesNoInterrupt()
        {
            if (!Need.TestDevice() || !Need.SignalEvents()) return;
            const int sint = 6;
            const uint conn = 11;
            TestDevice.CreateEventConnection(conn, 0, sint);
            Synic.RawHandlers[sint] = &CountOnly;      // leaves the flag set
            s_rawInterrupts = 0;
            ulong* area = Synic.SiefArea(Vp.Current, sint);
            HvCallResult first = Hypercall.SignalEvent(conn, 0);
            bool firstArrived;
            fixed (ulong* counter = &s_rawInterrupts) firstArrived = Clock.WaitAtLeast(counter, 1, WaitMs);
            HvCallResult second = Hypercall.SignalEvent(conn, 0);
            Clock.Delay(QuietMs);
            ulong count = s_rawInterrupts;
            bool stillSet = (area[0] & (1ul << (int)conn)) != 0;
            area[0] = 0;
            Synic.RawHandlers[sint] = null;
            TestDevice.DestroyEventConnection(conn);
            Expect.Equal(HvStatus.Success, first.Status);    // first signal status
            Expect.Equal(HvStatus.Success, second.Status);    // second signal status
            Expect.True(firstArrived);    // the first signal interrupted
            Expect.True(stillSet);    // the flag stayed set
            Expect.Equal(1ul, count);    // interrupts after signalling a flag that was already set
        }

        private static void MaskedSintRaisesNoInterrupt()
        {
            if (!Need.TestDevice() || !Need.SignalEvents()) return;
            const int sint = 7;
            const uint conn = 12;
            TestDevice.CreateEventConnection(conn, 0, sint);
            Synic.SetMasked(sint, true);
            ulong interrupts = Synic.Interrupts[sint];
            ulong* area = Synic.SiefArea(Vp.Current, sint);
            HvCallResult r = Hypercall.SignalEvent(conn, 0);
            bool set = Clock.WaitForValue(&area[0], 1ul << (int)conn, 1ul << (int)conn, WaitMs);
            Clock.Delay(QuietMs);
            ulong after = Synic.Interrupts[sint];
            area[0] = 0;
            Synic.SetMasked(sint, false);
            TestDevice.DestroyEventConnection(conn);
            Expect.Equal(HvStatus.Success, r.Status);    // signal status
            Expect.True(set);    // the flag is set even though the SINT is masked
            Expect.Equal(interrupts, after);    // interrupts on the masked SINT
        }

        private static void MessageEchoedIntoSimSlot()
        {
            if (!Need.TestDevice() || !Need.PostMessages()) return;
            const int sint = 8;
            const uint conn = 13, type = 0x1234;
            const int length = 100;
            TestDevice.CreateMessageConnection(conn, 0, sint);
            byte* payload = stackalloc byte[length];
            Payload.Fill(payload, length, 0x30);
            ulong taken = Synic.MessagesTaken[sint];
            HvCallResult r = Hypercall.PostMessage(conn, type, payload, length);
            bool arrived = Clock.WaitAtLeast(&Synic.MessagesTaken[sint], taken + 1, WaitMs);
            TestDevice.DestroyMessageConnection(conn);
            Expect.Equal(HvStatus.Success, r.Status);    // HvCallPostMessage status
            if (!Expect.True(arrived)) return;    // a message arrived in SINT 8's slot
            HvMessage* m = Synic.LastReceived(sint);
            Expect.Equal(type, m->Header.MessageType);    // message type
            Expect.Equal((ulong)length, m->Header.PayloadSize);    // payload size
            Expect.True(Memory.Equal(m->Payload, payload, length));    // payload bytes
            Expect.Equal(0ul, Vp.Current->Sim[sint].Header.MessageType);    // the handler freed the slot
        }

        // kvm-unit-tests hyperv_connections' busy case: while the slot still holds a
        // message, the next one waits with MessagePending set; EOM lets it in.
        private static void BusySlotPendingThenEom()
        {
            if (!Need.TestDevice() || !Need.PostMessages()) return;
            const int sint = 9;
            const uint conn = 14;
            TestDevice.CreateMessageConnection(conn, 0, sint);
            byte* payload = stackalloc byte[16];
            HvMessage* slot = &Vp.Current->Sim[sint];
            ulong taken = Synic.MessagesTaken[sint];

            Cpu.DisableInterrupts();
            Payload.Fill(payload, 16, 1);
            HvCallResult first = Hypercall.PostMessage(conn, 0x100, payload, 16);
            bool firstInSlot = Clock.WaitForValue((ulong*)slot, 0xFFFFFFFF, 0x100, WaitMs);
            Payload.Fill(payload, 16, 2);
            // QEMU stages one message per route: until it has finished handing #1
            // over it answers INSUFFICIENT_BUFFERS, which a sender retries (as
            // Linux's vmbus_post_msg does). Bounded: it must get through.
            HvCallResult second = default;
            for (int attempt = 0; attempt < 1000; attempt++)
            {
                second = Hypercall.PostMessage(conn, 0x200, payload, 16);
                if (second.Status != HvStatus.InsufficientBuffers) break;
                Clock.Delay(1);
            }
            // Bytes 0-3 MessageType, byte 5 MessageFlags (bit 0 MessagePending).
            bool pending = Clock.WaitForValue((ulong*)slot, 0x0000FF00FFFFFFFFul, (1ul << 40) | 0x100, WaitMs);
            uint typeWhileBusy = slot->Header.MessageType;
            Cpu.EnableInterrupts();     // the handler takes #1, sees MessagePending, writes EOM, #2 arrives
            bool both = Clock.WaitAtLeast(&Synic.MessagesTaken[sint], taken + 2, WaitMs);
            TestDevice.DestroyMessageConnection(conn);

            Expect.Equal(HvStatus.Success, first.Status);    // first post status
            Expect.True(firstInSlot);    // the first message reached the slot
            Expect.Equal(HvStatus.Success, second.Status);    // second post status (queued behind the busy slot)
            Expect.True(pending);    // MessagePending set in the busy slot
            Expect.Equal(0x100ul, typeWhileBusy);    // the slot kept the first message
            Expect.True(both);    // both messages were delivered after EOM
            if (both)
            {
                Expect.Equal(0x100ul, Synic.LastReceived(sint, 1)->Header.MessageType);    // first message type
                Expect.Equal(0x200ul, Synic.LastReceived(sint)->Header.MessageType);    // second message type
                Expect.Equal(2ul, Synic.LastReceived(sint)->Payload[0]);    // second message payload
            }
        }
    }
}
