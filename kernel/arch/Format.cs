namespace Kernel.Arch
{
    // Number formatting into a caller's buffer, without allocation.
    public static unsafe class Format
    {
        public const int MaxDigits = 24;   // "-9223372036854775808" and "0x" + 16 hex digits both fit

        public static int Decimal(ulong value, char* buffer)
        {
            char* tmp = stackalloc char[MaxDigits];
            int n = 0;
            do { tmp[n++] = (char)('0' + (int)(value % 10)); value /= 10; } while (value != 0);
            for (int i = 0; i < n; i++) buffer[i] = tmp[n - 1 - i];
            return n;
        }

        public static int Decimal(long value, char* buffer)
        {
            if (value >= 0) return Decimal((ulong)value, buffer);
            buffer[0] = '-';
            // Negate in unsigned arithmetic so long.MinValue does not overflow.
            return 1 + Decimal(0ul - (ulong)value, buffer + 1);
        }

        public static int Hex(ulong value, char* buffer, int minDigits = 0)
        {
            const string digits = "0123456789abcdef";
            int n = 1;
            while (n < 16 && (value >> (4 * n)) != 0) n++;
            if (n < minDigits) n = minDigits > 16 ? 16 : minDigits;
            buffer[0] = '0';
            buffer[1] = 'x';
            for (int i = 0; i < n; i++) buffer[2 + i] = digits[(int)((value >> (4 * (n - 1 - i))) & 15)];
            return n + 2;
        }
    }
}
