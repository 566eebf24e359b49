namespace Kernel.Arch
{
    // The serial port the console writes to: COM1, a 16550 UART at I/O port
    // 0x3F8, polled (no UART interrupts). Only the device: ports, set-up and
    // one byte out; lines and who may write them are Console's (Console.cs).
    public static class Uart16550
    {
        private const ushort Com1 = 0x3F8;
        private const ushort Data = Com1 + 0, InterruptEnable = Com1 + 1, FifoControl = Com1 + 2;
        private const ushort LineControl = Com1 + 3, ModemControl = Com1 + 4, LineStatus = Com1 + 5;
        private const byte TransmitterEmpty = 0x20;     // LSR bit 5, THRE: the holding register takes a byte

        public static void Initialize()
        {
            Cpu.OutByte(InterruptEnable, 0x00);   // polled: no UART interrupts
            Cpu.OutByte(LineControl, 0x80);       // DLAB on, to set the divisor
            Cpu.OutByte(Data, 0x01);              // divisor 1: 115200 baud
            Cpu.OutByte(InterruptEnable, 0x00);
            Cpu.OutByte(LineControl, 0x03);       // 8 data bits, no parity, 1 stop bit
            Cpu.OutByte(FifoControl, 0xC7);       // FIFOs on and cleared, 14-byte threshold
            Cpu.OutByte(ModemControl, 0x03);      // DTR and RTS
        }

        public static void Write(byte b)
        {
            // Bounded wait: a missing or wedged UART must not hang the kernel.
            for (int spin = 0; spin < 100000 && (Cpu.InByte(LineStatus) & TransmitterEmpty) == 0; spin++) Cpu.Pause();
            Cpu.OutByte(Data, b);
        }
    }
}
