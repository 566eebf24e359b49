using System.Runtime.CompilerServices;
using Kernel.Runtime;
using System;
namespace Kernel.Arch
{
    // One console line being written: each processor has one for its main line
    // of execution and one for its interrupt handlers (Console.LinesOf).
    public unsafe struct ConsoleLine
    {
        public const int Capacity = 512;
        public int Length;
        public fixed byte Bytes[Capacity];
    }

    // The console: text and numbers, a line at a time, out through the
    // serial port (the device itself is Uart16550.cs).
    //
    // Output goes out a whole line at a time: a processor collects a line in
    // its own buffer (one for its main line of execution, one for its
    // interrupt handlers) and sends it to the UART under one lock. So the
    // lines of two processors never mix, and a driver that logs from an
    // interrupt (a VMBus channel's) cannot cut into the middle of a test's TAP
    // line. Before the boot processor's record exists, and after a fatal
    // error, bytes go straight out.
    public static unsafe class Console
    {
        private static SpinLock s_lock;
        private static bool s_buffered;     // the running processor's record (PerCpu.Current) is there to say whose lines

        // Two lines a processor, by its number: main line, then interrupt handlers.
        private struct LineTable { public fixed byte Bytes[PerCpu.MaxCpus * 2 * (4 + ConsoleLine.Capacity)]; }
        private static LineTable s_lines;

        // The statics do not move (no GC), so the table's address is fixed.
        private static ConsoleLine* MainLineOf(PerCpu* cpu)
            => (ConsoleLine*)Unsafe.AsPointer(ref s_lines) + 2 * cpu->Number;

        private static ConsoleLine* InterruptLineOf(PerCpu* cpu) => MainLineOf(cpu) + 1;

        // From here on every processor that prints has its record in GS
        // (PerCpu.MakeCurrent is the first thing an AP does).
        public static void StartLineBuffering() => s_buffered = true;

        // A fatal error: whatever this processor had half-written goes out
        // now, and from here on bytes go straight to the UART, taking no lock
        // (the failing code may hold it).
        public static void EnterEmergencyMode()
        {
            if (!s_buffered) return;
            s_buffered = false;
            PerCpu* cpu = PerCpu.Current;
            Emit(MainLineOf(cpu));
            Emit(InterruptLineOf(cpu));
        }

        // Sends this processor's unfinished lines (before the guest exits).
        public static void FlushThisCpu()
        {
            if (!s_buffered) return;
            PerCpu* cpu = PerCpu.Current;
            Flush(MainLineOf(cpu));
            Flush(InterruptLineOf(cpu));
        }

        // One byte of text; a line feed goes out as CR LF and ends the line.
        public static void Write(byte b)
        {
            if (!s_buffered)
            {
                if (b == '\n') Uart16550.Write((byte)'\r');
                Uart16550.Write(b);
                return;
            }
            PerCpu* cpu = PerCpu.Current;
            ConsoleLine* line = cpu->InterruptDepth == 0 ? MainLineOf(cpu) : InterruptLineOf(cpu);
            if (b == '\n') Append(line, (byte)'\r');
            Append(line, b);
            if (b == '\n') Flush(line);
        }

        private static void Append(ConsoleLine* line, byte b)
        {
            if (line->Length == ConsoleLine.Capacity) Flush(line);     // a very long line goes out in pieces
            line->Bytes[line->Length++] = b;
        }

        private static void Flush(ConsoleLine* line)
        {
            if (line->Length == 0) return;
            s_lock.Acquire();
            Emit(line);
            s_lock.Release();
        }

        private static void Emit(ConsoleLine* line)
        {
            for (int i = 0; i < line->Length; i++) Uart16550.Write(line->Bytes[i]);
            line->Length = 0;
        }

        // Text is UTF-8 ("..."u8). Out of line: inlined, the loop would be
        // copied into each of the kernel's hundreds of call sites.
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Write(Text text)
        {
            if (text.Bytes == null) return;
            for (byte* b = text.Bytes; *b != 0; b++) Write(*b);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void WriteLine(Text text) { Write(text); Write((byte)'\n'); }

        public static void WriteLine() => Write((byte)'\n');

        public static void Write(byte* bytes, int count)
        {
            for (int i = 0; i < count; i++) Write(bytes[i]);
        }

        // The kernel's printk: writes format with each conversion replaced by
        // the next argument, as C's printf would:
        //   %d   signed decimal                %u   unsigned decimal
        //   %x   lower-case hex digits, no prefix: "0x%x" prints 0x2a
        //   %02x, %08x, %016x: at least that many hex digits, zero-padded (up
        //        to 16; the only width there is, and it is always zeros)
        //   %s   a Text (a null one prints nothing)
        //   %%   a percent sign
        // and "\n" ends the line, as in Write. An argument is one register
        // (Arg), converted implicitly from every integer type and from Text;
        // it does not know its type, so the conversion says it, as in C: %d
        // for a signed value that may be negative, %u for an unsigned one that
        // may reach 2^63. For example
        //   Console.Print("smp: VP %u online, APIC id %u\n"u8, cpu->Number, cpu->ApicId);
        // Out of line, one overload a number of arguments (up to five, which
        // the System V ABI passes in registers with the format): a line costs
        // its arguments and one call, not a call for each text and number in it.
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Print(Text format, Arg a0) => Print(format, a0, default, default, default, default);

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Print(Text format, Arg a0, Arg a1) => Print(format, a0, a1, default, default, default);

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Print(Text format, Arg a0, Arg a1, Arg a2) => Print(format, a0, a1, a2, default, default);

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Print(Text format, Arg a0, Arg a1, Arg a2, Arg a3) => Print(format, a0, a1, a2, a3, default);

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Print(Text format, Arg a0, Arg a1, Arg a2, Arg a3, Arg a4)
        {
            Args args;
            args.A0 = a0.Value; args.A1 = a1.Value; args.A2 = a2.Value; args.A3 = a3.Value; args.A4 = a4.Value;
            ulong* next = &args.A0;
            Digits buffer;
            byte* digits = (byte*)&buffer;
            for (byte* f = format.Bytes; *f != 0; f++)
            {
                if (*f != '%') { Write(*f); continue; }
                int width = 0;
                while (*++f >= '0' && *f <= '9') width = width * 10 + (*f - '0');
                int n;
                if (*f == 'd') n = Format.Decimal((long)*next++, digits);
                else if (*f == 'u') n = Format.Decimal(*next++, digits);
                else if (*f == 'x') n = Format.HexSignificant(*next++, digits, width);
                else if (*f == 's') { Write(new Text((byte*)*next++)); continue; }
                else if (*f == 0) return;       // a format that ends in '%'
                else { Write(*f); continue; }   // %% (and any other letter: itself)
                Write(digits, n);
            }
        }

        // Print's arguments where it can index them (the registers they came in, stored in order).
        private struct Args { public ulong A0, A1, A2, A3, A4; }

        // One number's digits. A struct rather than stackalloc, which ilc guards
        // with a stack cookie checked on return (48 bytes of code here).
        [InlineArray(Format.MaxDigits)] private struct Digits { private byte _first; }

        // One argument of Print: an integer (sign-extended if signed) or the address of a Text.
        public readonly struct Arg
        {
            public readonly ulong Value;

            private Arg(ulong value) { Value = value; }

            public static implicit operator Arg(long value) => new Arg((ulong)value);
            public static implicit operator Arg(ulong value) => new Arg(value);
            public static implicit operator Arg(uint value) => new Arg(value);     // byte, ushort, uint: neither long nor ulong is nearer
            public static implicit operator Arg(Text text) => new Arg((ulong)text.Bytes);
            public static implicit operator Arg(ReadOnlySpan<byte> literal) => new Arg((ulong)literal.Pointer);     // "..."u8, as Text
        }
    }
}
