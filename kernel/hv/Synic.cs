using System.Runtime;
using System.Runtime.CompilerServices;
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
        public const byte VectorBase = 0x50;            // boot/interrupts.asm SINT_VECTOR_BASE: those vectors enter at OnInterrupt
        public const int SintCount = HvConstants.HV_SYNIC_SINT_COUNT;
        private const int SiefAreaBytes = 256;
        private const int ReceivedRing = 8;

        // The handlers' three tables, 3 x 16 pointers (raw, event, message), kept
        // in the class's statics and first among them: the receive path reaches
        // all three from one RIP-relative lea (ilc addresses a class's other
        // statics through a base register), touching no page of their own.
        // s_handlerTables points at them once the receive path is prepared;
        // until then the public tables below are null.
        private static HandlerTables s_handlers;
        private static void** s_handlerTables;
        private struct HandlerTables { public fixed ulong Slots[3 * SintCount]; }
        private const int EventTable = SintCount, MessageTable = 2 * SintCount;
        private static void** Tables => (void**)Unsafe.AsPointer(ref s_handlers);

        // Handlers: called in interrupt context with the SINT and the flag or message.
        public static delegate*<int, int, void>* EventHandlers => s_handlerTables == null ? null : (delegate*<int, int, void>*)(s_handlerTables + EventTable);           // [sint](sint, flag)
        public static delegate*<int, HvMessage*, void>* MessageHandlers => s_handlerTables == null ? null : (delegate*<int, HvMessage*, void>*)(s_handlerTables + MessageTable); // [sint](sint, message)
        // Replaces the whole receive path of a SINT (tests that need to watch raw pages).
        public static delegate*<int, void>* RawHandlers => (delegate*<int, void>*)s_handlerTables;  // [sint](sint)

        // The running VP's counters, per SINT (each VP has its own; see Vp).
        public static ulong* Interrupts => Vp.Current->SintInterrupts;     // interrupts taken
        public static ulong* FlagsTaken => Vp.Current->FlagsTaken;         // event flags consumed
        public static ulong* MessagesTaken => Vp.Current->MessagesTaken;   // messages consumed
        public static bool AutoEoi;           // the default, from the hypervisor's recommendation

        public static bool Available => HyperV.Present && HyperV.Has(HvPartitionPrivilege.AccessSynicRegs);

        // The running VP's n-th most recent message on `sint` (0 = the last).
        public static HvMessage* LastReceived(int sint, ulong back = 0) => LastReceived(Vp.Current, sint, back);

        public static HvMessage* LastReceived(Vp* vp, int sint, ulong back = 0)
            => vp->Received + sint * ReceivedRing + (int)((vp->MessagesTaken[sint] - 1 - back) % ReceivedRing);

        // The memory of a VP's receive path: the handler tables (public from then
        // on), the VP's ring of received messages, and its message and event
        // flags pages, zeroed. EnableOnThisVp then names the pages to the
        // hypervisor; count mode (tests/guest/bench/CountMode.cs) uses them
        // without one, writing the flags and messages itself, to count the
        // dispatch's instructions.
        public static void PrepareReceivePath(Vp* vp)
        {
            s_handlerTables = Tables;
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
            simp.GpaPageNumber = (ulong)vp->Sim >> 12;
            simp.Enable = true;
            Cpu.WriteMsr(HvMsr.Simp, simp.Value);

            // 2. The event flags page (SIEFP).
            HvSynicSimpSiefp siefp;
            siefp.Value = Cpu.ReadMsr(HvMsr.Siefp);
            siefp.GpaPageNumber = (ulong)vp->Sief >> 12;
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

            Console.Print("hv: SynIC enabled on VP %u: SIM 0x%x SIEF 0x%x"u8, vp->Index, (ulong)vp->Sim, (ulong)vp->Sief);
            Console.Print(" SINT vectors 0x%x-0x%x%s\n"u8, VectorBase, VectorBase + SintCount - 1, AutoEoi ? " (auto-EOI)"u8 : " (EOI by the handler)"u8);
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

        // The receive path: boot/interrupts.asm sends the sixteen SINT vectors
        // straight here (sint_common), not through the handler table, with the
        // running VP it read from GS. The SINT's 256-byte SIEF area is scanned
        // a word at a time; the area is 256-byte aligned, so the word pointer's
        // low byte wraps to zero just past its end. A full SIM slot costs a call
        // (TakeMessage). The way to a handler is the latency that matters, so
        // the interrupt and each flag are counted after their handlers ran
        // (which also means that whoever waits for a count sees what the
        // handler did). The interrupt guard gets the VP's PerCpu as the VP's
        // own pointer (Vp.Cpu is its first field): &vp->Cpu would cost a null
        // check on the way to the handler.
        [RuntimeExport("synic_interrupt")]
        private static void OnInterrupt(InterruptFrame* frame, Vp* vp)
        {
            nint sint = (nint)frame->Vector - VectorBase;
            InterruptGuard.Enter(frame, (PerCpu*)vp);
            void** tables = Tables;
            if (tables[sint] == null || !CallRawHandler(tables, sint))
            {
                var handler = (delegate*<int, int, void>)tables[EventTable + sint];     // read once: another VP may clear it
                ulong* word = (ulong*)(vp->Sief + sint * SiefAreaBytes);
                do
                {
                    if (*word != 0) TakeEventFlags(vp, sint, word, handler);
                    word++;
                } while ((byte)(ulong)word != 0);
                if (vp->Sim[sint].Header.MessageType != (uint)HvMessageType.HvMessageTypeNone) TakeMessage(vp, (int)sint);
            }
            vp->SintInterrupts[sint] = vp->SintInterrupts[sint] + 1;   // not ++, which RyuJIT makes a lea and an inc through it
            if ((vp->AutoEoiMask & (1u << (int)sint)) == 0) Apic.EndOfInterrupt();
            InterruptGuard.Leave((PerCpu*)vp);
        }

        // A raw handler is rare (tests), so its call is out of the way: the
        // receive path only tests the table entry, and this reads it again, once.
        // False if another VP cleared it in between: then the receive path runs.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static bool CallRawHandler(void** tables, nint sint)
        {
            var raw = (delegate*<int, void>)tables[sint];
            if (raw == null) return false;
            raw((int)sint);
            return true;
        }

        // Takes one word of flags atomically (xchg: the hypervisor may set bits
        // in it at the same time) and hands each flag to the SINT's event
        // handler, lowest first (bsf).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void TakeEventFlags(Vp* vp, nint sint, ulong* word, delegate*<int, int, void> handler)
        {
            ulong flags = (ulong)System.Threading.Interlocked.Exchange(ref *(long*)word, 0L);
            do
            {
                uint bit = (uint)System.Runtime.Intrinsics.X86.X86Base.X64.BitScanForward(flags);
                flags &= flags - 1;
                // The flag's number: the word's offset in the 256-byte-aligned
                // area times 8, plus the bit. The word is 8-byte aligned, so
                // word * 8 has six low zero bits for the bit to fill, and the
                // mask drops the area's address above the offset.
                if (handler != null) handler((int)sint, (int)(((uint)(ulong)word * 8 + bit) & (HvConstants.HV_EVENT_FLAGS_COUNT - 1)));
                vp->FlagsTaken[sint] = vp->FlagsTaken[sint] + 1;
            } while (flags != 0);
        }

        // Copies the message out of the SINT's SIM slot into the VP's ring,
        // frees the slot (the hypervisor delivers the next message only into a
        // free one) and writes EOM if one is pending behind it (TLFS 11.10.3).
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void TakeMessage(Vp* vp, int sint)
        {
            HvMessage* slot = &vp->Sim[sint];
            HvMessage* copy = vp->Received + sint * ReceivedRing + (int)(vp->MessagesTaken[sint] % ReceivedRing);
            Memory.CopyForward(copy, slot, (ulong)sizeof(HvMessage));
            vp->MessagesTaken[sint]++;
            bool pending = (slot->Header.MessageFlags & HvMessageHeader.MessagePending) != 0;
            slot->Header.MessageType = (uint)HvMessageType.HvMessageTypeNone;
            if (pending) Cpu.WriteMsr(HvMsr.Eom, 0);
            var handler = (delegate*<int, HvMessage*, void>)Tables[MessageTable + sint];
            if (handler != null) handler(sint, copy);
        }
    }
}
