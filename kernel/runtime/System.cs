// The minimal core library. NativeAOT's ilc compiles this assembly as its own
// "system module" (--systemmodule:kernel), so these are the only System types
// there are: no System.Private.CoreLib, no GC, no exceptions at run time.
// Every type here exists because the C# compiler or ilc asks for it by name.
#pragma warning disable CS0169, CS0649, CS8618, CS0660, CS0661

namespace System
{
    public class Object
    {
        // The first field of every object is its MethodTable pointer; ilc lays it out.
        internal unsafe Internal.Runtime.MethodTable* m_pMethodTable;
        public virtual bool Equals(object other) => (object)this == other;
        public virtual int GetHashCode() => 0;
        public virtual string ToString() => null;
        ~Object() { }
    }

    public abstract class ValueType { }
    public abstract class Enum : ValueType { }
    public struct Void { }

    public struct Boolean { }
    public struct Char { }
    public struct SByte { }
    public struct Byte { }
    public struct Int16 { }
    public struct UInt16 { }
    public struct Int32 { public const int MaxValue = 0x7FFFFFFF; public const int MinValue = unchecked((int)0x80000000); }
    public struct UInt32 { public const uint MaxValue = 0xFFFFFFFF; public const uint MinValue = 0; }
    public struct Int64 { public const long MaxValue = 0x7FFFFFFFFFFFFFFF; public const long MinValue = unchecked((long)0x8000000000000000); }
    public struct UInt64 { public const ulong MaxValue = 0xFFFFFFFFFFFFFFFF; public const ulong MinValue = 0; }
    public struct Single { }
    public struct Double { }

    public unsafe struct IntPtr
    {
        private void* _value;
        public IntPtr(void* value) { _value = value; }
        public IntPtr(long value) { _value = (void*)value; }
        public static readonly IntPtr Zero;
        public static explicit operator IntPtr(void* value) => new IntPtr(value);
        public static explicit operator void*(IntPtr value) => value._value;
        public static explicit operator long(IntPtr value) => (long)value._value;
        public static bool operator ==(IntPtr a, IntPtr b) => a._value == b._value;
        public static bool operator !=(IntPtr a, IntPtr b) => a._value != b._value;
    }

    public unsafe struct UIntPtr
    {
        private void* _value;
        public UIntPtr(void* value) { _value = value; }
    }

    public sealed class String
    {
        // Layout fixed by the runtime contract: length, then UTF-16 chars.
        private readonly int _length;
        private char _firstChar;

        public int Length => _length;

        // `new string(c, count)`: ilc routes a String constructor to the static
        // Ctor method with the same parameters, which allocates the string itself.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.InternalCall)]
        public extern String(char c, int count);

        private static unsafe string Ctor(char c, int count)
        {
            string result = Kernel.Runtime.Heap.AllocateString(count);
            fixed (char* p = &result._firstChar) for (int i = 0; i < count; i++) p[i] = c;
            return result;
        }

        [System.Runtime.CompilerServices.IndexerName("Chars")]
        public unsafe char this[int index]
        {
            get
            {
                if ((uint)index >= (uint)_length) Kernel.Runtime.Panic.IndexOutOfRange();
                fixed (char* p = &_firstChar) return p[index];
            }
        }

        public unsafe ref readonly char GetPinnableReference() => ref _firstChar;

        public static bool operator ==(string a, string b) => Equals(a, b);
        public static bool operator !=(string a, string b) => !Equals(a, b);

        public static bool Equals(string a, string b)
        {
            if ((object)a == (object)b) return true;
            if ((object)a == null || (object)b == null || a._length != b._length) return false;
            for (int i = 0; i < a._length; i++)
                if (a[i] != b[i]) return false;
            return true;
        }
    }

    public abstract class Array
    {
        // Layout fixed by the runtime contract: length, padding, elements.
        private readonly int _length;
        private readonly int _padding;
        public int Length => _length;
    }

    // ilc instantiates this to give T[] its interfaces; we give arrays none.
    public class Array<T> : Array { }

    public abstract class Delegate
    {
        internal object _firstParameter;
        internal object _helperObject;
        internal nint _extraFunctionPointerOrData;
        internal IntPtr _functionPointer;
    }
    public abstract class MulticastDelegate : Delegate { }

    public struct Nullable<T> where T : struct
    {
        private readonly bool _hasValue;
        private T _value;
        public bool HasValue => _hasValue;
        public T Value => _value;
    }

    public struct RuntimeTypeHandle { private IntPtr _value; }
    public struct RuntimeMethodHandle { private IntPtr _value; }
    public struct RuntimeFieldHandle { private IntPtr _value; }

    public abstract class Type { }
    // The JIT asks for this type by name when it reasons about static readonly objects.
    internal sealed class RuntimeType : Type { }
    public class Exception { }
    public abstract class Attribute { }

    [AttributeUsage(AttributeTargets.Class, Inherited = true)]
    public sealed class AttributeUsageAttribute : Attribute
    {
        public AttributeUsageAttribute(AttributeTargets validOn) { }
        public bool AllowMultiple { get; set; }
        public bool Inherited { get; set; }
    }

    [Flags]
    public enum AttributeTargets
    {
        Assembly = 0x0001, Module = 0x0002, Class = 0x0004, Struct = 0x0008, Enum = 0x0010,
        Constructor = 0x0020, Method = 0x0040, Property = 0x0080, Field = 0x0100, Event = 0x0200,
        Interface = 0x0400, Parameter = 0x0800, Delegate = 0x1000, ReturnValue = 0x2000,
        GenericParameter = 0x4000, All = 0x7FFF,
    }

    [AttributeUsage(AttributeTargets.Enum)]
    public sealed class FlagsAttribute : Attribute { }

    [AttributeUsage(AttributeTargets.Parameter)]
    public sealed class ParamArrayAttribute : Attribute { }

    public sealed class ObsoleteAttribute : Attribute { }
}

namespace System.Reflection
{
    [AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct | AttributeTargets.Interface)]
    public sealed class DefaultMemberAttribute : Attribute
    {
        public DefaultMemberAttribute(string memberName) { }
    }
}
