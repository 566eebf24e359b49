// Attributes and intrinsics the C# compiler and ilc look up by name.
#pragma warning disable CS0169, CS0649

namespace System.Runtime.CompilerServices
{
    public sealed class IntrinsicAttribute : Attribute { }
    public sealed class IsVolatile { }
    public sealed class IsConst { }
    public sealed class IsByRefLikeAttribute : Attribute { }
    public sealed class IsReadOnlyAttribute : Attribute { }
    public sealed class IsUnmanagedAttribute : Attribute { }
    public sealed class ExtensionAttribute : Attribute { }
    public sealed class FixedBufferAttribute : Attribute
    {
        public FixedBufferAttribute(Type elementType, int length) { }
    }
    public sealed class IndexerNameAttribute : Attribute
    {
        public IndexerNameAttribute(string indexerName) { }
    }
    public sealed class CompilerGeneratedAttribute : Attribute { }
    public sealed class SkipLocalsInitAttribute : Attribute { }
    // Caller information: the compiler passes the call site's line
    // (tests/guest/Expect.cs reports where a failed check is).
    [AttributeUsage(AttributeTargets.Parameter, Inherited = false)]
    public sealed class CallerLineNumberAttribute : Attribute { }

    [AttributeUsage(AttributeTargets.Struct, AllowMultiple = false)]
    public sealed class InlineArrayAttribute : Attribute
    {
        public InlineArrayAttribute(int length) { }
    }

    public enum MethodImplOptions
    {
        Unmanaged = 0x0004, NoInlining = 0x0008, ForwardRef = 0x0010, Synchronized = 0x0020,
        NoOptimization = 0x0040, PreserveSig = 0x0080, AggressiveInlining = 0x0100,
        AggressiveOptimization = 0x0200, InternalCall = 0x1000,
    }

    public sealed class MethodImplAttribute : Attribute
    {
        public MethodImplAttribute(MethodImplOptions methodImplOptions) { }
    }

    public static class RuntimeFeature
    {
        public const string UnmanagedSignatureCallingConvention = nameof(UnmanagedSignatureCallingConvention);
        public const string ByRefFields = nameof(ByRefFields);
        public const string NumericIntPtr = nameof(NumericIntPtr);
        public const string VirtualStaticsInInterfaces = nameof(VirtualStaticsInInterfaces);
    }

    public static class RuntimeHelpers
    {
        // Where a string's chars start: after the MethodTable pointer and the length.
        public static unsafe int OffsetToStringData => sizeof(IntPtr) + sizeof(int);

        [Intrinsic]
        public static extern void InitializeArray(Array array, RuntimeFieldHandle fldHandle);
    }

    public static unsafe class Unsafe
    {
        [Intrinsic] public static extern ref T Add<T>(ref T source, int elementOffset);
        [Intrinsic] public static extern ref T AsRef<T>(void* source);
        [Intrinsic] public static extern void* AsPointer<T>(ref T value);
        [Intrinsic] public static extern T As<T>(object o) where T : class;
        [Intrinsic] public static extern ref TTo As<TFrom, TTo>(ref TFrom source);
        [Intrinsic] public static extern int SizeOf<T>();
    }

    public class CallConvCdecl { }
    public class CallConvStdcall { }
    public class CallConvSuppressGCTransition { }
}

namespace System.Runtime
{
    // Binds an extern method to a symbol linked into the image (our boot/ stubs):
    // ilc turns the call into a plain direct call, with no P/Invoke frame.
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class RuntimeImportAttribute : Attribute
    {
        public RuntimeImportAttribute(string entry) { }
        public RuntimeImportAttribute(string dllName, string entry) { }
    }

    // Gives a method a global symbol name that ilc's generated code calls.
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class RuntimeExportAttribute : Attribute
    {
        public RuntimeExportAttribute(string entry) { }
    }
}

namespace System.Runtime.InteropServices
{
    public enum LayoutKind { Sequential = 0, Explicit = 2, Auto = 3 }
    public enum CharSet { None = 1, Ansi = 2, Unicode = 3, Auto = 4 }
    public enum CallingConvention { Winapi = 1, Cdecl = 2, StdCall = 3, ThisCall = 4, FastCall = 5 }

    public sealed class StructLayoutAttribute : Attribute
    {
        public StructLayoutAttribute(LayoutKind layoutKind) { }
        public int Pack;
        public int Size;
        public CharSet CharSet;
    }

    public sealed class FieldOffsetAttribute : Attribute
    {
        public FieldOffsetAttribute(int offset) { }
    }

    public sealed class DllImportAttribute : Attribute
    {
        public DllImportAttribute(string dllName) { }
        public string EntryPoint;
        public CallingConvention CallingConvention;
    }

    public sealed class UnmanagedCallersOnlyAttribute : Attribute
    {
        public string EntryPoint;
        public Type[] CallConvs;
    }

    // What the C# compiler names in the signature of an `unmanaged` constraint.
    public enum UnmanagedType { }

    public sealed class SuppressGCTransitionAttribute : Attribute { }
    public sealed class InAttribute : Attribute { }
    public sealed class OutAttribute : Attribute { }
}
