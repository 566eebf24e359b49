using System.Runtime.InteropServices;
using Internal.Runtime.CompilerHelpers;
using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;
using Kernel.TestMode;

namespace Kernel
{
    public static unsafe class KernelMain
    {
        // boot/entry.asm calls here in long mode, with SSE on and a 16-byte-aligned
        // stack, passing the PVH start_info.
        [UnmanagedCallersOnly(EntryPoint = "kmain")]
        private static void Main(void* startInfo)
        {
            Console.Initialize();
            Console.WriteLine("C# Hyper-V guest: booting");
            StartupCodeHelpers.InitializeModules();      // statics before anything else uses them
            Bench.Timeline.MarkRuntimeStarted();
            BootInfo.FromPvh(startInfo);
            Continue();
        }

        // The path both entries share once BootInfo is filled in: kmain above
        // (PVH) and efi_main (kernel/arch/EfiBoot.cs, after ExitBootServices).
        internal static void Continue()
        {
            PageAllocator.Initialize();
            Gdt.Install();
            Interrupts.Initialize();
            Paging.Initialize();
            Acpi.ReadMadt(BootInfo.RsdpAddress);         // the tables are mapped now; Apic.Initialize needs its flags
            PrintBootSummary();
            Enlighten();

            RunCrashRequest();
            Bench.Timeline.MarkTestReady();
            if (BootInfo.HasOption("count"))
            {
                bool counted = Bench.CountMode.Run();
                GuestExit.Exit(counted ? GuestExit.Status.Passed : GuestExit.Status.Failed);
            }
            if (BootInfo.HasOption("bench"))
            {
                Bench.BenchMode.Run();
                Drivers.VmBus.VmbusClient.Shutdown();
                GuestExit.Exit(GuestExit.Status.Passed);
            }
            if (BootInfo.HasOption("test"))
            {
                bool passed = TestRunner.RunSelected();
                Drivers.VmBus.VmbusClient.Shutdown();      // UNLOAD before leaving, if connected
                GuestExit.Exit(passed ? GuestExit.Status.Passed : GuestExit.Status.Failed);
            }
            Console.WriteLine("boot complete");
            Drivers.VmBus.VmbusClient.Shutdown();
            GuestExit.Exit(GuestExit.Status.Passed);
        }

        // The Hyper-V set-up, in TLFS order: detect (CPUID only), identify the
        // guest OS, enable the hypercall page, then the SynIC of this VP.
        private static void Enlighten()
        {
            Vp.InitializeBootVp();
            Vp.Current->Online = 1;
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
            Bench.Timeline.MarkHvReady();
            Cpu.EnableInterrupts();
            Smp.StartApplicationProcessors();
            Bench.Timeline.MarkAllVpsReady();
            Drivers.VmBus.VmbusClient.ConnectAtBoot();     // VMBus answers arrive as SINT 2 interrupts
            Drivers.DeviceDrivers.BindAtBoot();            // each offer to the driver of its class
        }

        // Tagged line: tests/ decodes these bytes with Iced.
        private static void PrintHypercallPage()
        {
            byte* page = (byte*)HyperV.HypercallPageAddress;
            Console.Write("hv-hypercall-page:");
            for (int i = 0; i < 32; i++) { Console.Write(' '); Console.WriteHexByte(page[i]); }
            Console.WriteLine();
        }

        private static void PrintBootSummary()
        {
            Console.Write("command line: \"");
            for (int i = 0; i < BootInfo.CommandLineLength; i++) Console.Write((char)BootInfo.CommandLine[i]);
            Console.WriteLine("\"");
            Console.Write("memory: ");
            Console.WriteDecimal((long)(PageAllocator.FreePages * 4 / 1024));
            Console.Write(" MiB free in ");
            Console.WriteDecimal((long)BootInfo.RegionCount);
            Console.WriteLine(" map regions");
        }

        // crash=ud|gp|pf|de|df raises that exception outside any test, to show the
        // fatal path: the handler names the vector and RIP and exits with the crash status.
        private static void RunCrashRequest()
        {
            if (!BootInfo.TryGetOption("crash", out byte* kind, out int length)) return;
            Console.WriteLine("crash requested on the command line");
            if (BootInfo.ValueEquals(kind, length, "ud")) Crash.InvalidOpcode();
            else if (BootInfo.ValueEquals(kind, length, "gp")) Crash.GeneralProtection();
            else if (BootInfo.ValueEquals(kind, length, "pf")) Crash.PageFault();
            else if (BootInfo.ValueEquals(kind, length, "de")) Crash.DivideError();
            else if (BootInfo.ValueEquals(kind, length, "df")) Cpu.CrashWithStack(0x1000);
            Panic.Fail("unknown crash= value (use ud, gp, pf, de or df)");
        }
    }
}
