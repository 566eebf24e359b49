using System;
using Kernel.Runtime;
using Kernel.Arch;

namespace Kernel.Runtime
{
    // The end of the line for conditions the kernel cannot continue from: say
    // what happened on the console, tell the hypervisor and QEMU, stop.
    public static unsafe class Panic
    {
        // Set by kernel/hv when the hypervisor takes crash reports.
        public static delegate*<ulong, void> Hook;

        public static void Fail(Text reason)
        {
            Cpu.DisableInterrupts();
            Console.EnterEmergencyMode();
            Console.Print("\nPANIC: %s\n"u8, reason);
            if (Hook != null) Hook(0);
            GuestExit.Exit(GuestExit.Status.Crashed);
        }

        public static void IndexOutOfRange() => Fail("index out of range"u8);
    }
}
