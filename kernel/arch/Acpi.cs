using System;
using Kernel.Runtime;

namespace Kernel.Arch
{
    // Just enough ACPI to know the interrupt hardware: the RSDP (from the boot
    // loader, or found in the BIOS areas), the RSDT or XSDT, and the MADT: its
    // flags (is there a PC-AT 8259 pair?) and its local APIC entries (the
    // processors). Every table's checksum is verified; a bad table is reported
    // and ignored. ACPI 6.5, 5.2.5 (RSDP), 5.2.7/5.2.8 (RSDT/XSDT), 5.2.12 (MADT).
    //
    // ReadMadt runs once, in KernelMain.Continue, which both boot paths (PVH and
    // UEFI) share: after Paging.Initialize (the tables are mapped) and before
    // Apic.Initialize (LegacyPic needs the flags before it touches the 8259).
    public static unsafe class Acpi
    {
        public const int MaxCpus = 64;
        public static uint* ApicIds;          // enabled processors, in MADT order
        public static int CpuCount;
        public static Text Error;           // why the MADT could not be read, if it could not
        public static ulong RsdpAddress;

        // ACPI 6.5 5.2.12, Table 5.20 "Multiple APIC Flags": bit 0 PCAT_COMPAT, "the
        // system also has a PC-AT-compatible dual-8259 setup" (which an OS must mask
        // when it uses the APICs). Valid when HasMadt.
        public const uint PcatCompat = 1;
        public static bool HasMadt;
        public static uint MadtFlags;

        private struct SdtHeader
        {
            public uint Signature, Length;
            public byte Revision, Checksum;
        }

        public static bool ChecksumOk(byte* table, uint length)
        {
            byte sum = 0;
            for (uint i = 0; i < length; i++) sum += table[i];
            return sum == 0;
        }

        private static bool IsRsdp(byte* p) =>
            p[0] == 'R' && p[1] == 'S' && p[2] == 'D' && p[3] == ' ' && p[4] == 'P' && p[5] == 'T' && p[6] == 'R' && p[7] == ' '
            && ChecksumOk(p, 20);

        // ACPI 5.2.5.1: the first KiB of the EBDA, then 0xE0000-0xFFFFF, on 16-byte boundaries.
        public static ulong FindRsdp(ulong hint)
        {
            if (hint != 0 && IsRsdp((byte*)hint)) return hint;
            ulong ebda = (ulong)(*(ushort*)0x40E) << 4;
            if (ebda >= 0x80000 && ebda < 0xA0000)
                for (ulong p = ebda; p < ebda + 1024; p += 16) if (IsRsdp((byte*)p)) return p;
            for (ulong p = 0xE0000; p < 0x100000; p += 16) if (IsRsdp((byte*)p)) return p;
            return 0;
        }

        // Finds the MADT and reads its flags and processors; false (with Error) when
        // there is no usable MADT, or it lists no enabled processor.
        public static bool ReadMadt(ulong rsdpHint)
        {
            ApicIds = (uint*)Heap.AllocateRaw(MaxCpus * 4);
            CpuCount = 0;
            HasMadt = false;
            RsdpAddress = FindRsdp(rsdpHint);
            if (RsdpAddress == 0) { Error = "no ACPI RSDP found"u8; return false; }
            byte* rsdp = (byte*)RsdpAddress;
            byte revision = rsdp[15];
            bool useXsdt = revision >= 2 && *(ulong*)(rsdp + 24) != 0 && ChecksumOk(rsdp, *(uint*)(rsdp + 20));
            byte* root = useXsdt ? (byte*)*(ulong*)(rsdp + 24) : (byte*)(ulong)*(uint*)(rsdp + 16);
            SdtHeader* rootHeader = (SdtHeader*)root;
            if (!ChecksumOk(root, rootHeader->Length)) { Error = useXsdt ? "XSDT checksum is bad"u8 : "RSDT checksum is bad"u8; return false; }
            int entrySize = useXsdt ? 8 : 4;
            int entries = (int)(rootHeader->Length - 36) / entrySize;
            for (int i = 0; i < entries; i++)
            {
                byte* table = useXsdt ? (byte*)*(ulong*)(root + 36 + i * 8) : (byte*)(ulong)*(uint*)(root + 36 + i * 4);
                if (((SdtHeader*)table)->Signature != 0x43495041) continue;   // "APIC"
                if (!ChecksumOk(table, ((SdtHeader*)table)->Length)) { Error = "MADT checksum is bad"u8; return false; }
                HasMadt = true;
                MadtFlags = *(uint*)(table + 40);                          // after the header and the local APIC address
                ParseMadt(table);
                if (CpuCount == 0) Error = "the MADT lists no enabled processor"u8;
                return CpuCount > 0;
            }
            Error = "no MADT (\"APIC\") table"u8;
            return false;
        }

        private static void ParseMadt(byte* madt)
        {
            uint length = ((SdtHeader*)madt)->Length;
            for (uint offset = 44; offset + 2 <= length;)
            {
                byte type = madt[offset], entryLength = madt[offset + 1];
                if (entryLength < 2) break;
                // Type 0: processor local APIC (processor id, APIC id, flags: bit 0 enabled).
                if (type == 0 && entryLength >= 8 && (*(uint*)(madt + offset + 4) & 1) != 0 && CpuCount < MaxCpus)
                    ApicIds[CpuCount++] = madt[offset + 3];
                offset += entryLength;
            }
        }
    }
}
