using System;
using Kernel.Runtime;

namespace Kernel.Arch
{
    public struct MemoryRegion
    {
        public ulong Base, Length;
        public uint Type;                      // an E820 type, or FirmwareCode

        // The E820 address range types (ACPI 6.5 15.1, Table 15.1).
        public const uint Usable = 1, Reserved = 2, AcpiReclaimable = 3, AcpiNvs = 4, Unusable = 5;
        // Not an E820 type: UEFI runtime services code (kernel/arch/efi/EfiEntry.cs),
        // which Paging keeps executable so that ResetSystem can be called.
        public const uint FirmwareCode = 0xEF05;
    }

    // Who started the kernel: a PVH loader (QEMU -kernel; build/kernel*.elf) or
    // UEFI firmware (build/BOOTX64*.EFI). Each image has one entry (kernel.csproj).
    public enum BootLoader : byte { Pvh, Uefi }

    // What the boot loader told us: the command line, the memory map, the ACPI
    // RSDP. Both entries copy them into kernel memory at once, so the loader's
    // pages can be reused: kernel/arch/pvh/PvhEntry.cs from the PVH start_info,
    // kernel/arch/efi/EfiEntry.cs from the firmware.
    public static unsafe class BootInfo
    {
        public const int MaxCommandLine = 512;
        public const int MaxRegions = 128;   // UEFI maps are longer than E820 ones, even merged

        public static byte* CommandLine;          // NUL-terminated ASCII
        public static int CommandLineLength;
        public static MemoryRegion* Regions;
        public static int RegionCount;
        public static ulong RsdpAddress;
        public static BootLoader Loader;

        // The buffers both entries fill.
        public static void AllocateBuffers()
        {
            CommandLine = (byte*)Heap.AllocateRaw(MaxCommandLine + 1);
            Regions = (MemoryRegion*)Heap.AllocateRaw((ulong)(MaxRegions * sizeof(MemoryRegion)));
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
