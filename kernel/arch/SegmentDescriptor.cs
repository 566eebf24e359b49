// Segment descriptors, every field named as the Intel SDM names it. Plain C#,
// no kernel dependencies but Bitfield: the host tests compile this file and
// check its descriptors against the boot GDT that boot/x86.inc assembles.
using System.Runtime.CompilerServices;
using Kernel.Runtime;

namespace Kernel.Arch
{
    // A code, data or system segment descriptor, 8 bytes. SDM Vol 3A 3.4.5
    // "Segment Descriptors", Figure 3-8: segment limit 15:0 in bits 15:0, base
    // 23:0 in 39:16, type 43:40, S 44, DPL 46:45, P 47, segment limit 19:16 in
    // 51:48, AVL 52, L 53, D/B 54, G 55, base 31:24 in 63:56.
    public struct SegmentDescriptor
    {
        public ulong Value;

        // Type: SDM Vol 3A 3.4.5.1, Table 3-1 "Code- and Data-Segment Types" (S
        // set); 3.5, Table 3-2 "System-Segment and Gate-Descriptor Types" (S
        // clear, IA-32e mode).
        public const byte TypeDataReadWrite = 0x2, TypeCodeExecuteRead = 0xA;
        public const byte TypeTssAvailable = 0x9, TypeTssBusy = 0xB;

        public ushort LimitLow { get => (ushort)Bitfield.Get(Value, 0, 16); set => Value = Bitfield.Set(Value, 0, 16, value); }
        public uint BaseLow { get => (uint)Bitfield.Get(Value, 16, 24); set => Value = Bitfield.Set(Value, 16, 24, value); }
        public byte Type { get => (byte)Bitfield.Get(Value, 40, 4); set => Value = Bitfield.Set(Value, 40, 4, value); }
        public bool CodeOrData { get => Bitfield.Flag(Value, 44); set => Value = Bitfield.WithFlag(Value, 44, value); }       // S
        public byte Dpl { get => (byte)Bitfield.Get(Value, 45, 2); set => Value = Bitfield.Set(Value, 45, 2, value); }
        public bool Present { get => Bitfield.Flag(Value, 47); set => Value = Bitfield.WithFlag(Value, 47, value); }          // P
        public byte LimitHigh { get => (byte)Bitfield.Get(Value, 48, 4); set => Value = Bitfield.Set(Value, 48, 4, value); }
        public bool Available { get => Bitfield.Flag(Value, 52); set => Value = Bitfield.WithFlag(Value, 52, value); }        // AVL
        public bool Long { get => Bitfield.Flag(Value, 53); set => Value = Bitfield.WithFlag(Value, 53, value); }             // L: 64-bit code
        public bool DefaultBig { get => Bitfield.Flag(Value, 54); set => Value = Bitfield.WithFlag(Value, 54, value); }       // D/B
        public bool Granularity { get => Bitfield.Flag(Value, 55); set => Value = Bitfield.WithFlag(Value, 55, value); }      // G: limit in 4 KiB units
        public byte BaseHigh { get => (byte)Bitfield.Get(Value, 56, 8); set => Value = Bitfield.Set(Value, 56, 8, value); }

        // The base and the limit, each split over two fields.
        public uint Base
        {
            get => BaseLow | (uint)BaseHigh << 24;
            set { BaseLow = value & 0xFFFFFF; BaseHigh = (byte)(value >> 24); }
        }
        public uint Limit
        {
            get => LimitLow | (uint)LimitHigh << 16;
            set { LimitLow = (ushort)value; LimitHigh = (byte)(value >> 16); }
        }

        // A flat code or data segment of DPL 0: base 0, limit 0xFFFFF in 4 KiB
        // units, the whole 4 GiB (in 64-bit mode the CPU ignores base and limit
        // of CS, DS, ES and SS, SDM Vol 3A 3.2.4). Inlined, as Available below,
        // so that the field writes fold into the constant (or the few shifts)
        // they come to in Gdt.Install, rather than cost calls and code size.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static SegmentDescriptor Flat(byte type)
            => new SegmentDescriptor { Limit = 0xFFFFF, Granularity = true, Type = type, CodeOrData = true, Present = true };

        // The kernel's code segment: 64-bit code (L set, and so D clear, 3.4.5).
        public static SegmentDescriptor KernelCode64
        {
            get { var d = Flat(TypeCodeExecuteRead); d.Long = true; return d; }
        }

        // The kernel's data segment (B set: a 32-bit stack pointer outside 64-bit mode).
        public static SegmentDescriptor KernelData
        {
            get { var d = Flat(TypeDataReadWrite); d.DefaultBig = true; return d; }
        }

        // 32-bit code, which only the AP trampoline runs (boot/trampoline.asm).
        public static SegmentDescriptor Code32
        {
            get { var d = Flat(TypeCodeExecuteRead); d.DefaultBig = true; return d; }
        }
    }

    // The TSS descriptor in IA-32e mode, 16 bytes: a system descriptor of
    // SegmentDescriptor's layout, then base 63:32 in the low half of a second
    // qword whose other bits are reserved, zero. SDM Vol 3A "TSS Descriptor in
    // 64-bit mode" (Figure 8-4).
    public struct TssDescriptor
    {
        public SegmentDescriptor Low;
        public ulong High;

        // An available 64-bit TSS at `tssBase` of `limit` + 1 bytes, DPL 0 (byte granularity).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TssDescriptor Available(ulong tssBase, uint limit)
            => new TssDescriptor
            {
                Low = new SegmentDescriptor { Limit = limit, Base = (uint)tssBase, Type = SegmentDescriptor.TypeTssAvailable, Present = true },
                High = tssBase >> 32,
            };
    }
}
