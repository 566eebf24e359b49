using System.Runtime.InteropServices;

namespace Kernel.Runtime
{
    // A GUID in the byte order Microsoft's interfaces use (UEFI 2.10 Appendix A
    // EFI_GUID; VMBus offers; the same as .NET's System.Guid byte form): Data1,
    // Data2 and Data3 little-endian, Data4 eight bytes as written.
    [StructLayout(LayoutKind.Explicit, Size = 16)]
    public unsafe struct Guid
    {
        [FieldOffset(0)] public uint Data1;
        [FieldOffset(4)] public ushort Data2;
        [FieldOffset(6)] public ushort Data3;
        [FieldOffset(8)] public fixed byte Data4[8];
        [FieldOffset(0)] private ulong _low;            // the same 16 bytes, for comparison
        [FieldOffset(8)] private ulong _high;

        // "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
        public const int FormattedLength = 36;

        // As the specifications write a GUID: {data1, data2, data3, {data4}}, with
        // data4's eight bytes as one number, e.g. 0x913ff2d2f965ed0e.
        public static Guid From(uint data1, ushort data2, ushort data3, ulong data4)
        {
            Guid g = default;
            g.Data1 = data1;
            g.Data2 = data2;
            g.Data3 = data3;
            for (int i = 0; i < 8; i++) g.Data4[i] = (byte)(data4 >> (56 - 8 * i));
            return g;
        }

        public bool Is(Guid other) => _low == other._low && _high == other._high;
        public bool Is(uint data1, ushort data2, ushort data3, ulong data4) => Is(From(data1, data2, data3, data4));
        public bool IsZero => (_low | _high) == 0;

        // Lower case with dashes, as Linux and Windows print GUIDs; returns FormattedLength.
        public int Format(byte* destination)
        {
            int n = 0;
            n += Runtime.Format.HexDigits(Data1, 8, destination + n);
            destination[n++] = (byte)'-';
            n += Runtime.Format.HexDigits(Data2, 4, destination + n);
            destination[n++] = (byte)'-';
            n += Runtime.Format.HexDigits(Data3, 4, destination + n);
            for (int i = 0; i < 8; i++)
            {
                if (i == 0 || i == 2) destination[n++] = (byte)'-';
                n += Runtime.Format.HexDigits(Data4[i], 2, destination + n);
            }
            return n;
        }
    }
}
