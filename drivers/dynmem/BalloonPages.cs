// The pages the guest has handed to the host (ballooned out), as sorted,
// non-overlapping, non-adjacent runs of 4 KiB page numbers. The host takes
// pages back in whatever ranges it likes (QEMU pops them from its own tree,
// splitting ours), so a run can be cut anywhere: the set works in single
// pages, the granularity of the protocol's page ranges.
//
// Plain C#, no kernel dependencies: tests/Kernel.Tests compiles this file.
#nullable disable

namespace Drivers.DynamicMemory
{
    public struct PageRun
    {
        public ulong Start;
        public ulong Count;
        public ulong End => Start + Count;
    }

    public unsafe struct BalloonPages
    {
        private PageRun* _runs;
        private int _capacity;
        public int RunCount;
        public ulong Pages;

        // Over caller-provided storage for `capacity` runs.
        public void Initialize(PageRun* storage, int capacity)
        {
            _runs = storage;
            _capacity = capacity;
            RunCount = 0;
            Pages = 0;
        }

        public PageRun Run(int index) => _runs[index];

        // The index of the first run that ends after `page`.
        private int FirstEndingAfter(ulong page)
        {
            int low = 0, high = RunCount;
            while (low < high)
            {
                int mid = (low + high) / 2;
                if (_runs[mid].End <= page) low = mid + 1; else high = mid;
            }
            return low;
        }

        public bool Contains(ulong page)
        {
            int i = FirstEndingAfter(page);
            return i < RunCount && _runs[i].Start <= page;
        }

        // Adds [start, start+count), which must not overlap the set. False, with
        // nothing changed, when it overlaps or a new run would not fit.
        public bool Add(ulong start, ulong count)
        {
            if (count == 0 || start + count < start) return false;
            int i = FirstEndingAfter(start);
            if (i < RunCount && _runs[i].Start < start + count) return false;        // overlaps run i
            bool joinsLeft = i > 0 && _runs[i - 1].End == start;
            bool joinsRight = i < RunCount && _runs[i].Start == start + count;
            if (joinsLeft && joinsRight)
            {
                _runs[i - 1].Count += count + _runs[i].Count;
                RemoveAt(i);
            }
            else if (joinsLeft) _runs[i - 1].Count += count;
            else if (joinsRight) { _runs[i].Start = start; _runs[i].Count += count; }
            else
            {
                if (RunCount == _capacity) return false;
                for (int j = RunCount; j > i; j--) _runs[j] = _runs[j - 1];
                _runs[i].Start = start;
                _runs[i].Count = count;
                RunCount++;
            }
            Pages += count;
            return true;
        }

        // Removes the pages of [start, start+count) that are in the set, calling
        // `onPage` for each one removed; returns how many. A removal that would
        // split a run when no run slot is free leaves that run whole (its pages
        // stay ballooned, which is always safe) and counts them in `kept`.
        public ulong Remove(ulong start, ulong count, delegate*<ulong, void> onPage, out ulong kept)
        {
            kept = 0;
            if (count == 0) return 0;
            ulong end = start + count < start ? ulong.MaxValue : start + count;
            ulong removed = 0;
            int i = FirstEndingAfter(start);
            while (i < RunCount && _runs[i].Start < end)
            {
                PageRun run = _runs[i];
                ulong cutStart = run.Start > start ? run.Start : start;
                ulong cutEnd = run.End < end ? run.End : end;
                bool keepsLeft = cutStart > run.Start, keepsRight = cutEnd < run.End;
                if (keepsLeft && keepsRight)
                {
                    if (RunCount == _capacity) { kept += cutEnd - cutStart; i++; continue; }
                    for (int j = RunCount; j > i + 1; j--) _runs[j] = _runs[j - 1];
                    RunCount++;
                    _runs[i].Count = cutStart - run.Start;
                    _runs[i + 1].Start = cutEnd;
                    _runs[i + 1].Count = run.End - cutEnd;
                    i += 2;
                }
                else if (keepsLeft) { _runs[i].Count = cutStart - run.Start; i++; }
                else if (keepsRight) { _runs[i].Start = cutEnd; _runs[i].Count = run.End - cutEnd; i++; }
                else RemoveAt(i);
                for (ulong page = cutStart; page < cutEnd; page++) if (onPage != null) onPage(page);
                ulong n = cutEnd - cutStart;
                removed += n;
                Pages -= n;
            }
            return removed;
        }

        private void RemoveAt(int i)
        {
            for (int j = i; j < RunCount - 1; j++) _runs[j] = _runs[j + 1];
            RunCount--;
        }
    }
}
