using System.Runtime.CompilerServices;
using Kernel.Hv;

namespace Kernel.Arch
{
    // Time and bounded waiting. With the partition reference counter (100 ns
    // units, TLFS 12.4) waits are in real time; without it, the TSC is assumed to
    // tick at no more than 4 GHz, which makes a wait at least as long as asked.
    public static unsafe class Clock
    {
        public static bool HasReferenceCounter;

        public static ulong Now100ns()
        {
            if (HasReferenceCounter) return Cpu.ReadMsr(HvMsr.TimeRefCount);
            return Cpu.ReadTsc() / 400;   // 4 GHz: 400 ticks per 100 ns
        }

        // The one deadline wait: until done(state) holds or the time is up; true
        // when it held. The condition is asked once more at the deadline, so a
        // wait that the time ran out on still sees a late change.
        // WaitUntil spins (PAUSE), for what another VP or the hypervisor changes
        // within microseconds; SleepUntil halts between interrupts (it needs them
        // enabled, and one to come at least now and then), for waits of seconds
        // that would otherwise keep an emulating host busy.
        public static bool WaitUntil(delegate*<void*, bool> done, void* state, ulong milliseconds)
            => Wait(done, state, milliseconds, sleep: false);

        public static bool SleepUntil(delegate*<void*, bool> done, void* state, ulong milliseconds)
            => Wait(done, state, milliseconds, sleep: true);

        private static bool Wait(delegate*<void*, bool> done, void* state, ulong milliseconds, bool sleep)
        {
            ulong deadline = Now100ns() + milliseconds * 10000;
            while (!done(state))
            {
                if (Now100ns() > deadline) return done(state);
                if (sleep) Cpu.Halt(); else Cpu.Pause();
            }
            return true;
        }

        // Until (*word & mask) == expected.
        public static bool WaitForValue(ulong* word, ulong mask, ulong expected, ulong milliseconds)
        {
            MaskedValue wanted = new MaskedValue { Word = word, Mask = mask, Expected = expected };
            return WaitUntil(&MaskedValue.Holds, &wanted, milliseconds);
        }

        // Until *counter reaches value (counters only grow).
        public static bool WaitAtLeast(ulong* counter, ulong value, ulong milliseconds)
        {
            MaskedValue wanted = new MaskedValue { Word = counter, Expected = value };
            return WaitUntil(&MaskedValue.Reached, &wanted, milliseconds);
        }

        // Out of line: the tests call it at dozens of places, each a four-argument call inlined.
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Delay(ulong milliseconds) => WaitUntil(&Never, null, milliseconds);

        private struct MaskedValue
        {
            public ulong* Word;
            public ulong Mask, Expected;

            public static bool Holds(void* self)
            {
                var w = (MaskedValue*)self;
                return (*w->Word & w->Mask) == w->Expected;
            }

            public static bool Reached(void* self)
            {
                var w = (MaskedValue*)self;
                return *w->Word >= w->Expected;
            }
        }

        private static bool Never(void* state) => false;
    }
}
