using Guid = Kernel.Runtime.Guid;     // not the host's System.Guid, where the host tests compile this file
// VMBus channel-management protocol: the messages a guest and the VMBus host
// exchange through HvCallPostMessage (guest to host) and the SynIC message
// slot of the VMBus SINT (host to guest). Every message starts with an 8-byte
// header (type, padding); the layouts below include it, so each struct's
// offsets are the offsets in the hypercall payload / SIM message payload.
// Sources: Linux include/linux/hyperv.h and drivers/hv/, QEMU 7.2
// include/hw/hyperv/vmbus-proto.h and hw/hyperv/vmbus.c, OpenVMM vmbus_core.
//
// Only the numbers and the layouts (and the offer record decoded from one);
// their names are in VmbusText.cs, the GPADL_HEADER/BODY split in
// VmbusGpadlMessages.cs.
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
    }

    [StructLayout(LayoutKind.Explicit, Size = 8)]
    public struct VmbusMessageHeader
    {
        public const uint Size = 8;
        [FieldOffset(0)] public uint MessageType;
        [FieldOffset(4)] public uint Padding;

        public static VmbusMessageHeader Of(uint type) => new VmbusMessageHeader { MessageType = type };
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
        public bool Bound;                  // a driver took it (VmbusDrivers.Bind)

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
}
