using System;
// The Hyper-V Dynamic Memory protocol: the messages a guest and the host's
// Dynamic Memory service (VMBus class 525074dc-8985-46e2-8057-a307dc18a502)
// exchange as in-band packets on one VMBus channel. Every message starts with
// an 8-byte header (type, size in bytes, transaction id); the layouts below
// include it. Page numbers and counts are in 4 KiB pages whatever the guest's
// page size. Names follow Linux's drivers/hv/hv_balloon.c and QEMU's
// include/hw/hyperv/dynmem-proto.h, the two public descriptions (Microsoft
// publishes none).
//
// Plain C#, no kernel dependencies: tests/Kernel.Tests compiles this file.
#nullable disable
using System.Runtime.InteropServices;
using Kernel.Runtime;

namespace Drivers.DynamicMemory
{
    // Protocol versions, major << 16 | minor.
    public static class DmVersion
    {
        public const uint Win7 = 0x00000003;    // 0.3: balloon, unballoon, hot-add, status
        public const uint Win8 = 0x00010000;    // 1.0: adds DM_INFO_MESSAGE
        public const uint Win10 = 0x00020000;   // 2.0: adds hot-remove

        // What the guest offers, newest first (Linux offers the same three).
        public const int Count = 3;
        public static uint At(int index) => index switch { 0 => Win10, 1 => Win8, 2 => Win7, _ => 0 };

        public static uint Major(uint version) => version >> 16;
        public static uint Minor(uint version) => version & 0xFFFF;
    }

    public enum DmMessageType : ushort
    {
        Error = 0,
        VersionRequest = 1,             // guest to host
        VersionResponse = 2,            // host to guest
        CapabilitiesReport = 3,         // guest to host
        CapabilitiesResponse = 4,       // host to guest
        StatusReport = 5,               // guest to host, once a second
        BalloonRequest = 6,             // host to guest: give pages back
        BalloonResponse = 7,            // guest to host: the pages, as ranges
        UnballoonRequest = 8,           // host to guest: take these ranges back
        UnballoonResponse = 9,          // guest to host
        HotAddRequest = 10,             // host to guest: new memory
        HotAddResponse = 11,            // guest to host
        InfoMessage = 12,               // host to guest (1.0+)
        HotRemoveRequest = 13,          // host to guest (2.0+)
        HotRemoveResponse = 14,         // guest to host (2.0+)
    }

    public static class DmMessageName
    {
        public static ReadOnlySpan<byte> Of(DmMessageType type) => type switch
        {
            DmMessageType.Error => "DM_ERROR"u8,
            DmMessageType.VersionRequest => "DM_VERSION_REQUEST"u8,
            DmMessageType.VersionResponse => "DM_VERSION_RESPONSE"u8,
            DmMessageType.CapabilitiesReport => "DM_CAPABILITIES_REPORT"u8,
            DmMessageType.CapabilitiesResponse => "DM_CAPABILITIES_RESPONSE"u8,
            DmMessageType.StatusReport => "DM_STATUS_REPORT"u8,
            DmMessageType.BalloonRequest => "DM_BALLOON_REQUEST"u8,
            DmMessageType.BalloonResponse => "DM_BALLOON_RESPONSE"u8,
            DmMessageType.UnballoonRequest => "DM_UNBALLOON_REQUEST"u8,
            DmMessageType.UnballoonResponse => "DM_UNBALLOON_RESPONSE"u8,
            DmMessageType.HotAddRequest => "DM_MEM_HOT_ADD_REQUEST"u8,
            DmMessageType.HotAddResponse => "DM_MEM_HOT_ADD_RESPONSE"u8,
            DmMessageType.InfoMessage => "DM_INFO_MESSAGE"u8,
            DmMessageType.HotRemoveRequest => "DM_MEM_HOT_REMOVE_REQUEST"u8,
            DmMessageType.HotRemoveResponse => "DM_MEM_HOT_REMOVE_RESPONSE"u8,
            _ => "unknown DM message"u8,
        };
    }

    public static class DmConstants
    {
        public const ulong PageSize = 4096;
        // Messages are at most one page (Linux's receive and send buffers; Hyper-V sends no more).
        public const uint MaxMessageSize = 4096;
        public const int MaxRangesPerMessage = (int)((MaxMessageSize - DmBalloonResponse.Size) / 8);   // 510
    }

    [StructLayout(LayoutKind.Explicit, Size = 8)]
    public struct DmHeader
    {
        public const uint Size = 8;
        [FieldOffset(0)] public DmMessageType Type;
        [FieldOffset(2)] public ushort MessageSize;     // bytes, this header included
        [FieldOffset(4)] public uint TransactionId;

        public static DmHeader Of(DmMessageType type, uint size, uint transactionId)
            => new DmHeader { Type = type, MessageSize = (ushort)size, TransactionId = transactionId };
    }

    // union dm_mem_page_range: start page 39:0, page count 63:40.
    [StructLayout(LayoutKind.Explicit, Size = 8)]
    public struct DmPageRange
    {
        [FieldOffset(0)] public ulong Value;
        public const ulong MaxPageCount = (1ul << 24) - 1;
        public const ulong MaxStartPage = (1ul << 40) - 1;

        public ulong StartPage { get => Bitfield.Get(Value, 0, 40); set => Value = Bitfield.Set(Value, 0, 40, value); }
        public ulong PageCount { get => Bitfield.Get(Value, 40, 24); set => Value = Bitfield.Set(Value, 40, 24, value); }

        public static DmPageRange Of(ulong startPage, ulong pageCount)
        {
            DmPageRange r = default;
            r.StartPage = startPage;
            r.PageCount = pageCount;
            return r;
        }
    }

    // DM_VERSION_REQUEST (guest to host).
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct DmVersionRequest
    {
        public const uint Size = 16;
        [FieldOffset(0)] public DmHeader Header;
        [FieldOffset(8)] public uint Version;           // minor 15:0, major 31:16
        [FieldOffset(12)] public uint Flags;            // bit 0: is_last_attempt, 31:1 reserved (zero)

        public bool IsLastAttempt { get => Bitfield.Flag(Flags, 0); set => Flags = (uint)Bitfield.WithFlag(Flags, 0, value); }
    }

    // DM_VERSION_RESPONSE (host to guest).
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct DmVersionResponse
    {
        public const uint Size = 16;
        [FieldOffset(0)] public DmHeader Header;
        [FieldOffset(8)] public ulong Flags;            // bit 0: is_accepted, 63:1 reserved

        public bool IsAccepted => Bitfield.Flag(Flags, 0);
    }

    // union dm_caps: balloon 0, hot_add 1, hot_add_alignment 5:2 (2^n MiB), hot_remove 6, 63:7 reserved.
    public struct DmCapabilities
    {
        public ulong Value;
        public bool Balloon { get => Bitfield.Flag(Value, 0); set => Value = Bitfield.WithFlag(Value, 0, value); }
        public bool HotAdd { get => Bitfield.Flag(Value, 1); set => Value = Bitfield.WithFlag(Value, 1, value); }
        public uint HotAddAlignmentLog2MiB { get => (uint)Bitfield.Get(Value, 2, 4); set => Value = Bitfield.Set(Value, 2, 4, value); }
        public bool HotRemove { get => Bitfield.Flag(Value, 6); set => Value = Bitfield.WithFlag(Value, 6, value); }
        public ulong Reserved => Bitfield.Get(Value, 7, 57);
    }

    // DM_CAPABILITIES_REPORT (guest to host).
    [StructLayout(LayoutKind.Explicit, Size = 32)]
    public struct DmCapabilitiesReport
    {
        public const uint Size = 32;
        [FieldOffset(0)] public DmHeader Header;
        [FieldOffset(8)] public DmCapabilities Capabilities;
        [FieldOffset(16)] public ulong MinPageCount;    // hosts ignore both; Linux and Windows send 0 and all ones
        [FieldOffset(24)] public ulong MaxPageNumber;
    }

    // DM_CAPABILITIES_RESPONSE (host to guest): is_accepted 0, hot_remove 1, suppress_pressure_reports 2.
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct DmCapabilitiesResponse
    {
        public const uint Size = 16;
        [FieldOffset(0)] public DmHeader Header;
        [FieldOffset(8)] public ulong Flags;

        public bool IsAccepted => Bitfield.Flag(Flags, 0);
        public bool HotRemove => Bitfield.Flag(Flags, 1);
        public bool SuppressPressureReports => Bitfield.Flag(Flags, 2);
    }

    // DM_STATUS_REPORT (guest to host), once a second: the guest's memory pressure.
    [StructLayout(LayoutKind.Explicit, Size = 48)]
    public struct DmStatusReport
    {
        public const uint Size = 48;
        [FieldOffset(0)] public DmHeader Header;
        [FieldOffset(8)] public ulong AvailablePages;   // num_avail: free for use
        [FieldOffset(16)] public ulong CommittedPages;  // num_committed: in use, ballooned pages included
        [FieldOffset(24)] public ulong PageFileSize;
        [FieldOffset(32)] public ulong ZeroFree;
        [FieldOffset(40)] public uint PageFileWrites;
        [FieldOffset(44)] public uint IoDiff;
    }

    // DM_BALLOON_REQUEST (host to guest): give the host this many pages.
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct DmBalloonRequest
    {
        public const uint Size = 16;
        [FieldOffset(0)] public DmHeader Header;
        [FieldOffset(8)] public uint PageCount;
        [FieldOffset(12)] public uint Reserved;
    }

    // DM_BALLOON_RESPONSE (guest to host): more_pages 0, range_count 31:1, then the ranges.
    // A request is answered by one or more responses; the last has more_pages clear.
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct DmBalloonResponse
    {
        public const uint Size = 16;                    // without the ranges
        [FieldOffset(0)] public DmHeader Header;
        [FieldOffset(8)] public uint Reserved;
        [FieldOffset(12)] public uint Flags;

        public bool MorePages { get => Bitfield.Flag(Flags, 0); set => Flags = (uint)Bitfield.WithFlag(Flags, 0, value); }
        public uint RangeCount { get => (uint)Bitfield.Get(Flags, 1, 31); set => Flags = (uint)Bitfield.Set(Flags, 1, 31, value); }
    }

    // DM_UNBALLOON_REQUEST (host to guest): more_pages 0 of the u32 at 8, range count at 12,
    // then the ranges. Only the last request of a series (more_pages clear) is answered.
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct DmUnballoonRequest
    {
        public const uint Size = 16;                    // without the ranges
        [FieldOffset(0)] public DmHeader Header;
        [FieldOffset(8)] public uint Flags;
        [FieldOffset(12)] public uint RangeCount;

        public bool MorePages => Bitfield.Flag(Flags, 0);
    }

    // DM_UNBALLOON_RESPONSE (guest to host): the header alone.
    [StructLayout(LayoutKind.Explicit, Size = 8)]
    public struct DmUnballoonResponse
    {
        public const uint Size = 8;
        [FieldOffset(0)] public DmHeader Header;
    }

    // DM_MEM_HOT_ADD_REQUEST (host to guest): the pages to add now, then (when the
    // message is 24 bytes) the region they belong to, which later requests may fill.
    [StructLayout(LayoutKind.Explicit, Size = 24)]
    public struct DmHotAddRequest
    {
        public const uint Size = 16;                    // without the region
        public const uint SizeWithRegion = 24;
        [FieldOffset(0)] public DmHeader Header;
        [FieldOffset(8)] public DmPageRange Range;
        [FieldOffset(16)] public DmPageRange Region;
    }

    // DM_MEM_HOT_ADD_RESPONSE (guest to host). result 1 with page_count 0 tells the
    // host to stop hot-adding for good; result 0 is a failure it may retry later.
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct DmHotAddResponse
    {
        public const uint Size = 16;
        [FieldOffset(0)] public DmHeader Header;
        [FieldOffset(8)] public uint PageCount;
        [FieldOffset(12)] public uint Result;
    }

    // DM_INFO_MESSAGE (host to guest, 1.0+): reserved u32, info size u32, then typed records.
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct DmInfoMessage
    {
        public const uint Size = 16;                    // without the records
        [FieldOffset(0)] public DmHeader Header;
        [FieldOffset(8)] public uint Reserved;
        [FieldOffset(12)] public uint InfoSize;
    }

    // One DM_INFO_MESSAGE record: type, data size, data. Type 0 carries the
    // maximum page count the host may ever give this guest (u64).
    [StructLayout(LayoutKind.Explicit, Size = 8)]
    public struct DmInfoRecord
    {
        public const uint Size = 8;
        public const uint TypeMaxPageCount = 0;
        [FieldOffset(0)] public uint Type;
        [FieldOffset(4)] public uint DataSize;
    }

    // DM_MEM_HOT_REMOVE_REQUEST (host to guest, 2.0+).
    [StructLayout(LayoutKind.Explicit, Size = 24)]
    public struct DmHotRemoveRequest
    {
        public const uint Size = 24;
        [FieldOffset(0)] public DmHeader Header;
        [FieldOffset(8)] public uint VirtualNode;
        [FieldOffset(12)] public uint PageCount;
        [FieldOffset(16)] public uint QosFlags;
        [FieldOffset(20)] public uint Reserved;
    }

    // DM_MEM_HOT_REMOVE_RESPONSE (guest to host, 2.0+): result, range count, more_pages (bit 0 of the u64 at 16), ranges.
    [StructLayout(LayoutKind.Explicit, Size = 24)]
    public struct DmHotRemoveResponse
    {
        public const uint Size = 24;                    // without the ranges
        [FieldOffset(0)] public DmHeader Header;
        [FieldOffset(8)] public uint Result;
        [FieldOffset(12)] public uint RangeCount;
        [FieldOffset(16)] public ulong Flags;
    }
}
