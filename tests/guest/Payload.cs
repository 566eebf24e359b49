using System.Runtime.CompilerServices;

namespace Kernel.TestMode
{
    // The bytes the message tests post: seed, seed + 7, seed + 14, ... (mod 256),
    // so that a payload cut short, shifted or taken from another message differs.
    public static unsafe class Payload
    {
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Fill(byte* buffer, uint length, byte seed)
        {
            for (uint i = 0; i < length; i++) buffer[i] = (byte)(seed + i * 7);
        }
    }
}
