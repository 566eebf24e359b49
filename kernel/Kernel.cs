using System.Runtime.InteropServices;
using Internal.Runtime.CompilerHelpers;
using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;

namespace Kernel
{
    public static unsafe partial class KernelMain
    {
        // The path both entries share once BootInfo is filled in: kmain
        // (kernel/arch/pvh/PvhEntry.cs, the ELF image) and efi_main
        // (kernel/arch/efi/EfiEntry.cs, the UEFI image, after ExitBootServices).
        internal static void Continue()
        {
            HyperV.PoisonHypercallPage();                // before anything could call it
            PageAllocator.Initialize();
            Gdt.Install();
            Interrupts.Initialize();
            Paging.Initialize();
            Acpi.ReadMadt(BootInfo.RsdpAddress);         // the tables are mapped now; Apic.Initialize needs its flags
            PrintBootSummary();
            Enlighten();

            BootTimeline.MarkReady();
            EnterTestMode();
            ReportReady();
            if (BootInfo.HasOption("exit-when-ready"u8))
            {
                Drivers.VmBus.VmbusConnection.Shutdown();    // UNLOAD before leaving
                GuestExit.Exit(GuestExit.Status.Passed);
            }
            Idle();
        }

        // The test image's way in (tests/guest/TestModeEntry.cs), which never
        // returns; in the minimal image there is no such part and the call is
        // compiled away.
        static partial void EnterTestMode();

        // The minimal image's one line that says it is done: every VP
        // enlightened, VMBus connected, drivers bound. A CI run boots it with
        // exit-when-ready on the command line; without it the guest idles,
        // its drivers running from their interrupts.
        private static void ReportReady()
        {
            Console.Print("ready: %u VPs%s, VMBus %s\n"u8, Smp.OnlineCount(), HyperV.Present ? " enlightened"u8 : ", no Hyper-V"u8,
                Drivers.VmBus.VmbusConnection.State == Drivers.VmBus.VmbusState.Connected ? "connected"u8 : "not connected"u8);
        }

        private static void Idle()
        {
            while (true) Cpu.EnableInterruptsAndHalt();
        }

        // The Hyper-V set-up, in TLFS order: detect (CPUID only), identify the
        // guest OS, enable the hypercall page, then the SynIC of this VP.
        private static void Enlighten()
        {
            Vp.InitializeBootVp();
            PerCpu.Current->Online = 1;
            HyperV.Detect();
            HyperV.PrintSummary();
            Apic.Initialize();
            if (HyperV.Present)
            {
                Clock.HasReferenceCounter = HyperV.Has(HvPartitionPrivilege.AccessPartitionReferenceCounter);
                if (HyperV.Has(HvPartitionPrivilege.AccessVpIndex)) Vp.Current->Index = (uint)Cpu.ReadMsr(HvMsr.VpIndex);
                Apic.UseHvEoiMsr = HyperV.Has(HvPartitionPrivilege.AccessIntrCtrlRegs);
                if (HyperV.EnableHypercallPage()) PrintHypercallPage();
                DirectCalls.Probe();
                Synic.EnableOnThisVp();
                CrashReport.Install();
            }
            BootTimeline.MarkHvReady();
            Cpu.EnableInterrupts();
            Smp.StartApplicationProcessors();
            BootTimeline.MarkAllVpsReady();
            Drivers.VmBus.VmbusConnection.ConnectAtBoot();     // VMBus answers arrive as SINT 2 interrupts
            Drivers.DeviceDrivers.BindAtBoot();            // each offer to the driver of its class
        }

        // Tagged line: tests/ decodes these bytes with Iced.
        private static void PrintHypercallPage()
        {
            byte* page = (byte*)HyperV.HypercallPageAddress;
            Console.Write("hv-hypercall-page:"u8);
            for (int i = 0; i < 32; i++) Console.Print(" %02x"u8, page[i]);
            Console.WriteLine();
        }

        private static void PrintBootSummary()
        {
            Console.Print("command line: \"%s\"\n"u8, new Text(BootInfo.CommandLine));      // NUL-terminated by either entry
            Console.Print("memory: %d MiB free in %d map regions\n"u8, PageAllocator.FreePages * 4 / 1024, BootInfo.RegionCount);
        }
    }
}
