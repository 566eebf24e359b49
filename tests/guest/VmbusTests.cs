using System;
using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;
using Drivers.VmBus;

namespace Kernel.TestMode
{
    // The VMBus client against the host that answers (QEMU's vmbus-bridge in
    // kvm and nested modes), plus its receive path, ring and GUID code, which
    // need no host. Tests that talk to the host skip without Hyper-V or without
    // a VMBus host; the others run everywhere.
    public static unsafe class VmbusTests
    {
        public static void Register()
        {
            TestRunner.Add("vmbus.contact_negotiates_highest_accepted_version"u8, &NegotiatesHighestAcceptedVersion);
            TestRunner.Add("vmbus.refused_versions_move_to_the_next"u8, &RefusedVersionsMoveToTheNext);
            TestRunner.Add("vmbus.messages_use_connection_1_and_sint_2"u8, &MessagesUseConnection1AndSint2);
            TestRunner.Add("vmbus.offers_complete_with_alloffers_delivered"u8, &OffersCompleteWithAllOffersDelivered);
            TestRunner.Add("vmbus.gpadl_header_and_body_created"u8, &GpadlHeaderAndBodyCreated);
            TestRunner.Add("vmbus.gpadl_torn_down"u8, &GpadlTornDown);
            TestRunner.Add("vmbus.event_connection_accepts_signal"u8, &EventConnectionAcceptsSignal);
            TestRunner.Add("vmbus.unanswered_request_times_out"u8, &UnansweredRequestTimesOut);
            TestRunner.Add("vmbus.unknown_message_type_ignored"u8, &UnknownMessageTypeIgnored);
            TestRunner.Add("vmbus.short_message_rejected"u8, &ShortMessageRejected);
            TestRunner.Add("vmbus.offer_decoded_from_message"u8, &OfferDecodedFromMessage);
            TestRunner.Add("vmbus.guid_formatted_and_named"u8, &GuidFormattedAndNamed);
            TestRunner.Add("vmbus.ring_round_trip_wraps"u8, &RingRoundTripWraps);
            TestRunner.Add("vmbus.unload_completes"u8, &UnloadCompletes);
        }

        // QEMU (7.2 and 10.0, hw/hyperv/vmbus.c) accepts any version up to VMBUS_VERSION_CURRENT = WIN10.
        private const uint QemuHighestVersion = VmbusVersion.Win10;   // 4.0 = 0x00040000

        // ---- prerequisites (kernel/test/Need.cs) ------------------------------------

        // A test that needs the connection re-establishes it if an earlier test
        // left it down; that it comes up is checked, not assumed.
        private static bool Connected()
        {
            if (!Need.VmbusHost()) return false;
            if (VmbusConnection.State != VmbusState.Connected) VmbusConnection.Connect();
            return Expect.Equal((ulong)VmbusState.Connected, (ulong)VmbusConnection.State);    // VMBus connected (Disconnected = 0, Connected = 1)
        }

        private static HvMessage* Synthetic(uint vmbusType, uint payloadSize)
        {
            var m = (HvMessage*)Heap.AllocateRaw((ulong)sizeof(HvMessage));
            m->Header.MessageType = VmbusConstants.HvMessageTypeVmbus;
            m->Header.PayloadSize = (byte)payloadSize;
            ((VmbusMessageHeader*)m->Payload)->MessageType = vmbusType;
            return m;
        }

        // ---- the connection ----------------------------------------------------------

        private static void NegotiatesHighestAcceptedVersion()
        {
            if (!Need.VmbusHost()) return;
            Expect.Equal((ulong)VmbusResult.Done, (ulong)VmbusConnection.LastConnect);    // Connect result (Done = 0)
            Expect.Equal((ulong)QemuHighestVersion, (ulong)VmbusConnection.Version);    // negotiated version (QEMU's VMBUS_VERSION_CURRENT, 4.0)
        }

        // 5.3..5.0 go to connection 4, which QEMU does not serve (INVALID_CONNECTION_ID);
        // 4.1 reaches the host, which answers version_supported = 0; then 4.0 is accepted.
        private static void RefusedVersionsMoveToTheNext()
        {
            if (!Need.VmbusHost()) return;
            if (!Expect.Equal(6ul, (ulong)VmbusConnection.AttemptCount)) return;    // INITIATE_CONTACT attempts (5.3, 5.2, 5.1, 5.0, 4.1, 4.0)
            VmbusAttempt* a = VmbusConnection.Attempts;
            Expect.Equal((ulong)VmbusVersion.Win10V5_3, (ulong)a[0].Version);    // first attempt: the newest version
            Expect.Equal(4ul, (ulong)a[0].ConnectionId);    // 5.x contacts connection 4
            Expect.Equal(HvStatus.InvalidConnectionId, a[0].PostStatus);    // QEMU has no listener on connection 4
            Expect.Equal((ulong)VmbusResult.NoHost, (ulong)a[3].Result);    // 5.0 moves on (NoHost = 1)
            Expect.Equal((ulong)VmbusVersion.Win10Rs3, (ulong)a[4].Version);    // fifth attempt: 4.1
            Expect.Equal((ulong)VmbusResult.Refused, (ulong)a[4].Result);    // 4.1 refused by VERSION_RESPONSE (Refused = 2)
            Expect.Equal((ulong)VmbusResult.Done, (ulong)a[5].Result);    // 4.0 accepted
        }

        private static void MessagesUseConnection1AndSint2()
        {
            if (!Connected()) return;
            Expect.Equal(1ul, (ulong)VmbusConnection.MessageConnectionId);    // message connection after contact (QEMU VMBUS_MESSAGE_CONNECTION_ID)
            Expect.Equal(0ul, (ulong)VmbusConnection.HostConnectionId);    // connection id in QEMU's VERSION_RESPONSE
            ulong onSint2 = Synic.MessagesTaken[VmbusConstants.MessageSint];
            Expect.InRange(2, 0xFFFFFFFF, onSint2);    // messages taken on SINT 2 (VERSION_RESPONSEs, ALLOFFERS_DELIVERED)
            ulong received = 0;
            for (uint type = 0; type < VmbusMessageType.Count; type++) received += VmbusMessages.Received[type];
            Expect.Equal(received, onSint2);    // every SINT 2 message reached the VMBus receive path (as an accepted message)
        }

        // A second REQUESTOFFERS in the same connection: QEMU offers each channel once
        // per connection, so only ALLOFFERS_DELIVERED comes, and the offers of boot
        // stay as they were (the host side checks them against the devices it has).
        private static void OffersCompleteWithAllOffersDelivered()
        {
            if (!Connected()) return;
            ulong delivered = VmbusMessages.Received[VmbusMessageType.AllOffersDelivered];
            ulong offersReceived = VmbusMessages.Received[VmbusMessageType.OfferChannel];
            int offers = VmbusOffers.Count;
            VmbusResult r = VmbusOffers.Request();
            Expect.Equal((ulong)VmbusResult.Done, (ulong)r);    // REQUESTOFFERS result (Done = 0)
            Expect.True(VmbusOffers.Complete);    // ALLOFFERS_DELIVERED ended the offer list
            Expect.Equal(delivered + 1, VmbusMessages.Received[VmbusMessageType.AllOffersDelivered]);    // ALLOFFERS_DELIVERED messages
            Expect.Equal(offersReceived, VmbusMessages.Received[VmbusMessageType.OfferChannel]);    // OFFERCHANNEL messages for the second request
            Expect.Equal((ulong)offers, (ulong)VmbusOffers.Count);    // offers kept from boot
            ulong duplicates = 0;
            for (int i = 0; i < VmbusOffers.Count; i++)
                for (int j = i + 1; j < VmbusOffers.Count; j++)
                    if (VmbusOffers.Table[i].ChildRelid == VmbusOffers.Table[j].ChildRelid) duplicates++;
            Expect.Equal(0ul, duplicates);    // relids offered twice
        }

        // ---- GPADLs --------------------------------------------------------------------

        // 32 pages: 26 frames in GPADL_HEADER, 6 in one GPADL_BODY. QEMU does not check
        // the relid of a GPADL, so the machinery is proven without an offered channel.
        private const int GpadlPages = 32;

        private static void GpadlHeaderAndBodyCreated()
        {
            if (!Connected()) return;
            void* region = (void*)PageAllocator.AllocateContiguous(GpadlPages, zero: true);
            ulong created = VmbusMessages.Received[VmbusMessageType.GpadlCreated];
            VmbusResult r = VmbusGpadl.Create(1, region, GpadlPages, out uint id);
            VmbusResult down = r == VmbusResult.Done ? VmbusGpadl.Teardown(1, id) : VmbusResult.Invalid;
            if (down == VmbusResult.Done) for (int p = 0; p < GpadlPages; p++) PageAllocator.Free((byte*)region + p * 4096);
            Expect.Equal(1ul, (ulong)VmbusGpadlMessages.BodyMessagesFor(GpadlPages));    // GPADL_BODY messages for 32 pages
            Expect.Equal((ulong)VmbusResult.Done, (ulong)r);    // GPADL result (Done = 0)
            Expect.Equal(created + 1, VmbusMessages.Received[VmbusMessageType.GpadlCreated]);    // GPADL_CREATED messages
            Expect.Equal((ulong)id, (ulong)((VmbusGpadlCreated*)VmbusMessages.Last(VmbusMessageType.GpadlCreated))->GpadlId);    // GPADL_CREATED names our GPADL id
            Expect.Equal(0ul, (ulong)((VmbusGpadlCreated*)VmbusMessages.Last(VmbusMessageType.GpadlCreated))->CreationStatus);    // creation status
        }

        private static void GpadlTornDown()
        {
            if (!Connected()) return;
            void* region = (void*)PageAllocator.AllocateContiguous(4, zero: true);
            VmbusResult r = VmbusGpadl.Create(1, region, 4, out uint id);
            if (!Expect.Equal((ulong)VmbusResult.Done, (ulong)r)) return;    // GPADL created first
            ulong torn = VmbusMessages.Received[VmbusMessageType.GpadlTorndown];
            VmbusResult down = VmbusGpadl.Teardown(1, id);
            if (down == VmbusResult.Done) for (int p = 0; p < 4; p++) PageAllocator.Free((byte*)region + p * 4096);
            Expect.Equal((ulong)VmbusResult.Done, (ulong)down);    // GPADL_TEARDOWN result (Done = 0)
            Expect.Equal(torn + 1, VmbusMessages.Received[VmbusMessageType.GpadlTorndown]);    // GPADL_TORNDOWN messages
            Expect.Equal((ulong)id, (ulong)((VmbusGpadlTorndown*)VmbusMessages.Last(VmbusMessageType.GpadlTorndown))->GpadlId);    // GPADL_TORNDOWN names our GPADL id
        }

        // Guest to host: HvCallSignalEvent reaches the VMBus host's event connection (2).
        private static void EventConnectionAcceptsSignal()
        {
            if (!Need.SignalEvents() || !Connected()) return;
            HvCallResult r = Hypercall.SignalEvent(VmbusConstants.EventConnectionId, 0);
            Expect.Equal(HvStatus.Success, r.Status);    // HvCallSignalEvent to VMBus event connection 2
            Expect.Equal(HvOutcome.Done, r.Outcome);    // outcome
        }

        // OPENCHANNEL for a relid nobody offered: QEMU drops it silently. The client
        // reports a timeout, and the connection still works afterwards.
        private static void UnansweredRequestTimesOut()
        {
            if (!Connected()) return;
            VmbusOffer offer = default;
            offer.ChildRelid = 2000;
            offer.ConnectionId = 16 + 2000;
            offer.DedicatedInterrupt = true;
            ulong before = Clock.Now100ns();
            VmbusChannel* channel = VmbusChannels.Open(&offer, 2, null, out VmbusResult r);
            ulong waited = (Clock.Now100ns() - before) / 10000;
            VmbusResult after = VmbusOffers.Request();
            Expect.True(channel == null);    // no channel was opened
            Expect.Equal((ulong)VmbusResult.Timeout, (ulong)r);    // OPENCHANNEL result (Timeout = 3)
            Expect.InRange(VmbusMessages.ResponseTimeoutMs, VmbusMessages.ResponseTimeoutMs * 3, waited);    // milliseconds waited
            Expect.Equal((ulong)VmbusState.Connected, (ulong)VmbusConnection.State);    // still connected
            Expect.Equal((ulong)VmbusResult.Done, (ulong)after);    // REQUESTOFFERS afterwards
        }

        // ---- the receive path (no host needed) --------------------------------------

        private static void UnknownMessageTypeIgnored()
        {
            ulong unknown = VmbusMessages.UnknownMessages, rejected = VmbusMessages.RejectedMessages;
            int offers = VmbusOffers.Count;
            VmbusMessages.Receive(Synthetic(99, 16));
            VmbusMessages.Receive(Synthetic(VmbusMessageType.RequestOffers, 8));    // a guest-to-host type
            Expect.Equal(unknown + 2, VmbusMessages.UnknownMessages);    // unknown messages counted
            Expect.Equal(rejected, VmbusMessages.RejectedMessages);    // rejected messages
            Expect.Equal((ulong)offers, (ulong)VmbusOffers.Count);    // offers unchanged
        }

        private static void ShortMessageRejected()
        {
            ulong rejected = VmbusMessages.RejectedMessages;
            ulong offersReceived = VmbusMessages.Received[VmbusMessageType.OfferChannel];
            int offers = VmbusOffers.Count;
            VmbusMessages.Receive(Synthetic(VmbusMessageType.OfferChannel, 100));   // needs 196
            VmbusMessages.Receive(Synthetic(VmbusMessageType.VersionResponse, 4));  // not even a header
            Expect.Equal(rejected + 2, VmbusMessages.RejectedMessages);    // rejected messages counted
            Expect.Equal(offersReceived, VmbusMessages.Received[VmbusMessageType.OfferChannel]);    // OFFERCHANNEL messages accepted
            Expect.Equal((ulong)offers, (ulong)VmbusOffers.Count);    // offers unchanged
        }

        // An OFFERCHANNEL byte image as QEMU builds it (200 bytes, LE GUIDs).
        private static void OfferDecodedFromMessage()
        {
            HvMessage* m = Synthetic(VmbusMessageType.OfferChannel, 200);
            var o = (VmbusOfferChannel*)m->Payload;
            o->InterfaceType = Guid.From(0xba6163d9, 0x04a1, 0x4d29, 0xb60572e2ffb1dc7f);
            o->InterfaceInstance = Guid.From(0x12345678, 0x9abc, 0xdef0, 0x0102030405060708);
            o->ChildRelid = 7;
            o->ConnectionId = 23;
            o->MonitorId = 3;
            o->MonitorAllocated = 1;
            o->DedicatedInterrupt = 1;
            o->MmioMegabytes = 8;
            VmbusOffer offer = VmbusOffer.Decode(o);
            Expect.Equal(7ul, (ulong)offer.ChildRelid);    // relid @184
            Expect.Equal(23ul, (ulong)offer.ConnectionId);    // connection id @192
            Expect.Equal(3ul, (ulong)offer.MonitorId);    // monitor id @188
            Expect.True(offer.MonitorAllocated);    // monitor allocated @189
            Expect.True(offer.DedicatedInterrupt);    // dedicated interrupt @190
            Expect.Equal(8ul, (ulong)offer.MmioMegabytes);    // MMIO MiB @58
            Expect.Equal("scsi"u8, VmbusText.ClassName(&offer.InterfaceType));    // class name
            Expect.Equal(0xba6163d9ul, (ulong)*(uint*)(m->Payload + 8));    // interface type Data1 @8, little-endian
        }

        private static void GuidFormattedAndNamed()
        {
            Guid g = Guid.From(0xf8615163, 0xdf3e, 0x46c5, 0x913ff2d2f965ed0e);
            byte* buffer = stackalloc byte[Guid.FormattedLength];
            ReadOnlySpan<byte> text = new ReadOnlySpan<byte>(buffer, g.Format(buffer));
            Expect.Equal("f8615163-df3e-46c5-913f-f2d2f965ed0e"u8, text);    // formatted
            Expect.Equal("network"u8, VmbusText.ClassName(&g));    // well-known class
            byte* raw = (byte*)&g;
            Expect.Equal(0x63ul, raw[0]);    // byte 0 (Data1 little-endian)
            Expect.Equal(0x91ul, raw[8]);    // byte 8 (Data4[0])
        }

        // Ring code as ilc compiled it: packets across the end of the data area.
        private static void RingRoundTripWraps()
        {
            byte* region = (byte*)PageAllocator.AllocateContiguous(2, zero: true);
            VmbusRing ring = VmbusRing.Over(region, 2 * 4096);
            ring.Initialize();
            ring.Header->WriteIndex = ring.Header->ReadIndex = 4096 - 24;    // the next packet wraps
            byte* data = stackalloc byte[40];
            for (int i = 0; i < 40; i++) data[i] = (byte)(i + 1);
            VmbusRingStatus w = ring.Write(VmbusPacketType.DataInBand, 0, 0x1122334455667788, data, 40, out bool signal);
            VmbusPacketDescriptor d;
            byte* back = stackalloc byte[64];
            VmbusRingStatus r = ring.Read(&d, back, 64, out uint length, out bool _);
            uint readIndex = ring.Header->ReadIndex;
            VmbusRingStatus empty = ring.Read(&d, back, 64, out uint _, out bool _);
            PageAllocator.Free(region);
            PageAllocator.Free(region + 4096);
            Expect.Equal((ulong)VmbusRingStatus.Done, (ulong)w);    // write (Done = 0)
            Expect.True(signal);    // an empty, unmasked ring signals the consumer
            Expect.Equal((ulong)VmbusRingStatus.Done, (ulong)r);    // read
            Expect.Equal(40ul, (ulong)length);    // data length
            Expect.True(Memory.Equal(back, data, 40));    // data bytes
            Expect.Equal(0x1122334455667788ul, d.TransactionId);    // transaction id
            Expect.Equal((ulong)(4096 - 24 + 16 + 40 + 8 - 4096), (ulong)readIndex);    // read index after the wrap
            Expect.Equal((ulong)VmbusRingStatus.Empty, (ulong)empty);    // then empty (Empty = 1)
        }

        // ---- last: unload (and reconnect, so the exit path has something to unload) ----

        private static void UnloadCompletes()
        {
            if (!Connected()) return;
            ulong responses = VmbusMessages.Received[VmbusMessageType.UnloadResponse];
            VmbusResult r = VmbusConnection.Unload();
            VmbusState state = VmbusConnection.State;
            VmbusConnection.Connect();
            Expect.Equal((ulong)VmbusResult.Done, (ulong)r);    // UNLOAD result (Done = 0)
            Expect.Equal(responses + 1, VmbusMessages.Received[VmbusMessageType.UnloadResponse]);    // UNLOAD_RESPONSE messages
            Expect.Equal((ulong)VmbusState.Disconnected, (ulong)state);    // disconnected after UNLOAD
        }
    }
}
