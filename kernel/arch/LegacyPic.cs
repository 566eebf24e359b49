namespace Kernel.Arch
{
    // The PC-AT pair of 8259 interrupt controllers (ports 0x20/0x21 and 0xA0/0xA1).
    // The kernel takes every interrupt through the local APIC, so an 8259 must be
    // silenced: firmware may leave it aimed at the exception vectors (IRQ 0 would
    // arrive as vector 8 and look like a double fault). A Hyper-V Generation 2 VM
    // has no 8259 at all; the ACPI MADT says which (Acpi.PcatCompat), and the
    // kernel touches the ports only when it declares one, or when there is no
    // MADT to ask (then the machine is assumed to be a PC-AT).
    //
    // The one place that touches the 8259, for both boot paths: Apic.Initialize
    // calls MaskIfDeclared before the kernel's first sti (KernelMain.Enlighten).
    // Under UEFI interrupts are off from efi_take_over (boot/efi/entry.asm) until
    // then, so nothing earlier needs to mask it.
    //
    // QEMU 10.0.2 clears PCAT_COMPAT with -machine pic=off; QEMU 7.2 (hw/i386/
    // acpi-common.c acpi_build_madt) sets it even then, so there the writes happen
    // and go to unassigned ports, which is harmless. The boot log says which it was.
    public static class LegacyPic
    {
        private const ushort MasterCommand = 0x20, MasterData = 0x21, SlaveCommand = 0xA0, SlaveData = 0xA1;
        private const byte Ocw3ReadIsr = 0x0B, Ocw3ReadIrr = 0x0A;

        // Tagged line ("pic: "): tests/Kernel.Tests/Gen2Tests.cs reads it.
        public static void MaskIfDeclared()
        {
            Console.Write("pic: "u8);
            if (Acpi.HasMadt)
            {
                Console.Print("MADT flags 0x%x"u8, Acpi.MadtFlags);
                if ((Acpi.MadtFlags & Acpi.PcatCompat) == 0)
                {
                    Console.WriteLine(", PCAT_COMPAT clear: no 8259, its ports left alone"u8);
                    return;
                }
                Console.Write(", PCAT_COMPAT set"u8);
            }
            else
            {
                Console.Write("no MADT, assuming a PC-AT"u8);
            }
            // ICW1-4 remap the two 8259s to vectors 0x20-0x2F, then OCW1 masks every line.
            Cpu.OutByte(MasterCommand, 0x11); Cpu.OutByte(SlaveCommand, 0x11);
            Cpu.OutByte(MasterData, 0x20); Cpu.OutByte(SlaveData, 0x28);
            Cpu.OutByte(MasterData, 0x04); Cpu.OutByte(SlaveData, 0x02);
            Cpu.OutByte(MasterData, 0x01); Cpu.OutByte(SlaveData, 0x01);
            Cpu.OutByte(MasterData, 0xFF); Cpu.OutByte(SlaveData, 0xFF);
            // Whether an 8259 answered: its in-service register is 0 right after the
            // initialisation (OCW3 selects it for the next read of the command port);
            // an unassigned port reads all ones.
            Cpu.OutByte(MasterCommand, Ocw3ReadIsr);
            byte isr = Cpu.InByte(MasterCommand);
            Cpu.OutByte(MasterCommand, Ocw3ReadIrr);
            Console.Print(": both 8259s remapped to 0x20-0x2f and masked; port 0x20 reads 0x%02x%s\n"u8, isr,
                isr == 0xFF ? " (nothing answered: no 8259)"u8 : " (an 8259 answered)"u8);
        }
    }
}
