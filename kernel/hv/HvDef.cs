using System;
// TLFS definitions, named as the Hyper-V Top-Level Functional Specification
// names them (modelled on OpenVMM's hvdef crate). Each register is a small
// typed value with named bit fields; each hypercall input and output is a
// fixed-layout struct whose offsets tests/ pins. Plain C#, no kernel
// dependencies: the host tests compile this same file.
using System.Runtime.InteropServices;
using Kernel.Runtime;

namespace Kernel.Hv
{
    // TLFS 2.4 "Hypervisor CPUID Leaves".
    public static class HvCpuid
    {
        public const uint VendorAndMaxFunction = 0x40000000;   // EBX ECX EDX = "Microsoft Hv"
        public const uint Interface = 0x40000001;              // EAX = "Hv#1"
        public const uint Version = 0x40000002;
        public const uint Features = 0x40000003;               // EAX/EBX privileges, EDX features
        public const uint Recommendations = 0x40000004;
        public const uint Limits = 0x40000005;
        public const uint HardwareFeatures = 0x40000006;
        public const uint KvmSignature = 0x40000100;           // KVM moves "KVMKVMKVM" here when it offers Hyper-V

        public const uint InterfaceSignatureHv1 = 0x31237648;  // "Hv#1"
        public const uint HypervisorPresentBit = 1u << 31;     // CPUID.1:ECX
    }

    // Partition privilege flags: CPUID 0x40000003 EAX (bits 0-31) and EBX (bits 32-63). TLFS 2.4.4.
    public static class HvPartitionPrivilege
    {
        public const ulong AccessVpRunTimeReg = 1ul << 0;
        public const ulong AccessPartitionReferenceCounter = 1ul << 1;
        public const ulong AccessSynicRegs = 1ul << 2;
        public const ulong AccessSyntheticTimerRegs = 1ul << 3;
        public const ulong AccessIntrCtrlRegs = 1ul << 4;       // the APIC MSRs (EOI, ICR, TPR)
        public const ulong AccessHypercallMsrs = 1ul << 5;
        public const ulong AccessVpIndex = 1ul << 6;
        public const ulong AccessResetReg = 1ul << 7;
        public const ulong AccessStatsReg = 1ul << 8;
        public const ulong AccessPartitionReferenceTsc = 1ul << 9;
        public const ulong AccessGuestIdleReg = 1ul << 10;
        public const ulong AccessFrequencyRegs = 1ul << 11;
        public const ulong AccessDebugRegs = 1ul << 12;
        public const ulong CreatePartitions = 1ul << 32;
        public const ulong AccessPartitionId = 1ul << 33;
        public const ulong AccessMemoryPool = 1ul << 34;
        public const ulong PostMessages = 1ul << 36;
        public const ulong SignalEvents = 1ul << 37;
        public const ulong CreatePort = 1ul << 38;
        public const ulong ConnectPort = 1ul << 39;
        public const ulong AccessStats = 1ul << 40;
        public const ulong Debugging = 1ul << 43;
        public const ulong CpuManagement = 1ul << 44;
        public const ulong AccessVsm = 1ul << 48;
        public const ulong AccessVpRegisters = 1ul << 49;
        public const ulong EnableExtendedHypercalls = 1ul << 52;
        public const ulong StartVirtualProcessor = 1ul << 53;
    }

    // CPUID 0x40000003 EDX feature flags. TLFS 2.4.4.
    public static class HvFeature
    {
        public const uint GuestDebugging = 1u << 1;
        public const uint PerformanceMonitor = 1u << 2;
        public const uint XmmHypercallInput = 1u << 4;
        public const uint GuestIdleState = 1u << 5;
        public const uint GuestCrashMsrs = 1u << 10;
        public const uint XmmHypercallOutput = 1u << 15;
        public const uint SintPolling = 1u << 17;
        public const uint DirectSyntheticTimers = 1u << 19;
    }

    // CPUID 0x40000004 EAX recommendations. TLFS 2.4.5.
    public static class HvRecommendation
    {
        public const uint HypercallForAddressSpaceSwitch = 1u << 0;
        public const uint HypercallForLocalFlush = 1u << 1;
        public const uint HypercallForRemoteFlush = 1u << 2;
        public const uint MsrForApicAccess = 1u << 3;
        public const uint MsrForReset = 1u << 4;
        public const uint RelaxedTiming = 1u << 5;
        public const uint DeprecateAutoEoi = 1u << 9;
        public const uint SyntheticClusterIpi = 1u << 10;
    }

    // Synthetic MSRs. TLFS 2.5 "Synthetic MSRs" and 11.7 "SynIC MSRs".
    public static class HvMsr
    {
        public const uint GuestOsId = 0x40000000;
        public const uint Hypercall = 0x40000001;
        public const uint VpIndex = 0x40000002;
        public const uint Reset = 0x40000003;
        public const uint VpRuntime = 0x40000010;
        public const uint TimeRefCount = 0x40000020;
        public const uint ReferenceTsc = 0x40000021;
        public const uint TscFrequency = 0x40000022;
        public const uint ApicFrequency = 0x40000023;
        public const uint Eoi = 0x40000070;
        public const uint Icr = 0x40000071;
        public const uint Tpr = 0x40000072;
        public const uint VpAssistPage = 0x40000073;
        public const uint Scontrol = 0x40000080;
        public const uint Sversion = 0x40000081;
        public const uint Siefp = 0x40000082;
        public const uint Simp = 0x40000083;
        public const uint Eom = 0x40000084;
        public const uint Sint0 = 0x40000090;                  // SINT0..SINT15 are consecutive
        public const uint Stimer0Config = 0x400000B0;          // config/count pairs for timers 0..3
        public const uint Stimer0Count = 0x400000B1;
        public static uint StimerConfig(int timer) => Stimer0Config + 2 * (uint)timer;
        public static uint StimerCount(int timer) => Stimer0Count + 2 * (uint)timer;
        public const uint CrashP0 = 0x40000100;                // P0..P4 are consecutive
        public const uint CrashCtl = 0x40000105;

        public static uint Sint(int sint) => Sint0 + (uint)sint;
    }

    // HV_X64_MSR_GUEST_OS_ID, open-source encoding. TLFS 2.6 "Reporting the Guest OS Identity":
    // build 15:0, version 47:16, OS id 55:48, OS type 62:56, open source 63.
    public struct HvGuestOsId
    {
        public ulong Value;

        public const int OpenSourceShift = 63;
        public const ulong OpenSourceBit = 1ul << OpenSourceShift;
        public const byte OsTypeLinux = 0x1, OsTypeFreeBsd = 0x2, OsTypeXen = 0x3, OsTypeIllumos = 0x4;

        public static HvGuestOsId OpenSource(byte osType, byte osId, uint version, ushort build)
            => new HvGuestOsId { Build = build, Version = version, OsId = osId, OsType = osType, IsOpenSource = true };

        public ushort Build { get => (ushort)Bitfield.Get(Value, 0, 16); set => Value = Bitfield.Set(Value, 0, 16, value); }
        public uint Version { get => (uint)Bitfield.Get(Value, 16, 32); set => Value = Bitfield.Set(Value, 16, 32, value); }
        public byte OsId { get => (byte)Bitfield.Get(Value, 48, 8); set => Value = Bitfield.Set(Value, 48, 8, value); }
        public byte OsType { get => (byte)Bitfield.Get(Value, 56, 7); set => Value = Bitfield.Set(Value, 56, 7, value); }
        public bool IsOpenSource { get => Bitfield.Flag(Value, OpenSourceShift); set => Value = Bitfield.WithFlag(Value, OpenSourceShift, value); }
    }

    // HV_X64_MSR_HYPERCALL. TLFS 3.13 "Establishing the Hypercall Interface":
    // enable 0, locked 1, RsvdP 11:2, hypercall GPA page number 63:12.
    public struct HvHypercallMsr
    {
        public ulong Value;
        public bool Enable { get => Bitfield.Flag(Value, 0); set => Value = Bitfield.WithFlag(Value, 0, value); }
        public bool Locked { get => Bitfield.Flag(Value, 1); set => Value = Bitfield.WithFlag(Value, 1, value); }
        public ulong Reserved0 { get => Bitfield.Get(Value, 2, 10); set => Value = Bitfield.Set(Value, 2, 10, value); }   // 11:2, preserved
        public ulong GpaPageNumber { get => Bitfield.Get(Value, 12, 52); set => Value = Bitfield.Set(Value, 12, 52, value); }
    }

    // SCONTROL. TLFS 11.7.1: enable 0, RsvdP 63:1.
    public struct HvSynicScontrol
    {
        public ulong Value;
        public bool Enable { get => Bitfield.Flag(Value, 0); set => Value = Bitfield.WithFlag(Value, 0, value); }
        public ulong Reserved0 { get => Bitfield.Get(Value, 1, 63); set => Value = Bitfield.Set(Value, 1, 63, value); }   // 63:1, preserved
    }

    // SIMP and SIEFP share one layout. TLFS 11.7.3, 11.7.4: enable 0, RsvdP 11:1,
    // GPA page number of the SIM or SIEF page 63:12.
    public struct HvSynicSimpSiefp
    {
        public ulong Value;
        public bool Enable { get => Bitfield.Flag(Value, 0); set => Value = Bitfield.WithFlag(Value, 0, value); }
        public ulong Reserved0 { get => Bitfield.Get(Value, 1, 11); set => Value = Bitfield.Set(Value, 1, 11, value); }   // 11:1, preserved
        public ulong GpaPageNumber { get => Bitfield.Get(Value, 12, 52); set => Value = Bitfield.Set(Value, 12, 52, value); }
    }

    // SINTx. TLFS 11.7.5: vector 7:0, RsvdP 15:8, masked 16, auto-EOI 17,
    // polling 18, RsvdP 63:19.
    public struct HvSynicSint
    {
        public ulong Value;
        public const ulong ResetValue = 1ul << 16;   // masked, vector 0
        public byte Vector { get => (byte)Bitfield.Get(Value, 0, 8); set => Value = Bitfield.Set(Value, 0, 8, value); }
        public ulong Reserved0 { get => Bitfield.Get(Value, 8, 8); set => Value = Bitfield.Set(Value, 8, 8, value); }     // 15:8, preserved
        public bool Masked { get => Bitfield.Flag(Value, 16); set => Value = Bitfield.WithFlag(Value, 16, value); }
        public bool AutoEoi { get => Bitfield.Flag(Value, 17); set => Value = Bitfield.WithFlag(Value, 17, value); }
        public bool Polling { get => Bitfield.Flag(Value, 18); set => Value = Bitfield.WithFlag(Value, 18, value); }
        public ulong Reserved1 { get => Bitfield.Get(Value, 19, 45); set => Value = Bitfield.Set(Value, 19, 45, value); } // 63:19, preserved
    }

    // STIMERx_CONFIG. TLFS 12.5 "Synthetic Timer MSRs": enable 0, periodic 1,
    // lazy 2, auto-enable 3, APIC vector 11:4 (direct mode), direct mode 12,
    // RsvdZ 15:13, SINT 19:16, RsvdZ 63:20.
    public struct HvStimerConfig
    {
        public ulong Value;
        public bool Enable { get => Bitfield.Flag(Value, 0); set => Value = Bitfield.WithFlag(Value, 0, value); }
        public bool Periodic { get => Bitfield.Flag(Value, 1); set => Value = Bitfield.WithFlag(Value, 1, value); }
        public bool Lazy { get => Bitfield.Flag(Value, 2); set => Value = Bitfield.WithFlag(Value, 2, value); }
        public bool AutoEnable { get => Bitfield.Flag(Value, 3); set => Value = Bitfield.WithFlag(Value, 3, value); }
        public byte ApicVector { get => (byte)Bitfield.Get(Value, 4, 8); set => Value = Bitfield.Set(Value, 4, 8, value); }
        public bool DirectMode { get => Bitfield.Flag(Value, 12); set => Value = Bitfield.WithFlag(Value, 12, value); }
        public ulong Reserved0 { get => Bitfield.Get(Value, 13, 3); set => Value = Bitfield.Set(Value, 13, 3, value); }   // 15:13, zero
        public byte Sint { get => (byte)Bitfield.Get(Value, 16, 4); set => Value = Bitfield.Set(Value, 16, 4, value); }
        public ulong Reserved1 { get => Bitfield.Get(Value, 20, 44); set => Value = Bitfield.Set(Value, 20, 44, value); } // 63:20, zero
    }

    // The payload of an HvMessageTimerExpired message. TLFS 12.6.
    [StructLayout(LayoutKind.Explicit, Size = 24)]
    public struct HvTimerMessagePayload
    {
        [FieldOffset(0)] public uint TimerIndex;
        [FieldOffset(8)] public ulong ExpirationTime;   // the time the timer was due, in 100 ns reference time
        [FieldOffset(16)] public ulong DeliveryTime;    // when the message was delivered
    }

    // The reference TSC page. TLFS 12.7: reference time = ((TSC * TscScale) >> 64) + TscOffset,
    // valid while TscSequence is non-zero and unchanged across the read.
    [StructLayout(LayoutKind.Explicit, Size = 24)]
    public struct HvReferenceTscPage
    {
        [FieldOffset(0)] public uint TscSequence;
        [FieldOffset(8)] public ulong TscScale;
        [FieldOffset(16)] public long TscOffset;
    }

    // Hypercall status codes. TLFS 3.9 "Hypercall Status Codes".
    public enum HvStatus : ushort
    {
        Success = 0x0000,
        InvalidHypercallCode = 0x0002,
        InvalidHypercallInput = 0x0003,
        InvalidAlignment = 0x0004,
        InvalidParameter = 0x0005,
        AccessDenied = 0x0006,
        InvalidPartitionState = 0x0007,
        OperationDenied = 0x0008,
        UnknownProperty = 0x0009,
        PropertyValueOutOfRange = 0x000A,
        InsufficientMemory = 0x000B,
        PartitionTooDeep = 0x000C,
        InvalidPartitionId = 0x000D,
        InvalidVpIndex = 0x000E,
        NotFound = 0x0010,
        InvalidPortId = 0x0011,
        InvalidConnectionId = 0x0012,
        InsufficientBuffers = 0x0013,
        NotAcknowledged = 0x0014,
        InvalidVpState = 0x0015,
        Acknowledged = 0x0016,
        InvalidSaveRestoreState = 0x0017,
        InvalidSynicState = 0x0018,
        ObjectInUse = 0x0019,
        InvalidProximityDomainInfo = 0x001A,
        NoData = 0x001B,
        Inactive = 0x001C,
        NoResources = 0x001D,
        FeatureUnavailable = 0x001E,
        PartialPacket = 0x001F,
        ProcessorFeatureNotSupported = 0x0020,
        InsufficientBuffer = 0x0033,
        InvalidLpIndex = 0x0041,
        InvalidRegisterValue = 0x0050,
        OperationFailed = 0x0071,
        TimeOut = 0x0078,
        CallPending = 0x0079,
        VtlAlreadyEnabled = 0x0086,
    }

    // The TLFS name of a status, for logs and test failures.
    public static class HvStatusName
    {
        public static ReadOnlySpan<byte> Of(HvStatus status) => status switch
        {
            HvStatus.Success => "SUCCESS"u8,
            HvStatus.InvalidHypercallCode => "INVALID_HYPERCALL_CODE"u8,
            HvStatus.InvalidHypercallInput => "INVALID_HYPERCALL_INPUT"u8,
            HvStatus.InvalidAlignment => "INVALID_ALIGNMENT"u8,
            HvStatus.InvalidParameter => "INVALID_PARAMETER"u8,
            HvStatus.AccessDenied => "ACCESS_DENIED"u8,
            HvStatus.InvalidPartitionState => "INVALID_PARTITION_STATE"u8,
            HvStatus.OperationDenied => "OPERATION_DENIED"u8,
            HvStatus.InsufficientMemory => "INSUFFICIENT_MEMORY"u8,
            HvStatus.InvalidPartitionId => "INVALID_PARTITION_ID"u8,
            HvStatus.InvalidVpIndex => "INVALID_VP_INDEX"u8,
            HvStatus.NotFound => "NOT_FOUND"u8,
            HvStatus.InvalidPortId => "INVALID_PORT_ID"u8,
            HvStatus.InvalidConnectionId => "INVALID_CONNECTION_ID"u8,
            HvStatus.InsufficientBuffers => "INSUFFICIENT_BUFFERS"u8,
            HvStatus.NotAcknowledged => "NOT_ACKNOWLEDGED"u8,
            HvStatus.Acknowledged => "ACKNOWLEDGED"u8,
            HvStatus.InvalidSynicState => "INVALID_SYNIC_STATE"u8,
            HvStatus.ObjectInUse => "OBJECT_IN_USE"u8,
            HvStatus.NoData => "NO_DATA"u8,
            HvStatus.TimeOut => "TIMEOUT"u8,
            _ => "(not named here)"u8,
        };
    }

    // Hypercall call codes. TLFS Appendix A "Hypercall Code Reference".
    public enum HvCallCode : ushort
    {
        HvCallNotifyLongSpinWait = 0x0008,
        HvCallSendSyntheticClusterIpi = 0x000B,
        HvCallPostMessage = 0x005C,
        HvCallSignalEvent = 0x005D,
        HvCallSignalEventDirect = 0x00C0,
        HvCallPostMessageDirect = 0x00C1,
    }

    // The hypercall input value (RCX). TLFS 3.7: call code 15:0, fast 16,
    // variable header size 26:17, RsvdZ 30:27, nested 31, rep count 43:32,
    // RsvdZ 47:44, rep start 59:48, RsvdZ 63:60.
    public struct HvHypercallControl
    {
        public ulong Value;

        public const int FastShift = 16;
        public const ulong FastBit = 1ul << FastShift;

        public ushort CallCode { get => (ushort)Bitfield.Get(Value, 0, 16); set => Value = Bitfield.Set(Value, 0, 16, value); }
        public bool Fast { get => Bitfield.Flag(Value, FastShift); set => Value = Bitfield.WithFlag(Value, FastShift, value); }
        public uint VariableHeaderSize { get => (uint)Bitfield.Get(Value, 17, 10); set => Value = Bitfield.Set(Value, 17, 10, value); }
        public ulong Reserved0 { get => Bitfield.Get(Value, 27, 4); set => Value = Bitfield.Set(Value, 27, 4, value); }     // 30:27, zero
        public bool Nested { get => Bitfield.Flag(Value, 31); set => Value = Bitfield.WithFlag(Value, 31, value); }
        public ushort RepCount { get => (ushort)Bitfield.Get(Value, 32, 12); set => Value = Bitfield.Set(Value, 32, 12, value); }
        public ulong Reserved1 { get => Bitfield.Get(Value, 44, 4); set => Value = Bitfield.Set(Value, 44, 4, value); }     // 47:44, zero
        public ushort RepStartIndex { get => (ushort)Bitfield.Get(Value, 48, 12); set => Value = Bitfield.Set(Value, 48, 12, value); }
        public ulong Reserved2 { get => Bitfield.Get(Value, 60, 4); set => Value = Bitfield.Set(Value, 60, 4, value); }     // 63:60, zero

        public static HvHypercallControl For(HvCallCode code) => new HvHypercallControl { Value = (ushort)code };
    }

    // The hypercall result value (RAX). TLFS 3.8: status 15:0, RsvdZ 31:16,
    // reps completed 43:32, RsvdZ 63:44.
    public struct HvHypercallResult
    {
        public ulong Value;
        public HvStatus Status => (HvStatus)Bitfield.Get(Value, 0, 16);
        public ulong Reserved0 => Bitfield.Get(Value, 16, 16);                  // 31:16
        public ushort RepsCompleted => (ushort)Bitfield.Get(Value, 32, 12);
        public ulong Reserved1 => Bitfield.Get(Value, 44, 20);                  // 63:44
    }

    public static class HvConstants
    {
        public const ulong HV_PARTITION_ID_SELF = 0xFFFFFFFFFFFFFFFF;
        public const uint HV_VP_INDEX_SELF = 0xFFFFFFFE;
        public const uint HV_ANY_VP = 0xFFFFFFFF;
        public const int HV_SYNIC_SINT_COUNT = 16;
        public const int HV_EVENT_FLAGS_COUNT = 256 * 8;        // 2048 flags per SINT
        public const int HV_MESSAGE_PAYLOAD_BYTE_COUNT = 240;
        public const int HV_MESSAGE_SIZE = 256;
        public const byte HV_VTL_MAX = 2;
        public const uint HV_MESSAGE_TYPE_HYPERVISOR_MASK = 0x80000000;   // message types with bit 31 set are the hypervisor's
    }

    // SynIC message types. TLFS 11.11.2 "HV_MESSAGE_TYPE": 0 marks a free SIM
    // slot; types with bit 31 set are the hypervisor's own, the rest are free
    // for guests and hosts (VMBus uses 1). An open enum: any uint is a type.
    public enum HvMessageType : uint
    {
        HvMessageTypeNone = 0x00000000,
        HvMessageTypeUnmappedGpa = 0x80000000,
        HvMessageTypeGpaIntercept = 0x80000001,
        HvMessageTimerExpired = 0x80000010,
        HvMessageTypeInvalidVpRegisterValue = 0x80000020,
        HvMessageTypeUnrecoverableException = 0x80000021,
        HvMessageTypeUnsupportedFeature = 0x80000022,
        HvMessageTypeEventLogBufferComplete = 0x80000040,
        HvMessageTypeX64IoPortIntercept = 0x80010000,
        HvMessageTypeX64MsrIntercept = 0x80010001,
        HvMessageTypeX64CpuidIntercept = 0x80010002,
        HvMessageTypeX64ExceptionIntercept = 0x80010003,
        HvMessageTypeX64ApicEoi = 0x80010004,
        HvMessageTypeX64LegacyFpError = 0x80010005,
    }

    // The TLFS name of a message type, for logs and test failures.
    public static class HvMessageTypeName
    {
        public static ReadOnlySpan<byte> Of(HvMessageType type) => type switch
        {
            HvMessageType.HvMessageTypeNone => "HvMessageTypeNone"u8,
            HvMessageType.HvMessageTypeUnmappedGpa => "HvMessageTypeUnmappedGpa"u8,
            HvMessageType.HvMessageTypeGpaIntercept => "HvMessageTypeGpaIntercept"u8,
            HvMessageType.HvMessageTimerExpired => "HvMessageTimerExpired"u8,
            HvMessageType.HvMessageTypeInvalidVpRegisterValue => "HvMessageTypeInvalidVpRegisterValue"u8,
            HvMessageType.HvMessageTypeUnrecoverableException => "HvMessageTypeUnrecoverableException"u8,
            HvMessageType.HvMessageTypeUnsupportedFeature => "HvMessageTypeUnsupportedFeature"u8,
            HvMessageType.HvMessageTypeEventLogBufferComplete => "HvMessageTypeEventLogBufferComplete"u8,
            HvMessageType.HvMessageTypeX64IoPortIntercept => "HvMessageTypeX64IoPortIntercept"u8,
            HvMessageType.HvMessageTypeX64MsrIntercept => "HvMessageTypeX64MsrIntercept"u8,
            HvMessageType.HvMessageTypeX64CpuidIntercept => "HvMessageTypeX64CpuidIntercept"u8,
            HvMessageType.HvMessageTypeX64ExceptionIntercept => "HvMessageTypeX64ExceptionIntercept"u8,
            HvMessageType.HvMessageTypeX64ApicEoi => "HvMessageTypeX64ApicEoi"u8,
            HvMessageType.HvMessageTypeX64LegacyFpError => "HvMessageTypeX64LegacyFpError"u8,
            _ => (uint)type >= HvConstants.HV_MESSAGE_TYPE_HYPERVISOR_MASK ? "(a hypervisor type not named here)"u8 : "(a guest or host type)"u8,
        };
    }

    // HvCallSignalEventDirect (0x00C0) input. TLFS: HvCallSignalEventDirect.
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct HvSignalEventDirectInput
    {
        [FieldOffset(0)] public ulong TargetPartition;
        [FieldOffset(8)] public uint TargetVp;
        [FieldOffset(12)] public byte TargetVtl;
        [FieldOffset(13)] public byte TargetSint;
        [FieldOffset(14)] public ushort FlagNumber;
    }

    // HvCallSignalEventDirect output: one byte, padded to the 8-byte output granule.
    [StructLayout(LayoutKind.Explicit, Size = 8)]
    public struct HvSignalEventDirectOutput
    {
        [FieldOffset(0)] public byte NewlySignaled;
    }

    // The message header of a SIM slot. TLFS 11.11.1 "HV_MESSAGE".
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct HvMessageHeader
    {
        // The wire field, raw: VMBus's receive path still reads it as a uint.
        [FieldOffset(0)] public uint MessageType;
        [FieldOffset(4)] public byte PayloadSize;
        [FieldOffset(5)] public byte MessageFlags;             // bit 0: MessagePending
        [FieldOffset(8)] public ulong Sender;                  // port id / originator

        public const byte MessagePending = 1;

        public HvMessageType Type { get => (HvMessageType)MessageType; set => MessageType = (uint)value; }
    }

    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public unsafe struct HvMessage
    {
        [FieldOffset(0)] public HvMessageHeader Header;
        [FieldOffset(16)] public fixed byte Payload[240];
    }

    // HvCallPostMessageDirect (0x00C1) input, as OpenVMM's hvdef and Linux's
    // hvhdk.h lay it out (the TLFS page shows the SINT at 13 and the message at 16).
    [StructLayout(LayoutKind.Explicit, Size = 280)]
    public unsafe struct HvPostMessageDirectInput
    {
        [FieldOffset(0)] public ulong PartitionId;
        [FieldOffset(8)] public uint VpIndex;
        [FieldOffset(12)] public byte Vtl;
        [FieldOffset(13)] public fixed byte Padding[3];
        [FieldOffset(16)] public uint Sint;
        [FieldOffset(20)] public HvMessage Message;
        [FieldOffset(276)] public uint Padding2;
    }

    // HvCallPostMessage (0x005C) input. TLFS: HvPostMessage.
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public unsafe struct HvPostMessageInput
    {
        [FieldOffset(0)] public uint ConnectionId;
        [FieldOffset(8)] public uint MessageType;
        [FieldOffset(12)] public uint PayloadSize;
        [FieldOffset(16)] public fixed byte Payload[240];
    }

    // HvCallSignalEvent (0x005D) input; as a fast call RDX = ConnectionId | FlagNumber << 32.
    [StructLayout(LayoutKind.Explicit, Size = 8)]
    public struct HvSignalEventInput
    {
        [FieldOffset(0)] public uint ConnectionId;
        [FieldOffset(4)] public ushort FlagNumber;
        [FieldOffset(6)] public ushort RsvdZ;
    }
}
