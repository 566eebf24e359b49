using System.Buffers.Binary;
using System.Text;

namespace Kernel.Tests;

// Just enough of ELF64 to find a symbol's bytes in build/kernel.elf or an object file.
public sealed class ElfImage
{
    private readonly byte[] _file;
    private readonly List<(string Name, ulong Value, ulong Size, ushort Section)> _symbols = new();
    private readonly List<(ulong Address, ulong Offset, ulong Size, uint Type, ulong Flags)> _sections = new();

    private const uint ShtNote = 7, ShtNobits = 8;
    private const ulong ShfAlloc = 2, ShfExecinstr = 4;

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
            _sections.Add((U64(sh + 0x10), U64(sh + 0x18), U64(sh + 0x20), U32(sh + 4), U64(sh + 8)));
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

    // Every named symbol, code or data, local or global.
    public IEnumerable<string> SymbolNames() => _symbols.Where(s => s.Name.Length > 0).Select(s => s.Name);

    // Every named symbol in an executable section: (name, address, size; nasm
    // labels have size 0).
    public IEnumerable<(string Name, ulong Address, ulong Size)> CodeSymbols()
        => _symbols.Where(s => s.Name.Length > 0 && s.Section < _sections.Count && (_sections[s.Section].Flags & ShfExecinstr) != 0)
                   .Select(s => (s.Name, s.Value, s.Size));

    public bool IsCode(ulong address) => _sections.Any(s => (s.Flags & ShfExecinstr) != 0 && address >= s.Address && address < s.Address + s.Size);

    // The file's bytes at [address, address + length) of a section that has them.
    public byte[] Read(ulong address, int length)
    {
        var sec = _sections.First(s => s.Type != ShtNobits && (s.Flags & ShfAlloc) != 0 && address >= s.Address && address + (ulong)length <= s.Address + s.Size);
        return _file.AsSpan((int)(sec.Offset + (address - sec.Address)), length).ToArray();
    }

    // The loaded sections with file contents that are not code, and not notes (which the loader reads, not the kernel).
    public IEnumerable<(ulong Address, byte[] Bytes)> DataSections()
        => _sections.Where(s => (s.Flags & ShfAlloc) != 0 && (s.Flags & ShfExecinstr) == 0 && s.Type != ShtNobits && s.Type != ShtNote && s.Size > 0)
                    .Select(s => (s.Address, _file.AsSpan((int)s.Offset, (int)s.Size).ToArray()));

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
