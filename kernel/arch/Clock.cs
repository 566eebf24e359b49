using Kernel.Hv;

namespace Kernel.Arch
{
    // Bounded waiting. With the partition reference counter (100 ns units,
    // TLFS 12.4) waits are in real time; without it, the TSC is assumed to tick
    // at no more than 4 GHz, which makes a wait at least as long as asked.
    public static class Clock
    {
        public static bool HasReferenceCounter;

        public static ulong Now100ns()
        {
            if (HasReferenceCounter) return Cpu.ReadMsr(HvMsr.TimeRefCount);
            return Cpu.ReadTsc() / 400;   // 4 GHz: 400 ticks per 100 ns
        }

        public static unsafe bool WaitForValue(ulong* word, ulong mask, ulong expected, ulong milliseconds)
        {
            ulong deadline = Now100ns() + milliseconds * 10000;
            while ((*word & mask) != expected)
            {
                if (Now100ns() > deadline) return false;
                Cpu.Pause();
            }
            return true;
        }

        // Waits until *counter reaches `value` (counters only grow); false on timeout.
        public static unsafe bool WaitAtLeast(ulong* counter, ulong value, ulong milliseconds)
        {
            ulong deadline = Now100ns() + milliseconds * 10000;
            while (*counter < value)
            {
                if (Now100ns() > deadline) return false;
                Cpu.Pause();
            }
            return true;
        }

        public static void Delay(ulong milliseconds)
        {
            ulong deadline = Now100ns() + milliseconds * 10000;
            while (Now100ns() <= deadline) Cpu.Pause();
        }
    }
}
