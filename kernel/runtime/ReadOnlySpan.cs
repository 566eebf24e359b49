using System.Runtime.CompilerServices;

namespace System
{
    // What a UTF-8 literal is: for "text"u8 the C# compiler puts the bytes in the
    // image's read-only data (with a zero byte after them) and builds one of these
    // with the (void*, int) constructor. The kernel's console text, test names and
    // messages are all such literals: a byte a character, no object header, against
    // two bytes a character and a 16-byte header for a string.
    //
    // Unlike .NET's, this one is a plain struct, not a ref struct: there is no
    // garbage collector to move what it points at, and what it points at is
    // almost always the image's read-only data, so it may sit in a field (a
    // test's name, a skip reason). Built from a stack buffer, it is valid only
    // while that frame lives, as the pointer would be.
    public readonly unsafe struct ReadOnlySpan<T> where T : unmanaged
    {
        private readonly T* _pointer;
        private readonly int _length;

        public ReadOnlySpan(void* pointer, int length)
        {
            _pointer = (T*)pointer;
            _length = length;
        }

        // The C# compiler requires this constructor for "text"u8, but for a
        // literal it emits the (void*, int) one over read-only data: no array
        // is made (tests/Kernel.Tests checks that the image allocates none for text).
        public ReadOnlySpan(T[] array, int start, int length)
        {
            if ((uint)start > (uint)array.Length || (uint)length > (uint)(array.Length - start)) Kernel.Runtime.Panic.IndexOutOfRange();
            _pointer = length == 0 ? null : (T*)Unsafe.AsPointer(ref array[start]);
            _length = length;
        }

        public int Length => _length;
        public bool IsEmpty => _length == 0;

        // The first element, for code that hands the bytes to a pointer API.
        public T* Pointer => _pointer;

        public ref readonly T this[int index]
        {
            get
            {
                if ((uint)index >= (uint)_length) Kernel.Runtime.Panic.IndexOutOfRange();
                return ref _pointer[index];
            }
        }

        public ReadOnlySpan<T> Slice(int start)
        {
            if ((uint)start > (uint)_length) Kernel.Runtime.Panic.IndexOutOfRange();
            return new ReadOnlySpan<T>(_pointer + start, _length - start);
        }

        public ReadOnlySpan<T> Slice(int start, int length)
        {
            if ((uint)start > (uint)_length || (uint)length > (uint)(_length - start)) Kernel.Runtime.Panic.IndexOutOfRange();
            return new ReadOnlySpan<T>(_pointer + start, length);
        }

        public bool SequenceEqual(ReadOnlySpan<T> other)
            => _length == other._length && Kernel.Runtime.Memory.Equal(_pointer, other._pointer, (ulong)_length * (ulong)sizeof(T));

        public bool StartsWith(ReadOnlySpan<T> prefix)
            => prefix._length <= _length && Kernel.Runtime.Memory.Equal(_pointer, prefix._pointer, (ulong)prefix._length * (ulong)sizeof(T));

        public ref readonly T GetPinnableReference() => ref *_pointer;
    }
}
