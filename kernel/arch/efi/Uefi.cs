using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Kernel.Runtime;

namespace Kernel.Arch.Efi
{
    // The parts of the UEFI interface the kernel uses, laid out as UEFI 2.10
    // defines them (x64: natural alignment, EFIAPI is the Microsoft x64 calling
    // convention, which `delegate* unmanaged` is on this target). Only the
    // fields and function slots that are called are declared, at their offsets.
    // The slots are [SuppressGCTransition]: with no garbage collector there is
    // nothing to tell that the thread left managed code, and without it ilc
    // builds a P/Invoke frame around every call (RhpPInvoke, RhpPInvokeReturn,
    // the arguments spilled and reloaded across them), about 40 bytes a call.
    public static unsafe class Uefi
    {
        // EFI_STATUS values (UEFI 2.10 Appendix D): the high bit marks an error.
        public const ulong Success = 0;
        public const ulong InvalidParameter = 0x8000000000000002;
        public const ulong BufferTooSmall = 0x8000000000000005;
        public const ulong Aborted = 0x8000000000000015;

        // UEFI 2.10 4.3 EFI_SYSTEM_TABLE
        [StructLayout(LayoutKind.Explicit)]
        public struct SystemTable
        {
            [FieldOffset(88)] public RuntimeServices* RuntimeServices;
            [FieldOffset(96)] public BootServices* BootServices;
            [FieldOffset(104)] public ulong NumberOfTableEntries;
            [FieldOffset(112)] public ConfigurationTable* ConfigurationTable;
        }

        // UEFI 2.10 4.4 EFI_BOOT_SERVICES: only the slots we call.
        [StructLayout(LayoutKind.Explicit)]
        public struct BootServices
        {
            [FieldOffset(40)] public delegate* unmanaged[SuppressGCTransition]<uint, uint, ulong, ulong*, ulong> AllocatePages;
            [FieldOffset(56)] public delegate* unmanaged[SuppressGCTransition]<ulong*, byte*, ulong*, ulong*, uint*, ulong> GetMemoryMap;
            [FieldOffset(152)] public delegate* unmanaged[SuppressGCTransition]<void*, Guid*, void**, ulong> HandleProtocol;
            [FieldOffset(232)] public delegate* unmanaged[SuppressGCTransition]<void*, ulong, ulong> ExitBootServices;
            [FieldOffset(256)] public delegate* unmanaged[SuppressGCTransition]<ulong, ulong, ulong, char*, ulong> SetWatchdogTimer;
        }

        // UEFI 2.10 4.5 EFI_RUNTIME_SERVICES: ResetSystem is the 11th function after the header.
        [StructLayout(LayoutKind.Explicit)]
        public struct RuntimeServices
        {
            [FieldOffset(104)] public delegate* unmanaged[SuppressGCTransition]<uint, ulong, ulong, void*, void> ResetSystem;
        }

        public struct ConfigurationTable { public Guid VendorGuid; public void* VendorTable; }

        // UEFI 2.10 9.1 EFI_LOADED_IMAGE_PROTOCOL
        [StructLayout(LayoutKind.Explicit)]
        public struct LoadedImage
        {
            [FieldOffset(24)] public void* DeviceHandle;
            [FieldOffset(64)] public ulong ImageBase;
            [FieldOffset(72)] public ulong ImageSize;
        }

        // UEFI 2.10 13.4 EFI_SIMPLE_FILE_SYSTEM_PROTOCOL and 13.5 EFI_FILE_PROTOCOL
        public struct FileSystem { public ulong Revision; public delegate* unmanaged[SuppressGCTransition]<FileSystem*, File**, ulong> OpenVolume; }
        public struct File
        {
            public ulong Revision;
            public delegate* unmanaged[SuppressGCTransition]<File*, File**, char*, ulong, ulong, ulong> Open;
            public delegate* unmanaged[SuppressGCTransition]<File*, ulong> Close;
            public void* Delete;
            public delegate* unmanaged[SuppressGCTransition]<File*, ulong*, byte*, ulong> Read;
        }

        // EFI_MEMORY_TYPE (UEFI 2.10 7.2, Table 7-5): the values the kernel tells apart.
        public const uint LoaderCode = 1, LoaderData = 2, BootServicesCode = 3, BootServicesData = 4;
        public const uint RuntimeServicesCode = 5, ConventionalMemory = 7, UnusableMemory = 8;
        public const uint AcpiReclaimMemory = 9, AcpiMemoryNvs = 10;

        // UEFI 2.10 7.2 EFI_MEMORY_DESCRIPTOR (entries are DescriptorSize apart, not sizeof)
        public struct MemoryDescriptor
        {
            public uint Type, Pad;
            public ulong PhysicalStart, VirtualStart, NumberOfPages, Attribute;
        }

        // EFI_GUIDs of the tables and protocols used (UEFI 2.10 4.6, 9.1, 13.4).
        // Inlined: each use builds its GUID with one call to Guid.From, where a
        // getter of its own would add a call and a copy (57 bytes each).
        public static Guid Acpi20Table { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Guid.From(0x8868E871, 0xE4F1, 0x11D3, 0xBC220080C73C8881); }
        public static Guid Acpi10Table { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Guid.From(0xEB9D2D30, 0x2D88, 0x11D3, 0x9A160090273FC14D); }
        public static Guid LoadedImageProtocol { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Guid.From(0x5B1B31A1, 0x9562, 0x11D2, 0x8E3F00A0C969723B); }
        public static Guid SimpleFileSystemProtocol { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Guid.From(0x964E5B22, 0x6459, 0x11D2, 0x8E3900A0C969723B); }
    }
}
