// The part of NativeAOT's type descriptor (MethodTable) that the allocator reads.
namespace Internal.Runtime
{
    public unsafe struct MethodTable
    {
        private const uint HasComponentSizeFlag = 0x80000000;

        // Low 16 bits: the array/string element size when HasComponentSizeFlag is set.
        private uint _flags;
        // Instance size in bytes, including the object header and MethodTable pointer.
        private uint _baseSize;

        public uint BaseSize => _baseSize;
        public uint ComponentSize => (_flags & HasComponentSizeFlag) != 0 ? (ushort)_flags : 0u;
    }
}
