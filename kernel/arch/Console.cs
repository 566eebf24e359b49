namespace Kernel.Arch
{
    // The serial console: COM1, a 16550 UART at I/O port 0x3F8, polled.
    public static class Console
    {
        private const ushort Com1 = 0x3F8;
        private const ushort Data = Com1 + 0, InterruptEnable = Com1 + 1, FifoControl = Com1 + 2;
        private const ushort LineControl = Com1 + 3, ModemControl = Com1 + 4, LineStatus = Com1 + 5;
        private const byte TransmitterEmpty = 0x20;

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

        public static void Write(char c)
        {
            if (c == '\n') WriteRaw((byte)'\r');
            WriteRaw((byte)c);
        }

        private static void WriteRaw(byte b)
        {
            // Bounded wait: a missing or wedged UART must not hang the kernel.
            for (int spin = 0; spin < 100000 && (Cpu.InByte(LineStatus) & TransmitterEmpty) == 0; spin++) Cpu.Pause();
            Cpu.OutByte(Data, b);
        }

        public static void Write(string s)
        {
            for (int i = 0; i < s.Length; i++) Write(s[i]);
        }

        public static void WriteLine(string s) { Write(s); Write('\n'); }
        public static void WriteLine() => Write('\n');

        public static unsafe void Write(char* chars, int count)
        {
            for (int i = 0; i < count; i++) Write(chars[i]);
        }

        public static unsafe void WriteDecimal(long value)
        {
            char* buffer = stackalloc char[Format.MaxDigits];
            Write(buffer, Format.Decimal(value, buffer));
        }

        public static unsafe void WriteDecimal(ulong value)
        {
            char* buffer = stackalloc char[Format.MaxDigits];
            Write(buffer, Format.Decimal(value, buffer));
        }

        // "0x" then the digits; minDigits pads with zeros (0 = no padding).
        public static unsafe void WriteHex(ulong value, int minDigits = 0)
        {
            char* buffer = stackalloc char[Format.MaxDigits];
            Write(buffer, Format.Hex(value, buffer, minDigits));
        }

        public static void WriteHexByte(byte value)
        {
            const string digits = "0123456789abcdef";
            Write(digits[value >> 4]);
            Write(digits[value & 15]);
        }
    }
}
