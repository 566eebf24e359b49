namespace Kernel.Runtime
{
    // Number formatting into a caller's byte buffer (ASCII), without allocation,
    // and the one parser of command-line numbers.
    public static unsafe class Format
    {
        public const int MaxDigits = 24;   // "-9223372036854775808" and "0x" + 16 hex digits both fit

        public static int Decimal(ulong value, byte* buffer)
        {
            byte* reversed = stackalloc byte[MaxDigits];
            int n = 0;
            do { reversed[n++] = (byte)('0' + (int)(value % 10)); value /= 10; } while (value != 0);
            for (int i = 0; i < n; i++) buffer[i] = reversed[n - 1 - i];
            return n;
        }

        public static int Decimal(long value, byte* buffer)
        {
            if (value >= 0) return Decimal((ulong)value, buffer);
            buffer[0] = (byte)'-';
            // Negate in unsigned arithmetic so long.MinValue does not overflow.
            return 1 + Decimal(0ul - (ulong)value, buffer + 1);
        }

        // "0x" and the significant digits, lower case; minDigits pads with zeros (0 = no padding).
        public static int Hex(ulong value, byte* buffer, int minDigits = 0)
        {
            buffer[0] = (byte)'0';
            buffer[1] = (byte)'x';
            return 2 + HexSignificant(value, buffer + 2, minDigits);
        }

        // The significant hex digits, lower case, no prefix; minDigits pads with
        // zeros (0 = no padding, at most 16).
        public static int HexSignificant(ulong value, byte* buffer, int minDigits = 0)
        {
            int n = 1;
            while (n < 16 && (value >> (4 * n)) != 0) n++;
            if (n < minDigits) n = minDigits > 16 ? 16 : minDigits;
            return HexDigits(value, n, buffer);
        }

        // Exactly `digits` lower-case hex digits of value's low nibbles, most
        // significant first, no prefix: the one hex encoder (numbers, bytes, GUIDs).
        public static int HexDigits(ulong value, int digits, byte* buffer)
        {
            for (int i = 0; i < digits; i++)
            {
                uint nibble = (uint)(value >> (4 * (digits - 1 - i))) & 15;
                buffer[i] = (byte)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);
            }
            return digits;
        }

        // A command-line number: decimal, or hexadecimal after "0x". Parsing stops
        // at the first character that is not a digit of the base.
        public static ulong ParseNumber(byte* text, int length)
        {
            bool hex = length > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
            ulong value = 0;
            for (int i = hex ? 2 : 0; i < length; i++)
            {
                int c = text[i], digit;
                if (c >= '0' && c <= '9') digit = c - '0';
                else if (hex && c >= 'a' && c <= 'f') digit = c - 'a' + 10;
                else if (hex && c >= 'A' && c <= 'F') digit = c - 'A' + 10;
                else break;
                value = value * (hex ? 16ul : 10ul) + (ulong)digit;
            }
            return value;
        }
    }
}
