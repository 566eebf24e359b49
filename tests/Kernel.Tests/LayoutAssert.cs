using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Xunit;

namespace Kernel.Tests;

// The layouts the kernel shares with a hypervisor or a host (HvDef.cs,
// VmbusProtocol.cs, VmbusRing.cs: the files the kernel compiles), pinned as
// their specifications give them: the size, and each field's offset, measured
// in the struct as the runtime lays it out: the field alone set to all ones in
// a zeroed value, its first changed byte is where it lies.
public static class LayoutAssert
{
    // sizeof(T), and the offset of each field ("Header.MessageType" for a field of
    // a struct field; a fixed buffer by its name). Every difference is reported at once.
    public static void Is<T>(int size, params (string Field, int Offset)[] fields) where T : unmanaged
    {
        var wrong = new List<string>();
        if (Unsafe.SizeOf<T>() != size) wrong.Add($"size {Unsafe.SizeOf<T>()}, expected {size}");
        foreach (var (field, offset) in fields)
        {
            int at = OffsetOf<T>(field);
            if (at != offset) wrong.Add($"{field} at {at}, expected {offset}");
        }
        Assert.True(wrong.Count == 0, $"{typeof(T).Name}: {string.Join("; ", wrong)}");
    }

    public static int OffsetOf<T>(string path) where T : unmanaged
    {
        object boxed = default(T);
        SetAllOnes(boxed, path.Split('.'));
        T value = (T)boxed;
        int at = MemoryMarshal.AsBytes(new ReadOnlySpan<T>(ref value)).IndexOfAnyExcept((byte)0);
        Assert.True(at >= 0, $"{typeof(T).Name}.{path}: set to all ones, it changed no byte");
        return at;
    }

    // Sets the field at `path` inside the boxed struct `target` (each step a boxed copy, written back).
    private static void SetAllOnes(object target, string[] path)
    {
        var field = target.GetType().GetField(path[0], BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance)
                    ?? throw new MissingFieldException(target.GetType().Name, path[0]);
        object value;
        if (path.Length == 1) value = AllOnes(field.FieldType);
        else
        {
            value = field.GetValue(target)!;
            SetAllOnes(value, path[1..]);
        }
        field.SetValue(target, value);
    }

    // A value of `type` with every bit of every field set (a fixed buffer's
    // compiler-made struct has one field, its first element).
    public static object AllOnes(Type type)
    {
        if (type.IsEnum) return Enum.ToObject(type, AllOnes(Enum.GetUnderlyingType(type)));
        if (type == typeof(bool)) return true;
        if (type == typeof(byte)) return byte.MaxValue;
        if (type == typeof(sbyte)) return (sbyte)-1;
        if (type == typeof(ushort)) return ushort.MaxValue;
        if (type == typeof(short)) return (short)-1;
        if (type == typeof(uint)) return uint.MaxValue;
        if (type == typeof(int)) return -1;
        if (type == typeof(ulong)) return ulong.MaxValue;
        if (type == typeof(long)) return -1L;
        if (type.IsValueType && !type.IsPrimitive)
        {
            object value = Activator.CreateInstance(type)!;
            foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance))
                field.SetValue(value, AllOnes(field.FieldType));
            return value;
        }
        throw new NotSupportedException($"a field of type {type.Name} in a shared layout");
    }
}
