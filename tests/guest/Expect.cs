using System;
using System.Runtime.CompilerServices;
using Kernel.Runtime;
using Kernel.Arch;
using Kernel.Hv;

namespace Kernel.TestMode
{
    // Assertions for guest tests. A test keeps running after a failed check, but
    // only the first failure is reported: "expected X, got Y", with the check's
    // line (TestRunner prints it beside the test's file: the host test quotes
    // that source line). A check says what it checks only where its line cannot:
    // a row of a table, a choice made at run time, a check outside its suite's
    // file (which passes line: 0). The image carries no text for the others.
    public static unsafe class Expect
    {
        public static bool Failed { get; private set; }
        public static Text SkipReason { get; private set; }    // empty: not skipped
        public static bool Skipped => !SkipReason.IsEmpty;

        private enum Kind { Number, Text, Boolean, Status, Outcome, MessageType }
        private static Kind s_kind;
        private static ulong s_expected, s_actual;

        // The line of the first failed check in the running test's file (0: none given).
        public static int FailedLine { get; private set; }

        // The texts of a failed check, copied: the test may have built them in
        // its own stack frame, which is gone by the time they are reported.
        private const int TextCapacity = 160;
        private struct SavedText { public int Length; public fixed byte Bytes[TextCapacity]; }
        private static SavedText s_expectedText, s_actualText, s_what;

        public static void Reset()
        {
            Failed = false;
            SkipReason = default;
            s_what.Length = 0;
            FailedLine = 0;
        }

        // Marks the running test skipped; the test should return right after.
        public static void Skip(Text reason) => SkipReason = reason;

        // Each check is out of line and compares before it calls Fail: a call
        // site passes only its own values and line (the guest tests make some 500).
        // The overloads with a what are for the checks whose line cannot say it.
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static bool Equal(ulong expected, ulong actual, [CallerLineNumber] int line = 0)
            => expected == actual || Fail(Kind.Number, expected, actual, default, line);

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static bool Equal(ulong expected, ulong actual, Text what, [CallerLineNumber] int line = 0)
            => expected == actual || Fail(Kind.Number, expected, actual, what, line);

        public static bool Equal(Text expected, Text actual, [CallerLineNumber] int line = 0) => Equal(expected.Span, actual.Span, line);

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static bool Equal(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, [CallerLineNumber] int line = 0)
        {
            if (expected.SequenceEqual(actual)) return true;
            if (Record(Kind.Text, default, line)) { Save(ref s_expectedText, expected); Save(ref s_actualText, actual); }
            return false;
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static bool True(bool actual, [CallerLineNumber] int line = 0) => actual || Fail(Kind.Boolean, 1, 0, default, line);

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static bool True(bool actual, Text what, [CallerLineNumber] int line = 0) => actual || Fail(Kind.Boolean, 1, 0, what, line);

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static bool False(bool actual, [CallerLineNumber] int line = 0) => !actual || Fail(Kind.Boolean, 0, 1, default, line);

        public static bool Equal(bool expected, bool actual, [CallerLineNumber] int line = 0)
            => expected ? True(actual, line) : False(actual, line);

        // The enums of the Hyper-V interface, printed with their names:
        // "expected 0x18 INVALID_SYNIC_STATE, got 0x2 INVALID_HYPERCALL_CODE".
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static bool Equal(HvStatus expected, HvStatus actual, [CallerLineNumber] int line = 0)
            => expected == actual || Fail(Kind.Status, (ulong)expected, (ulong)actual, default, line);

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static bool Equal(HvStatus expected, HvStatus actual, Text what, [CallerLineNumber] int line = 0)
            => expected == actual || Fail(Kind.Status, (ulong)expected, (ulong)actual, what, line);

        public static bool Equal(HvOutcome expected, HvOutcome actual, [CallerLineNumber] int line = 0)
            => expected == actual || Fail(Kind.Outcome, (ulong)expected, (ulong)actual, default, line);

        public static bool Equal(HvMessageType expected, HvMessageType actual, [CallerLineNumber] int line = 0)
            => expected == actual || Fail(Kind.MessageType, (ulong)expected, (ulong)actual, default, line);

        // A failed check: kept when it is the test's first. Always false.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static bool Fail(Kind kind, ulong expected, ulong actual, Text what, int line)
        {
            if (Record(kind, what, line)) { s_expected = expected; s_actual = actual; }
            return false;
        }

        // actual is within [low, high].
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static bool InRange(ulong low, ulong high, ulong actual, [CallerLineNumber] int line = 0)
        {
            if (actual >= low && actual <= high) return true;
            if (Record(Kind.Number, default, line)) { s_expected = actual < low ? low : high; s_actual = actual; }
            return false;
        }

        // True when this is the test's first failure, whose values are then kept.
        private static bool Record(Kind kind, Text what, int line)
        {
            if (Failed) return false;
            Failed = true;
            s_kind = kind;
            FailedLine = line;
            Save(ref s_what, what.Span);
            return true;
        }

        private static void Save(ref SavedText saved, ReadOnlySpan<byte> text)
        {
            saved.Length = text.Length < TextCapacity ? text.Length : TextCapacity;
            fixed (byte* bytes = saved.Bytes) Kernel.Runtime.Memory.Copy(bytes, text.Pointer, (ulong)saved.Length);
        }

        // "expected X, got Y (what)". Inside a YAML single-quoted scalar (the
        // TAP 14 diagnostics block) a quote is written twice.
        public static void WriteFailure(bool yamlSingleQuoted = false)
        {
            s_quoting = yamlSingleQuoted;
            Put("expected "u8);
            PutValue(ref s_expectedText, s_expected);
            Put(", got "u8);
            PutValue(ref s_actualText, s_actual);
            if (s_what.Length != 0)
            {
                Put(" ("u8);
                Put(ref s_what);
                Put(")"u8);
            }
            s_quoting = false;
        }

        private static bool s_quoting;

        private static void Put(byte c)
        {
            if (s_quoting && c == '\'') Console.Write((byte)'\'');
            Console.Write(c);
        }

        private static void Put(char c) => Put((byte)c);

        private static void Put(Text text) => Put(text.Span);

        private static void Put(ReadOnlySpan<byte> text)
        {
            for (int i = 0; i < text.Length; i++) Put(text[i]);
        }

        private static void Put(ref SavedText text)
        {
            fixed (byte* bytes = text.Bytes) Put(new ReadOnlySpan<byte>(bytes, text.Length));
        }

        private static void PutNumber(ulong number, bool hex)
        {
            byte* digits = stackalloc byte[Format.MaxDigits];
            int n = hex ? Format.Hex(number, digits) : Format.Decimal(number, digits);
            for (int i = 0; i < n; i++) Put(digits[i]);
        }

        private static void PutValue(ref SavedText text, ulong number)
        {
            if (s_kind == Kind.Text) { Put('"'); Put(ref text); Put('"'); }
            else if (s_kind == Kind.Boolean) Put(number != 0 ? "true"u8 : "false"u8);
            else if (s_kind == Kind.Status) { PutNumber(number, hex: true); Put(' '); Put(HvStatusName.Of((HvStatus)number)); }
            else if (s_kind == Kind.Outcome) Put(Hypercall.OutcomeName((HvOutcome)number));
            else if (s_kind == Kind.MessageType) { PutNumber(number, hex: true); Put(' '); Put(HvMessageTypeName.Of((HvMessageType)number)); }
            else PutNumber(number, hex: number >= 65536);
        }
    }
}
