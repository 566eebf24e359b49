using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Drivers.VmBus;
using Xunit;

namespace Kernel.Tests;

// VMBus ring buffers (drivers/vmbus/VmbusRing.cs): the header page layout,
// index arithmetic with wrap-around, full and empty, the packet format
// (descriptor, 8-byte-aligned data, trailer), and when each side is signalled.
public unsafe class VmbusRingTests : IDisposable
{
    private const uint Page = 4096;
    private readonly byte* _region;
    private readonly VmbusRing _ring;

    // A small ring: one header page and 256 bytes of data.
    public VmbusRingTests()
    {
        _region = (byte*)NativeMemory.AlignedAlloc(Page + 256, Page);
        NativeMemory.Clear(_region, Page + 256);
        _ring = VmbusRing.Over(_region, Page + 256);
        _ring.Initialize();
    }

    public void Dispose() => NativeMemory.AlignedFree(_region);

    private VmbusRingHeader* H => _ring.Header;

    private VmbusRingStatus Write(int length, byte seed, out bool signal, ulong transactionId = 0)
    {
        byte* data = stackalloc byte[Math.Max(length, 1)];
        for (int i = 0; i < length; i++) data[i] = (byte)(seed + i);
        return _ring.Write(VmbusPacketType.DataInBand, 0, transactionId, data, (uint)length, out signal);
    }

    private VmbusRingStatus Read(out byte[] data, out VmbusPacketDescriptor descriptor, out bool signal, uint capacity = 256)
    {
        byte* buffer = stackalloc byte[(int)capacity];
        VmbusPacketDescriptor d;
        var status = _ring.Read(&d, buffer, capacity, out uint length, out signal);
        descriptor = d;
        data = new ReadOnlySpan<byte>(buffer, (int)Math.Min(length, capacity)).ToArray();
        return status;
    }

    // ---- layouts ----------------------------------------------------------------------

    [Fact]
    public void HeaderPageLayout()
    {
        Assert.Equal(4096, sizeof(VmbusRingHeader));
        H->WriteIndex = 0x11111111;
        H->ReadIndex = 0x22222222;
        H->InterruptMask = 0x33333333;
        H->PendingSendSize = 0x44444444;
        H->FeatureBits = 0x55555555;
        Assert.Equal(0x11111111u, *(uint*)(_region + 0));
        Assert.Equal(0x22222222u, *(uint*)(_region + 4));
        Assert.Equal(0x33333333u, *(uint*)(_region + 8));
        Assert.Equal(0x44444444u, *(uint*)(_region + 12));
        Assert.Equal(0x55555555u, *(uint*)(_region + 64));
        Assert.True(_region + Page == _ring.Data);
        Assert.Equal(256u, _ring.DataSize);
    }

    [Fact]
    public void InitializeResetsTheHeaderAndAnnouncesPendingSendSize()
    {
        H->WriteIndex = H->ReadIndex = 8;
        H->InterruptMask = 1;
        _ring.Initialize();
        Assert.Equal((0u, 0u, 0u), (H->WriteIndex, H->ReadIndex, H->InterruptMask));
        Assert.Equal(VmbusRingHeader.FeaturePendingSendSize, H->FeatureBits);
    }

    [Fact]
    public void PacketDescriptorLayout()
    {
        LayoutAssert.Is<VmbusPacketDescriptor>(16, ("DataOffset8", 2), ("Length8", 4), ("Flags", 6), ("TransactionId", 8));
        Assert.Equal((ushort)6, VmbusPacketType.DataInBand);
        Assert.Equal((ushort)0xB, VmbusPacketType.Completion);
    }

    // ---- arithmetic ---------------------------------------------------------------------

    [Theory]
    [InlineData(0u, 0u, 256u, 0u)]          // empty
    [InlineData(0u, 64u, 256u, 64u)]
    [InlineData(200u, 40u, 256u, 96u)]      // write wrapped past the end
    [InlineData(8u, 0u, 256u, 248u)]        // one step short of full
    public void ReadableAndWritable(uint read, uint write, uint size, uint readable)
    {
        Assert.Equal(readable, VmbusRing.Readable(read, write, size));
        Assert.Equal(size - readable, VmbusRing.Writable(read, write, size));
    }

    [Theory]
    [InlineData(0u, 24u)]
    [InlineData(1u, 32u)]
    [InlineData(8u, 32u)]
    [InlineData(9u, 40u)]
    [InlineData(100u, 128u)]
    public void PacketsOccupy8ByteAlignedSpace(uint length, uint bytes)
    {
        Assert.Equal(bytes, VmbusRing.PacketBytes(length));
        Assert.Equal(0u, VmbusRing.PacketBytes(length) % 8);
    }

    // ---- empty ---------------------------------------------------------------------------

    [Fact]
    public void EmptyRingReadsNothing()
    {
        Assert.Equal(0u, _ring.BytesToRead);
        Assert.Equal(256u, _ring.BytesToWrite);
        Assert.Equal(VmbusRingStatus.Empty, Read(out _, out _, out bool signal));
        Assert.False(signal);
        Assert.Equal(0u, H->ReadIndex);
    }

    // ---- the packet bytes -------------------------------------------------------------------

    [Fact]
    public void WrittenPacketBytes()
    {
        Assert.Equal(VmbusRingStatus.Done, Write(5, 0xA0, out bool signal, 0x0102030405060708));
        byte* d = _ring.Data;
        Assert.Equal(VmbusPacketType.DataInBand, *(ushort*)d);
        Assert.Equal((ushort)2, *(ushort*)(d + 2));                      // data at 16 bytes
        Assert.Equal((ushort)3, *(ushort*)(d + 4));                      // 16 + 8 bytes in all
        Assert.Equal((ushort)0, *(ushort*)(d + 6));
        Assert.Equal(0x0102030405060708ul, *(ulong*)(d + 8));
        Assert.Equal(new byte[] { 0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0, 0, 0 }, new ReadOnlySpan<byte>(d + 16, 8).ToArray());
        Assert.Equal(0ul, *(ulong*)(d + 24));                            // trailer: previous write index 0 << 32
        Assert.Equal(32u, H->WriteIndex);
        Assert.True(signal);                                            // it was empty and unmasked

        Assert.Equal(VmbusRingStatus.Done, Write(1, 0, out signal));
        Assert.Equal(32ul << 32, *(ulong*)(d + 32 + 24));                // the second trailer holds 32
        Assert.Equal(64u, H->WriteIndex);
        Assert.False(signal);                                           // not empty: the consumer is already told
    }

    [Fact]
    public void MaskedConsumerIsNotSignalled()
    {
        H->InterruptMask = 1;
        Assert.Equal(VmbusRingStatus.Done, Write(8, 0, out bool signal));
        Assert.False(signal);
    }

    [Fact]
    public void RoundTripKeepsDataAndTransactionId()
    {
        Write(13, 0x40, out _, 77);
        Assert.Equal(VmbusRingStatus.Done, Read(out var data, out var d, out bool signal));
        // The descriptor knows the data only to 8 bytes: 13 come back as 16, zero-padded.
        Assert.Equal(Enumerable.Range(0x40, 13).Select(i => (byte)i).Concat(new byte[3]).ToArray(), data);
        Assert.Equal(77ul, d.TransactionId);
        Assert.Equal(VmbusPacketType.DataInBand, d.Type);
        Assert.False(signal);                                           // no producer waiting
        Assert.Equal(H->WriteIndex, H->ReadIndex);                      // empty again
        Assert.Equal(VmbusRingStatus.Empty, Read(out _, out _, out _));
    }

    // ---- wrap-around -----------------------------------------------------------------------

    [Fact]
    public void PacketWrapsAroundTheEnd()
    {
        H->WriteIndex = H->ReadIndex = 240;                             // 16 bytes before the end
        Assert.Equal(VmbusRingStatus.Done, Write(20, 1, out _, 0xAB));
        // 16 + 24 + 8 = 48 bytes from 240: the descriptor fills the last 16, the rest wraps.
        Assert.Equal((240u + 48) % 256, H->WriteIndex);
        Assert.Equal((ushort)5, *(ushort*)(_ring.Data + 244));           // Length8 before the end
        Assert.Equal((byte)1, _ring.Data[0]);                           // data starts at the beginning
        Assert.Equal(240ul << 32, *(ulong*)(_ring.Data + 24 + 0));       // trailer after 24 data bytes
        Assert.Equal(48u, _ring.BytesToRead);

        Assert.Equal(VmbusRingStatus.Done, Read(out var data, out var d, out _));
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (byte)i).Concat(new byte[4]).ToArray(), data);
        Assert.Equal(0xABul, d.TransactionId);
        Assert.Equal(32u, H->ReadIndex);
    }

    [Fact]
    public void DescriptorSplitAcrossTheEnd()
    {
        H->WriteIndex = H->ReadIndex = 248;                             // the descriptor itself wraps
        Assert.Equal(VmbusRingStatus.Done, Write(3, 9, out _, 0x1122334455667788));
        Assert.Equal(VmbusRingStatus.Done, Read(out var data, out var d, out _));
        Assert.Equal(new byte[] { 9, 10, 11, 0, 0, 0, 0, 0 }, data);
        Assert.Equal(0x1122334455667788ul, d.TransactionId);
        Assert.Equal((248u + 32) % 256, H->ReadIndex);
    }

    // ---- full -----------------------------------------------------------------------------------

    [Fact]
    public void FullRingRefusesAndNeverLooksEmpty()
    {
        int written = 0;
        while (Write(24, 0, out _) == VmbusRingStatus.Done) written++;  // 48 bytes each
        Assert.Equal(5, written);                                       // 5 * 48 = 240; a sixth would fill all 256
        Assert.NotEqual(H->ReadIndex, H->WriteIndex);
        Assert.Equal(240u, _ring.BytesToRead);
        Assert.True(_ring.BytesToWrite <= VmbusRing.PacketBytes(24));
        uint before = H->WriteIndex;
        Assert.Equal(VmbusRingStatus.Full, Write(24, 0, out bool signal));
        Assert.False(signal);
        Assert.Equal(before, H->WriteIndex);                            // nothing written

        Assert.Equal(VmbusRingStatus.Done, Read(out _, out _, out _));
        Assert.Equal(VmbusRingStatus.Done, Write(24, 0, out _));        // room again, across the end
        Assert.Equal(240u, _ring.BytesToRead);
    }

    [Fact]
    public void ExactFitIsRefusedSoFullDiffersFromEmpty()
    {
        // 256 bytes of data: a 232-byte packet would take 16 + 232 + 8 = 256, all of it.
        Assert.Equal(VmbusRingStatus.Full, Write(232, 0, out _));
        Assert.Equal(VmbusRingStatus.Done, Write(224, 0, out _));       // 248: one step short
        Assert.Equal(8u, _ring.BytesToWrite);
    }

    [Fact]
    public void PacketLargerThanTheRingIsTooLarge()
    {
        Assert.Equal(VmbusRingStatus.TooLarge, Write(300, 0, out _));
    }

    // ---- the other side's mistakes ------------------------------------------------------------

    [Fact]
    public void IndexesOutOfRangeAreCorrupt()
    {
        H->WriteIndex = 256;
        Assert.Equal(VmbusRingStatus.Corrupt, Write(8, 0, out _));
        Assert.Equal(VmbusRingStatus.Corrupt, Read(out _, out _, out _));
    }

    [Fact]
    public void DescriptorLongerThanWhatWasWrittenIsCorrupt()
    {
        Write(8, 0, out _);
        *(ushort*)(_ring.Data + 4) = 20;                                // claims 160 bytes, 32 were written
        Assert.Equal(VmbusRingStatus.Corrupt, Read(out _, out _, out _));
        Assert.Equal(0u, H->ReadIndex);
    }

    [Fact]
    public void DataOffsetInsideTheDescriptorIsCorrupt()
    {
        Write(8, 0, out _);
        *(ushort*)(_ring.Data + 2) = 1;                                 // data at 8 bytes: inside the descriptor
        Assert.Equal(VmbusRingStatus.Corrupt, Read(out _, out _, out _));
    }

    [Fact]
    public void SmallBufferLeavesThePacket()
    {
        Write(40, 0, out _);
        Assert.Equal(VmbusRingStatus.BufferTooSmall, Read(out _, out _, out _, capacity: 16));
        Assert.Equal(0u, H->ReadIndex);
        Assert.Equal(VmbusRingStatus.Done, Read(out var data, out _, out _));
        Assert.Equal(40, data.Length);
    }

    // ---- a blocked producer -------------------------------------------------------------------

    [Fact]
    public void ReadSignalsAProducerWaitingForSpace()
    {
        for (int i = 0; i < 5; i++) Write(24, 0, out _);                 // 240 used, 16 free
        H->PendingSendSize = 40;                                        // the producer wants 40 bytes
        Assert.Equal(VmbusRingStatus.Done, Read(out _, out _, out bool signal));
        Assert.True(signal);                                            // 16 -> 64 free: crossed 40
        Assert.Equal(VmbusRingStatus.Done, Read(out _, out _, out signal));
        Assert.False(signal);                                           // already had enough before
    }

    [Fact]
    public void NoSignalWithoutThePendingSendFeature()
    {
        for (int i = 0; i < 5; i++) Write(24, 0, out _);
        H->PendingSendSize = 40;
        H->FeatureBits = 0;
        Assert.Equal(VmbusRingStatus.Done, Read(out _, out _, out bool signal));
        Assert.False(signal);
    }
}
