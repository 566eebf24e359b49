using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;

namespace Drivers.VmBus
{
    // An open channel: its ring GPADL (guest-to-host ring first, then host-to-guest),
    // and how each side tells the other that a ring has something.
    public unsafe struct VmbusChannel
    {
        public uint Relid;
        public uint SignalConnectionId;     // HvCallSignalEvent target (the offer's connection id)
        public uint GpadlId;
        public uint OpenId;
        public bool InUse;
        public bool IsOpen;
        public bool Dedicated;              // Win8+: its own SIEF flag; before: the interrupt page
        public bool UsesMonitor;            // the offer has a monitor id: guest-to-host signals go through the monitor page
        public byte MonitorId;
        public bool Broken;                 // the host corrupted the inbound ring: no more reads
        public byte* RingRegion;
        public uint RingPages;              // of each ring, header page included
        public VmbusRing Outbound;          // guest to host
        public VmbusRing Inbound;           // host to guest
        public SpinLock OutboundLock;       // senders: a driver's interrupt and its callers
        public SpinLock InboundLock;
        public ulong Interrupts;            // host-to-guest events taken
        public ulong Signals;               // guest-to-host events sent
        public ulong PacketsSent, PacketsReceived, PacketsDropped;
        public delegate*<VmbusChannel*, void> OnInterrupt;
        public delegate*<VmbusChannel*, void> OnClose;     // the channel is gone (closed, or the host unloaded)
        public void* Context;               // the driver's
    }

    public static unsafe partial class VmbusClient
    {
        public const int MaxChannels = 32;

        private static VmbusChannel* s_channels;    // [MaxChannels]
        private static VmbusChannel** s_byRelid;    // [MaxRelid + 1]
        public static ulong StrayEvents;            // flags for a relid with no open channel

        private static void AllocateChannelTables()
        {
            s_channels = (VmbusChannel*)Heap.AllocateRaw((ulong)(MaxChannels * sizeof(VmbusChannel)));
            s_byRelid = (VmbusChannel**)Heap.AllocateRaw((VmbusConstants.MaxRelid + 1) * 8);
        }

        public static VmbusChannel* ChannelFor(uint relid)
            => s_byRelid == null || relid > VmbusConstants.MaxRelid ? null : s_byRelid[relid];

        // Host to guest: SIEF flag `relid` on the VMBus SINT (interrupt context).
        public static void ChannelInterrupt(uint relid)
        {
            VmbusChannel* channel = ChannelFor(relid);
            if (channel == null || !channel->IsOpen) { StrayEvents++; return; }
            channel->Interrupts++;
            if (channel->OnInterrupt != null) channel->OnInterrupt(channel);
        }

        // Guest to host. A channel offered with a monitor id sets its bit in the
        // child-to-parent monitor page, which the host polls; the others make
        // HvCallSignalEvent on the channel's connection id (Linux's vmbus_setevent).
        // Before Win8 the channel's bit in the guest-to-host half of the interrupt
        // page also says which channel it is.
        public static HvCallResult SignalHost(VmbusChannel* channel)
        {
            if (!channel->Dedicated)
            {
                var send = (uint*)(s_interruptPage + VmbusConstants.PageSize / 2);
                Cpu.AtomicOr32(&send[channel->Relid / 32], 1u << (int)(channel->Relid % 32));
            }
            channel->Signals++;
            if (channel->UsesMonitor)
            {
                byte* childToParent = s_monitorPages + VmbusConstants.PageSize;
                Cpu.AtomicOr32((uint*)(childToParent + VmbusMonitorPage.PendingOffset(channel->MonitorId)), VmbusMonitorPage.PendingBit(channel->MonitorId));
                return default;    // Done: HV_STATUS_SUCCESS, nothing refused
            }
            return Hypercall.SignalEvent(channel->SignalConnectionId, 0);
        }

        // ---- GPADLs ------------------------------------------------------------------

        // Describes `pages` guest pages (frame numbers in pfns) to the host as one GPADL:
        // GPADL_HEADER (26 frames), GPADL_BODY for the rest (28 each), then GPADL_CREATED.
        public static VmbusResult CreateGpadl(uint relid, ulong* pfns, int pages, out uint gpadlId)
        {
            gpadlId = 0;
            if (State != VmbusState.Connected) return VmbusResult.NotReady;
            if (pages <= 0 || pages > VmbusGpadl.MaxPages) return VmbusResult.Invalid;
            uint id = s_nextGpadlId++;
            ulong seen = Received[VmbusMessageType.GpadlCreated];

            VmbusGpadlHeader header;
            uint size = VmbusGpadl.BuildHeader(&header, relid, id, pfns, pages);
            if (!Posted(Post(MessageConnectionId, &header, size), VmbusMessageType.GpadlHeader)) return VmbusResult.PostFailed;
            int bodies = VmbusGpadl.BodyMessagesFor(pages);
            for (int i = 0; i < bodies; i++)
            {
                VmbusGpadlBody body;
                size = VmbusGpadl.BuildBody(&body, id, pfns, pages, i);
                if (!Posted(Post(MessageConnectionId, &body, size), VmbusMessageType.GpadlBody)) return VmbusResult.PostFailed;
            }
            var created = (VmbusGpadlCreated*)WaitForReply(VmbusMessageType.GpadlCreated, seen, 12, id, ResponseTimeoutMs);
            if (created == null)
            {
                Timeout(VmbusMessageType.GpadlHeader, VmbusMessageType.GpadlCreated, ResponseTimeoutMs);
                return VmbusResult.Timeout;
            }
            if (created->CreationStatus != 0) return VmbusResult.Refused;
            gpadlId = id;
            return VmbusResult.Done;
        }

        // The same for physically contiguous pages (the identity map makes GPA = VA).
        public static VmbusResult CreateGpadl(uint relid, void* region, int pages, out uint gpadlId)
        {
            gpadlId = 0;
            if (pages <= 0 || pages > VmbusGpadl.MaxPages || ((ulong)region & (VmbusConstants.PageSize - 1)) != 0) return VmbusResult.Invalid;
            ulong listPages = ((ulong)pages * 8 + PageAllocator.PageSize - 1) / PageAllocator.PageSize;
            ulong* pfns = (ulong*)PageAllocator.AllocateContiguous(listPages);
            for (int i = 0; i < pages; i++) pfns[i] = ((ulong)region >> 12) + (ulong)i;
            VmbusResult r = CreateGpadl(relid, pfns, pages, out gpadlId);
            for (ulong p = 0; p < listPages; p++) PageAllocator.Free((byte*)pfns + p * PageAllocator.PageSize);
            return r;
        }

        public static VmbusResult TeardownGpadl(uint relid, uint gpadlId)
        {
            if (State != VmbusState.Connected) return VmbusResult.NotReady;
            ulong seen = Received[VmbusMessageType.GpadlTorndown];
            VmbusGpadlTeardown message = default;
            message.Header.MessageType = VmbusMessageType.GpadlTeardown;
            message.ChildRelid = relid;
            message.GpadlId = gpadlId;
            if (!Posted(Post(MessageConnectionId, &message, VmbusGpadlTeardown.Size), VmbusMessageType.GpadlTeardown)) return VmbusResult.PostFailed;
            if (WaitForReply(VmbusMessageType.GpadlTorndown, seen, 8, gpadlId, ResponseTimeoutMs) == null)
            {
                Timeout(VmbusMessageType.GpadlTeardown, VmbusMessageType.GpadlTorndown, ResponseTimeoutMs);
                return VmbusResult.Timeout;
            }
            return VmbusResult.Done;
        }

        // ---- opening and closing -----------------------------------------------------

        // Opens an offered channel with two rings of `ringPages` pages each (header
        // page included): allocate, GPADL, OPENCHANNEL, await OPENCHANNEL_RESULT.
        public static VmbusChannel* OpenChannel(VmbusOffer* offer, uint ringPages, delegate*<VmbusChannel*, void> onInterrupt, out VmbusResult result,
                                                delegate*<VmbusChannel*, void> onClose = null, void* context = null)
        {
            result = VmbusResult.Invalid;
            if (State != VmbusState.Connected) { result = VmbusResult.NotReady; return null; }
            uint relid = offer->ChildRelid;
            if (ringPages < 2 || ringPages > VmbusGpadl.MaxPages / 2 || relid > VmbusConstants.MaxRelid || s_byRelid[relid] != null) return null;
            VmbusChannel* channel = null;
            for (int i = 0; i < MaxChannels && channel == null; i++) if (!s_channels[i].InUse) channel = &s_channels[i];
            if (channel == null) return null;

            *channel = default;
            channel->InUse = true;
            channel->Relid = relid;
            channel->OpenId = relid;
            channel->Dedicated = offer->DedicatedInterrupt && !VmbusVersion.UsesInterruptPage(Version);
            channel->SignalConnectionId = offer->ConnectionId != 0 && Version != VmbusVersion.Ws2008 ? offer->ConnectionId : VmbusConstants.EventConnectionId;
            channel->UsesMonitor = offer->MonitorAllocated && offer->MonitorId <= VmbusMonitorPage.MaxMonitorId;
            channel->MonitorId = offer->MonitorId;
            channel->OnInterrupt = onInterrupt;
            channel->OnClose = onClose;
            channel->Context = context;
            channel->RingPages = ringPages;
            channel->RingRegion = (byte*)PageAllocator.AllocateContiguous(2ul * ringPages, zero: true);
            uint ringBytes = ringPages * VmbusConstants.PageSize;
            channel->Outbound = VmbusRing.Over(channel->RingRegion, ringBytes);
            channel->Inbound = VmbusRing.Over(channel->RingRegion + ringBytes, ringBytes);
            channel->Outbound.Initialize();
            channel->Inbound.Initialize();

            result = CreateGpadl(relid, channel->RingRegion, (int)(2 * ringPages), out channel->GpadlId);
            if (result != VmbusResult.Done) { Release(channel, teardown: false); return null; }

            VmbusOpenChannel message = default;
            message.Header.MessageType = VmbusMessageType.OpenChannel;
            message.ChildRelid = relid;
            message.OpenId = channel->OpenId;
            message.RingBufferGpadlId = channel->GpadlId;
            message.TargetVp = Vp.Current->Index;
            message.DownstreamRingBufferPageOffset = ringPages;
            s_byRelid[relid] = channel;         // events may follow the result at once
            ulong seen = Received[VmbusMessageType.OpenChannelResult];
            if (!Posted(Post(MessageConnectionId, &message, VmbusOpenChannel.Size), VmbusMessageType.OpenChannel))
            {
                result = VmbusResult.PostFailed;
                Release(channel, teardown: true);
                return null;
            }
            var answer = (VmbusOpenChannelResult*)WaitForReply(VmbusMessageType.OpenChannelResult, seen, 8, relid, ResponseTimeoutMs);
            if (answer == null)
            {
                Timeout(VmbusMessageType.OpenChannel, VmbusMessageType.OpenChannelResult, ResponseTimeoutMs);
                result = VmbusResult.Timeout;
                Release(channel, teardown: true);
                return null;
            }
            if (answer->Status != 0)
            {
                result = VmbusResult.Refused;
                Release(channel, teardown: true);
                return null;
            }
            channel->IsOpen = true;
            result = VmbusResult.Done;
            return channel;
        }

        // CLOSECHANNEL (the host does not answer it), then the ring GPADL's teardown.
        public static VmbusResult CloseChannel(VmbusChannel* channel)
        {
            if (channel == null || !channel->InUse) return VmbusResult.Invalid;
            if (State != VmbusState.Connected) { Release(channel, teardown: false); return VmbusResult.NotReady; }
            VmbusCloseChannel message = default;
            message.Header.MessageType = VmbusMessageType.CloseChannel;
            message.ChildRelid = channel->Relid;
            bool wasOpen = channel->IsOpen;
            channel->IsOpen = false;            // its interrupts are stray from here on
            VmbusResult r = Posted(Post(MessageConnectionId, &message, VmbusCloseChannel.Size), VmbusMessageType.CloseChannel)
                ? VmbusResult.Done : VmbusResult.PostFailed;
            if (wasOpen && channel->OnClose != null) channel->OnClose(channel);
            VmbusResult teardown = Release(channel, teardown: true);
            return r != VmbusResult.Done ? r : teardown;
        }

        // The host keeps using a GPADL's pages until it confirms the teardown: free
        // them only then (after a timeout they stay allocated).
        private static VmbusResult Release(VmbusChannel* channel, bool teardown)
        {
            VmbusResult r = VmbusResult.Done;
            bool wasOpen = channel->IsOpen;
            channel->IsOpen = false;
            if (wasOpen && channel->OnClose != null) channel->OnClose(channel);
            if (channel->Relid <= VmbusConstants.MaxRelid && s_byRelid[channel->Relid] == channel) s_byRelid[channel->Relid] = null;
            if (teardown) r = TeardownGpadl(channel->Relid, channel->GpadlId);
            if (r == VmbusResult.Done && channel->RingRegion != null)
                for (uint p = 0; p < 2 * channel->RingPages; p++) PageAllocator.Free(channel->RingRegion + p * VmbusConstants.PageSize);
            channel->RingRegion = null;
            channel->IsOpen = false;
            channel->InUse = false;
            return r;
        }

        // After UNLOAD the host has dropped every channel and GPADL.
        private static void ForgetChannels()
        {
            for (int i = 0; i < MaxChannels; i++)
                if (s_channels[i].InUse) Release(&s_channels[i], teardown: false);
        }

        // ---- packets -----------------------------------------------------------------

        // How long a sender waits for the host to make room in a full ring.
        public const ulong SendTimeoutMs = 1000;

        // One in-band packet to the host; signals it when the ring protocol says
        // so. A full ring is waited on (the host drains it on its own), for at
        // most SendTimeoutMs; then Full, with nothing written.
        public static VmbusRingStatus Send(VmbusChannel* channel, byte* data, uint length, ulong transactionId, bool requestCompletion)
        {
            if (channel == null || !channel->IsOpen) return VmbusRingStatus.Corrupt;
            ushort flags = requestCompletion ? VmbusPacketType.FlagCompletionRequested : (ushort)0;
            ulong deadline = 0;
            while (true)
            {
                channel->OutboundLock.Acquire();
                VmbusRingStatus status = channel->Outbound.Write(VmbusPacketType.DataInBand, flags, transactionId, data, length, out bool signal);
                channel->OutboundLock.Release();
                if (status == VmbusRingStatus.Done)
                {
                    channel->PacketsSent++;
                    if (signal) SignalHost(channel);
                    return status;
                }
                if (status != VmbusRingStatus.Full) return status;
                if (deadline == 0) deadline = Clock.Now100ns() + SendTimeoutMs * 10000;
                else if (Clock.Now100ns() > deadline) return status;
                SignalHost(channel);            // the host may be waiting for a signal to read
                Cpu.Pause();
            }
        }

        // The next packet from the host, if any.
        public static VmbusRingStatus ReceivePacket(VmbusChannel* channel, VmbusPacketDescriptor* descriptor, byte* buffer, uint capacity, out uint length)
        {
            length = 0;
            if (channel == null || !channel->IsOpen || channel->Broken) return VmbusRingStatus.Corrupt;
            channel->InboundLock.Acquire();
            VmbusRingStatus status = channel->Inbound.Read(descriptor, buffer, capacity, out length, out bool signal);
            if (status == VmbusRingStatus.BufferTooSmall) status = Discarded(channel, descriptor, ref signal);
            channel->InboundLock.Release();
            if (status == VmbusRingStatus.Done) channel->PacketsReceived++;
            if (signal) SignalHost(channel);
            return status;
        }

        // A packet larger than the reader can take is dropped (and logged): left
        // in place it would block every packet behind it.
        private static VmbusRingStatus Discarded(VmbusChannel* channel, VmbusPacketDescriptor* descriptor, ref bool signal)
        {
            VmbusRingStatus status = channel->Inbound.Discard(descriptor, out signal);
            if (status != VmbusRingStatus.Done) return status;
            channel->PacketsDropped++;
            Console.Write("vmbus: channel "u8);
            Console.WriteDecimal((ulong)channel->Relid);
            Console.Write(": dropped a packet of "u8);
            Console.WriteDecimal((ulong)descriptor->Length8 * 8);
            Console.WriteLine(" bytes, larger than the driver's buffer"u8);
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
                VmbusRingStatus status = ReceivePacket(channel, &descriptor, buffer, capacity, out uint length);
                if (status == VmbusRingStatus.Empty) return handled;
                if (status == VmbusRingStatus.BufferTooSmall) continue;
                if (status == VmbusRingStatus.Corrupt)
                {
                    if (channel->IsOpen && !channel->Broken)
                    {
                        channel->Broken = true;
                        Console.Write("vmbus: channel "u8);
                        Console.WriteDecimal((ulong)channel->Relid);
                        Console.WriteLine(": the inbound ring is corrupt (an index or a packet descriptor out of range); no more reads"u8);
                    }
                    return handled;
                }
                if (descriptor.Type != VmbusPacketType.DataInBand)
                {
                    channel->PacketsDropped++;
                    Console.Write("vmbus: channel "u8);
                    Console.WriteDecimal((ulong)channel->Relid);
                    Console.Write(": dropped a packet of type "u8);
                    Console.WriteHex(descriptor.Type);
                    Console.WriteLine(" (the driver takes in-band data only)"u8);
                    continue;
                }
                handler(channel, buffer, length);
                handled++;
            }
        }
    }
}
