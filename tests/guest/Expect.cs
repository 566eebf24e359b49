using Kernel.Arch;
using Kernel.Hv;

namespace Kernel.TestMode
{
    // Assertions for guest tests. A test keeps running after a failed check, but
    // only the first failure is reported: "expected X, got Y (what)".
    public static unsafe class Expect
    {
        public static bool Failed { get; private set; }
        public static string SkipReason { get; private set; }

        private enum Kind { Number, Text, Boolean, Status, Outcome, MessageType }
        private static Kind s_kind;
        private static ulong s_expected, s_actual;
        private static string s_expectedText, s_actualText, s_what;

        public static void Reset()
        {
            Failed = false;
            SkipReason = null;
            s_what = null;
        }

        // Marks the running test skipped; the test should return right after.
        public static void Skip(string reason) => SkipReason = reason;

        public static bool Equal(ulong expected, ulong actual, string what = null)
        {
            return Equal(Kind.Number, expected, actual, what);
        }

        public static bool Equal(string expected, string actual, string what = null)
        {
            if (expected == actual) return true;
            if (Record(Kind.Text, what)) { s_expectedText = expected; s_actualText = actual; }
            return false;
        }

        public static bool True(bool actual, string what) => Equal(true, actual, what);
        public static bool False(bool actual, string what) => Equal(false, actual, what);

        public static bool Equal(bool expected, bool actual, string what)
        {
            if (expected == actual) return true;
            if (Record(Kind.Boolean, what)) { s_expected = expected ? 1ul : 0; s_actual = actual ? 1ul : 0; }
            return false;
        }

        // The enums of the Hyper-V interface, printed with their names:
        // "expected 0x18 INVALID_SYNIC_STATE, got 0x2 INVALID_HYPERCALL_CODE (what)".
        public static bool Equal(HvStatus expected, HvStatus actual, string what) => Equal(Kind.Status, (ulong)expected, (ulong)actual, what);
        public static bool Equal(HvOutcome expected, HvOutcome actual, string what) => Equal(Kind.Outcome, (ulong)expected, (ulong)actual, what);
        public static bool Equal(HvMessageType expected, HvMessageType actual, string what) => Equal(Kind.MessageType, (ulong)expected, (ulong)actual, what);

        private static bool Equal(Kind kind, ulong expected, ulong actual, string what)
        {
            if (expected == actual) return true;
            if (Record(kind, what)) { s_expected = expected; s_actual = actual; }
            return false;
        }

        // actual is within [low, high].
        public static bool InRange(ulong low, ulong high, ulong actual, string what)
        {
            if (actual >= low && actual <= high) return true;
            if (Record(Kind.Number, what)) { s_expected = actual < low ? low : high; s_actual = actual; }
            return false;
        }

        // True when this is the test's first failure, whose values are then kept.
        private static bool Record(Kind kind, string what)
        {
            if (Failed) return false;
            Failed = true;
            s_kind = kind;
            s_what = what;
            return true;
        }

        // "expected X, got Y (what)". Inside a YAML single-quoted scalar (the
        // TAP 14 diagnostics block) a quote is written twice.
        public static void WriteFailure(bool yamlSingleQuoted = false)
        {
            s_quoting = yamlSingleQuoted;
            Put("expected ");
            PutValue(s_kind == Kind.Text ? s_expectedText : null, s_expected);
            Put(", got ");
            PutValue(s_kind == Kind.Text ? s_actualText : null, s_actual);
            if (s_what != null)
            {
                Put(" (");
                Put(s_what);
                Put(")");
            }
            s_quoting = false;
        }

        private static bool s_quoting;

        private static void Put(char c)
        {
            if (s_quoting && c == '\'') Console.Write('\'');
            Console.Write(c);
        }

        private static void Put(string text)
        {
            for (int i = 0; i < text.Length; i++) Put(text[i]);
        }

        private static void PutNumber(ulong number, bool hex)
        {
            char* digits = stackalloc char[Format.MaxDigits];
            int n = hex ? Format.Hex(number, digits) : Format.Decimal(number, digits);
            for (int i = 0; i < n; i++) Put(digits[i]);
        }

        private static void PutValue(string text, ulong number)
        {
            if (s_kind == Kind.Text) { Put('"'); Put(text ?? "(null)"); Put('"'); }
            else if (s_kind == Kind.Boolean) Put(number != 0 ? "true" : "false");
            else if (s_kind == Kind.Status) { PutNumber(number, hex: true); Put(' '); Put(HvStatusName.Of((HvStatus)number)); }
            else if (s_kind == Kind.Outcome) Put(Hypercall.OutcomeName((HvOutcome)number));
            else if (s_kind == Kind.MessageType) { PutNumber(number, hex: true); Put(' '); Put(HvMessageTypeName.Of((HvMessageType)number)); }
            else PutNumber(number, hex: number >= 65536);
        }
    }
}
