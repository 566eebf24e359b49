namespace Kernel.Arch
{
    // A test-and-set lock for the few structures all VPs share (the page
    // allocator, the heap, the console). Interrupt handlers take some of them
    // too (a VMBus driver allocates pages in its channel's interrupt), so the
    // lock is held with interrupts off, as Linux's spin_lock_irqsave: a handler
    // can then never spin on a lock that the code it interrupted holds.
    public unsafe struct SpinLock
    {
        private ulong _taken;
        private ulong _savedFlags;      // the holder's RFLAGS.IF, restored on Release

        public void Acquire()
        {
            ulong flags = Cpu.SaveFlagsAndDisableInterrupts();
            fixed (ulong* word = &_taken)
                while (Cpu.AtomicSwap(word, 1) != 0)
                    while (*word != 0) Cpu.Pause();
            _savedFlags = flags;
        }

        public void Release()
        {
            ulong flags = _savedFlags;
            fixed (ulong* word = &_taken) Cpu.AtomicSwap(word, 0);   // a locked store: a full barrier
            Cpu.RestoreInterrupts(flags);
        }
    }
}
