namespace Kernel.Arch
{
    // The UEFI image's half of GuestExit: with no isa-debug-exit (Hyper-V),
    // the firmware's ResetSystem powers the VM off.
    public static partial class GuestExit
    {
        static partial void PowerOffThroughFirmware(bool passed) => Efi.EfiEntry.PowerOff(passed);
    }
}
