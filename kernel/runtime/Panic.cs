using Kernel.Arch;

namespace Kernel.Runtime
{
    // The end of the line for conditions the kernel cannot continue from: say
    // what happened on the console, tell the hypervisor and QEMU, stop.
    public static class Panic
    {
        public static void Fail(string reason)
        {
            Cpu.DisableInterrupts();
            Console.Write("\nPANIC: ");
            Console.WriteLine(reason);
            GuestExit.Exit(GuestExit.Status.Crashed);
        }

        public static void IndexOutOfRange() => Fail("index out of range");
    }
}
