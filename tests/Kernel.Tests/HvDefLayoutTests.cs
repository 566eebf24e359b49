using System.Text;
using System.Runtime.CompilerServices;
using Kernel.Hv;
using Xunit;

namespace Kernel.Tests;

// Pins the TLFS layouts of kernel/hv/HvDef.cs (the same file the kernel compiles):
// every hypercall input/output offset and size, and every register's bit fields.
public unsafe class HvDefLayoutTests
{
    [Fact]
    public void SignalEventDirectInputMatchesTheSeedPage() => LayoutAssert.Is<HvSignalEventDirectInput>(16,
        ("TargetPartition", 0), ("TargetVp", 8), ("TargetVtl", 12), ("TargetSint", 13), ("FlagNumber", 14));

    [Fact]
    public void SignalEventDirectInputBytes()
    {
        var x = new HvSignalEventDirectInput { TargetPartition = HvConstants.HV_PARTITION_ID_SELF, TargetVp = 0x01020304, TargetVtl = 2, TargetSint = 15, FlagNumber = 2047 };
        var bytes = new byte[16];
        Unsafe.WriteUnaligned(ref bytes[0], x);
        Assert.Equal("FF-FF-FF-FF-FF-FF-FF-FF-04-03-02-01-02-0F-FF-07", BitConverter.ToString(bytes));
    }

    [Fact]
    public void PostMessageDirectInputLayout() => LayoutAssert.Is<HvPostMessageDirectInput>(280,
        ("PartitionId", 0), ("VpIndex", 8), ("Vtl", 12), ("Sint", 16), ("Message", 20), ("Padding2", 276));

    [Fact]
    public void SignalEventDirectOutputLayout() => LayoutAssert.Is<HvSignalEventDirectOutput>(8, ("NewlySignaled", 0));

    [Theory]
    [InlineData(HvStatus.InvalidHypercallCode, "INVALID_HYPERCALL_CODE")]
    [InlineData(HvStatus.InvalidVpIndex, "INVALID_VP_INDEX")]
    [InlineData(HvStatus.InvalidSynicState, "INVALID_SYNIC_STATE")]
    [InlineData(HvStatus.ObjectInUse, "OBJECT_IN_USE")]
    [InlineData((HvStatus)0x7777, "(not named here)")]
    public void StatusesHaveTheirTlfsNames(HvStatus status, string name) => Assert.Equal(name, Encoding.UTF8.GetString(HvStatusName.Of(status)));

    [Fact]
    public void PostMessageAndSignalEventInputLayouts()
    {
        LayoutAssert.Is<HvPostMessageInput>(256, ("ConnectionId", 0), ("MessageType", 8), ("PayloadSize", 12), ("Payload", 16));
        LayoutAssert.Is<HvSignalEventInput>(8, ("ConnectionId", 0), ("FlagNumber", 4));
    }

    [Fact]
    public void MessageLayout()
    {
        LayoutAssert.Is<HvMessage>(256, ("Header.MessageType", 0), ("Header.PayloadSize", 4), ("Header.MessageFlags", 5), ("Header.Sender", 8), ("Payload", 16));
        Assert.Equal(16, sizeof(HvMessageHeader));
    }

    [Fact]
    public void HypercallControlBitFields()
    {
        var c = HvHypercallControl.For(HvCallCode.HvCallSignalEventDirect);
        Assert.Equal(0xC0ul, c.Value);
        c.Fast = true;
        c.VariableHeaderSize = 3;
        c.RepCount = 0xABC;
        c.RepStartIndex = 0x123;
        c.Nested = true;
        Assert.Equal(0x0123_0ABC_8007_00C0ul, c.Value);
        Assert.Equal((ushort)0xC0, c.CallCode);
        Assert.True(c.Fast);
        Assert.Equal(3u, c.VariableHeaderSize);
        Assert.Equal((ushort)0xABC, c.RepCount);
        Assert.Equal((ushort)0x123, c.RepStartIndex);
        c.Fast = false;
        Assert.Equal(0x0123_0ABC_8006_00C0ul, c.Value);
    }

    [Fact]
    public void HypercallResultFields()
    {
        var r = new HvHypercallResult { Value = 0x0000_0005_0000_0002 };
        Assert.Equal(HvStatus.InvalidHypercallCode, r.Status);
        Assert.Equal((ushort)5, r.RepsCompleted);
    }

    [Fact]
    public void GuestOsIdOpenSourceEncoding()
    {
        var id = HvGuestOsId.OpenSource(0x7F, 0xC5, 0x00000100, 3);
        Assert.Equal(0xFFC5_0000_0100_0003ul, id.Value);
        Assert.True(id.IsOpenSource);
        Assert.Equal((byte)0x7F, id.OsType);
        Assert.Equal((byte)0xC5, id.OsId);
        Assert.Equal(0x100u, id.Version);
        Assert.Equal((ushort)3, id.Build);
    }

    [Fact]
    public void SynicRegisterBitFields()
    {
        var sint = new HvSynicSint { Value = HvSynicSint.ResetValue };
        Assert.True(sint.Masked);
        sint.Vector = 0x55;
        sint.Masked = false;
        sint.AutoEoi = true;
        Assert.Equal(0x20055ul, sint.Value);
        sint.Polling = true;
        Assert.Equal(0x60055ul, sint.Value);

        var simp = new HvSynicSimpSiefp { GpaPageNumber = 0x240, Enable = true };
        Assert.Equal(0x240001ul, simp.Value);
        var hc = new HvHypercallMsr { GpaPageNumber = 0x10b, Enable = true };
        Assert.Equal(0x10b001ul, hc.Value);
        Assert.False(hc.Locked);
        var sc = new HvSynicScontrol { Enable = true };
        Assert.Equal(1ul, sc.Value);
    }

    [Theory]
    [InlineData(HvStatus.Success, 0x0)]
    [InlineData(HvStatus.InvalidHypercallCode, 0x2)]
    [InlineData(HvStatus.InvalidHypercallInput, 0x3)]
    [InlineData(HvStatus.InvalidAlignment, 0x4)]
    [InlineData(HvStatus.InvalidParameter, 0x5)]
    [InlineData(HvStatus.AccessDenied, 0x6)]
    [InlineData(HvStatus.InvalidPartitionState, 0x7)]
    [InlineData(HvStatus.OperationDenied, 0x8)]
    [InlineData(HvStatus.InsufficientMemory, 0xB)]
    [InlineData(HvStatus.InvalidPartitionId, 0xD)]
    [InlineData(HvStatus.InvalidVpIndex, 0xE)]
    [InlineData(HvStatus.NotFound, 0x10)]
    [InlineData(HvStatus.InvalidPortId, 0x11)]
    [InlineData(HvStatus.InvalidConnectionId, 0x12)]
    [InlineData(HvStatus.InsufficientBuffers, 0x13)]
    [InlineData(HvStatus.NotAcknowledged, 0x14)]
    [InlineData(HvStatus.Acknowledged, 0x16)]
    [InlineData(HvStatus.InvalidSynicState, 0x18)]
    [InlineData(HvStatus.ObjectInUse, 0x19)]
    [InlineData(HvStatus.NoData, 0x1B)]
    [InlineData(HvStatus.TimeOut, 0x78)]
    public void StatusCodes(HvStatus status, int value) => Assert.Equal(value, (int)status);

    [Fact]
    public void CallCodesAndConstants()
    {
        Assert.Equal(0x00C0, (int)HvCallCode.HvCallSignalEventDirect);
        Assert.Equal(0x00C1, (int)HvCallCode.HvCallPostMessageDirect);
        Assert.Equal(0x005C, (int)HvCallCode.HvCallPostMessage);
        Assert.Equal(0x005D, (int)HvCallCode.HvCallSignalEvent);
        Assert.Equal(0xFFFFFFFFFFFFFFFFul, HvConstants.HV_PARTITION_ID_SELF);
        Assert.Equal(0xFFFFFFFEu, HvConstants.HV_VP_INDEX_SELF);
        Assert.Equal(2048, HvConstants.HV_EVENT_FLAGS_COUNT);
        Assert.Equal(0x40000082u, HvMsr.Siefp);
        Assert.Equal(0x40000083u, HvMsr.Simp);
        Assert.Equal(0x4000009Fu, HvMsr.Sint(15));
    }
}
