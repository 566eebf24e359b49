// The runtime entry points that ilc's generated code calls by name. With no GC
// and no exception handling, most are small: allocation bumps a pointer, the
// P/Invoke transitions have nothing to transition, and every "throw" is a panic.
using System;
using System.Runtime;
using Internal.Runtime;
using Kernel.Runtime;

namespace Kernel.Runtime
{
    internal static unsafe class RuntimeExports
    {
        [RuntimeExport("RhpNewFast")]
        private static void* RhpNewFast(MethodTable* type) => Heap.AllocateObject(type);

        [RuntimeExport("RhpNewFinalizable")]
        private static void* RhpNewFinalizable(MethodTable* type) => Heap.AllocateObject(type);

        [RuntimeExport("RhNewObject")]
        private static void* RhNewObject(MethodTable* type) => Heap.AllocateObject(type);

        [RuntimeExport("RhpNewArrayFast")]
        private static void* RhpNewArrayFast(MethodTable* type, int length) => Heap.AllocateArray(type, length);

        [RuntimeExport("RhpNewPtrArrayFast")]
        private static void* RhpNewPtrArrayFast(MethodTable* type, int length) => Heap.AllocateArray(type, length);

        [RuntimeExport("RhNewArray")]
        private static void* RhNewArray(MethodTable* type, int length) => Heap.AllocateArray(type, length);

        [RuntimeExport("RhpPInvoke")]
        private static void RhpPInvoke(void* frame) { }

        [RuntimeExport("RhpPInvokeReturn")]
        private static void RhpPInvokeReturn(void* frame) { }

        [RuntimeExport("RhpReversePInvoke")]
        private static void RhpReversePInvoke(void* frame) { }

        [RuntimeExport("RhpReversePInvokeReturn")]
        private static void RhpReversePInvokeReturn(void* frame) { }

        [RuntimeExport("RhpFallbackFailFast")]
        private static void RhpFallbackFailFast() => Panic.Fail("runtime fail-fast"u8);

        [RuntimeExport("RhpStelemRef")]
        private static void RhpStelemRef(void* array, nint index, void* obj)
        {
            int length = *(int*)((byte*)array + sizeof(void*));
            if ((nuint)index >= (uint)length) Panic.IndexOutOfRange();
            ((void**)((byte*)array + 2 * sizeof(void*)))[index] = obj;
        }

        [RuntimeExport("RhpLdelemaRef")]
        private static void* RhpLdelemaRef(void* array, nint index, MethodTable* elementType)
        {
            int length = *(int*)((byte*)array + sizeof(void*));
            if ((nuint)index >= (uint)length) Panic.IndexOutOfRange();
            return (byte*)array + 2 * sizeof(void*) + index * sizeof(void*);
        }
    }
}

namespace Internal.Runtime.CompilerHelpers
{
    // ilc routes the implicit exceptions of C# (bounds, null, overflow, division)
    // here. A kernel with no exception handling treats each as a panic.
    internal static class ThrowHelpers
    {
        private static void ThrowOverflowException() => Panic.Fail("arithmetic overflow"u8);
        private static void ThrowIndexOutOfRangeException() => Panic.IndexOutOfRange();
        private static void ThrowNullReferenceException() => Panic.Fail("null reference"u8);
        private static void ThrowDivideByZeroException() => Panic.Fail("division by zero"u8);
        private static void ThrowArrayTypeMismatchException() => Panic.Fail("array type mismatch"u8);
        private static void ThrowPlatformNotSupportedException() => Panic.Fail("platform not supported"u8);
        private static void ThrowTypeLoadException() => Panic.Fail("type load"u8);
        private static void ThrowArgumentException() => Panic.Fail("bad argument"u8);
        private static void ThrowArgumentOutOfRangeException() => Panic.Fail("argument out of range"u8);
        private static void ThrowInvalidProgramException() => Panic.Fail("invalid program"u8);
        private static void ThrowFeatureBodyRemoved() => Panic.Fail("a method body was removed by the compiler"u8);
    }
}

namespace System
{
    internal static unsafe class Buffer
    {
        internal static void BulkMoveWithWriteBarrier(ref byte destination, ref byte source, nuint byteCount)
        {
            fixed (byte* d = &destination) fixed (byte* s = &source) Memory.Copy(d, s, byteCount);
        }
    }

    internal static unsafe class SpanHelpers
    {
        internal static void Memmove(ref byte destination, ref byte source, nuint byteCount)
        {
            fixed (byte* d = &destination) fixed (byte* s = &source) Memory.Copy(d, s, byteCount);
        }

        internal static void Fill(ref byte destination, byte value, nuint byteCount)
        {
            fixed (byte* d = &destination) Memory.Fill(d, value, byteCount);
        }

        internal static void ClearWithoutReferences(ref byte destination, nuint byteCount)
        {
            fixed (byte* d = &destination) Memory.Zero(d, byteCount);
        }
    }
}

namespace System.Runtime.InteropServices
{
    public interface IDynamicInterfaceCastable
    {
        RuntimeTypeHandle GetDynamicInterfaceImplementation(RuntimeTypeHandle interfaceType);
    }
}

namespace System.Runtime
{
    // Casting helpers. The kernel never casts between reference types it cannot
    // prove at compile time; ilc still roots these, so they answer exactly.
    internal static unsafe class TypeCast
    {
        private static MethodTable* TypeOf(object obj) => obj == null ? null : obj.m_pMethodTable;

        public static object IsInstanceOfClass(MethodTable* type, object obj) => TypeOf(obj) == type ? obj : null;
        public static object IsInstanceOfAny(MethodTable* type, object obj) => TypeOf(obj) == type ? obj : null;
        public static object IsInstanceOfInterface(MethodTable* type, object obj) => null;

        public static object CheckCastClass(MethodTable* type, object obj)
        {
            if (obj != null && TypeOf(obj) != type) Panic.Fail("invalid cast"u8);
            return obj;
        }
        public static object CheckCastAny(MethodTable* type, object obj) => CheckCastClass(type, obj);
        public static bool IsInstanceOfException(MethodTable* type, object obj) => TypeOf(obj) == type;
        public static object CheckCastClassSpecial(MethodTable* type, object obj) => CheckCastClass(type, obj);
        public static object CheckCastInterface(MethodTable* type, object obj)
        {
            if (obj != null) Panic.Fail("interface casts are not supported"u8);
            return obj;
        }
    }
}

namespace System.Runtime.CompilerServices
{
    [AttributeUsage(AttributeTargets.Class)]
    public sealed class EagerStaticClassConstructionAttribute : Attribute { }
}
