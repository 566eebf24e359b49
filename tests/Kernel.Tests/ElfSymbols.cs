using ELFSharp.ELF;
using ELFSharp.ELF.Sections;

namespace Kernel.Tests;

// ELFSharp reads build/kernel*.elf; these add what the host tests ask of a
// linked kernel on top of it: a symbol by name, the bytes from a symbol or at an
// address, the named code symbols, the loaded data.
public static class ElfSymbols
{
    // The whole file in memory: every test reads section contents many times.
    public static ELF<ulong> Load(string path) => ELFReader.Load<ulong>(new MemoryStream(File.ReadAllBytes(path)), shouldOwnStream: true);

    private static IEnumerable<SymbolEntry<ulong>> Symbols(this ELF<ulong> elf) => ((SymbolTable<ulong>)elf.GetSection(".symtab")).Entries;

    // The first symbol of that name in the symbol table.
    public static SymbolEntry<ulong> Symbol(this ELF<ulong> elf, string name) =>
        elf.Symbols().FirstOrDefault(s => s.Name == name) ?? throw new KeyNotFoundException($"symbol '{name}' not in the ELF symbol table");

    public static ulong Address(this ELF<ulong> elf, string symbol) => elf.Symbol(symbol).Value;

    // Every named symbol, code or data, local or global.
    public static IEnumerable<string> SymbolNames(this ELF<ulong> elf) => elf.Symbols().Where(s => s.Name.Length > 0).Select(s => s.Name);

    // The bytes from a symbol up to `length`, cut at the end of its section (nasm
    // labels, the stubs among them, have no size).
    public static (ulong Address, byte[] Bytes) BytesFrom(this ELF<ulong> elf, string symbol, int length = 64)
    {
        var s = elf.Symbol(symbol);
        var contents = s.PointedSection.GetContents();
        int start = checked((int)(s.Value - s.PointedSection.LoadAddress));
        return (s.Value, contents[start..Math.Min(contents.Length, start + length)]);
    }

    // The file's bytes at [address, address + length) of a loaded section that has them.
    public static byte[] BytesAt(this ELF<ulong> elf, ulong address, int length)
    {
        var section = elf.Sections.First(s => s.Type != SectionType.NoBits && s.Flags.HasFlag(SectionFlags.Allocatable)
                                              && address >= s.LoadAddress && address + (ulong)length <= s.LoadAddress + s.Size);
        return section.GetContents().AsSpan(checked((int)(address - section.LoadAddress)), length).ToArray();
    }

    // Every named symbol in an executable section.
    public static IEnumerable<SymbolEntry<ulong>> CodeSymbols(this ELF<ulong> elf) =>
        elf.Symbols().Where(s => s.Name.Length > 0 && !s.IsPointedIndexSpecial && s.PointedSection.Flags.HasFlag(SectionFlags.Executable));

    public static bool IsCode(this ELF<ulong> elf, ulong address) =>
        elf.Sections.Any(s => s.Flags.HasFlag(SectionFlags.Executable) && address >= s.LoadAddress && address < s.LoadAddress + s.Size);

    // The loaded sections with file contents that are not code, and not notes
    // (which the loader reads, not the kernel).
    public static IEnumerable<(ulong Address, byte[] Bytes)> LoadedData(this ELF<ulong> elf) =>
        elf.Sections.Where(s => s.Flags.HasFlag(SectionFlags.Allocatable) && !s.Flags.HasFlag(SectionFlags.Executable)
                                && s.Type is not (SectionType.NoBits or SectionType.Note) && s.Size > 0)
                    .Select(s => (s.LoadAddress, s.GetContents()));
}
