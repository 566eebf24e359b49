using System;

namespace Kernel.Runtime
{
    // Text the kernel prints: UTF-8 in the image's read-only data, ended by a zero
    // byte. A "..."u8 literal is one: the compiler puts a zero byte after the
    // literal's bytes (not counted in its length), so the conversion below only
    // keeps the pointer. One register wide where a span is two: the console's,
    // the tests' and the refusals' hundreds of call sites pass one instruction
    // less each (the image size budgets, bench/RESULTS.md).
    //
    // Only text that ends in a zero byte may become a Text: literals, or a
    // buffer the caller ended with one. Text built at run time that is not
    // (a formatted number, a GUID) goes through the span or pointer overloads.
    public readonly unsafe struct Text
    {
        public readonly byte* Bytes;

        public Text(byte* zeroTerminated) { Bytes = zeroTerminated; }

        public static implicit operator Text(ReadOnlySpan<byte> literal) => new Text(literal.Pointer);

        public bool IsEmpty => Bytes == null || *Bytes == 0;

        public int Length
        {
            get
            {
                int n = 0;
                if (Bytes != null) while (Bytes[n] != 0) n++;
                return n;
            }
        }

        public ReadOnlySpan<byte> Span => new ReadOnlySpan<byte>(Bytes, Length);
    }
}
