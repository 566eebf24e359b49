// VMBus ring buffers: each channel has two, one per direction, in one GPADL
// (the guest-to-host ring first). A ring is a header page (write index, read
// index, interrupt mask, pending-send size, feature bits) followed by a data
// area that packets wrap around. A packet is a 16-byte descriptor, its data,
// padding to 8 bytes, and an 8-byte trailer (the producer's previous write
// index in the upper half). Indexes are byte offsets into the data area. The
// producer never fills the ring completely, so read == write means empty.
// Sources: Linux drivers/hv/ring_buffer.c and include/linux/hyperv.h, QEMU
// 7.2 hw/hyperv/vmbus.c.
//
// Plain C#, no kernel dependencies: tests/Kernel.Tests compiles this file.
#nullable disable
using System.Runtime.InteropServices;

namespace Drivers.VmBus
{
    // The ring header page.
    [StructLayout(LayoutKind.Explicit, Size = 4096)]
    public struct VmbusRingHeader
    {
        [FieldOffset(0)] public volatile uint WriteIndex;
        [FieldOffset(4)] public volatile uint ReadIndex;
        // Set by the consumer: "do not interrupt me, I am polling".
        [FieldOffset(8)] public volatile uint InterruptMask;
        // Set by a blocked producer: "interrupt me when this many bytes are free".
        [FieldOffset(12)] public volatile uint PendingSendSize;
        [FieldOffset(64)] public volatile uint FeatureBits;

        public const uint FeaturePendingSendSize = 1;
    }

    // vmpacket_descriptor: every packet starts with it.
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public struct VmbusPacketDescriptor
    {
        public const uint Size = 16;
        [FieldOffset(0)] public ushort Type;
        [FieldOffset(2)] public ushort DataOffset8;    // where the data starts, in 8-byte units from the descriptor
        [FieldOffset(4)] public ushort Length8;        // descriptor + data + padding, in 8-byte units
        [FieldOffset(6)] public ushort Flags;
        [FieldOffset(8)] public ulong TransactionId;
    }

    public static class VmbusPacketType
    {
        public const ushort Invalid = 0x0;
        public const ushort Synch = 0x1;
        public const ushort AddTransferPageSet = 0x2;
        public const ushort RemoveTransferPageSet = 0x3;
        public const ushort EstablishGpadl = 0x4;
        public const ushort TeardownGpadl = 0x5;
        public const ushort DataInBand = 0x6;
        public const ushort DataUsingTransferPages = 0x7;
        public const ushort DataUsingGpadl = 0x8;
        public const ushort DataUsingGpaDirect = 0x9;
        public const ushort CancelRequest = 0xA;
        public const ushort Completion = 0xB;

        public const ushort FlagCompletionRequested = 1;
    }

    public enum VmbusRingStatus
    {
        Done,
        Empty,            // nothing to read
        Full,             // not enough room for this packet (nothing written)
        BufferTooSmall,   // the packet's data is larger than the caller's buffer (packet left in place)
        TooLarge,         // a packet this large cannot be described (Length8 is 16 bits) or never fits
        Corrupt,          // an index or a descriptor from the other side is out of range
    }

    // A view of one ring: its header and data area. The ring memory is shared
    // with the host; the methods read each index once and validate it.
    public unsafe struct VmbusRing
    {
        public VmbusRingHeader* Header;
        public byte* Data;
        public uint DataSize;

        public const uint TrailerSize = 8;

        // A full memory barrier for the store-then-load orderings of the protocol
        // (publish an index, then look at the other side's mask or pending size).
        // The kernel sets it; null means none is needed (single-threaded tests).
        public static delegate*<void> FullFence;

        // A ring over `bytes` bytes at `region`: one header page, the rest data.
        public static VmbusRing Over(void* region, uint bytes)
        {
            VmbusRing ring;
            ring.Header = (VmbusRingHeader*)region;
            ring.Data = (byte*)region + VmbusConstants.PageSize;
            ring.DataSize = bytes > VmbusConstants.PageSize ? bytes - VmbusConstants.PageSize : 0;
            return ring;
        }

        // Resets the header as the guest does before handing the ring to the host.
        public void Initialize()
        {
            Header->WriteIndex = 0;
            Header->ReadIndex = 0;
            Header->InterruptMask = 0;
            Header->PendingSendSize = 0;
            Header->FeatureBits = VmbusRingHeader.FeaturePendingSendSize;
        }

        public static uint Align8(uint n) => (n + 7) & ~7u;

        // Bytes between the read and the write index: what the consumer may read.
        public static uint Readable(uint read, uint write, uint size) => write >= read ? write - read : size - read + write;

        // Bytes the producer may still use; it must leave at least one free, so a
        // packet of `total` bytes fits only when Writable > total.
        public static uint Writable(uint read, uint write, uint size) => size - Readable(read, write, size);

        // Ring bytes a packet with `dataLength` bytes of data occupies (descriptor, data, padding, trailer).
        public static uint PacketBytes(uint dataLength) => VmbusPacketDescriptor.Size + Align8(dataLength) + TrailerSize;

        public uint BytesToRead => Readable(Header->ReadIndex, Header->WriteIndex, DataSize);
        public uint BytesToWrite => Writable(Header->ReadIndex, Header->WriteIndex, DataSize);

        private static void Fence()
        {
            if (FullFence != null) FullFence();
        }

        // Copies `count` bytes into the data area at `offset`, wrapping; returns the offset after them.
        private uint CopyIn(uint offset, byte* source, uint count)
        {
            for (uint i = 0; i < count; i++)
            {
                Data[offset] = source == null ? (byte)0 : source[i];
                offset++;
                if (offset == DataSize) offset = 0;
            }
            return offset;
        }

        private uint CopyOut(uint offset, byte* destination, uint count)
        {
            for (uint i = 0; i < count; i++)
            {
                destination[i] = Data[offset];
                offset++;
                if (offset == DataSize) offset = 0;
            }
            return offset;
        }

        private static uint Advance(uint offset, uint count, uint size) => (uint)(((ulong)offset + count) % size);

        // Producer: writes one packet. signalHost is true when the consumer has to
        // be told (it had nothing to read before this packet and has not masked
        // interrupts), as Linux's hv_signal_on_write decides.
        public VmbusRingStatus Write(ushort type, ushort flags, ulong transactionId, byte* data, uint length, out bool signalHost)
        {
            signalHost = false;
            uint write = Header->WriteIndex;
            uint read = Header->ReadIndex;
            if (DataSize == 0 || DataSize % 8 != 0 || write >= DataSize || read >= DataSize || write % 8 != 0) return VmbusRingStatus.Corrupt;
            uint packet = VmbusPacketDescriptor.Size + Align8(length);
            if (length > DataSize || packet / 8 > 0xFFFF) return VmbusRingStatus.TooLarge;
            uint total = packet + TrailerSize;
            if (Writable(read, write, DataSize) <= total) return VmbusRingStatus.Full;

            VmbusPacketDescriptor descriptor;
            descriptor.Type = type;
            descriptor.DataOffset8 = (ushort)(VmbusPacketDescriptor.Size / 8);
            descriptor.Length8 = (ushort)(packet / 8);
            descriptor.Flags = flags;
            descriptor.TransactionId = transactionId;
            ulong trailer = (ulong)write << 32;

            uint at = CopyIn(write, (byte*)&descriptor, VmbusPacketDescriptor.Size);
            at = CopyIn(at, data, length);
            at = CopyIn(at, null, Align8(length) - length);
            at = CopyIn(at, (byte*)&trailer, TrailerSize);

            Fence();                        // the packet before the index that publishes it
            Header->WriteIndex = at;
            Fence();                        // the index before the consumer's state is read
            signalHost = Header->InterruptMask == 0 && Header->ReadIndex == write;
            return VmbusRingStatus.Done;
        }

        // Consumer: looks at the next packet's descriptor without taking it.
        public VmbusRingStatus Peek(VmbusPacketDescriptor* descriptor)
        {
            uint write = Header->WriteIndex;
            uint read = Header->ReadIndex;
            if (DataSize == 0 || write >= DataSize || read >= DataSize) return VmbusRingStatus.Corrupt;
            uint available = Readable(read, write, DataSize);
            if (available == 0) return VmbusRingStatus.Empty;
            if (available < VmbusPacketDescriptor.Size + TrailerSize) return VmbusRingStatus.Corrupt;
            Fence();                        // the index before the packet it covers
            CopyOut(read, (byte*)descriptor, VmbusPacketDescriptor.Size);
            uint packet = (uint)descriptor->Length8 * 8;
            uint offset = (uint)descriptor->DataOffset8 * 8;
            if (packet < VmbusPacketDescriptor.Size || offset < VmbusPacketDescriptor.Size || offset > packet || packet + TrailerSize > available)
                return VmbusRingStatus.Corrupt;
            return VmbusRingStatus.Done;
        }

        // Consumer: takes the next packet, copying its data (after the descriptor and
        // any transfer-page / GPA ranges, i.e. from DataOffset8) to `buffer`. The
        // descriptor counts in 8-byte units, so `length` includes the sender's
        // padding; exact sizes are the business of the protocol inside the packet.
        // signalHost is true when a producer waiting for PendingSendSize bytes
        // can now go on (Linux's hv_pkt_iter_close).
        public VmbusRingStatus Read(VmbusPacketDescriptor* descriptor, byte* buffer, uint capacity, out uint length, out bool signalHost)
        {
            length = 0;
            signalHost = false;
            VmbusRingStatus status = Peek(descriptor);
            if (status != VmbusRingStatus.Done) return status;
            uint read = Header->ReadIndex;
            uint packet = (uint)descriptor->Length8 * 8;
            uint offset = (uint)descriptor->DataOffset8 * 8;
            length = packet - offset;
            if (length > capacity) return VmbusRingStatus.BufferTooSmall;
            CopyOut(Advance(read, offset, DataSize), buffer, length);
            signalHost = Consume(read, packet);
            return VmbusRingStatus.Done;
        }

        // Consumer: drops the next packet unread (one too large for the reader's
        // buffer, or of a type the reader does not take). Empty or Corrupt as Peek.
        public VmbusRingStatus Discard(VmbusPacketDescriptor* descriptor, out bool signalHost)
        {
            signalHost = false;
            VmbusRingStatus status = Peek(descriptor);
            if (status != VmbusRingStatus.Done) return status;
            signalHost = Consume(Header->ReadIndex, (uint)descriptor->Length8 * 8);
            return VmbusRingStatus.Done;
        }

        // Gives the packet at `read` (of `packet` bytes, trailer not included) back to the producer.
        private bool Consume(uint read, uint packet)
        {
            uint next = Advance(read, packet + TrailerSize, DataSize);
            Fence();                        // the data is copied before the space is given back
            Header->ReadIndex = next;
            Fence();                        // the index before the producer's pending size is read
            uint pending = Header->PendingSendSize;
            if (pending == 0 || (Header->FeatureBits & VmbusRingHeader.FeaturePendingSendSize) == 0) return false;
            uint freeNow = Writable(next, Header->WriteIndex, DataSize);
            uint consumed = packet + TrailerSize;
            uint freeBefore = freeNow >= consumed ? freeNow - consumed : 0;
            return freeNow > pending && freeBefore <= pending;
        }
    }
}
