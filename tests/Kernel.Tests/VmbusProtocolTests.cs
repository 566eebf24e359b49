using System.Text;
using System.Runtime.CompilerServices;
using Drivers.VmBus;
using Xunit;

namespace Kernel.Tests;

// Pins the VMBus channel-management messages of drivers/vmbus/VmbusProtocol.cs
// (the same file the kernel compiles): each layout's size and field offsets,
// encoding into the bytes a host reads (the GPADL split of
// VmbusGpadlMessages.cs), decoding of the byte images a host (QEMU 7.2's
// hw/hyperv/vmbus.c) builds, and the names and offer lines of VmbusText.cs.
// The receive-side checks (VmbusMessages' table: each type's minimum size) run
// in the guest: vmbus.unknown_message_type_ignored, vmbus.short_message_rejected.
public unsafe class VmbusProtocolTests
{
    private static byte[] Bytes<T>(T value, int size) where T : unmanaged
    {
        var bytes = new byte[size];
        fixed (byte* b = bytes) Buffer.MemoryCopy(&value, b, size, size);
        return bytes;
    }

    private static T From<T>(byte[] image) where T : unmanaged
    {
        var copy = new byte[Math.Max(image.Length, sizeof(T))];
        image.CopyTo(copy, 0);
        fixed (byte* b = copy) return *(T*)b;
    }

    private static void Put32(byte[] b, int at, uint v) => BitConverter.GetBytes(v).CopyTo(b, at);
    private static void Put16(byte[] b, int at, ushort v) => BitConverter.GetBytes(v).CopyTo(b, at);

    // ---- numbers ----------------------------------------------------------------

    [Fact]
    public void MessageTypeNumbersMatchTheProtocol()
    {
        Assert.Equal(1u, VmbusMessageType.OfferChannel);
        Assert.Equal(2u, VmbusMessageType.RescindChannelOffer);
        Assert.Equal(3u, VmbusMessageType.RequestOffers);
        Assert.Equal(4u, VmbusMessageType.AllOffersDelivered);
        Assert.Equal(5u, VmbusMessageType.OpenChannel);
        Assert.Equal(6u, VmbusMessageType.OpenChannelResult);
        Assert.Equal(7u, VmbusMessageType.CloseChannel);
        Assert.Equal(8u, VmbusMessageType.GpadlHeader);
        Assert.Equal(9u, VmbusMessageType.GpadlBody);
        Assert.Equal(10u, VmbusMessageType.GpadlCreated);
        Assert.Equal(11u, VmbusMessageType.GpadlTeardown);
        Assert.Equal(12u, VmbusMessageType.GpadlTorndown);
        Assert.Equal(13u, VmbusMessageType.RelidReleased);
        Assert.Equal(14u, VmbusMessageType.InitiateContact);
        Assert.Equal(15u, VmbusMessageType.VersionResponse);
        Assert.Equal(16u, VmbusMessageType.Unload);
        Assert.Equal(17u, VmbusMessageType.UnloadResponse);
        Assert.Equal("ALLOFFERS_DELIVERED", Encoding.UTF8.GetString(VmbusText.MessageTypeName(4)));
        Assert.Equal("unknown", Encoding.UTF8.GetString(VmbusText.MessageTypeName(99)));
    }

    [Fact]
    public void VersionsNewestFirstWithTheirConnectionAndSignalling()
    {
        var versions = Enumerable.Range(0, VmbusVersion.Count).Select(VmbusVersion.At).ToArray();
        Assert.Equal(new uint[] { 0x50003, 0x50002, 0x50001, 0x50000, 0x40001, 0x40000, 0x30000, 0x20004, 0x10001, 0xD }, versions);
        Assert.Equal(versions.OrderByDescending(v => v), versions);
        Assert.Equal(0u, VmbusVersion.At(VmbusVersion.Count));
        Assert.Equal(4u, VmbusVersion.ContactConnectionFor(VmbusVersion.Win10V5));
        Assert.Equal(1u, VmbusVersion.ContactConnectionFor(VmbusVersion.Win10Rs3));
        Assert.True(VmbusVersion.UsesMessageSint(VmbusVersion.Win10V5_3));
        Assert.False(VmbusVersion.UsesMessageSint(VmbusVersion.Win10));
        Assert.True(VmbusVersion.UsesInterruptPage(VmbusVersion.Win7));
        Assert.False(VmbusVersion.UsesInterruptPage(VmbusVersion.Win8));
        Assert.False(VmbusVersion.TargetsAnyVp(VmbusVersion.Win8));
        Assert.True(VmbusVersion.TargetsAnyVp(VmbusVersion.Win8_1));
        Assert.Equal((4u, 1u), (VmbusVersion.Major(VmbusVersion.Win10Rs3), VmbusVersion.Minor(VmbusVersion.Win10Rs3)));
        Assert.Equal(2, VmbusConstants.MessageSint);
        Assert.Equal(1u, VmbusConstants.HvMessageTypeVmbus);
    }

    // ---- guest to host: encoding ---------------------------------------------------

    [Fact]
    public void InitiateContactLayout()
    {
        LayoutAssert.Is<VmbusInitiateContact>(40, ("Header.MessageType", 0), ("VersionRequested", 8), ("TargetVcpu", 12),
            ("InterruptPage", 16), ("MessageSint", 16), ("MessageVtl", 17), ("FeatureFlags", 20), ("MonitorPage1", 24), ("MonitorPage2", 32));
        Assert.Equal(40u, VmbusInitiateContact.Size);
    }

    [Fact]
    public void InitiateContactBytesForVersion5()
    {
        var m = new VmbusInitiateContact { VersionRequested = VmbusVersion.Win10V5_3, TargetVcpu = 3, MessageSint = 2, MonitorPage1 = 0x1000, MonitorPage2 = 0x2000 };
        m.Header.MessageType = VmbusMessageType.InitiateContact;
        Assert.Equal(
            "0E-00-00-00-00-00-00-00-03-00-05-00-03-00-00-00-02-00-00-00-00-00-00-00-" +
            "00-10-00-00-00-00-00-00-00-20-00-00-00-00-00-00",
            BitConverter.ToString(Bytes(m, 40)));
    }

    [Fact]
    public void InitiateContactBytesBeforeVersion5CarryTheInterruptPage()
    {
        var m = new VmbusInitiateContact { VersionRequested = VmbusVersion.Win10, InterruptPage = 0x0000_0001_2345_6000 };
        m.Header.MessageType = VmbusMessageType.InitiateContact;
        var b = Bytes(m, 40);
        Assert.Equal(0x40000u, BitConverter.ToUInt32(b, 8));
        Assert.Equal(0x0000_0001_2345_6000ul, BitConverter.ToUInt64(b, 16));
    }

    [Fact]
    public void OpenChannelLayout() => LayoutAssert.Is<VmbusOpenChannel>(148,
        ("ChildRelid", 8), ("OpenId", 12), ("RingBufferGpadlId", 16), ("TargetVp", 20), ("DownstreamRingBufferPageOffset", 24), ("UserData", 28));

    [Fact]
    public void SmallGuestMessageLayouts()
    {
        Assert.Equal(8, sizeof(VmbusMessageHeader));
        var h = VmbusMessageHeader.Of(VmbusMessageType.Unload);
        Assert.Equal("10-00-00-00-00-00-00-00", BitConverter.ToString(Bytes(h, 8)));
        LayoutAssert.Is<VmbusGpadlTeardown>(16, ("ChildRelid", 8), ("GpadlId", 12));
        LayoutAssert.Is<VmbusCloseChannel>(12, ("ChildRelid", 8));
    }

    // ---- GPADLs ------------------------------------------------------------------------

    [Fact]
    public void GpadlHeaderAndBodyLayouts()
    {
        LayoutAssert.Is<VmbusGpadlHeader>(240, ("ChildRelid", 8), ("GpadlId", 12), ("RangeBufferLength", 16), ("RangeCount", 18),
            ("ByteCount", 20), ("ByteOffset", 24), ("PfnBytes", 28));
        Assert.Equal(26, VmbusGpadlHeader.MaxPfns);
        LayoutAssert.Is<VmbusGpadlBody>(240, ("Reserved", 8), ("GpadlId", 12), ("Pfns", 16));
        Assert.Equal(28, VmbusGpadlBody.MaxPfns);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(26, 0)]
    [InlineData(27, 1)]
    [InlineData(54, 1)]
    [InlineData(55, 2)]
    [InlineData(8190, 292)]
    public void GpadlBodyMessagesForPages(int pages, int bodies) => Assert.Equal(bodies, VmbusGpadlMessages.BodyMessagesFor(pages));

    [Fact]
    public void GpadlOf32PagesIsAHeaderAndOneBody()
    {
        var pfns = Enumerable.Range(0, 32).Select(i => 0x1000ul + (ulong)i).ToArray();
        var header = new byte[240];
        var body = new byte[240];
        uint headerSize, bodySize, noMore;
        fixed (ulong* p = pfns)
        fixed (byte* h = header)
        fixed (byte* b = body)
        {
            headerSize = VmbusGpadlMessages.BuildHeader((VmbusGpadlHeader*)h, 7, 0xE1E10, p, 32);
            bodySize = VmbusGpadlMessages.BuildBody((VmbusGpadlBody*)b, 0xE1E10, p, 32, 0);
            noMore = VmbusGpadlMessages.BuildBody((VmbusGpadlBody*)b, 0xE1E10, p, 32, 1);
        }
        Assert.Equal(28u + 26 * 8, headerSize);
        Assert.Equal(8u, BitConverter.ToUInt32(header, 0));             // GPADL_HEADER
        Assert.Equal(7u, BitConverter.ToUInt32(header, 8));
        Assert.Equal(0xE1E10u, BitConverter.ToUInt32(header, 12));
        Assert.Equal((ushort)(8 + 8 * 32), BitConverter.ToUInt16(header, 16));   // range_buflen covers all 32 frames
        Assert.Equal((ushort)1, BitConverter.ToUInt16(header, 18));
        Assert.Equal(32u * 4096, BitConverter.ToUInt32(header, 20));
        Assert.Equal(0u, BitConverter.ToUInt32(header, 24));
        Assert.Equal(0x1000ul, BitConverter.ToUInt64(header, 28));
        Assert.Equal(0x1019ul, BitConverter.ToUInt64(header, 28 + 25 * 8));

        Assert.Equal(16u + 6 * 8, bodySize);
        Assert.Equal(9u, BitConverter.ToUInt32(body, 0));               // GPADL_BODY
        Assert.Equal(0xE1E10u, BitConverter.ToUInt32(body, 12));
        Assert.Equal(0x101Aul, BitConverter.ToUInt64(body, 16));
        Assert.Equal(0x101Ful, BitConverter.ToUInt64(body, 16 + 5 * 8));
        Assert.Equal(0u, noMore);
    }

    // The kernel builds these messages in stack locals it does not zero
    // (drivers/vmbus/VmbusGpadl.cs, kernel/runtime/SkipLocalsInit.cs): the
    // builders write every byte, reserved ones and those past the frames too.
    [Fact]
    public void GpadlBuildersWriteEveryByte()
    {
        var pfns = Enumerable.Range(0, 30).Select(i => 0x1000ul + (ulong)i).ToArray();
        var header = Enumerable.Repeat((byte)0xFF, 240).ToArray();
        var body = Enumerable.Repeat((byte)0xFF, 240).ToArray();
        fixed (ulong* p = pfns)
        fixed (byte* h = header)
        fixed (byte* b = body)
        {
            VmbusGpadlMessages.BuildHeader((VmbusGpadlHeader*)h, 7, 0xE1E10, p, 30);
            VmbusGpadlMessages.BuildBody((VmbusGpadlBody*)b, 0xE1E10, p, 30, 0);
        }
        Assert.DoesNotContain((byte)0xFF, header);     // no field value here has a 0xFF byte
        Assert.DoesNotContain((byte)0xFF, body);
    }

    [Fact]
    public void GpadlPageCountOutOfRangeIsRefused()
    {
        var header = new VmbusGpadlHeader();
        ulong pfn = 1;
        Assert.Equal(0u, VmbusGpadlMessages.BuildHeader(&header, 1, 1, &pfn, 0));
        Assert.Equal(0u, VmbusGpadlMessages.BuildHeader(&header, 1, 1, &pfn, VmbusGpadlMessages.MaxPages + 1));
    }

    // ---- host to guest: decoding byte images -------------------------------------------

    [Fact]
    public void VersionResponseLayoutAndQemuImage()
    {
        LayoutAssert.Is<VmbusVersionResponse>(16, ("VersionSupported", 8), ("ConnectionState", 9), ("MessageConnectionId", 12));

        // QEMU: a 12-byte struct (header, version_supported, status), payload rounded to 16.
        var image = new byte[16];
        Put32(image, 0, VmbusMessageType.VersionResponse);
        image[8] = 1;
        var r = From<VmbusVersionResponse>(image);
        Assert.Equal(15u, r.Header.MessageType);
        Assert.Equal(1, r.VersionSupported);
        Assert.Equal(0, r.ConnectionState);
        Assert.Equal(0u, r.MessageConnectionId);

        // A 5.0+ host names the message connection at byte 12.
        Put32(image, 12, 4);
        Assert.Equal(4u, From<VmbusVersionResponse>(image).MessageConnectionId);
    }

    [Fact]
    public void OfferChannelLayout() => LayoutAssert.Is<VmbusOfferChannel>(196,
        ("InterfaceType", 8), ("InterfaceInstance", 24), ("Reserved", 40), ("ChannelFlags", 56), ("MmioMegabytes", 58), ("UserDefined", 60),
        ("SubChannelIndex", 180), ("MmioMegabytesOptional", 182), ("ChildRelid", 184), ("MonitorId", 188), ("MonitorAllocated", 189),
        ("DedicatedInterrupt", 190), ("ConnectionId", 192));

    // The offer QEMU's send_offer builds (200 bytes: its struct is 8-aligned), GUIDs little-endian.
    [Fact]
    public void OfferDecodedFromAQemuImage()
    {
        var type = Guid.Parse("ba6163d9-04a1-4d29-b605-72e2ffb1dc7f");
        var instance = Guid.Parse("5620e0c7-8062-4dce-aeb7-520c7ef76171");
        var image = new byte[200];
        Put32(image, 0, VmbusMessageType.OfferChannel);
        type.ToByteArray().CopyTo(image, 8);
        instance.ToByteArray().CopyTo(image, 24);
        Put16(image, 56, 0x0001);
        Put16(image, 58, 16);
        Put16(image, 180, 0);
        Put32(image, 184, 5);
        image[188] = 2;
        image[189] = 1;
        Put16(image, 190, 1);
        Put32(image, 192, 16 + 5);

        VmbusOffer offer;
        fixed (byte* b = image) offer = VmbusOffer.Decode((VmbusOfferChannel*)b);
        Assert.Equal(5u, offer.ChildRelid);
        Assert.Equal(21u, offer.ConnectionId);
        Assert.Equal(2, offer.MonitorId);
        Assert.True(offer.MonitorAllocated);
        Assert.True(offer.DedicatedInterrupt);
        Assert.Equal((ushort)16, offer.MmioMegabytes);
        Assert.Equal((ushort)1, offer.ChannelFlags);
        Assert.False(offer.Rescinded);
        Assert.Equal("scsi", Encoding.UTF8.GetString(VmbusText.ClassName(&offer.InterfaceType)));
        Assert.Equal(type.ToString(), GuidTests.Text(offer.InterfaceType));
        Assert.Equal(instance.ToString(), GuidTests.Text(offer.InterfaceInstance));
    }

    [Fact]
    public void ReplyLayouts()
    {
        LayoutAssert.Is<VmbusOpenChannelResult>(20, ("ChildRelid", 8), ("OpenId", 12), ("Status", 16));
        LayoutAssert.Is<VmbusGpadlCreated>(20, ("ChildRelid", 8), ("GpadlId", 12), ("CreationStatus", 16));
        LayoutAssert.Is<VmbusGpadlTorndown>(12, ("GpadlId", 8));
        LayoutAssert.Is<VmbusRescindChannelOffer>(12, ("ChildRelid", 8));
    }

    [Fact]
    public void GpadlCreatedDecodedFromAQemuImage()
    {
        var image = new byte[24];
        Put32(image, 0, VmbusMessageType.GpadlCreated);
        Put32(image, 8, 1);
        Put32(image, 12, 0xE1E10);
        var m = From<VmbusGpadlCreated>(image);
        Assert.Equal((1u, 0xE1E10u, 0u), (m.ChildRelid, m.GpadlId, m.CreationStatus));
    }

    // ---- what the client prints -------------------------------------------------------

    [Theory]
    [InlineData(VmbusMessageType.OfferChannel, "OFFERCHANNEL")]
    [InlineData(VmbusMessageType.RescindChannelOffer, "RESCIND_CHANNELOFFER")]
    [InlineData(VmbusMessageType.RequestOffers, "REQUESTOFFERS")]
    [InlineData(VmbusMessageType.AllOffersDelivered, "ALLOFFERS_DELIVERED")]
    [InlineData(VmbusMessageType.OpenChannel, "OPENCHANNEL")]
    [InlineData(VmbusMessageType.OpenChannelResult, "OPENCHANNEL_RESULT")]
    [InlineData(VmbusMessageType.CloseChannel, "CLOSECHANNEL")]
    [InlineData(VmbusMessageType.GpadlHeader, "GPADL_HEADER")]
    [InlineData(VmbusMessageType.GpadlBody, "GPADL_BODY")]
    [InlineData(VmbusMessageType.GpadlCreated, "GPADL_CREATED")]
    [InlineData(VmbusMessageType.GpadlTeardown, "GPADL_TEARDOWN")]
    [InlineData(VmbusMessageType.GpadlTorndown, "GPADL_TORNDOWN")]
    [InlineData(VmbusMessageType.RelidReleased, "RELID_RELEASED")]
    [InlineData(VmbusMessageType.InitiateContact, "INITIATE_CONTACT")]
    [InlineData(VmbusMessageType.VersionResponse, "VERSION_RESPONSE")]
    [InlineData(VmbusMessageType.Unload, "UNLOAD")]
    [InlineData(VmbusMessageType.UnloadResponse, "UNLOAD_RESPONSE")]
    [InlineData(VmbusMessageType.Invalid, "unknown")]
    [InlineData(18u, "unknown")]
    [InlineData(0xFFFFFFFFu, "unknown")]
    public void MessageTypesAreNamed(uint type, string name) => Assert.Equal(name, Encoding.UTF8.GetString(VmbusText.MessageTypeName(type)));

    private static string OfferLine(VmbusOffer offer)
    {
        var line = new byte[VmbusText.MaxOfferLine];
        fixed (byte* b = line) return Encoding.ASCII.GetString(line, 0, VmbusText.OfferLine(&offer, b));
    }

    // The boot log's offer line (README: "vmbus:   relid 1 class 525074dc-... (dynamic-memory) ...").
    [Fact]
    public void OfferLineAsTheBootLogPrintsIt()
    {
        var offer = new VmbusOffer { ChildRelid = 1, ConnectionId = 17 };
        offer.InterfaceType = GuidTests.FromBytes(Guid.Parse("525074dc-8985-46e2-8057-a307dc18a502").ToByteArray());
        offer.InterfaceInstance = GuidTests.FromBytes(Guid.Parse("c26c1498-4ee3-4a3c-9214-0bcbd25af38d").ToByteArray());
        Assert.Equal("vmbus:   relid 1 class 525074dc-8985-46e2-8057-a307dc18a502 (dynamic-memory) instance c26c1498-4ee3-4a3c-9214-0bcbd25af38d connection 17 monitor none mmio 0 MiB subchannel 0",
                     OfferLine(offer));

        offer.InterfaceType = GuidTests.FromBytes(Guid.Parse("00000000-0000-0000-0000-000000000001").ToByteArray());
        offer.MonitorAllocated = true;
        offer.MonitorId = 3;
        offer.MmioMegabytes = 16;
        offer.SubChannelIndex = 2;
        offer.Rescinded = true;
        Assert.EndsWith("(unknown class) instance c26c1498-4ee3-4a3c-9214-0bcbd25af38d connection 17 monitor 3 mmio 16 MiB subchannel 2 (rescinded)", OfferLine(offer));
    }

    // Every number at its widest, the longest class name: the line still fits.
    [Fact]
    public void LongestOfferLineFits()
    {
        var offer = new VmbusOffer
        {
            ChildRelid = uint.MaxValue, ConnectionId = uint.MaxValue, MonitorAllocated = true, MonitorId = byte.MaxValue,
            MmioMegabytes = ushort.MaxValue, SubChannelIndex = ushort.MaxValue, Rescinded = true,
        };
        offer.InterfaceType = GuidTests.FromBytes(Guid.Parse("da0a7802-e377-4aac-8e77-0558eb1073f8").ToByteArray());   // synthetic-video
        string line = OfferLine(offer);
        Assert.Contains("(synthetic-video)", line);
        Assert.True(line.Length <= VmbusText.MaxOfferLine, $"{line.Length} bytes");
    }
}
