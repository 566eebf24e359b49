using System;
using System.Runtime;
using System.Runtime.CompilerServices;
using Internal.Runtime.CompilerHelpers;
using Kernel.Runtime;
using static Kernel.Arch.Efi.Uefi;

namespace Kernel.Arch.Efi
{
    // The UEFI entry (build/BOOTX64.EFI, a Hyper-V Generation 2 VM or OVMF):
    // boot/efi/entry.asm moves to a stack in the image and calls efi_main with
    // the image handle and the system table (UEFI 2.10, 4.1). We take from the
    // firmware what the PVH start_info gives on the direct boot — the command
    // line, the memory map, the ACPI RSDP — leave boot services, install our
    // own page tables and GDT, and continue on the same path as kmain.
    //
    // The command line is the file \EFI\BOOT\CMDLINE.TXT on the volume the image
    // was loaded from (Simple File System protocol, UEFI 2.10 13.4-13.5), not the
    // LoadedImage LoadOptions: the removable-media boot path (\EFI\BOOT\BOOTX64.EFI,
    // 3.5.1.1) that a Gen2 VM and OVMF take with no boot entries passes no options,
    // and a file on the ESP is what a test harness can rewrite in the disk image.
    // Only the UEFI image (build/BOOTX64*.EFI) has this file (kernel.csproj).
    public static unsafe class EfiEntry
    {
        private const int MapCapacity = 64 * 1024;

        // boot/efi/entry.asm: leave the firmware's page tables, GDT and interrupts behind.
        [RuntimeImport("efi_take_over")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void TakeOver();

        // Kept for power-off (GuestExit): runtime services stay callable after
        // ExitBootServices at their physical addresses, since we never call
        // SetVirtualAddressMap and our page tables identity-map below 4 GiB (8.1).
        private static RuntimeServices* s_runtime;
        private static ulong LoadedImageBase;
        private static int MapEntries, MapDescriptorSize, ExitAttempts;
        private static byte s_waitingForGdb;

        // An export rather than an UnmanagedCallersOnly entry, as interrupt_dispatch
        // (kernel/arch/Interrupts.cs): RuntimeExport methods take the platform ABI,
        // and with no GC the reverse P/Invoke frame would only cost bytes.
        [RuntimeExport("efi_main")]
        private static void Main(void* imageHandle, SystemTable* systemTable)
        {
            Uart16550.Initialize();
            Console.WriteLine("\nC# Hyper-V guest: booting (UEFI)"u8);
            PeImage.FillBootSymbols();                   // before anything reads the image bounds
            StartupCodeHelpers.InitializeModules();
            BootTimeline.MarkRuntimeStarted();
            BootInfo.AllocateBuffers();
            BootInfo.Loader = BootLoader.Uefi;

            BootServices* bs = systemTable->BootServices;
            s_runtime = systemTable->RuntimeServices;
            BootInfo.RsdpAddress = FindRsdp(systemTable);
            ReadCommandLine(bs, imageHandle);
            if (BootInfo.HasOption("gdb-wait"u8)) WaitForGdb(bs);

            byte* map = (byte*)Heap.AllocateRaw(MapCapacity);   // in the image: allocating it does not change the map
            ExitBootServices(bs, imageHandle, map);
            TakeOver();
            // Interrupts are off from here until KernelMain.Enlighten, and the 8259 (if
            // the MADT declares one) is masked before that by LegacyPic, as on the PVH
            // path. (OVMF 2022.11 masks both 8259s itself and runs its timer on the local
            // APIC: QEMU's pic_ioport_write and apic_local_deliver traces show it.)
            ConvertMemoryMap(map);
            PrintSummary();
            KernelMain.Continue();
        }

        // gdb-wait (qemu-run.sh --uefi --gdb puts it on the command line): the firmware
        // chose where the image lives, so a debugger cannot place the image's symbols,
        // or a breakpoint, before the kernel says where that is. Say it, then spin
        // until the debugger clears the byte named: qemu-run.sh reads this line and
        // prints the gdb command that attaches, loads the symbols at this address and
        // clears the byte. Before ExitBootServices, so the rest of the UEFI path can be
        // stepped too; what ran before (the command line read) cannot.
        private static void WaitForGdb(BootServices* bs)
        {
            // UEFI 2.10 3.1.2: the boot manager arms a 5-minute watchdog before it starts
            // a boot option and resets the machine when it fires; a human at gdb may be slower.
            ulong disarmed = bs->SetWatchdogTimer(0, 0, 0, null);
            fixed (byte* waiting = &s_waitingForGdb)
            {
                *waiting = 1;
                Console.Print("efi: gdb-wait: loaded at 0x%x; waiting until gdb clears the byte at 0x%x"u8, BootSymbols.Get()->ImageStart, (ulong)waiting);
                if (disarmed != Success) Console.Print(" (the watchdog could not be disarmed: 0x%x)"u8, disarmed);
                Console.WriteLine();
                while (*waiting != 0) Cpu.Pause();      // Pause is a call: the byte is read again each time
            }
            Console.WriteLine("efi: gdb-wait: released"u8);
        }

        // Tagged lines: tests/Kernel.Tests/UefiTests.cs reads them.
        private static void PrintSummary()
        {
            BootSymbols* s = BootSymbols.Get();
            Console.Print("efi: image at 0x%x-0x%x (LoadedImage says 0x%x), ExitBootServices on attempt %d\n"u8, s->ImageStart, s->ImageEnd, LoadedImageBase, ExitAttempts);
            Console.Print("efi: memory map of %d descriptors (%d bytes each), ACPI RSDP at 0x%x\n"u8, MapEntries, MapDescriptorSize, BootInfo.RsdpAddress);
            // boot/trampoline.asm runs at a fixed page (Smp.TrampolineBase); below 1 MiB
            // the page allocator hands nothing out, so only the firmware could own it.
            if (!IsUsable(Smp.TrampolineBase)) Console.WriteLine("efi: warning: the AP trampoline page is not free RAM in the firmware's map"u8);
        }

        private static bool IsUsable(ulong address)
        {
            for (int i = 0; i < BootInfo.RegionCount; i++)
            {
                MemoryRegion r = BootInfo.Regions[i];
                if (r.Type == MemoryRegion.Usable && address >= r.Base && address + 4096 <= r.Base + r.Length) return true;
            }
            return false;
        }

        // UEFI 2.10 7.4: the map key from GetMemoryMap must be current, or
        // ExitBootServices fails with EFI_INVALID_PARAMETER; the firmware may
        // change the map (timer events) between the two calls, so fetch it again
        // and retry. After a failed attempt only GetMemoryMap may be called.
        // The map stays in `map`, MapEntries descriptors MapDescriptorSize apart.
        private static void ExitBootServices(BootServices* bs, void* imageHandle, byte* map)
        {
            // efi-stale-key (a test of this loop): change the map after reading it, once.
            bool staleKey = BootInfo.HasOption("efi-stale-key"u8);
            for (int attempt = 1; attempt <= 8; attempt++)
            {
                ulong mapSize = MapCapacity, mapKey, descriptorSize;
                uint version;
                ulong status = bs->GetMemoryMap(&mapSize, map, &mapKey, &descriptorSize, &version);
                if (status == BufferTooSmall) Panic.Fail("UEFI memory map larger than 64 KiB"u8);
                if (status != Success) Panic.Fail("UEFI GetMemoryMap failed"u8);
                if (staleKey && attempt == 1)
                {
                    ulong page = 0;                      // IN OUT, though AllocateAnyPages reads nothing from it
                    const uint AllocateAnyPages = 0;     // EFI_ALLOCATE_TYPE (UEFI 2.10 7.2)
                    bs->AllocatePages(AllocateAnyPages, LoaderData, 1, &page);
                }
                status = bs->ExitBootServices(imageHandle, mapKey);
                if (status == Success)
                {
                    ExitAttempts = attempt;
                    MapDescriptorSize = (int)descriptorSize;
                    MapEntries = (int)(mapSize / descriptorSize);
                    return;
                }
                if (status != InvalidParameter) Panic.Fail("UEFI ExitBootServices failed"u8);
            }
            Panic.Fail("UEFI ExitBootServices: the map key kept going stale"u8);
        }

        // The ACPI 2.0+ RSDP from the configuration table (UEFI 2.10 4.6), else ACPI 1.0's.
        private static ulong FindRsdp(SystemTable* st)
        {
            Guid acpi20 = Uefi.Acpi20Table;
            Guid acpi10 = Uefi.Acpi10Table;
            ulong found = 0;
            for (ulong i = 0; i < st->NumberOfTableEntries; i++)
            {
                ConfigurationTable* entry = st->ConfigurationTable + i;
                if (entry->VendorGuid.Is(acpi20)) return (ulong)entry->VendorTable;
                if (entry->VendorGuid.Is(acpi10)) found = (ulong)entry->VendorTable;
            }
            return found;
        }

        // BootInfo.CommandLine comes zeroed from the heap: an empty line until the
        // file's bytes are read into it.
        private static void ReadCommandLine(BootServices* bs, void* imageHandle)
        {
            LoadedImage* image;
            Guid guid = LoadedImageProtocol;
            if (bs->HandleProtocol(imageHandle, &guid, (void**)&image) != Success) { Console.WriteLine("efi: no LoadedImage protocol"u8); return; }
            LoadedImageBase = image->ImageBase;
            FileSystem* fs;
            guid = SimpleFileSystemProtocol;
            if (bs->HandleProtocol(image->DeviceHandle, &guid, (void**)&fs) != Success) { Console.WriteLine("efi: boot device has no file system"u8); return; }
            File* root, file;
            if (fs->OpenVolume(fs, &root) != Success) { Console.WriteLine("efi: OpenVolume failed"u8); return; }
            const ulong ModeRead = 1;
            ulong opened;
            fixed (char* path = "\\EFI\\BOOT\\CMDLINE.TXT")       // a string's UTF-16 with its NUL: UEFI file names are UCS-2
                opened = root->Open(root, &file, path, ModeRead, 0);
            if (opened != Success) { Console.WriteLine("efi: no \\EFI\\BOOT\\CMDLINE.TXT; empty command line"u8); root->Close(root); return; }
            byte* line = BootInfo.CommandLine;
            ulong size = BootInfo.MaxCommandLine;
            if (file->Read(file, &size, line) != Success) size = 0;
            file->Close(file);
            root->Close(root);
            // One line of text: stop at the first line break or NUL.
            int length = 0;
            while ((ulong)length < size && line[length] != '\n' && line[length] != '\r' && line[length] != 0) length++;
            while (length > 0 && line[length - 1] == ' ') length--;
            line[length] = 0;
            BootInfo.CommandLineLength = length;
        }

        // UEFI memory types (UEFI 2.10 7.2, Table 7-5) as E820 types (ACPI 6.5 15.1,
        // Table 15.1, which is what BootInfo keeps). After ExitBootServices the
        // loader's and boot services' memory is free RAM (Table 7-6); the image
        // itself is LoaderCode, kept out of the page allocator by its bounds.
        public static uint RegionType(uint efiType)
        {
            // Tests, not a switch: the switch's jump table (40 bytes of read-only data) cost more than they do.
            if (efiType is LoaderCode or LoaderData or BootServicesCode or BootServicesData or ConventionalMemory) return MemoryRegion.Usable;
            if (efiType == RuntimeServicesCode) return MemoryRegion.FirmwareCode;   // stays executable for ResetSystem
            if (efiType == UnusableMemory) return MemoryRegion.Unusable;
            if (efiType == AcpiReclaimMemory) return MemoryRegion.AcpiReclaimable;
            if (efiType == AcpiMemoryNvs) return MemoryRegion.AcpiNvs;
            return MemoryRegion.Reserved;                                       // reserved, runtime data, MMIO, ...
        }

        private static void ConvertMemoryMap(byte* map)
        {
            MemoryRegion* regions = BootInfo.Regions;
            int count = 0;
            for (int i = 0; i < MapEntries; i++)
            {
                MemoryDescriptor* d = (MemoryDescriptor*)(map + i * MapDescriptorSize);
                uint type = RegionType(d->Type);
                ulong length = d->NumberOfPages * 4096;
                MemoryRegion* last = regions + count - 1;
                // The firmware's map has a hundred-odd entries; neighbours of one converted type merge.
                if (count > 0 && last->Type == type && last->Base + last->Length == d->PhysicalStart)
                {
                    last->Length += length;
                    continue;
                }
                if (count == BootInfo.MaxRegions) { Console.WriteLine("efi: memory map truncated"u8); break; }
                regions[count++] = new MemoryRegion { Base = d->PhysicalStart, Length = length, Type = type };
            }
            BootInfo.RegionCount = count;
        }

        // UEFI 2.10 8.5.1 ResetSystem(EfiResetShutdown): the power-off of a VM with
        // no isa-debug-exit (Hyper-V).
        internal static void PowerOff(bool passed)
        {
            if (s_runtime == null) return;
            const uint ResetShutdown = 2;
            s_runtime->ResetSystem(ResetShutdown, passed ? Success : Aborted, 0, null);
        }
    }
}
