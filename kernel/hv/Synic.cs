using Kernel.Arch;
using Kernel.Runtime;

namespace Kernel.Hv
{
    // The synthetic interrupt controller (TLFS 11). Set-up follows the TLFS
    // order, as Linux's hv_synic_enable_regs does: message page, event flags
    // page, each SINT, and only then the global enable.
    //
    // Receiving: SINT x interrupts on vector VectorBase + x. The handler scans
    // that SINT's 256-byte area of the SIEF page, atomically takes the set
    // flags and hands each to the SINT's event handler; then it copies a pending
    // message out of the SINT's SIM slot, frees the slot, and writes EOM if the
    // hypervisor marked another message pending behind it (TLFS 11.10.3).
    public static unsafe class Synic
    {
        public const byte VectorBase = 0x50;
        public const int SintCount = HvConstants.HV_SYNIC_SINT_COUNT;
        private const int SiefAreaBytes = 256;
        private const int ReceivedRing = 8;

        // Handlers: called in interrupt context with the SINT and the flag or message.
        public static delegate*<int, int, void>* EventHandlers;        // [sint](sint, flag)
        public static delegate*<int, HvMessage*, void>* MessageHandlers; // [sint](sint, message)
        // Replaces the whole receive path of a SINT (tests that need to watch raw pages).
        public static delegate*<int, void>* RawHandlers;               // [sint](sint)

        // The running VP's counters, per SINT (each VP has its own; see Vp).
        public static ulong* Interrupts => Vp.Current->SintInterrupts;     // interrupts taken
        public static ulong* FlagsTaken => Vp.Current->FlagsTaken;         // event flags consumed
        public static ulong* MessagesTaken => Vp.Current->MessagesTaken;   // messages consumed
        public static bool AutoEoi;           // the default, from the hypervisor's recommendation

        public static bool Available => HyperV.Present && HyperV.Has(HvPartitionPrivilege.AccessSynicRegs);

        private static void AllocateHandlerTables()
        {
            if (EventHandlers != null) return;
            EventHandlers = (delegate*<int, int, void>*)Heap.AllocateRaw(SintCount * 8);
            MessageHandlers = (delegate*<int, HvMessage*, void>*)Heap.AllocateRaw(SintCount * 8);
            RawHandlers = (delegate*<int, void>*)Heap.AllocateRaw(SintCount * 8);
            for (int sint = 0; sint < SintCount; sint++)
                Arch.Interrupts.SetHandler((byte)(VectorBase + sint), &OnSintInterrupt);
        }

        // The running VP's n-th most recent message on `sint` (0 = the last).
        public static HvMessage* LastReceived(int sint, ulong back = 0) => LastReceived(Vp.Current, sint, back);

        public static HvMessage* LastReceived(Vp* vp, int sint, ulong back = 0)
            => vp->Received + sint * ReceivedRing + (int)((vp->MessagesTaken[sint] - 1 - back) % ReceivedRing);

        // The memory of a VP's receive path: the handler tables (once), the VP's
        // ring of received messages, and its message and event flags pages,
        // zeroed. EnableOnThisVp then names the pages to the hypervisor; count
        // mode (kernel/bench/CountMode.cs) uses them without one, writing the
        // flags and messages itself, to count the dispatch's instructions.
        public static void PrepareReceivePath(Vp* vp)
        {
            AllocateHandlerTables();
            vp->Received = (HvMessage*)PageAllocator.AllocateContiguous((ulong)(SintCount * ReceivedRing * sizeof(HvMessage)) / 4096, zero: true);
            vp->Sim = (HvMessage*)PageAllocator.Allocate(zero: true);
            vp->Sief = (byte*)PageAllocator.Allocate(zero: true);
        }

        // Enables the SynIC of the calling VP. Call with interrupts disabled.
        public static bool EnableOnThisVp()
        {
            if (!Available) return false;
            Vp* vp = Vp.Current;
            PrepareReceivePath(vp);
            // TLFS 11.8.3 "Auto EOI": recommended unless the hypervisor deprecates it
            // (CPUID 0x40000004 EAX bit 9), as with APIC virtualization.
            AutoEoi = (HyperV.Recommendations & HvRecommendation.DeprecateAutoEoi) == 0;
            vp->AutoEoiMask = AutoEoi ? 0xFFFFu : 0;

            // 1. The message page (SIMP): the hypervisor zeroes it when enabled.
            HvSynicSimpSiefp simp;
            simp.Value = Cpu.ReadMsr(HvMsr.Simp);
            simp.BasePage = (ulong)vp->Sim >> 12;
            simp.Enable = true;
            Cpu.WriteMsr(HvMsr.Simp, simp.Value);

            // 2. The event flags page (SIEFP).
            HvSynicSimpSiefp siefp;
            siefp.Value = Cpu.ReadMsr(HvMsr.Siefp);
            siefp.BasePage = (ulong)vp->Sief >> 12;
            siefp.Enable = true;
            Cpu.WriteMsr(HvMsr.Siefp, siefp.Value);

            // 3. Each SINT: its vector, unmasked, auto-EOI as recommended. Vectors
            //    below 16 are reserved (#GP), ours are 0x50-0x5F.
            for (int sint = 0; sint < SintCount; sint++)
                Cpu.WriteMsr(HvMsr.Sint(sint), SintValue(sint, masked: false, autoEoi: AutoEoi).Value);

            // What the hypervisor handed over, before any traffic: both pages should be zero.
            vp->PagesZeroAtEnable = Memory.IsZero(vp->Sim, 4096) && Memory.IsZero(vp->Sief, 4096);

            // 4. The global enable, last, so no SINT fires into a half-built set-up.
            HvSynicScontrol scontrol;
            scontrol.Value = Cpu.ReadMsr(HvMsr.Scontrol);
            scontrol.Enable = true;
            Cpu.WriteMsr(HvMsr.Scontrol, scontrol.Value);
            vp->SynicEnabled = true;

            Console.Write("hv: SynIC enabled on VP ");
            Console.WriteDecimal((ulong)vp->Index);
            Console.Write(": SIM ");
            Console.WriteHex((ulong)vp->Sim);
            Console.Write(" SIEF ");
            Console.WriteHex((ulong)vp->Sief);
            Console.Write(" SINT vectors ");
            Console.WriteHex(VectorBase);
            Console.Write("-");
            Console.WriteHex((ulong)(VectorBase + SintCount - 1));
            Console.WriteLine(AutoEoi ? " (auto-EOI)" : " (EOI by the handler)");
            return true;
        }

        public static HvSynicSint SintValue(int sint, bool masked, bool autoEoi)
        {
            HvSynicSint value = default;
            value.Vector = (byte)(VectorBase + sint);
            value.Masked = masked;
            value.AutoEoi = autoEoi;
            return value;
        }

        // Reprograms a SINT of the running VP (the handler follows its auto-EOI choice).
        public static void Configure(int sint, bool masked, bool autoEoi)
        {
            Vp* vp = Vp.Current;
            if (autoEoi) vp->AutoEoiMask |= 1u << sint; else vp->AutoEoiMask &= ~(1u << sint);
            Cpu.WriteMsr(HvMsr.Sint(sint), SintValue(sint, masked, autoEoi).Value);
        }

        public static void SetMasked(int sint, bool masked) => Configure(sint, masked, (Vp.Current->AutoEoiMask & (1u << sint)) != 0);

        public static ulong* SiefArea(Vp* vp, int sint) => (ulong*)(vp->Sief + sint * SiefAreaBytes);

        public static bool FlagIsSet(Vp* vp, int sint, int flag) => (vp->Sief[sint * SiefAreaBytes + flag / 8] & (1 << (flag % 8))) != 0;

        private static void OnSintInterrupt(InterruptFrame* frame)
        {
            int sint = (int)frame->Vector - VectorBase;
            Vp* vp = Vp.Current;
            vp->SintInterrupts[sint]++;
            if (RawHandlers[sint] != null) RawHandlers[sint](sint);
            else
            {
                TakeEventFlags(vp, sint);
                TakeMessage(vp, sint);
            }
            if ((vp->AutoEoiMask & (1u << sint)) == 0) Apic.EndOfInterrupt();
        }

        private static void TakeEventFlags(Vp* vp, int sint)
        {
            ulong* area = SiefArea(vp, sint);
            for (int word = 0; word < SiefAreaBytes / 8; word++)
            {
                if (area[word] == 0) continue;
                ulong taken = Cpu.AtomicSwap(&area[word], 0);   // the hypervisor may set bits concurrently
                for (int bit = 0; bit < 64; bit++)
                {
                    if ((taken & (1ul << bit)) == 0) continue;
                    vp->FlagsTaken[sint]++;
                    var handler = EventHandlers[sint];
                    if (handler != null) handler(sint, word * 64 + bit);
                }
            }
        }

        private static void TakeMessage(Vp* vp, int sint)
        {
            HvMessage* slot = &vp->Sim[sint];
            if (slot->Header.MessageType == HvConstants.HvMessageTypeNone) return;
            HvMessage* copy = vp->Received + sint * ReceivedRing + (int)(vp->MessagesTaken[sint] % ReceivedRing);
            Memory.Copy(copy, slot, (ulong)sizeof(HvMessage));
            vp->MessagesTaken[sint]++;
            bool pending = (slot->Header.MessageFlags & HvMessageHeader.MessagePending) != 0;
            // Free the slot; the hypervisor only delivers the next message into a free slot.
            slot->Header.MessageType = HvConstants.HvMessageTypeNone;
            // TLFS 11.10.3: if a message is pending behind this one, EOM asks for it.
            if (pending) Cpu.WriteMsr(HvMsr.Eom, 0);
            var handler = MessageHandlers[sint];
            if (handler != null) handler(sint, copy);
        }
    }
}
