namespace Kernel.Arch
{
    // Ending a run. Under QEMU, isa-debug-exit (iobase 0xf4) ends the process with
    // status (value << 1) | 1, which qemu-run.sh maps back to a result.
    public static partial class GuestExit
    {
        public enum Status : byte
        {
            Passed = 0x10,    // QEMU exits 33
            Failed = 0x11,    // QEMU exits 35
            Crashed = 0x12,   // QEMU exits 37
        }

        private const ushort DebugExitPort = 0xF4;

        public static void Exit(Status status)
        {
            Cpu.DisableInterrupts();
            Console.FlushThisCpu();
            Cpu.OutDword(DebugExitPort, (uint)status);
            // No debug-exit device, booted by UEFI (a Hyper-V Gen2 VM): the firmware powers off.
            PowerOffThroughFirmware(status == Status.Passed);
            // Neither (real hardware, a PVH loader without the device): stop here for good.
            while (true) Cpu.Halt();
        }

        // UEFI ResetSystem (kernel/arch/efi/EfiEntry.cs); the ELF image has no
        // firmware to ask, and the call is compiled away.
        static partial void PowerOffThroughFirmware(bool passed);
    }
}
