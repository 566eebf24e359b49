using System.Runtime.InteropServices;
using Kernel.Runtime;

namespace Kernel.Arch.Efi
{
    // The kernel's own PE32+ image, read where the firmware loaded it: the
    // headers lld-link wrote at __ImageBase (Microsoft PE/COFF specification,
    // sections 2-4). The UEFI image has no linker script to hand BootSymbols
    // its bounds (boot/layout.asm's PE build leaves them zero), so they come
    // from here.
    public static unsafe class PeImage
    {
        // PE/COFF 2: the MS-DOS stub's e_lfanew at 0x3C points at "PE\0\0".
        private const int SignatureOffsetField = 0x3C;
        private const uint PeSignature = 0x00004550;

        // PE/COFF 3.3 COFF file header, right after the signature.
        [StructLayout(LayoutKind.Explicit, Size = 20)]
        private struct CoffHeader
        {
            [FieldOffset(2)] public ushort NumberOfSections;
            [FieldOffset(16)] public ushort SizeOfOptionalHeader;
        }

        // PE/COFF 3.4 optional header (PE32+): only SizeOfImage is read.
        [StructLayout(LayoutKind.Explicit)]
        private struct OptionalHeader
        {
            [FieldOffset(56)] public uint SizeOfImage;
        }

        // PE/COFF 4.1 section table entry.
        [StructLayout(LayoutKind.Explicit, Size = 40)]
        private struct SectionHeader
        {
            [FieldOffset(8)] public uint VirtualSize;
            [FieldOffset(12)] public uint VirtualAddress;
            [FieldOffset(36)] public uint Characteristics;
        }

        // PE/COFF 4.1 section flags.
        private const uint MemDiscardable = 0x02000000, MemExecute = 0x20000000, MemWrite = 0x80000000;

        // text = the executable sections, rodata = the read-only ones, data = the
        // writable ones (the Makefile's lld-link merges leave one of each, in that
        // order); a discardable section (.reloc) is the loader's alone. Any other
        // arrangement is refused: Paging maps by these bounds.
        public static void FillBootSymbols()
        {
            BootSymbols* s = BootSymbols.Get();
            byte* image = (byte*)s->ImageStart;
            byte* pe = image + *(int*)(image + SignatureOffsetField);
            if (*(uint*)pe != PeSignature) Panic.Fail("efi: no PE signature at __ImageBase"u8);
            var coff = (CoffHeader*)(pe + 4);
            var optional = (OptionalHeader*)(coff + 1);
            var sections = (SectionHeader*)((byte*)optional + coff->SizeOfOptionalHeader);
            s->ImageEnd = s->ImageStart + optional->SizeOfImage;
            s->TextStart = s->RodataStart = s->DataStart = ~0ul;
            s->TextEnd = s->RodataEnd = s->DataEnd = 0;
            for (int i = 0; i < coff->NumberOfSections; i++)
            {
                SectionHeader* h = sections + i;
                ulong start = s->ImageStart + h->VirtualAddress;
                ulong end = (start + h->VirtualSize + 4095) & ~4095ul;
                if ((h->Characteristics & MemDiscardable) != 0) continue;
                if ((h->Characteristics & MemExecute) != 0) Widen(&s->TextStart, &s->TextEnd, start, end);
                else if ((h->Characteristics & MemWrite) != 0) Widen(&s->DataStart, &s->DataEnd, start, end);
                else Widen(&s->RodataStart, &s->RodataEnd, start, end);
            }
            if (s->TextEnd > s->RodataStart || s->RodataEnd > s->DataStart || s->DataEnd > s->ImageEnd)
                Panic.Fail("efi: PE sections are not ordered text, rodata, data"u8);
            s->BssStart = s->BssEnd = s->DataEnd;     // .bss is one of the writable sections
            if (s->ImageEnd > PageAllocator.Limit) Panic.Fail("efi: image loaded above 4 GiB"u8);
        }

        private static void Widen(ulong* start, ulong* end, ulong from, ulong to)
        {
            if (from < *start) *start = from;
            if (to > *end) *end = to;
        }
    }
}
