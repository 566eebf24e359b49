using System.Runtime.InteropServices;
using Internal.Runtime.CompilerHelpers;
using Kernel.Runtime;

namespace Kernel.Arch.Pvh
{
    // The direct-boot entry (build/kernel*.elf): a PVH loader such as QEMU's
    // -kernel starts boot/entry.asm in 32-bit protected mode with the physical
    // address of its start_info, and entry.asm gets to long mode and calls kmain.
    // Only the ELF image has this file (kernel.csproj).
    // Source: the PVH start_info (Xen public/arch-x86/hvm/start_info.h, version 1).
    public static unsafe class PvhEntry
    {
        private const uint PvhMagic = 0x336EC578;

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

        // boot/entry.asm calls here in long mode, with SSE on and a 16-byte-aligned
        // stack, passing the PVH start_info.
        [UnmanagedCallersOnly(EntryPoint = "kmain")]
        private static void Main(void* startInfo)
        {
            Uart16550.Initialize();
            Console.WriteLine("C# Hyper-V guest: booting"u8);
            StartupCodeHelpers.InitializeModules();      // statics before anything else uses them
            BootTimeline.MarkRuntimeStarted();
            ReadStartInfo(startInfo);
            KernelMain.Continue();
        }

        private static void ReadStartInfo(void* startInfo)
        {
            BootInfo.AllocateBuffers();
            BootInfo.Loader = BootLoader.Pvh;
            PvhStartInfo* info = (PvhStartInfo*)startInfo;
            if (info == null || info->Magic != PvhMagic) Panic.Fail("no PVH start_info: boot with a PVH loader (qemu -kernel)"u8);
            BootInfo.RsdpAddress = info->RsdpAddress;
            byte* source = (byte*)info->CommandLineAddress;
            if (source != null)
                while (BootInfo.CommandLineLength < BootInfo.MaxCommandLine && source[BootInfo.CommandLineLength] != 0)
                {
                    BootInfo.CommandLine[BootInfo.CommandLineLength] = source[BootInfo.CommandLineLength];
                    BootInfo.CommandLineLength++;
                }
            BootInfo.CommandLine[BootInfo.CommandLineLength] = 0;
            // Version 0 of start_info has no memory map; QEMU's PVH boot ROM gives version 1.
            if (info->Version < 1 || info->MemoryMapAddress == 0) Panic.Fail("PVH start_info has no memory map"u8);
            PvhMemoryMapEntry* entries = (PvhMemoryMapEntry*)info->MemoryMapAddress;
            for (uint i = 0; i < info->MemoryMapEntries && BootInfo.RegionCount < BootInfo.MaxRegions; i++)
            {
                BootInfo.Regions[BootInfo.RegionCount].Base = entries[i].Address;
                BootInfo.Regions[BootInfo.RegionCount].Length = entries[i].Size;
                BootInfo.Regions[BootInfo.RegionCount].Type = entries[i].Type;
                BootInfo.RegionCount++;
            }
        }
    }
}
