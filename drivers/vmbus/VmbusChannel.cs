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
        public byte* RingRegion;
        public uint RingPages;              // of each ring, header page included
        public VmbusRing Outbound;          // guest to host
        public VmbusRing Inbound;           // host to guest
        public ulong Interrupts;            // host-to-guest events taken
        public ulong Signals;               // guest-to-host events sent
        public delegate*<VmbusChannel*, void> OnInterrupt;
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

        // Guest to host: HvCallSignalEvent on the channel's connection id. Before Win8
        // the channel's bit in the guest-to-host half of the interrupt page says which.
        public static HvCallResult SignalHost(VmbusChannel* channel)
        {
            if (!channel->Dedicated)
            {
                byte* send = s_interruptPage + VmbusConstants.PageSize / 2;
                send[channel->Relid / 8] |= (byte)(1 << (int)(channel->Relid % 8));
            }
            channel->Signals++;
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
        public static VmbusChannel* OpenChannel(VmbusOffer* offer, uint ringPages, delegate*<VmbusChannel*, void> onInterrupt, out VmbusResult result)
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
            channel->OnInterrupt = onInterrupt;
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
            channel->IsOpen = false;
            VmbusResult r = Posted(Post(MessageConnectionId, &message, VmbusCloseChannel.Size), VmbusMessageType.CloseChannel)
                ? VmbusResult.Done : VmbusResult.PostFailed;
            VmbusResult teardown = Release(channel, teardown: true);
            return r != VmbusResult.Done ? r : teardown;
        }

        // The host keeps using a GPADL's pages until it confirms the teardown: free
        // them only then (after a timeout they stay allocated).
        private static VmbusResult Release(VmbusChannel* channel, bool teardown)
        {
            VmbusResult r = VmbusResult.Done;
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

        // One in-band packet to the host; signals it when the ring protocol says so.
        public static VmbusRingStatus Send(VmbusChannel* channel, byte* data, uint length, ulong transactionId, bool requestCompletion)
        {
            if (channel == null || !channel->IsOpen) return VmbusRingStatus.Corrupt;
            ushort flags = requestCompletion ? VmbusPacketType.FlagCompletionRequested : (ushort)0;
            VmbusRingStatus status = channel->Outbound.Write(VmbusPacketType.DataInBand, flags, transactionId, data, length, out bool signal);
            if (status == VmbusRingStatus.Done && signal) SignalHost(channel);
            return status;
        }

        // The next packet from the host, if any.
        public static VmbusRingStatus ReceivePacket(VmbusChannel* channel, VmbusPacketDescriptor* descriptor, byte* buffer, uint capacity, out uint length)
        {
            length = 0;
            if (channel == null || !channel->IsOpen) return VmbusRingStatus.Corrupt;
            VmbusRingStatus status = channel->Inbound.Read(descriptor, buffer, capacity, out length, out bool signal);
            if (status == VmbusRingStatus.Done && signal) SignalHost(channel);
            return status;
        }
    }
}
