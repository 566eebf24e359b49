using Kernel.Arch;
using Kernel.Runtime;

namespace Kernel
{
    // The test image's one way in (kernel/Kernel.cs, KernelMain.EnterTestMode):
    // once every VP is enlightened and VMBus is up, the command line picks what
    // runs, and each path leaves the guest with its exit status, so the minimal
    // image's ready-and-idle path is never reached in this image.
    //   count          the hot paths' instruction counts (tests/guest/bench/CountMode.cs)
    //   bench          the benchmarks (tests/guest/bench/Bench.cs)
    //   test[=PREFIX]  the guest tests (tests/guest/TestRunner.cs)
    //   crash=KIND     an exception outside any test, to show the fatal path
    //   (none)         "boot complete", then exit
    public static unsafe partial class KernelMain
    {
        static partial void EnterTestMode()
        {
            RunCrashRequest();
            if (BootInfo.HasOption("count"u8))
                Leave(TestMode.CountMode.Run());
            if (BootInfo.HasOption("bench"u8))
            {
                TestMode.BenchMode.Run();
                Leave(true);
            }
            if (BootInfo.HasOption("test"u8))
                Leave(TestMode.TestRunner.RunSelected());
            Console.WriteLine("boot complete"u8);
            Leave(true);
        }

        private static void Leave(bool passed)
        {
            Drivers.VmBus.VmbusConnection.Shutdown();      // UNLOAD before leaving, if connected
            GuestExit.Exit(passed ? GuestExit.Status.Passed : GuestExit.Status.Failed);
        }

        // crash=ud|gp|pf|de|df raises that exception outside any test, to show the
        // fatal path: the handler names the vector and RIP and exits with the crash status.
        private static void RunCrashRequest()
        {
            if (!BootInfo.TryGetOption("crash"u8, out byte* kind, out int length)) return;
            Console.WriteLine("crash requested on the command line"u8);
            if (BootInfo.ValueEquals(kind, length, "ud"u8)) TestMode.Crash.InvalidOpcode();
            else if (BootInfo.ValueEquals(kind, length, "gp"u8)) TestMode.Crash.GeneralProtection();
            else if (BootInfo.ValueEquals(kind, length, "pf"u8)) TestMode.Crash.PageFault();
            else if (BootInfo.ValueEquals(kind, length, "de"u8)) TestMode.Crash.DivideError();
            else if (BootInfo.ValueEquals(kind, length, "df"u8)) Cpu.CrashWithStack(0x1000);
            Panic.Fail("unknown crash= value (use ud, gp, pf, de or df)"u8);
        }
    }
}
