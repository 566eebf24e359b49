using Kernel.Arch;

namespace Drivers.VmBus
{
    // Packets through an open channel's rings (Linux drivers/hv/channel.c,
    // vmbus_sendpacket and vmbus_recvpacket; the rings: VmbusRing).
    public static unsafe class VmbusPackets
    {
        // How long a sender waits for the host to make room in a full ring.
        public const ulong SendTimeoutMs = 1000;

        // One in-band packet on its way into the outbound ring.
        private struct Outgoing
        {
            public VmbusChannel* Channel;
            public byte* Data;
            public uint Length;
            public ushort Flags;
            public ulong TransactionId;
            public VmbusRingStatus Status;
        }

        // One in-band packet to the host; signals it when the ring protocol says
        // so. A full ring is waited on (the host drains it on its own), for at
        // most SendTimeoutMs; then Full, with nothing written.
        public static VmbusRingStatus Send(VmbusChannel* channel, byte* data, uint length, ulong transactionId, bool requestCompletion)
        {
            if (channel == null || !channel->IsOpen) return VmbusRingStatus.Corrupt;
            Outgoing packet;
            packet.Channel = channel;
            packet.Data = data;
            packet.Length = length;
            packet.Flags = requestCompletion ? VmbusPacketType.FlagCompletionRequested : (ushort)0;
            packet.TransactionId = transactionId;
            // Tried once before the wait, which reads the clock: a ring with room
            // (the usual case) costs no reference-counter read.
            if (!Written(&packet)) Clock.WaitUntil(&Written, &packet, SendTimeoutMs);
            return packet.Status;
        }

        // One try at writing the packet: true once it is in the ring, or the ring
        // refused it for good; a full ring gets the host signalled, which may be
        // waiting for a signal to read.
        private static bool Written(void* state)
        {
            var packet = (Outgoing*)state;
            VmbusChannel* channel = packet->Channel;
            channel->OutboundLock.Acquire();
            packet->Status = channel->Outbound.Write(VmbusPacketType.DataInBand, packet->Flags, packet->TransactionId, packet->Data, packet->Length, out bool signal);
            channel->OutboundLock.Release();
            if (packet->Status == VmbusRingStatus.Done) channel->PacketsSent++;
            else if (packet->Status == VmbusRingStatus.Full) signal = true;
            if (signal) VmbusChannels.SignalHost(channel);
            return packet->Status != VmbusRingStatus.Full;
        }

        // The next packet from the host, if any.
        public static VmbusRingStatus Receive(VmbusChannel* channel, VmbusPacketDescriptor* descriptor, byte* buffer, uint capacity, out uint length)
        {
            length = 0;
            if (channel == null || !channel->IsOpen || channel->Broken) return VmbusRingStatus.Corrupt;
            channel->InboundLock.Acquire();
            VmbusRingStatus status = channel->Inbound.Read(descriptor, buffer, capacity, out length, out bool signal);
            if (status == VmbusRingStatus.BufferTooSmall) status = Discarded(channel, descriptor, ref signal);
            channel->InboundLock.Release();
            if (status == VmbusRingStatus.Done) channel->PacketsReceived++;
            if (signal) VmbusChannels.SignalHost(channel);
            return status;
        }

        // A packet larger than the reader can take is dropped (and logged): left
        // in place it would block every packet behind it.
        private static VmbusRingStatus Discarded(VmbusChannel* channel, VmbusPacketDescriptor* descriptor, ref bool signal)
        {
            VmbusRingStatus status = channel->Inbound.Discard(descriptor, out signal);
            if (status != VmbusRingStatus.Done) return status;
            channel->PacketsDropped++;
            Console.Print("vmbus: channel %u: dropped a packet of %u bytes, larger than the driver's buffer\n"u8, channel->Relid, (ulong)descriptor->Length8 * 8);
            return VmbusRingStatus.BufferTooSmall;
        }

        // Hands every in-band packet waiting in the inbound ring to `handler`
        // (data, length); other packet types, and packets too large for `buffer`,
        // are logged and dropped. A corrupt ring (an index or a descriptor out of
        // range) stops reading for good: nothing in it can be trusted, and
        // nothing past it is ever read. Returns the packets handed over.
        public static int Drain(VmbusChannel* channel, byte* buffer, uint capacity, delegate*<VmbusChannel*, byte*, uint, void> handler)
        {
            int handled = 0;
            while (true)
            {
                VmbusPacketDescriptor descriptor;
                VmbusRingStatus status = Receive(channel, &descriptor, buffer, capacity, out uint length);
                if (status == VmbusRingStatus.Empty) return handled;
                if (status == VmbusRingStatus.BufferTooSmall) continue;
                if (status == VmbusRingStatus.Corrupt)
                {
                    if (channel->IsOpen && !channel->Broken)
                    {
                        channel->Broken = true;
                        Console.Print("vmbus: channel %u: the inbound ring is corrupt (an index or a packet descriptor out of range); no more reads\n"u8, channel->Relid);
                    }
                    return handled;
                }
                if (descriptor.Type != VmbusPacketType.DataInBand)
                {
                    channel->PacketsDropped++;
                    Console.Print("vmbus: channel %u: dropped a packet of type 0x%x (the driver takes in-band data only)\n"u8, channel->Relid, descriptor.Type);
                    continue;
                }
                handler(channel, buffer, length);
                handled++;
            }
        }
    }
}
