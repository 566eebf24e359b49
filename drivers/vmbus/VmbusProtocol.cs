using System;
using Guid = Kernel.Runtime.Guid;     // not the host's System.Guid, where the host tests compile this file
// VMBus channel-management protocol: the messages a guest and the VMBus host
// exchange through HvCallPostMessage (guest to host) and the SynIC message
// slot of the VMBus SINT (host to guest). Every message starts with an 8-byte
// header (type, padding); the layouts below include it, so each struct's
// offsets are the offsets in the hypercall payload / SIM message payload.
// Sources: Linux include/linux/hyperv.h and drivers/hv/, QEMU 7.2
// include/hw/hyperv/vmbus-proto.h and hw/hyperv/vmbus.c, OpenVMM vmbus_core.
//
// Plain C#, no kernel dependencies: tests/Kernel.Tests compiles this file.
#nullable disable
using System.Runtime.InteropServices;

namespace Drivers.VmBus
{
    public static class VmbusConstants
    {
        // SynIC message type of every VMBus message (HV_MESSAGE_VMBUS).
        public const uint HvMessageTypeVmbus = 1;
        // Message connection for INITIATE_CONTACT: 4 from protocol 5.0 on, 1 before.
        // Later messages go to the connection the host names in VERSION_RESPONSE (5.0+), else 1.
        public const uint MessageConnectionId = 1;
        public const uint MessageConnectionId4 = 4;
        // Guest-to-host signals of channels that have no connection id of their own (WS2008),
        // and the interrupt-page doorbell of protocols before Win8.
        public const uint EventConnectionId = 2;
        // The SINT on which the host delivers VMBus messages (and, from Win8, channel events).
        public const int MessageSint = 2;
        public const int HeaderSize = 8;
        public const int MaxMessageSize = 240;          // HV_MESSAGE_PAYLOAD_BYTE_COUNT
        public const int UserDefinedBytes = 120;
        public const int PageSize = 4096;
        // Relids (and so SIEF flags) above this do not fit one SINT's 2048 event flags.
        public const uint MaxRelid = 2047;
    }

    // The two monitor pages named in INITIATE_CONTACT (hv_monitor_page; parent to
    // child, then child to parent): the trigger state (u32) at 0, then four trigger
    // groups of {pending u32, armed u32} from 8. A channel offered with a monitor
    // id m signals the host by setting bit m % 32 of group m / 32's pending word in
    // the child-to-parent page, which the host polls (Linux's vmbus_setevent).
    public static class VmbusMonitorPage
    {
        public const int TriggerGroupOffset = 8;
        public const int TriggerGroupSize = 8;
        public const int Groups = 4;
        public const int MaxMonitorId = Groups * 32 - 1;

        public static int PendingOffset(byte monitorId) => TriggerGroupOffset + TriggerGroupSize * (monitorId / 32);
        public static uint PendingBit(byte monitorId) => 1u << (monitorId % 32);
    }

    // Protocol versions, major << 16 | minor.
    public static class VmbusVersion
    {
        public const uint Ws2008 = 0x0000000D;     // 0.13
        public const uint Win7 = 0x00010001;       // 1.1
        public const uint Win8 = 0x00020004;       // 2.4: dedicated per-channel event flags
        public const uint Win8_1 = 0x00030000;     // 3.0: messages to any VP
        public const uint Win10 = 0x00040000;      // 4.0: QEMU 7.2's VMBUS_VERSION_CURRENT
        public const uint Win10Rs3 = 0x00040001;   // 4.1
        public const uint Win10V5 = 0x00050000;    // 5.0: message SINT in INITIATE_CONTACT, connection 4
        public const uint Win10V5_1 = 0x00050001;
        public const uint Win10V5_2 = 0x00050002;
        public const uint Win10V5_3 = 0x00050003;

        // The versions a guest offers, newest first (as Linux's vmbus_versions, plus the two oldest).
        public const int Count = 10;
        public static uint At(int index)
        {
            switch (index)
            {
                case 0: return Win10V5_3;
                case 1: return Win10V5_2;
                case 2: return Win10V5_1;
                case 3: return Win10V5;
                case 4: return Win10Rs3;
                case 5: return Win10;
                case 6: return Win8_1;
                case 7: return Win8;
                case 8: return Win7;
                case 9: return Ws2008;
                default: return 0;
            }
        }

        public static uint Major(uint version) => version >> 16;
        public static uint Minor(uint version) => version & 0xFFFF;

        // 5.0+: INITIATE_CONTACT carries the message SINT (and VTL) instead of an
        // interrupt page, goes to connection 4, and the reply names the connection to use.
        public static bool UsesMessageSint(uint version) => version >= Win10V5;
        public static uint ContactConnectionFor(uint version) => UsesMessageSint(version) ? VmbusConstants.MessageConnectionId4 : VmbusConstants.MessageConnectionId;
        // Before Win8, channel events go through the shared interrupt page (one bit per relid)
        // and the event connection, not per-channel SIEF flags and connection ids.
        public static bool UsesInterruptPage(uint version) => version < Win8;
        // From Win8.1 the host sends messages to the VP named in target_vcpu; before, to VP 0.
        public static bool TargetsAnyVp(uint version) => version >= Win8_1;
    }

    public static class VmbusMessageType
    {
        public const uint Invalid = 0;
        public const uint OfferChannel = 1;
        public const uint RescindChannelOffer = 2;
        public const uint RequestOffers = 3;
        public const uint AllOffersDelivered = 4;
        public const uint OpenChannel = 5;
        public const uint OpenChannelResult = 6;
        public const uint CloseChannel = 7;
        public const uint GpadlHeader = 8;
        public const uint GpadlBody = 9;
        public const uint GpadlCreated = 10;
        public const uint GpadlTeardown = 11;
        public const uint GpadlTorndown = 12;
        public const uint RelidReleased = 13;
        public const uint InitiateContact = 14;
        public const uint VersionResponse = 15;
        public const uint Unload = 16;
        public const uint UnloadResponse = 17;
        public const uint Count = 32;              // bookkeeping size: types are below this

        public static ReadOnlySpan<byte> Name(uint type)
        {
            switch (type)
            {
                case OfferChannel: return "OFFERCHANNEL"u8;
                case RescindChannelOffer: return "RESCIND_CHANNELOFFER"u8;
                case RequestOffers: return "REQUESTOFFERS"u8;
                case AllOffersDelivered: return "ALLOFFERS_DELIVERED"u8;
                case OpenChannel: return "OPENCHANNEL"u8;
                case OpenChannelResult: return "OPENCHANNEL_RESULT"u8;
                case CloseChannel: return "CLOSECHANNEL"u8;
                case GpadlHeader: return "GPADL_HEADER"u8;
                case GpadlBody: return "GPADL_BODY"u8;
                case GpadlCreated: return "GPADL_CREATED"u8;
                case GpadlTeardown: return "GPADL_TEARDOWN"u8;
                case GpadlTorndown: return "GPADL_TORNDOWN"u8;
                case RelidReleased: return "RELID_RELEASED"u8;
                case InitiateContact: return "INITIATE_CONTACT"u8;
                case VersionResponse: return "VERSION_RESPONSE"u8;
                case Unload: return "UNLOAD"u8;
                case UnloadResponse: return "UNLOAD_RESPONSE"u8;
                default: return "unknown"u8;
            }
        }

        // The bytes a host-to-guest message of this type must have for its layout
        // to be decoded; 0 for a type a guest does not receive (or does not know).
        public static uint RequiredSize(uint type)
        {
            switch (type)
            {
                case OfferChannel: return VmbusOfferChannel.Size;
                case RescindChannelOffer: return VmbusRescindChannelOffer.Size;
                case AllOffersDelivered: return VmbusMessageHeader.Size;
                case OpenChannelResult: return VmbusOpenChannelResult.Size;
                case GpadlCreated: return VmbusGpadlCreated.Size;
                case GpadlTorndown: return VmbusGpadlTorndown.Size;
                case VersionResponse: return VmbusVersionResponse.Size;
                case UnloadResponse: return VmbusMessageHeader.Size;
                default: return 0;
            }
        }
    }

    public enum VmbusMessageCheck
    {
        Accepted,
        ShorterThanHeader,      // fewer than 8 bytes: not even a type
        UnknownType,            // a type the guest does not receive: log and ignore
        ShorterThanLayout,      // a known type, but fewer bytes than its layout: reject
    }

    public static unsafe class VmbusMessages
    {
        // Classifies a received VMBus payload of `size` bytes.
        public static VmbusMessageCheck Check(byte* payload, uint size, out uint type, out uint required)
        {
            type = 0;
            required = VmbusMessageHeader.Size;
            if (size < VmbusMessageHeader.Size) return VmbusMessageCheck.ShorterThanHeader;
            type = ((VmbusMessageHeader*)payload)->MessageType;
            required = VmbusMessageType.RequiredSize(type);
            if (required == 0) return VmbusMessageCheck.UnknownType;
            return size < required ? VmbusMessageCheck.ShorterThanLayout : VmbusMessageCheck.Accepted;
        }
    }

    [StructLayout(LayoutKind.Explicit, Size = 8)]
    public struct VmbusMessageHeader
    {
        public const uint Size = 8;
        [FieldOffset(0)] public uint MessageType;
        [FieldOffset(4)] public uint Padding;

        public static VmbusMessageHeader Of(uint type) => new VmbusMessageHeader { MessageType = type };
    }

    // Interface (class) GUIDs of the well-known VMBus devices (Linux include/linux/hyperv.h).
    public static unsafe class VmbusClass
    {
        // A short name for an offer's interface type, or null when it is not a well-known class.
        public static ReadOnlySpan<byte> Name(Guid* type)
        {
            if (type->Is(0xf8615163, 0xdf3e, 0x46c5, 0x913ff2d2f965ed0e)) return "network"u8;
            if (type->Is(0x32412632, 0x86cb, 0x44a2, 0x9b5c50d1417354f5)) return "ide"u8;
            if (type->Is(0xba6163d9, 0x04a1, 0x4d29, 0xb60572e2ffb1dc7f)) return "scsi"u8;
            if (type->Is(0x0e0b6031, 0x5213, 0x4934, 0x818b38d90ced39db)) return "shutdown"u8;
            if (type->Is(0x9527e630, 0xd0ae, 0x497b, 0xadcee80ab0175caf)) return "timesync"u8;
            if (type->Is(0x57164f39, 0x9115, 0x4e78, 0xab55382f3bd5422d)) return "heartbeat"u8;
            if (type->Is(0xa9a0f4e7, 0x5a45, 0x4d96, 0xb8278a841e8c03e6)) return "kvp"u8;
            if (type->Is(0x35fa2e29, 0xea23, 0x4236, 0x96ae3a6ebacba440)) return "vss"u8;
            if (type->Is(0x525074dc, 0x8985, 0x46e2, 0x8057a307dc18a502)) return "dynamic-memory"u8;
            if (type->Is(0xcfa8b69e, 0x5b4a, 0x4cc0, 0xb98b8ba1a1f3f95a)) return "mouse"u8;
            if (type->Is(0xf912ad6d, 0x2b17, 0x48ea, 0xbd65f927a61c7684)) return "keyboard"u8;
            if (type->Is(0xda0a7802, 0xe377, 0x4aac, 0x8e770558eb1073f8)) return "synthetic-video"u8;
            if (type->Is(0x2f9bcc4a, 0x0069, 0x4af3, 0xb76b6fd0be528cda)) return "fibre-channel"u8;
            if (type->Is(0x34d14be3, 0xdee4, 0x41c8, 0x9ae76b174977c192)) return "file-copy"u8;
            if (type->Is(0x8c2eaf3d, 0x32a7, 0x4b09, 0xab99bd1f1c86b501)) return "network-direct"u8;
            if (type->Is(0x44c4f61d, 0x4444, 0x4400, 0x9d52802e27ede19f)) return "pci-passthrough"u8;
            if (type->Is(0x276aacf4, 0xac15, 0x426c, 0x98dd7521ad3f01fe)) return "remote-desktop"u8;
            return default;     // empty: not a well-known class
        }
    }

    // CHANNELMSG_INITIATE_CONTACT (guest to host).
    [StructLayout(LayoutKind.Explicit, Size = 40)]
    public struct VmbusInitiateContact
    {
        public const uint Size = 40;
        [FieldOffset(0)] public VmbusMessageHeader Header;
        [FieldOffset(8)] public uint VersionRequested;
        [FieldOffset(12)] public uint TargetVcpu;          // VP index that receives the host's messages
        // Before 5.0: the interrupt page GPA (first half host-to-guest, second half guest-to-host bits).
        [FieldOffset(16)] public ulong InterruptPage;
        // From 5.0 the same 8 bytes are the target info: message SINT, VTL, feature flags.
        [FieldOffset(16)] public byte MessageSint;
        [FieldOffset(17)] public byte MessageVtl;
        [FieldOffset(20)] public uint FeatureFlags;
        [FieldOffset(24)] public ulong MonitorPage1;       // parent to child
        [FieldOffset(32)] public ulong MonitorPage2;       // child to parent
    }

    // CHANNELMSG_VERSION_RESPONSE (host to guest).
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct VmbusVersionResponse
    {
        public const uint Size = 16;
        [FieldOffset(0)] public VmbusMessageHeader Header;
        [FieldOffset(8)] public byte VersionSupported;     // non-zero: the requested version is accepted
        [FieldOffset(9)] public byte ConnectionState;      // 0 success, 1 low resources, 2 unknown failure
        [FieldOffset(10)] public ushort Padding;
        [FieldOffset(12)] public uint MessageConnectionId; // 5.0+: the connection for later messages
    }

    // CHANNELMSG_OFFERCHANNEL (host to guest).
    [StructLayout(LayoutKind.Explicit, Size = 196)]
    public unsafe struct VmbusOfferChannel
    {
        public const uint Size = 196;
        [FieldOffset(0)] public VmbusMessageHeader Header;
        [FieldOffset(8)] public Guid InterfaceType;
        [FieldOffset(24)] public Guid InterfaceInstance;
        [FieldOffset(40)] public fixed uint Reserved[4];
        [FieldOffset(56)] public ushort ChannelFlags;
        [FieldOffset(58)] public ushort MmioMegabytes;
        [FieldOffset(60)] public fixed byte UserDefined[120];
        [FieldOffset(180)] public ushort SubChannelIndex;
        [FieldOffset(182)] public ushort MmioMegabytesOptional;
        [FieldOffset(184)] public uint ChildRelid;
        [FieldOffset(188)] public byte MonitorId;
        [FieldOffset(189)] public byte MonitorAllocated;   // bit 0
        [FieldOffset(190)] public ushort DedicatedInterrupt; // bit 0
        [FieldOffset(192)] public uint ConnectionId;        // guest-to-host signals (HvCallSignalEvent)
    }

    // An offer as the client keeps it: the OFFERCHANNEL fields a driver needs.
    public struct VmbusOffer
    {
        public Guid InterfaceType;
        public Guid InterfaceInstance;
        public uint ChildRelid;
        public uint ConnectionId;
        public ushort ChannelFlags;
        public ushort MmioMegabytes;
        public ushort SubChannelIndex;
        public byte MonitorId;
        public bool MonitorAllocated;
        public bool DedicatedInterrupt;
        public bool Rescinded;
        public bool Bound;                  // a driver took it (VmbusClient.BindDrivers)

        public static unsafe VmbusOffer Decode(VmbusOfferChannel* m)
        {
            VmbusOffer o = default;
            o.InterfaceType = m->InterfaceType;
            o.InterfaceInstance = m->InterfaceInstance;
            o.ChildRelid = m->ChildRelid;
            o.ConnectionId = m->ConnectionId;
            o.ChannelFlags = m->ChannelFlags;
            o.MmioMegabytes = m->MmioMegabytes;
            o.SubChannelIndex = m->SubChannelIndex;
            o.MonitorId = m->MonitorId;
            o.MonitorAllocated = (m->MonitorAllocated & 1) != 0;
            o.DedicatedInterrupt = (m->DedicatedInterrupt & 1) != 0;
            return o;
        }
    }

    // CHANNELMSG_RESCIND_CHANNELOFFER and the other one-relid messages.
    [StructLayout(LayoutKind.Explicit, Size = 12)]
    public struct VmbusRescindChannelOffer
    {
        public const uint Size = 12;
        [FieldOffset(0)] public VmbusMessageHeader Header;
        [FieldOffset(8)] public uint ChildRelid;
    }

    // CHANNELMSG_CLOSECHANNEL (guest to host).
    [StructLayout(LayoutKind.Explicit, Size = 12)]
    public struct VmbusCloseChannel
    {
        public const uint Size = 12;
        [FieldOffset(0)] public VmbusMessageHeader Header;
        [FieldOffset(8)] public uint ChildRelid;
    }

    // CHANNELMSG_OPENCHANNEL (guest to host).
    [StructLayout(LayoutKind.Explicit, Size = 148)]
    public unsafe struct VmbusOpenChannel
    {
        public const uint Size = 148;
        [FieldOffset(0)] public VmbusMessageHeader Header;
        [FieldOffset(8)] public uint ChildRelid;
        [FieldOffset(12)] public uint OpenId;
        [FieldOffset(16)] public uint RingBufferGpadlId;
        [FieldOffset(20)] public uint TargetVp;
        // Page offset, within the ring GPADL, of the host-to-guest ring (the guest-to-host ring is first).
        [FieldOffset(24)] public uint DownstreamRingBufferPageOffset;
        [FieldOffset(28)] public fixed byte UserData[120];
    }

    // CHANNELMSG_OPENCHANNEL_RESULT (host to guest).
    [StructLayout(LayoutKind.Explicit, Size = 20)]
    public struct VmbusOpenChannelResult
    {
        public const uint Size = 20;
        [FieldOffset(0)] public VmbusMessageHeader Header;
        [FieldOffset(8)] public uint ChildRelid;
        [FieldOffset(12)] public uint OpenId;
        [FieldOffset(16)] public uint Status;               // 0 success
    }

    // CHANNELMSG_GPADL_HEADER (guest to host): one GPA range of whole pages; the
    // page frame numbers that do not fit follow in GPADL_BODY messages.
    [StructLayout(LayoutKind.Explicit, Size = 240)]
    public unsafe struct VmbusGpadlHeader
    {
        public const uint FixedSize = 28;                   // up to the first page frame number
        public const int MaxPfns = (VmbusConstants.MaxMessageSize - (int)FixedSize) / 8;   // 26
        [FieldOffset(0)] public VmbusMessageHeader Header;
        [FieldOffset(8)] public uint ChildRelid;
        [FieldOffset(12)] public uint GpadlId;
        [FieldOffset(16)] public ushort RangeBufferLength;  // bytes of ranges: 8 per range + 8 per page
        [FieldOffset(18)] public ushort RangeCount;
        [FieldOffset(20)] public uint ByteCount;            // range 0
        [FieldOffset(24)] public uint ByteOffset;
        [FieldOffset(28)] public fixed byte PfnBytes[212];  // u64 page frame numbers, 4-byte aligned

        public ulong Pfn(int i) { fixed (byte* p = PfnBytes) return ((ulong*)p)[i]; }
        public void SetPfn(int i, ulong pfn) { fixed (byte* p = PfnBytes) ((ulong*)p)[i] = pfn; }
    }

    // CHANNELMSG_GPADL_BODY (guest to host).
    [StructLayout(LayoutKind.Explicit, Size = 240)]
    public unsafe struct VmbusGpadlBody
    {
        public const uint FixedSize = 16;
        public const int MaxPfns = (VmbusConstants.MaxMessageSize - (int)FixedSize) / 8;   // 28
        [FieldOffset(0)] public VmbusMessageHeader Header;
        [FieldOffset(8)] public uint Reserved;              // Linux's "msgnumber", unused by hosts
        [FieldOffset(12)] public uint GpadlId;
        [FieldOffset(16)] public fixed ulong Pfns[28];
    }

    // CHANNELMSG_GPADL_CREATED (host to guest).
    [StructLayout(LayoutKind.Explicit, Size = 20)]
    public struct VmbusGpadlCreated
    {
        public const uint Size = 20;
        [FieldOffset(0)] public VmbusMessageHeader Header;
        [FieldOffset(8)] public uint ChildRelid;
        [FieldOffset(12)] public uint GpadlId;
        [FieldOffset(16)] public uint CreationStatus;       // 0 success
    }

    // CHANNELMSG_GPADL_TEARDOWN (guest to host).
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct VmbusGpadlTeardown
    {
        public const uint Size = 16;
        [FieldOffset(0)] public VmbusMessageHeader Header;
        [FieldOffset(8)] public uint ChildRelid;
        [FieldOffset(12)] public uint GpadlId;
    }

    // CHANNELMSG_GPADL_TORNDOWN (host to guest).
    [StructLayout(LayoutKind.Explicit, Size = 12)]
    public struct VmbusGpadlTorndown
    {
        public const uint Size = 12;
        [FieldOffset(0)] public VmbusMessageHeader Header;
        [FieldOffset(8)] public uint GpadlId;
    }

    // Splitting a GPADL (one range of whole pages) into GPADL_HEADER and GPADL_BODY messages.
    public static unsafe class VmbusGpadl
    {
        // range_buflen is 16 bits: 8 bytes of range header plus 8 per page.
        public const int MaxPages = (0xFFFF - 8) / 8;

        public static int BodyMessagesFor(int pages)
        {
            if (pages <= VmbusGpadlHeader.MaxPfns) return 0;
            int rest = pages - VmbusGpadlHeader.MaxPfns;
            return (rest + VmbusGpadlBody.MaxPfns - 1) / VmbusGpadlBody.MaxPfns;
        }

        // Fills the header for `pages` pages starting at pfns[0]; returns the message
        // size in bytes (0 if the page count is out of range). Carries up to 26 frames.
        public static uint BuildHeader(VmbusGpadlHeader* m, uint relid, uint gpadlId, ulong* pfns, int pages)
        {
            if (pages <= 0 || pages > MaxPages) return 0;
            byte* raw = (byte*)m;
            for (int i = 0; i < sizeof(VmbusGpadlHeader); i++) raw[i] = 0;
            m->Header.MessageType = VmbusMessageType.GpadlHeader;
            m->ChildRelid = relid;
            m->GpadlId = gpadlId;
            m->RangeCount = 1;
            m->RangeBufferLength = (ushort)(8 + 8 * pages);
            m->ByteCount = (uint)pages * VmbusConstants.PageSize;
            m->ByteOffset = 0;
            int here = pages < VmbusGpadlHeader.MaxPfns ? pages : VmbusGpadlHeader.MaxPfns;
            for (int i = 0; i < here; i++) m->SetPfn(i, pfns[i]);
            return VmbusGpadlHeader.FixedSize + (uint)here * 8;
        }

        // Fills body message `index` (0-based) of a GPADL of `pages` pages; returns its size.
        public static uint BuildBody(VmbusGpadlBody* m, uint gpadlId, ulong* pfns, int pages, int index)
        {
            int first = VmbusGpadlHeader.MaxPfns + index * VmbusGpadlBody.MaxPfns;
            if (index < 0 || first >= pages) return 0;
            int count = pages - first < VmbusGpadlBody.MaxPfns ? pages - first : VmbusGpadlBody.MaxPfns;
            byte* raw = (byte*)m;
            for (int i = 0; i < sizeof(VmbusGpadlBody); i++) raw[i] = 0;
            m->Header.MessageType = VmbusMessageType.GpadlBody;
            m->GpadlId = gpadlId;
            for (int i = 0; i < count; i++) m->Pfns[i] = pfns[first + i];
            return VmbusGpadlBody.FixedSize + (uint)count * 8;
        }
    }
}
