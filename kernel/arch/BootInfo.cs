using System;
using Kernel.Runtime;

namespace Kernel.Arch
{
    public struct MemoryRegion
    {
        public ulong Base, Length;
        public uint Type;                      // E820 types: 1 = usable RAM
        public const uint Usable = 1;
        // Not an E820 type: UEFI runtime services code (kernel/arch/EfiBoot.cs),
        // which Paging keeps executable so that ResetSystem can be called.
        public const uint FirmwareCode = 0xEF05;
    }

    // What the boot loader told us: the command line and the memory map. Both are
    // copied into kernel memory at once, so the loader's pages can be reused.
    // Source: the PVH start_info (Xen public/arch-x86/hvm/start_info.h, version 1).
    public static unsafe class BootInfo
    {
        private const uint PvhMagic = 0x336EC578;
        public const int MaxCommandLine = 512;
        public const int MaxRegions = 128;   // UEFI maps are longer than E820 ones, even merged

        private struct PvhStartInfo
        {
            public uint Magic, Version, Flags, ModuleCount;
            public ulong ModuleListAddress, CommandLineAddress, RsdpAddress, MemoryMapAddress;
            public uint MemoryMapEntries, Reserved;
        }

        private struct PvhMemoryMapEntry
        {
            public ulong Address, Size;
            public uint Type, Reserved;
        }

        public static byte* CommandLine;          // NUL-terminated ASCII
        public static int CommandLineLength;
        public static MemoryRegion* Regions;
        public static int RegionCount;
        public static ulong RsdpAddress;
        public static uint ProtocolVersion;

        public static void FromPvh(void* startInfo)
        {
            CommandLine = (byte*)Heap.AllocateRaw(MaxCommandLine + 1);
            Regions = (MemoryRegion*)Heap.AllocateRaw((ulong)(MaxRegions * sizeof(MemoryRegion)));
            PvhStartInfo* info = (PvhStartInfo*)startInfo;
            if (info == null || info->Magic != PvhMagic) Panic.Fail("no PVH start_info: boot with a PVH loader (qemu -kernel)"u8);
            ProtocolVersion = info->Version;
            RsdpAddress = info->RsdpAddress;
            byte* source = (byte*)info->CommandLineAddress;
            if (source != null)
                while (CommandLineLength < MaxCommandLine && source[CommandLineLength] != 0)
                {
                    CommandLine[CommandLineLength] = source[CommandLineLength];
                    CommandLineLength++;
                }
            CommandLine[CommandLineLength] = 0;
            // Version 0 of start_info has no memory map; QEMU's PVH boot ROM gives version 1.
            if (info->Version < 1 || info->MemoryMapAddress == 0) Panic.Fail("PVH start_info has no memory map"u8);
            PvhMemoryMapEntry* entries = (PvhMemoryMapEntry*)info->MemoryMapAddress;
            for (uint i = 0; i < info->MemoryMapEntries && RegionCount < MaxRegions; i++)
            {
                Regions[RegionCount].Base = entries[i].Address;
                Regions[RegionCount].Length = entries[i].Size;
                Regions[RegionCount].Type = entries[i].Type;
                RegionCount++;
            }
        }

        // The whole word `name` is on the command line (as `name` or `name=...`).
        public static bool HasOption(ReadOnlySpan<byte> name) => FindOption(name, out _, out _);

        // The value of `name=value`; false when the option is absent or has no value.
        public static bool TryGetOption(ReadOnlySpan<byte> name, out byte* value, out int length)
            => FindOption(name, out value, out length) && length >= 0;

        private static bool FindOption(ReadOnlySpan<byte> name, out byte* value, out int length)
        {
            value = null;
            length = -1;
            int i = 0;
            while (i < CommandLineLength)
            {
                while (i < CommandLineLength && CommandLine[i] == ' ') i++;
                int start = i;
                while (i < CommandLineLength && CommandLine[i] != ' ') i++;
                int keyEnd = start;
                while (keyEnd < i && CommandLine[keyEnd] != '=') keyEnd++;
                if (keyEnd - start == name.Length && MatchesAt(CommandLine + start, name))
                {
                    if (keyEnd < i) { value = CommandLine + keyEnd + 1; length = i - keyEnd - 1; }
                    return true;
                }
            }
            return false;
        }

        private static bool MatchesAt(byte* text, ReadOnlySpan<byte> name)
        {
            for (int k = 0; k < name.Length; k++) if (text[k] != name[k]) return false;
            return true;
        }

        public static bool ValueEquals(byte* value, int length, ReadOnlySpan<byte> expected)
            => length == expected.Length && MatchesAt(value, expected);
    }
}
