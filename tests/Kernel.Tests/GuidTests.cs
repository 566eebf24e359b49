using System.Text;
using Drivers.VmBus;
using Xunit;
using KernelGuid = Kernel.Runtime.Guid;

namespace Kernel.Tests;

// The kernel's GUID (kernel/runtime/Guid.cs, as UEFI and VMBus carry it): the
// byte form is the one System.Guid uses (Data1-3 little-endian), and
// formatting agrees with it; VMBus's well-known classes are named.
public unsafe class GuidTests
{
    public static string Text(KernelGuid g)
    {
        byte* bytes = stackalloc byte[KernelGuid.FormattedLength];
        int n = g.Format(bytes);
        return Encoding.ASCII.GetString(bytes, n);
    }

    internal static KernelGuid FromBytes(byte[] bytes)
    {
        fixed (byte* b = bytes) return *(KernelGuid*)b;
    }

    private static byte[] ToBytes(KernelGuid g)
    {
        var bytes = new byte[16];
        new ReadOnlySpan<byte>(&g, 16).CopyTo(bytes);
        return bytes;
    }

    [Fact]
    public void LayoutIsSixteenBytes()
    {
        Assert.Equal(16, sizeof(KernelGuid));
        var g = KernelGuid.From(0x01020304, 0x0506, 0x0708, 0x090A0B0C0D0E0F10);
        Assert.Equal("04-03-02-01-06-05-08-07-09-0A-0B-0C-0D-0E-0F-10", BitConverter.ToString(ToBytes(g)));
    }

    [Fact]
    public void FormatAgreesWithSystemGuid()
    {
        var random = new Random(6);
        for (int i = 0; i < 200; i++)
        {
            var bytes = new byte[16];
            random.NextBytes(bytes);
            Assert.Equal(new Guid(bytes).ToString("D"), Text(FromBytes(bytes)));
        }
    }

    [Fact]
    public void FormatIsLowerCaseWithDashesAt8_13_18_23()
    {
        var text = Text(KernelGuid.From(0xABCDEF01, 0x2345, 0x6789, 0xABCDEF0123456789));
        Assert.Equal("abcdef01-2345-6789-abcd-ef0123456789", text);
        Assert.Equal(36, text.Length);
    }

    [Theory]
    [InlineData("f8615163-df3e-46c5-913f-f2d2f965ed0e", "network")]
    [InlineData("32412632-86cb-44a2-9b5c-50d1417354f5", "ide")]
    [InlineData("ba6163d9-04a1-4d29-b605-72e2ffb1dc7f", "scsi")]
    [InlineData("0e0b6031-5213-4934-818b-38d90ced39db", "shutdown")]
    [InlineData("9527e630-d0ae-497b-adce-e80ab0175caf", "timesync")]
    [InlineData("57164f39-9115-4e78-ab55-382f3bd5422d", "heartbeat")]
    [InlineData("a9a0f4e7-5a45-4d96-b827-8a841e8c03e6", "kvp")]
    [InlineData("35fa2e29-ea23-4236-96ae-3a6ebacba440", "vss")]
    [InlineData("525074dc-8985-46e2-8057-a307dc18a502", "dynamic-memory")]
    [InlineData("cfa8b69e-5b4a-4cc0-b98b-8ba1a1f3f95a", "mouse")]
    [InlineData("f912ad6d-2b17-48ea-bd65-f927a61c7684", "keyboard")]
    [InlineData("da0a7802-e377-4aac-8e77-0558eb1073f8", "synthetic-video")]
    [InlineData("2f9bcc4a-0069-4af3-b76b-6fd0be528cda", "fibre-channel")]
    [InlineData("34d14be3-dee4-41c8-9ae7-6b174977c192", "file-copy")]
    [InlineData("8c2eaf3d-32a7-4b09-ab99-bd1f1c86b501", "network-direct")]
    [InlineData("44c4f61d-4444-4400-9d52-802e27ede19f", "pci-passthrough")]
    [InlineData("276aacf4-ac15-426c-98dd-7521ad3f01fe", "remote-desktop")]
    public void WellKnownClassesAreNamed(string text, string name)
    {
        var g = FromBytes(Guid.Parse(text).ToByteArray());
        Assert.Equal(name, Encoding.UTF8.GetString(VmbusText.ClassName(&g)));
        Assert.Equal(text, Text(g));
    }

    [Fact]
    public void UnknownClassHasNoName()
    {
        var g = FromBytes(Guid.Parse("00000000-0000-0000-0000-000000000001").ToByteArray());
        Assert.True(VmbusText.ClassName(&g).IsEmpty);
        Assert.False(g.IsZero);
        Assert.True(default(KernelGuid).IsZero);
    }

    [Fact]
    public void FromMatchesTheParsedBytes()
    {
        var g = KernelGuid.From(0xf8615163, 0xdf3e, 0x46c5, 0x913ff2d2f965ed0e);
        Assert.Equal(Guid.Parse("f8615163-df3e-46c5-913f-f2d2f965ed0e").ToByteArray(), ToBytes(g));
        Assert.True(g.Is(0xf8615163, 0xdf3e, 0x46c5, 0x913ff2d2f965ed0e));
        Assert.False(g.Is(0xf8615163, 0xdf3e, 0x46c5, 0x913ff2d2f965ed0f));
    }
}
