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
            Console.Write("ready: "u8);
            Console.WriteDecimal((ulong)Smp.OnlineCount());
            Console.Write(HyperV.Present ? " VPs enlightened, VMBus "u8 : " VPs, no Hyper-V, VMBus "u8);
            Console.WriteLine(Drivers.VmBus.VmbusConnection.State == Drivers.VmBus.VmbusState.Connected ? "connected"u8 : "not connected"u8);
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
            for (int i = 0; i < 32; i++) { Console.Write(' '); Console.WriteHexByte(page[i]); }
            Console.WriteLine();
        }

        private static void PrintBootSummary()
        {
            Console.Write("command line: \""u8);
            for (int i = 0; i < BootInfo.CommandLineLength; i++) Console.Write((char)BootInfo.CommandLine[i]);
            Console.WriteLine("\""u8);
            Console.Write("memory: "u8);
            Console.WriteDecimal((long)(PageAllocator.FreePages * 4 / 1024));
            Console.Write(" MiB free in "u8);
            Console.WriteDecimal((long)BootInfo.RegionCount);
            Console.WriteLine(" map regions"u8);
        }
    }
}
