using System.Buffers.Binary;
using System.Text;

namespace Kernel.Tests;

// Just enough of ELF64 to find a symbol's bytes in build/kernel.elf or an object file.
public sealed class ElfImage
{
    private readonly byte[] _file;
    private readonly List<(string Name, ulong Value, ulong Size, ushort Section)> _symbols = new();
    private readonly List<(ulong Address, ulong Offset, ulong Size, uint Type)> _sections = new();

    public ElfImage(string path)
    {
        _file = File.ReadAllBytes(path);
        if (_file.Length < 64 || _file[0] != 0x7F || _file[1] != 'E' || _file[2] != 'L' || _file[3] != 'F' || _file[4] != 2)
            throw new InvalidDataException(path + " is not an ELF64 file");
        ulong shoff = U64(0x28);
        int shentsize = U16(0x3A), shnum = U16(0x3C);
        for (int i = 0; i < shnum; i++)
        {
            int sh = checked((int)shoff + i * shentsize);
            _sections.Add((U64(sh + 0x10), U64(sh + 0x18), U64(sh + 0x20), U32(sh + 4)));
        }
        for (int i = 0; i < shnum; i++)
        {
            if (_sections[i].Type != 2) continue;   // SHT_SYMTAB
            int sh = checked((int)shoff + i * shentsize);
            var strtab = _sections[(int)U32(sh + 0x28)];
            var symtab = _sections[i];
            for (ulong off = symtab.Offset; off < symtab.Offset + symtab.Size; off += 24)
            {
                int o = (int)off;
                string name = CString((int)(strtab.Offset + U32(o)));
                _symbols.Add((name, U64(o + 8), U64(o + 16), U16(o + 6)));
            }
        }
    }

    public ulong Address(string symbol) => Find(symbol).Value;

    // The bytes from a symbol up to `length` (stubs are labels, so nasm records no size).
    public (ulong Address, byte[] Bytes) Code(string symbol, int length = 64)
    {
        var s = Find(symbol);
        var sec = _sections[s.Section];
        ulong fileOffset = sec.Offset + (s.Value - sec.Address);
        int n = (int)Math.Min((ulong)length, sec.Offset + sec.Size - fileOffset);
        return (s.Value, _file.AsSpan((int)fileOffset, n).ToArray());
    }

    private (string Name, ulong Value, ulong Size, ushort Section) Find(string symbol)
    {
        foreach (var s in _symbols) if (s.Name == symbol) return s;
        throw new KeyNotFoundException($"symbol '{symbol}' not in the ELF symbol table");
    }

    private ulong U64(int o) => BinaryPrimitives.ReadUInt64LittleEndian(_file.AsSpan(o));
    private uint U32(int o) => BinaryPrimitives.ReadUInt32LittleEndian(_file.AsSpan(o));
    private ushort U16(int o) => BinaryPrimitives.ReadUInt16LittleEndian(_file.AsSpan(o));
    private string CString(int o) { int e = o; while (_file[e] != 0) e++; return Encoding.ASCII.GetString(_file, o, e - o); }
}
