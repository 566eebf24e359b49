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

    // Channels (Linux drivers/hv/channel.c: vmbus_open, vmbus_close; vmbus_drv.c's
    // event path): opening an offered channel over a GPADL of its two rings,
    // closing it, and the events each side raises for the other. Packets through
    // the rings: VmbusPackets.
    public static unsafe class VmbusChannels
    {
        public const int MaxChannels = 32;

        private static VmbusChannel* s_channels;    // [MaxChannels]
        private static VmbusChannel** s_byRelid;    // [MaxRelid + 1]
        private static ulong* s_fenceWord;
        public static ulong StrayEvents;            // flags for a relid with no open channel

        internal static void Initialize()
        {
            s_channels = (VmbusChannel*)Heap.AllocateRaw((ulong)(MaxChannels * sizeof(VmbusChannel)));
            s_byRelid = (VmbusChannel**)Heap.AllocateRaw((VmbusConstants.MaxRelid + 1) * 8);
            s_fenceWord = (ulong*)Heap.AllocateRaw(8);
            VmbusRing.FullFence = &FullFence;
        }

        // xchg is a full barrier on x86: it orders a store before a later load.
        private static void FullFence() => Cpu.AtomicSwap(s_fenceWord, 0);

        public static VmbusChannel* For(uint relid)
            => s_byRelid == null || relid > VmbusConstants.MaxRelid ? null : s_byRelid[relid];

        // ---- events ------------------------------------------------------------------

        // A SIEF flag on the VMBus SINT (interrupt context): from Win8 the flag number
        // is the channel's relid; before, flag 0 says "look at the interrupt page",
        // one bit per relid.
        internal static void OnSynicEvent(int sint, int flag)
        {
            if (VmbusConnection.State == VmbusState.Connected && VmbusVersion.UsesInterruptPage(VmbusConnection.Version))
            {
                ulong* words = (ulong*)VmbusConnection.InterruptPage;
                for (int w = 0; w < (int)(VmbusConstants.MaxRelid + 1) / 64; w++)
                {
                    if (words[w] == 0) continue;
                    ulong taken = Cpu.AtomicSwap(&words[w], 0);
                    for (int bit = 0; bit < 64; bit++)
                        if ((taken & (1ul << bit)) != 0) Interrupt((uint)(w * 64 + bit));
                }
                return;
            }
            Interrupt((uint)flag);
        }

        // Host to guest: the channel of `relid` has something for its driver.
        public static void Interrupt(uint relid)
        {
            VmbusChannel* channel = For(relid);
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
                var send = (uint*)(VmbusConnection.InterruptPage + VmbusConstants.PageSize / 2);
                Cpu.AtomicOr32(&send[channel->Relid / 32], 1u << (int)(channel->Relid % 32));
            }
            channel->Signals++;
            if (channel->UsesMonitor)
            {
                byte* childToParent = VmbusConnection.MonitorPages + VmbusConstants.PageSize;
                Cpu.AtomicOr32((uint*)(childToParent + VmbusMonitorPage.PendingOffset(channel->MonitorId)), VmbusMonitorPage.PendingBit(channel->MonitorId));
                return default;    // Done: HV_STATUS_SUCCESS, nothing refused
            }
            return Hypercall.SignalEvent(channel->SignalConnectionId, 0);
        }

        // ---- opening and closing -----------------------------------------------------

        // Opens an offered channel with two rings of `ringPages` pages each (header
        // page included): allocate, GPADL, OPENCHANNEL, await OPENCHANNEL_RESULT.
        public static VmbusChannel* Open(VmbusOffer* offer, uint ringPages, delegate*<VmbusChannel*, void> onInterrupt, out VmbusResult result,
                                         delegate*<VmbusChannel*, void> onClose = null, void* context = null)
        {
            result = VmbusResult.Invalid;
            if (VmbusConnection.State != VmbusState.Connected) { result = VmbusResult.NotReady; return null; }
            uint relid = offer->ChildRelid;
            if (ringPages < 2 || ringPages > VmbusGpadlMessages.MaxPages / 2 || relid > VmbusConstants.MaxRelid || s_byRelid[relid] != null) return null;
            VmbusChannel* channel = null;
            for (int i = 0; i < MaxChannels && channel == null; i++) if (!s_channels[i].InUse) channel = &s_channels[i];
            if (channel == null) return null;

            uint version = VmbusConnection.Version;
            *channel = default;
            channel->InUse = true;
            channel->Relid = relid;
            channel->OpenId = relid;
            channel->Dedicated = offer->DedicatedInterrupt && !VmbusVersion.UsesInterruptPage(version);
            channel->SignalConnectionId = offer->ConnectionId != 0 && version != VmbusVersion.Ws2008 ? offer->ConnectionId : VmbusConstants.EventConnectionId;
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

            result = VmbusGpadl.Create(relid, channel->RingRegion, (int)(2 * ringPages), out channel->GpadlId);
            if (result != VmbusResult.Done) { Release(channel, teardown: false); return null; }

            VmbusOpenChannel message = default;
            message.Header.MessageType = VmbusMessageType.OpenChannel;
            message.ChildRelid = relid;
            message.OpenId = channel->OpenId;
            message.RingBufferGpadlId = channel->GpadlId;
            message.TargetVp = Vp.Current->Index;
            message.DownstreamRingBufferPageOffset = ringPages;
            s_byRelid[relid] = channel;         // events may follow the result at once
            result = VmbusMessages.Request(&message, VmbusOpenChannel.Size, VmbusMessageType.OpenChannelResult, &OpenedRelid, relid,
                                           VmbusMessages.ResponseTimeoutMs, out byte* answer);
            if (result == VmbusResult.Done && ((VmbusOpenChannelResult*)answer)->Status != 0) result = VmbusResult.Refused;
            if (result != VmbusResult.Done)
            {
                Release(channel, teardown: true);
                return null;
            }
            channel->IsOpen = true;
            return channel;
        }

        // The relid an OPENCHANNEL_RESULT answers for.
        private static uint OpenedRelid(byte* reply) => ((VmbusOpenChannelResult*)reply)->ChildRelid;

        // CLOSECHANNEL (the host does not answer it), then the ring GPADL's teardown.
        public static VmbusResult Close(VmbusChannel* channel)
        {
            if (channel == null || !channel->InUse) return VmbusResult.Invalid;
            if (VmbusConnection.State != VmbusState.Connected) { Release(channel, teardown: false); return VmbusResult.NotReady; }
            VmbusCloseChannel message = default;
            message.Header.MessageType = VmbusMessageType.CloseChannel;
            message.ChildRelid = channel->Relid;
            bool wasOpen = channel->IsOpen;
            channel->IsOpen = false;            // its interrupts are stray from here on
            VmbusResult r = VmbusConnection.Post(&message, VmbusCloseChannel.Size) ? VmbusResult.Done : VmbusResult.PostFailed;
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
            if (teardown) r = VmbusGpadl.Teardown(channel->Relid, channel->GpadlId);
            if (r == VmbusResult.Done && channel->RingRegion != null)
                for (uint p = 0; p < 2 * channel->RingPages; p++) PageAllocator.Free(channel->RingRegion + p * VmbusConstants.PageSize);
            channel->RingRegion = null;
            channel->IsOpen = false;
            channel->InUse = false;
            return r;
        }

        // After UNLOAD the host has dropped every channel and GPADL.
        internal static void ForgetAll()
        {
            for (int i = 0; i < MaxChannels; i++)
                if (s_channels[i].InUse) Release(&s_channels[i], teardown: false);
        }
    }
}
