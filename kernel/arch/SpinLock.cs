namespace Kernel.Arch
{
    // A test-and-set lock for the few structures all VPs share (the page
    // allocator, the heap). Interrupt handlers never take it.
    public unsafe struct SpinLock
    {
        private ulong _taken;

        public void Acquire()
        {
            fixed (ulong* word = &_taken)
                while (Cpu.AtomicSwap(word, 1) != 0)
                    while (*word != 0) Cpu.Pause();
        }

        public void Release()
        {
            fixed (ulong* word = &_taken) Cpu.AtomicSwap(word, 0);   // a locked store: a full barrier
        }
    }
}
