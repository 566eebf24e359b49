using Kernel.Arch;

namespace Kernel.Hv
{
    // Partition reference time (TLFS 12.4, 12.7): a 100 ns counter that every VP
    // shares. The counter MSR costs an exit per read; the reference TSC page lets
    // a VP compute the same time from its own TSC.
    public static unsafe class ReferenceTime
    {
        public static HvReferenceTscPage* TscPage;

        public static bool CounterAvailable => HyperV.Present && HyperV.Has(HvPartitionPrivilege.AccessPartitionReferenceCounter);
        public static bool TscPageAvailable => HyperV.Present && HyperV.Has(HvPartitionPrivilege.AccessPartitionReferenceTsc);

        public static ulong ReadCounter() => Cpu.ReadMsr(HvMsr.TimeRefCount);

        public static bool EnableTscPage()
        {
            if (!TscPageAvailable) return false;
            if (TscPage == null) TscPage = (HvReferenceTscPage*)PageAllocator.Allocate(zero: true);
            Cpu.WriteMsr(HvMsr.ReferenceTsc, (ulong)TscPage | 1);
            return true;
        }

        // The sequence protocol: read the sequence, compute, re-read; retry if it
        // changed (the hypervisor is updating scale/offset). Sequence 0 means the
        // page is not usable now: the caller must use the counter MSR.
        public static bool TryReadTscPage(out ulong time)
        {
            time = 0;
            if (TscPage == null) return false;
            for (int attempt = 0; attempt < 100; attempt++)
            {
                uint sequence = TscPage->TscSequence;
                if (sequence == 0) return false;
                ulong scale = TscPage->TscScale;
                long offset = TscPage->TscOffset;
                ulong tsc = Cpu.ReadTsc();
                if (TscPage->TscSequence != sequence) continue;
                time = MultiplyHigh(tsc, scale) + (ulong)offset;
                return true;
            }
            return false;
        }

        // The high 64 bits of a 64x64-bit product, from 32-bit halves.
        public static ulong MultiplyHigh(ulong a, ulong b)
        {
            ulong aLow = (uint)a, aHigh = a >> 32, bLow = (uint)b, bHigh = b >> 32;
            ulong lowLow = aLow * bLow, highLow = aHigh * bLow, lowHigh = aLow * bHigh, highHigh = aHigh * bHigh;
            ulong middle = (lowLow >> 32) + (uint)highLow + (uint)lowHigh;
            return highHigh + (highLow >> 32) + (lowHigh >> 32) + (middle >> 32);
        }
    }
}
