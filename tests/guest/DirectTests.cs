using System;
using System.Runtime.CompilerServices;
using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;

namespace Kernel.TestMode
{
    // HvCallSignalEventDirect (0x00C0) and HvCallPostMessageDirect (0x00C1)
    // against whichever hypervisor answers. The boot probe (kernel/hv/DirectCalls.cs)
    // says whether the calls are implemented:
    // - implemented (the project's KVM, tools/nested/kvm): the full semantics,
    //   every status of every bad input, a storm and a fuzz;
    // - not implemented (stock KVM, a VTL0 guest of Hyper-V): the direct.absent_*
    //   tests check that the call is refused and nothing changes; the rest skip.
    // The semantics are those written in tools/nested/kvm/hyperv-direct-hypercalls.patch
    // (OpenVMM's hv1 dispatcher and SynIC emulator, the TLFS where OpenVMM is silent).
    public static unsafe class DirectTests
    {
        public static void Register()
        {
            TestRunner.Add("direct.hypervisor_answers_as_expected"u8, &AnswersAsExpected);
            TestRunner.Add("direct.input_layout"u8, &InputLayout);
            TestRunner.Add("direct.bad_arguments_refused_without_hypercall"u8, &BadArgumentsRefused);
            TestRunner.Add("direct.absent_signal_changes_nothing"u8, &AbsentSignalChangesNothing);
            TestRunner.Add("direct.absent_post_changes_nothing"u8, &AbsentPostChangesNothing);
            TestRunner.Add("direct.absent_for_every_target"u8, &AbsentForEveryTarget);
            TestRunner.Add("direct.newly_signaled_only_when_the_flag_was_clear"u8, &NewlySignaledOnlyWhenClear);
            TestRunner.Add("direct.signal_sets_exactly_one_bit"u8, &SetsExactlyOneBit);
            TestRunner.Add("direct.one_interrupt_with_auto_eoi"u8, &OneInterruptAutoEoi);
            TestRunner.Add("direct.one_interrupt_with_explicit_eoi"u8, &OneInterruptExplicitEoi);
            TestRunner.Add("direct.vp_index_self_is_the_caller"u8, &VpIndexSelfIsTheCaller);
            TestRunner.Add("direct.every_vp_signals_every_vp"u8, &EveryVpSignalsEveryVp);
            TestRunner.Add("direct.masked_sint_takes_no_event"u8, &MaskedSintTakesNoEvent);
            TestRunner.Add("direct.message_arrives_intact_on_every_vp"u8, &MessageArrivesIntact);
            TestRunner.Add("direct.busy_slot_then_eom_then_retry"u8, &BusySlotThenRetry);
            TestRunner.Add("direct.signal_bad_input_statuses"u8, &SignalBadInputStatuses);
            TestRunner.Add("direct.post_bad_input_statuses"u8, &PostBadInputStatuses);
            TestRunner.Add("direct.disabled_synic_parts_refuse"u8, &DisabledSynicPartsRefuse);
            TestRunner.Add("direct.storm_takes_each_flag_once"u8, &Storm);
            TestRunner.Add("direct.fuzz_answers_documented_statuses"u8, &Fuzz);
        }

        private const byte EventSint = 13;       // no other test or driver uses SINTs 13 and 14
        private const byte MessageSint = 14;
        private const ulong WaitMs = 3000;
        private const ulong QuietMs = 50;        // how long "no further interrupt" is watched for
        private const HvMessageType TestMessageType = (HvMessageType)0x4D44;   // "DM": any type below 0x80000000 but 0

        private static ulong Self => HvConstants.HV_PARTITION_ID_SELF;

        // The calls most tests make: to a VP of this partition, at VTL 0, on the
        // tests' own SINTs. Out of line: the direct hypercall wrappers take 5 and 7 arguments.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static HvCallResult SignalTo(uint vpIndex, ushort flag) => Hypercall.SignalEventDirect(Self, vpIndex, 0, EventSint, flag);

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static HvCallResult PostTo(uint vpIndex, HvMessageType type, byte* payload, uint size)
            => Hypercall.PostMessageDirect(Self, vpIndex, 0, MessageSint, type, payload, size);
        private static Vp* LastVp { [MethodImpl(MethodImplOptions.NoInlining)] get => Vp.Get(Vp.Count - 1); }    // another VP when there is one

        // ---- the probe against what the runner says --------------------------------

        // qemu-run.sh knows which KVM it started (--kvm stock|direct) and passes
        // hv-direct=implemented|absent, so a regression to status 2 fails here
        // and not only in the host's checks.
        private static void AnswersAsExpected()
        {
            if (!Need.DirectProbe() || !Need.RunnerNamedTheKvmSide(out byte* value, out int length)) return;
            bool implemented = BootInfo.ValueEquals(value, length, "implemented"u8);
            if (!Expect.True(implemented || BootInfo.ValueEquals(value, length, "absent"u8))) return;    // hv-direct= is implemented or absent
            Expect.True(DirectCalls.Probed);    // the boot probe ran
            // SignalEventDirect to HV_ANY_VP at boot
            Expect.Equal(implemented ? HvStatus.InvalidVpIndex : HvStatus.InvalidHypercallCode, DirectCalls.ProbeStatus);
            Expect.Equal(implemented, DirectCalls.Implemented);    // the Direct calls are implemented
        }

        // The input page holds exactly the TLFS layout the hypervisor reads; the
        // hv-trace line lets tests/ match the GPAs against KVM's own trace.
        private static void InputLayout()
        {
            if (!Need.DirectProbe()) return;
            HvCallResult r = Hypercall.SignalEventDirect(Self, 0x12345678, 1, 13, 0x7AB);
            byte* input = Hypercall.InputPage;
            // What the call must have put in RCX, RDX and R8: code 0xC0, memory
            // form, no reps, and this VP's pages. tests/ finds exactly these in
            // KVM's own record of the hypercall (kvm_hv_hypercall).
            Console.Print("hv-trace: SignalEventDirect control=0x%x input=0x%x output=0x%x\n"u8, 0xC0, (ulong)input, (ulong)Hypercall.OutputPage);
            Expect.Equal(Self, *(ulong*)input);    // TargetPartition @0
            Expect.Equal(0x12345678ul, *(uint*)(input + 8));    // TargetVp @8
            Expect.Equal(1ul, input[12]);    // TargetVtl @12
            Expect.Equal(13ul, input[13]);    // TargetSint @13
            Expect.Equal(0x7ABul, *(ushort*)(input + 14));    // FlagNumber @14
            Expect.True(r.Outcome != HvOutcome.Refused);    // the call was made
            // VTL 1 is not this partition's: refused by a hypervisor that has the call, unknown to one that has not.
            Expect.Equal(DirectCalls.Implemented ? HvStatus.InvalidParameter : DirectCalls.ProbeStatus, r.Status);    // status for TargetVtl 1
        }

        private static void BadArgumentsRefused()
        {
            if (!Need.DirectProbe()) return;
            byte* payload = stackalloc byte[241];   // never read: each call below is refused before its payload is copied
            // Hypercall.Issued counts every call on every VP, and interrupt
            // handlers make some (a driver's status timer signals its host):
            // with interrupts off, only these five calls can move it here.
            ulong flags = Cpu.SaveFlagsAndDisableInterrupts();
            ulong issued = Hypercall.Issued;
            HvCallResult sint = Hypercall.SignalEventDirect(Self, 0, 0, 16, 1);
            HvCallResult flag = Hypercall.SignalEventDirect(Self, 0, 0, 1, 2048);
            HvCallResult vtl = Hypercall.SignalEventDirect(Self, 0, 3, 1, 1);
            HvCallResult size = Hypercall.PostMessageDirect(Self, 0, 0, 1, TestMessageType, payload, 241);
            HvCallResult type = Hypercall.PostMessageDirect(Self, 0, 0, 1, 0, payload, 8);
            ulong issuedAfter = Hypercall.Issued;
            Cpu.RestoreInterrupts(flags);
            Expect.Equal(HvOutcome.Refused, sint.Outcome);    // SINT 16
            Expect.Equal("SignalEventDirect: TargetSint must be 0-15"u8, sint.RefusalReason);
            Expect.Equal(HvOutcome.Refused, flag.Outcome);    // flag 2048
            Expect.Equal(HvOutcome.Refused, vtl.Outcome);    // VTL 3
            Expect.Equal(HvOutcome.Refused, size.Outcome);    // a 241-byte payload
            Expect.Equal(HvOutcome.Refused, type.Outcome);    // message type 0
            Expect.Equal(issued, issuedAfter);    // hypercalls issued
        }

        // ---- a hypervisor without the calls: refused, nothing changes --------------

        // What each hypervisor answers a caller it does not serve: stock KVM has
        // no such call; Hyper-V grants it to the root and VTL2 only.
        private static void ExpectRefusedByHypervisor(HvCallResult r, Text what)
        {
            if (HyperV.Kind == Hypervisor.Kvm) Expect.Equal(HvStatus.InvalidHypercallCode, r.Status, what);
            else Expect.True(r.Outcome == HvOutcome.Denied || r.Outcome == HvOutcome.NotProvided, what);
        }

        private static void AbsentSignalChangesNothing()
        {
            if (!Need.DirectCallsAbsent()) return;
            Snapshot.Take();
            HvCallResult r = SignalTo(Vp.Current->Index, 77);
            Clock.Delay(QuietMs);
            ExpectRefusedByHypervisor(r, "HvCallSignalEventDirect status"u8);
            Expect.False(r.NewlySignaled);    // NewlySignaled after a refused call
            Snapshot.ExpectUnchanged("after a refused SignalEventDirect"u8);
        }

        private static void AbsentPostChangesNothing()
        {
            if (!Need.DirectCallsAbsent()) return;
            byte* payload = stackalloc byte[32];
            Payload.Fill(payload, 32, 9);
            Snapshot.Take();
            HvCallResult r = PostTo(Vp.Current->Index, TestMessageType, payload, 32);
            Clock.Delay(QuietMs);
            ExpectRefusedByHypervisor(r, "HvCallPostMessageDirect status"u8);
            Snapshot.ExpectUnchanged("after a refused PostMessageDirect"u8);
        }

        // Another VP, HV_VP_INDEX_SELF and an index no VP has: the same refusal.
        private static void AbsentForEveryTarget()
        {
            if (!Need.DirectCallsAbsent()) return;
            uint* targets = stackalloc uint[3];
            targets[0] = LastVp->Index;
            targets[1] = HvConstants.HV_VP_INDEX_SELF;
            targets[2] = (uint)Vp.Count;
            byte* payload = stackalloc byte[8];
            Payload.Fill(payload, 8, 5);     // posted below: its bytes go into the hypercall input
            Snapshot.Take();
            for (int t = 0; t < 3; t++)
            {
                ExpectRefusedByHypervisor(SignalTo(targets[t], 100), "SignalEventDirect status"u8);
                ExpectRefusedByHypervisor(PostTo(targets[t], TestMessageType, payload, 8), "PostMessageDirect status"u8);
            }
            Clock.Delay(QuietMs);
            Snapshot.ExpectUnchanged("after refused calls to every kind of target"u8);
        }

        // ---- HvCallSignalEventDirect that succeeds --------------------------------

        private static void LeaveFlagsSet(int sint) { }

        // NewlySignaled is 1 for a clear flag, 0 while it is still set (and then
        // no interrupt), and 1 again once the guest has taken it.
        private static void NewlySignaledOnlyWhenClear()
        {
            if (!Need.DirectCallsImplemented()) return;
            const ushort flag = 300;
            Vp* me = Vp.Current;
            ulong* word = Synic.SiefArea(me, EventSint) + flag / 64;
            ulong bit = 1ul << (flag % 64);
            Synic.RawHandlers[EventSint] = &LeaveFlagsSet;
            ulong interrupts = me->SintInterrupts[EventSint];

            HvCallResult first = SignalTo(me->Index, flag);
            bool firstArrived = Clock.WaitAtLeast(&me->SintInterrupts[EventSint], interrupts + 1, WaitMs);
            HvCallResult repeat = SignalTo(me->Index, flag);
            Clock.Delay(QuietMs);
            ulong afterRepeat = me->SintInterrupts[EventSint];
            ulong taken = Cpu.AtomicSwap(word, 0);            // the guest takes the flag
            HvCallResult again = SignalTo(me->Index, flag);
            bool againArrived = Clock.WaitAtLeast(&me->SintInterrupts[EventSint], interrupts + 2, WaitMs);
            Clock.Delay(QuietMs);
            ulong afterAgain = me->SintInterrupts[EventSint];
            Cpu.AtomicSwap(word, 0);
            Synic.RawHandlers[EventSint] = null;
            Report("SignalEventDirect to itself, SINT 13 flag 300, the flag clear"u8, first);
            Report("the same call while the flag is set"u8, repeat);
            Report("the same call after the guest took the flag"u8, again);

            Expect.Equal(HvStatus.Success, first.Status);    // first call
            Expect.True(first.NewlySignaled);    // NewlySignaled for a clear flag
            Expect.True(firstArrived);    // the first call interrupted SINT 13
            Expect.Equal(HvStatus.Success, repeat.Status);    // repeat while the flag is set
            Expect.False(repeat.NewlySignaled);    // NewlySignaled while the flag is still set
            Expect.Equal(interrupts + 1, afterRepeat);    // SINT 13 interrupts after the repeat (none for it)
            Expect.Equal(bit, taken);    // the SIEF word the guest took: exactly the flag
            Expect.Equal(HvStatus.Success, again.Status);    // call after the guest took the flag
            Expect.True(again.NewlySignaled);    // NewlySignaled after the guest took the flag
            Expect.True(againArrived);    // the third call interrupted SINT 13
            Expect.Equal(interrupts + 2, afterAgain);    // SINT 13 interrupts in all
        }

        private static byte* s_tracedPage;

        // Exactly one bit changes, in the target SINT's area of the target VP's
        // SIEF page; every other byte of every VP's SIM and SIEF pages stays.
        private static void SetsExactlyOneBit()
        {
            if (!Need.DirectCallsImplemented()) return;
            const ushort flag = 1234;
            Vp* target = LastVp;
            Synic.RawHandlers[EventSint] = &LeaveFlagsSet;
            ulong interrupts = target->SintInterrupts[EventSint];
            Snapshot.Take();
            // Input and output on a page no other call uses, so that tests/ finds
            // exactly this call in KVM's trace, with the interrupt it raised and its result.
            if (s_tracedPage == null) s_tracedPage = (byte*)PageAllocator.Allocate(zero: true);
            var input = (HvSignalEventDirectInput*)s_tracedPage;
            var output = (HvSignalEventDirectOutput*)(s_tracedPage + 2048);
            input->TargetPartition = Self;
            input->TargetVp = target->Index;
            input->TargetVtl = 0;
            input->TargetSint = EventSint;
            input->FlagNumber = flag;
            output->NewlySignaled = 0xFF;
            HvCallResult r = HvCallResult.From(Hypercall.Slow(HvHypercallControl.For(HvCallCode.HvCallSignalEventDirect), input, output));
            r.NewlySignaled = output->NewlySignaled == 1;
            bool arrived = Clock.WaitAtLeast(&target->SintInterrupts[EventSint], interrupts + 1, WaitMs);
            Console.Print("hv-trace: SignalEventDirect success vp=%u sint=13 input=0x%x output=0x%x\n"u8, target->Index, (ulong)input, (ulong)output);
            Report("SignalEventDirect to the last VP, SINT 13 flag 1234"u8, r);
            int changedBits = 0, changedAt = -1, changedVp = -1;
            for (int i = 0; i < Vp.Count; i++)
            {
                byte* now = Vp.Get(i)->Sief;
                byte* before = Snapshot.Sief(i);
                for (int b = 0; b < 4096; b++)
                {
                    int diff = now[b] ^ before[b];
                    for (int bit = 0; bit < 8; bit++) if ((diff & (1 << bit)) != 0) { changedBits++; changedAt = b * 8 + bit; changedVp = i; }
                }
            }
            bool simsUnchanged = Snapshot.SimsUnchanged();
            Cpu.AtomicSwap(Synic.SiefArea(target, EventSint) + flag / 64, 0);
            Synic.RawHandlers[EventSint] = null;

            Expect.Equal(HvStatus.Success, r.Status);    // SignalEventDirect status
            Expect.Equal(1ul, output->NewlySignaled);    // NewlySignaled (the output byte)
            Expect.True(arrived);    // the target VP was interrupted
            Expect.Equal(1ul, (ulong)changedBits);    // bits changed in all SIEF pages
            Expect.Equal((ulong)target->Cpu.Number, (ulong)changedVp);    // the VP whose page changed
            Expect.Equal((ulong)(EventSint * 2048 + flag), (ulong)changedAt);    // bit changed in that page (SINT * 2048 + flag)
            Expect.True(simsUnchanged);    // every SIM page unchanged
        }

        // Two signals, each after the last was taken: exactly one interrupt each.
        // With explicit EOI the second interrupt also proves the first was EOI'd.
        private static void OneInterruptEach(bool autoEoi)
        {
            if (!Need.DirectCallsImplemented()) return;
            const ushort flag = 5;
            Vp* target = LastVp;
            SintSetting.Apply(target, EventSint, masked: false, autoEoi: autoEoi);
            ulong interrupts = target->SintInterrupts[EventSint], flags = target->FlagsTaken[EventSint];
            HvCallResult first = SignalTo(target->Index, flag);
            bool firstTaken = Clock.WaitAtLeast(&target->FlagsTaken[EventSint], flags + 1, WaitMs);
            Clock.Delay(QuietMs);
            ulong afterFirst = target->SintInterrupts[EventSint];
            HvCallResult second = SignalTo(target->Index, flag);
            bool secondTaken = Clock.WaitAtLeast(&target->FlagsTaken[EventSint], flags + 2, WaitMs);
            Clock.Delay(QuietMs);
            ulong afterSecond = target->SintInterrupts[EventSint];
            SintSetting.Restore(target, EventSint);

            Expect.Equal(HvStatus.Success, first.Status);    // first call
            Expect.True(first.NewlySignaled && second.NewlySignaled);    // NewlySignaled both times
            Expect.True(firstTaken && secondTaken);    // the target took the flag both times
            Expect.Equal(interrupts + 1, afterFirst);    // interrupts on the target after one signal
            Expect.Equal(interrupts + 2, afterSecond);    // interrupts on the target after two signals
        }

        private static void OneInterruptAutoEoi() => OneInterruptEach(autoEoi: true);
        private static void OneInterruptExplicitEoi() => OneInterruptEach(autoEoi: false);

        // ---- every VP, and HV_VP_INDEX_SELF ---------------------------------------

        // Flags received, per VP: s_received[vp * 2048 + flag] counts takes (up
        // to 255); s_sharedTaken[vp] counts every take of flag 0, the storm's shared flag.
        private static byte* s_received;
        private static ulong* s_sharedTaken;

        private static void RecordFlag(int sint, int flag)
        {
            byte* count = s_received + PerCpu.Current->Number * HvConstants.HV_EVENT_FLAGS_COUNT + flag;
            if (*count < 255) (*count)++;
            if (flag == SharedFlag) s_sharedTaken[PerCpu.Current->Number]++;
        }

        private static void StartRecording()
        {
            if (s_received == null)
            {
                s_received = (byte*)PageAllocator.AllocateContiguous((ulong)(Vp.MaxVps * HvConstants.HV_EVENT_FLAGS_COUNT) / 4096);
                s_sharedTaken = (ulong*)PageAllocator.Allocate();
            }
            Memory.Zero(s_received, (ulong)(Vp.Count * HvConstants.HV_EVENT_FLAGS_COUNT));
            Memory.Zero(s_sharedTaken, (ulong)(Vp.Count * 8));
            Synic.EventHandlers[EventSint] = &RecordFlag;
        }

        private static byte Received(int vp, int flag) => s_received[vp * HvConstants.HV_EVENT_FLAGS_COUNT + flag];

        private struct SignalWork { public uint Target; public ushort Flag; public HvStatus Status; public bool NewlySignaled; }

        private static void SignalFromHere(void* argument)
        {
            SignalWork* work = (SignalWork*)argument;
            HvCallResult r = Hypercall.SignalEventDirect(HvConstants.HV_PARTITION_ID_SELF, work->Target, 0, EventSint, work->Flag);
            work->Status = r.Status;
            work->NewlySignaled = r.NewlySignaled;
        }

        private static void RunHereOrOn(Vp* vp, delegate*<void*, void> work, void* argument)
        {
            if (vp == Vp.Current) work(argument);
            else Expect.True(Smp.RunOn(&vp->Cpu, work, argument));    // work ran on the other VP
        }

        // Each VP signals with HV_VP_INDEX_SELF: the flag lands on the caller.
        private static void VpIndexSelfIsTheCaller()
        {
            if (!Need.DirectCallsImplemented()) return;
            StartRecording();
            for (int i = 0; i < Vp.Count; i++)
            {
                Vp* vp = Vp.Get(i);
                ulong flags = vp->FlagsTaken[EventSint];
                SignalWork work = default;
                work.Target = HvConstants.HV_VP_INDEX_SELF;
                work.Flag = (ushort)(40 + i);
                RunHereOrOn(vp, &SignalFromHere, &work);
                Expect.True(Clock.WaitAtLeast(&vp->FlagsTaken[EventSint], flags + 1, WaitMs));    // the caller took the flag
                Expect.Equal(HvStatus.Success, work.Status);    // SignalEventDirect to HV_VP_INDEX_SELF
                Expect.True(work.NewlySignaled);    // NewlySignaled
            }
            Clock.Delay(QuietMs);
            Synic.EventHandlers[EventSint] = null;
            for (int i = 0; i < Vp.Count; i++)
                for (int j = 0; j < Vp.Count; j++)
                    Expect.Equal(i == j ? 1ul : 0ul, Received(j, 40 + i));    // flag 40+i taken by VP j (1 when j is the caller i)
        }

        // Every VP signals every VP by its index (itself included), each pair
        // with its own flag: each flag is taken once, by its target only.
        private static void EveryVpSignalsEveryVp()
        {
            if (!Need.DirectCallsImplemented()) return;
            int n = Vp.Count;
            StartRecording();
            ulong* takenBefore = stackalloc ulong[n];
            for (int j = 0; j < n; j++) takenBefore[j] = Vp.Get(j)->FlagsTaken[EventSint];
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                {
                    SignalWork work = default;
                    work.Target = Vp.Get(j)->Index;
                    work.Flag = (ushort)(100 + i * n + j);
                    RunHereOrOn(Vp.Get(i), &SignalFromHere, &work);
                    ReportPair(i, work.Target, work.Status, work.NewlySignaled);
                    Expect.Equal(HvStatus.Success, work.Status);    // SignalEventDirect from VP i to VP j
                    Expect.True(work.NewlySignaled);    // NewlySignaled from VP i to VP j
                }
            bool all = true;
            for (int j = 0; j < n; j++) all &= Clock.WaitAtLeast(&Vp.Get(j)->FlagsTaken[EventSint], takenBefore[j] + (ulong)n, WaitMs);
            Clock.Delay(QuietMs);
            Synic.EventHandlers[EventSint] = null;
            Expect.True(all);    // every VP took one flag from every VP
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    for (int k = 0; k < n; k++)
                        Expect.Equal(k == j ? 1ul : 0ul, Received(k, 100 + i * n + j));    // flag of pair (i, j) taken by VP k (1 when k is j)
        }

        // OpenVMM's rule: a masked SINT takes no event. The call succeeds with
        // NewlySignaled 0, no flag is set and no interrupt comes, not even after unmasking.
        private static void MaskedSintTakesNoEvent()
        {
            if (!Need.DirectCallsImplemented()) return;
            Vp* target = LastVp;
            SintSetting.Apply(target, EventSint, masked: true, autoEoi: Synic.AutoEoi);
            Snapshot.Take();
            HvCallResult r = SignalTo(target->Index, 9);
            Clock.Delay(QuietMs);
            bool unchanged = Snapshot.Unchanged();
            SintSetting.Restore(target, EventSint);
            Clock.Delay(QuietMs);
            Expect.Equal(HvStatus.Success, r.Status);    // SignalEventDirect to a masked SINT
            Expect.False(r.NewlySignaled);    // NewlySignaled for a masked SINT
            Expect.True(unchanged);    // every SIM and SIEF page and interrupt count unchanged while masked
            Snapshot.ExpectUnchanged("after unmasking"u8);
        }

        // ---- HvCallPostMessageDirect that succeeds --------------------------------

        // A message to each VP (the caller included) arrives in that VP's slot for
        // the SINT with its type, size and payload, and one interrupt.
        private static void MessageArrivesIntact()
        {
            if (!Need.DirectCallsImplemented()) return;
            byte* payload = stackalloc byte[HvConstants.HV_MESSAGE_PAYLOAD_BYTE_COUNT];
            for (int j = 0; j < Vp.Count; j++)
            {
                Vp* target = Vp.Get(j);
                uint size = (uint)(1 + j * 79) % 241;
                Payload.Fill(payload, size, (byte)(0x30 + j));
                ulong taken = target->MessagesTaken[MessageSint], interrupts = target->SintInterrupts[MessageSint];
                HvCallResult r = PostTo(target->Index, TestMessageType + (uint)j, payload, size);
                bool arrived = Clock.WaitAtLeast(&target->MessagesTaken[MessageSint], taken + 1, WaitMs);
                Clock.Delay(QuietMs);
                Expect.Equal(HvStatus.Success, r.Status);    // PostMessageDirect status
                if (!Expect.True(arrived)) return;    // the target VP took a message on SINT 14
                HvMessage* m = Synic.LastReceived(target, MessageSint);
                Expect.Equal(TestMessageType + (uint)j, m->Header.Type);    // message type
                Expect.Equal((ulong)size, m->Header.PayloadSize);    // payload size
                Expect.Equal(0ul, m->Header.MessageFlags);    // message flags (MessagePending clear)
                Expect.True(Memory.Equal(m->Payload, payload, size));    // payload bytes
                Expect.Equal(taken + 1, target->MessagesTaken[MessageSint]);    // messages taken by the target
                Expect.Equal(interrupts + 1, target->SintInterrupts[MessageSint]);    // interrupts on the target
                Expect.Equal(HvMessageType.HvMessageTypeNone, target->Sim[MessageSint].Header.Type);    // the slot is free again
            }
        }

        private static void LeaveMessage(int sint) { }

        private struct EomWork { public int Sint; }
        private static void FreeSlotAndEom(void* argument)
        {
            HvMessage* slot = &Vp.Current->Sim[((EomWork*)argument)->Sint];
            bool pending = (slot->Header.MessageFlags & HvMessageHeader.MessagePending) != 0;
            slot->Header.Type = HvMessageType.HvMessageTypeNone;
            if (pending) Cpu.WriteMsr(HvMsr.Eom, 0);
        }

        // No queue: a post to a slot that still holds a message gets OBJECT_IN_USE,
        // leaves the first message as it was and sets MessagePending in it; once
        // the guest frees the slot (and writes EOM, as asked) a retry succeeds.
        private static void BusySlotThenRetry()
        {
            if (!Need.DirectCallsImplemented()) return;
            Vp* target = LastVp;
            HvMessage* slot = &target->Sim[MessageSint];
            byte* first = stackalloc byte[16];
            byte* second = stackalloc byte[24];
            Payload.Fill(first, 16, 0x11);
            Payload.Fill(second, 24, 0x77);
            Synic.RawHandlers[MessageSint] = &LeaveMessage;
            ulong interrupts = target->SintInterrupts[MessageSint];

            HvCallResult r1 = PostTo(target->Index, TestMessageType, first, 16);
            bool firstArrived = Clock.WaitAtLeast(&target->SintInterrupts[MessageSint], interrupts + 1, WaitMs);
            HvCallResult r2 = PostTo(target->Index, TestMessageType + 1, second, 24);
            Clock.Delay(QuietMs);
            HvMessageType typeWhileBusy = slot->Header.Type;
            byte sizeWhileBusy = slot->Header.PayloadSize, flagsWhileBusy = slot->Header.MessageFlags;
            bool firstPayloadKept = Memory.Equal(slot->Payload, first, 16);
            ulong interruptsWhileBusy = target->SintInterrupts[MessageSint];

            EomWork eom = default;
            eom.Sint = MessageSint;
            RunHereOrOn(target, &FreeSlotAndEom, &eom);
            HvCallResult r3 = PostTo(target->Index, TestMessageType + 1, second, 24);
            bool retryArrived = Clock.WaitAtLeast(&target->SintInterrupts[MessageSint], interrupts + 2, WaitMs);
            HvMessageType typeAfter = slot->Header.Type;
            byte flagsAfter = slot->Header.MessageFlags;
            bool secondPayload = Memory.Equal(slot->Payload, second, 24);
            RunHereOrOn(target, &FreeSlotAndEom, &eom);
            Synic.RawHandlers[MessageSint] = null;
            Report("PostMessageDirect to a free slot"u8, r1.Status);
            Report("PostMessageDirect to the busy slot"u8, r2.Status);
            Report("PostMessageDirect after the guest freed the slot and wrote EOM"u8, r3.Status);

            Expect.Equal(HvStatus.Success, r1.Status);    // first post
            Expect.True(firstArrived);    // the first post interrupted the target
            Expect.Equal(HvStatus.ObjectInUse, r2.Status);    // second post to the busy slot
            Expect.Equal(TestMessageType, typeWhileBusy);    // the slot still holds the first message's type
            Expect.Equal(16ul, sizeWhileBusy);    // and its size
            Expect.True(firstPayloadKept);    // and its payload
            Expect.Equal((ulong)HvMessageHeader.MessagePending, flagsWhileBusy);    // MessagePending set in the busy slot
            Expect.Equal(interrupts + 1, interruptsWhileBusy);    // no interrupt for the refused post
            Expect.Equal(HvStatus.Success, r3.Status);    // retry after the guest freed the slot and wrote EOM
            Expect.True(retryArrived);    // the retry interrupted the target
            Expect.Equal(TestMessageType + 1, typeAfter);    // the slot holds the second message
            Expect.Equal(0ul, flagsAfter);    // with MessagePending clear
            Expect.True(secondPayload);    // and its payload
        }

        // ---- every bad input gets its status, and nothing changes -----------------

        // One raw call: the control word, the input written at `input` (unless the
        // GPA is not RAM the guest may write), the output GPA.
        private struct RawCall
        {
            public HvHypercallControl Control;
            public ulong InputGpa, OutputGpa;
            public bool WriteInput;
            public HvSignalEventDirectInput Signal;
            public HvPostMessageDirectInput Post;
        }

        private const ulong BeyondRam = 0x1000000000;      // 64 GiB: no memory there
        private const ulong IoApicMmio = 0xFEC00000;       // emulated device registers, not RAM
        private const ulong BiosRom = 0xFFFFF000;          // read-only memory

        private static HvStatus Issue(RawCall* call)
        {
            if (call->WriteInput)
            {
                if (call->Control.CallCode == (ushort)HvCallCode.HvCallSignalEventDirect) *(HvSignalEventDirectInput*)call->InputGpa = call->Signal;
                else *(HvPostMessageDirectInput*)call->InputGpa = call->Post;
            }
            if (call->Control.Fast) return Hypercall.Fast(call->Control, call->InputGpa, call->OutputGpa).Status;
            return Hypercall.Slow(call->Control, (void*)call->InputGpa, (void*)call->OutputGpa).Status;
        }

        // Issues `call`, expects `status`, and checks that no SIM or SIEF page or
        // interrupt count changed and, on failure, that the output was not written.
        private static void ExpectStatus(RawCall* call, HvStatus status, Text what)
        {
            byte* output = call->OutputGpa >= Scratch.Base && call->OutputGpa < Scratch.Base + Scratch.Bytes ? (byte*)call->OutputGpa : null;
            if (output != null) Memory.Fill(output, 0xA5, 8);
            HvStatus got = Issue(call);
            Report(what, got);
            Expect.Equal(status, got, what);
            if (output != null && status != HvStatus.Success)
                for (int i = 0; i < 8; i++) Expect.Equal(0xA5ul, output[i]);    // the output of a failed call is not written
            Expect.True(Snapshot.Unchanged());    // SIM, SIEF pages and interrupt counts unchanged by a refused call
        }

        // What one bad input changes in a good call: a field of the control word,
        // a GPA, or a field of the input.
        private enum Change
        {
            RepCount, RepStartIndex, VariableHeaderSize,
            RegisterForm,       // the fast form: RDX = HV_PARTITION_ID_SELF, R8 = value, nothing written to memory
            InputGpa,           // the input written at GPA value
            InputNotRam,        // the input GPA is value, which is not RAM the guest may write: nothing written
            OutputGpa,
            Partition, Vtl, Sint, Flag, Vp,
            MessageType, PayloadSize,
        }

        private static void Apply(RawCall* c, Change change, ulong value)
        {
            bool signal = c->Control.CallCode == (ushort)HvCallCode.HvCallSignalEventDirect;
            switch (change)
            {
                case Change.RepCount: c->Control.RepCount = (ushort)value; break;
                case Change.RepStartIndex: c->Control.RepStartIndex = (ushort)value; break;
                case Change.VariableHeaderSize: c->Control.VariableHeaderSize = (uint)value; break;
                case Change.RegisterForm: c->Control.Fast = true; c->WriteInput = false; c->InputGpa = HvConstants.HV_PARTITION_ID_SELF; c->OutputGpa = value; break;
                case Change.InputGpa: c->InputGpa = value; break;
                case Change.InputNotRam: c->WriteInput = false; c->InputGpa = value; break;
                case Change.OutputGpa: c->OutputGpa = value; break;
                case Change.Partition: if (signal) c->Signal.TargetPartition = value; else c->Post.PartitionId = value; break;
                case Change.Vtl: if (signal) c->Signal.TargetVtl = (byte)value; else c->Post.Vtl = (byte)value; break;
                case Change.Sint: if (signal) c->Signal.TargetSint = (byte)value; else c->Post.Sint = (uint)value; break;
                case Change.Flag: c->Signal.FlagNumber = (ushort)value; break;
                case Change.Vp: if (signal) c->Signal.TargetVp = (uint)value; else c->Post.VpIndex = (uint)value; break;
                case Change.MessageType: c->Post.Message.Header.MessageType = (uint)value; break;
                case Change.PayloadSize: c->Post.Message.Header.PayloadSize = (byte)value; break;
            }
        }

        // One row of the tables below: the good call with one change gets `status`.
        private static void SignalRefused(Change change, ulong value, HvStatus status, Text what)
        {
            RawCall c = default;
            c.Control = HvHypercallControl.For(HvCallCode.HvCallSignalEventDirect);
            c.InputGpa = Scratch.Base;
            c.OutputGpa = Scratch.Base + 2048;
            c.WriteInput = true;
            c.Signal.TargetPartition = HvConstants.HV_PARTITION_ID_SELF;
            c.Signal.TargetVp = Vp.Current->Index;
            c.Signal.TargetVtl = 0;
            c.Signal.TargetSint = EventSint;
            c.Signal.FlagNumber = 1;
            Apply(&c, change, value);
            ExpectStatus(&c, status, what);
        }

        private static void PostRefused(Change change, ulong value, HvStatus status, Text what)
        {
            RawCall c = default;
            c.Control = HvHypercallControl.For(HvCallCode.HvCallPostMessageDirect);
            c.InputGpa = Scratch.Base;
            c.OutputGpa = 0;
            c.WriteInput = true;
            c.Post.PartitionId = HvConstants.HV_PARTITION_ID_SELF;
            c.Post.VpIndex = Vp.Current->Index;
            c.Post.Sint = MessageSint;
            c.Post.Message.Header.Type = TestMessageType;
            c.Post.Message.Header.PayloadSize = 8;
            Apply(&c, change, value);
            ExpectStatus(&c, status, what);
        }

        // In the order the hypervisor checks: control word, GPAs, input fields, target.
        private static void SignalBadInputStatuses()
        {
            if (!Need.DirectCallsImplemented()) return;
            Scratch.Ensure();
            Snapshot.Take();
            ulong input = Scratch.Base, output = Scratch.Base + 2048;
            SignalRefused(Change.RepCount, 1, HvStatus.InvalidHypercallInput, "rep count 1"u8);
            SignalRefused(Change.RepStartIndex, 1, HvStatus.InvalidHypercallInput, "rep start 1"u8);
            SignalRefused(Change.VariableHeaderSize, 1, HvStatus.InvalidHypercallInput, "variable header 1"u8);
            SignalRefused(Change.RegisterForm, EventSint, HvStatus.InvalidHypercallInput, "register form (its output needs XMM fast output)"u8);
            SignalRefused(Change.InputGpa, input + 4, HvStatus.InvalidAlignment, "input GPA 4-byte aligned"u8);
            SignalRefused(Change.InputGpa, input + 4096 - 8, HvStatus.InvalidHypercallInput, "input crosses a page"u8);
            SignalRefused(Change.OutputGpa, output + 2, HvStatus.InvalidAlignment, "output GPA 2-byte aligned"u8);
            SignalRefused(Change.OutputGpa, Scratch.Base + 4096 - 4, HvStatus.InvalidHypercallInput, "output crosses a page"u8);
            SignalRefused(Change.InputNotRam, BeyondRam, HvStatus.InvalidHypercallInput, "input beyond guest RAM"u8);
            SignalRefused(Change.InputNotRam, IoApicMmio, HvStatus.InvalidHypercallInput, "input in MMIO"u8);
            SignalRefused(Change.OutputGpa, BeyondRam, HvStatus.InvalidHypercallInput, "output beyond guest RAM"u8);
            SignalRefused(Change.OutputGpa, IoApicMmio, HvStatus.InvalidHypercallInput, "output in MMIO"u8);
            SignalRefused(Change.OutputGpa, BiosRom, HvStatus.InvalidHypercallInput, "output in ROM"u8);
            SignalRefused(Change.Partition, 0, HvStatus.InvalidParameter, "partition 0"u8);
            SignalRefused(Change.Partition, 0x1234, HvStatus.InvalidParameter, "partition 0x1234"u8);
            SignalRefused(Change.Vtl, 1, HvStatus.InvalidParameter, "VTL 1"u8);
            SignalRefused(Change.Vtl, 2, HvStatus.InvalidParameter, "VTL 2"u8);
            SignalRefused(Change.Vtl, 0xFF, HvStatus.InvalidParameter, "VTL 255"u8);
            SignalRefused(Change.Sint, 0, HvStatus.InvalidParameter, "SINT 0 (the intercept SINT)"u8);
            SignalRefused(Change.Sint, 16, HvStatus.InvalidParameter, "SINT 16"u8);
            SignalRefused(Change.Sint, 0xFF, HvStatus.InvalidParameter, "SINT 255"u8);
            SignalRefused(Change.Flag, 2048, HvStatus.InvalidParameter, "flag 2048"u8);
            SignalRefused(Change.Flag, 0xFFFF, HvStatus.InvalidParameter, "flag 65535"u8);
            SignalRefused(Change.Vp, (uint)Vp.Count, HvStatus.InvalidVpIndex, "VP index one past the last VP"u8);
            SignalRefused(Change.Vp, HvConstants.HV_ANY_VP, HvStatus.InvalidVpIndex, "HV_ANY_VP"u8);
            SignalRefused(Change.Vp, 0x7FFFFFFF, HvStatus.InvalidVpIndex, "VP index 0x7FFFFFFF"u8);
            Clock.Delay(QuietMs);
            Snapshot.ExpectUnchanged("after every refused SignalEventDirect"u8);
        }

        private static void PostBadInputStatuses()
        {
            if (!Need.DirectCallsImplemented()) return;
            Scratch.Ensure();
            Snapshot.Take();
            ulong input = Scratch.Base;
            PostRefused(Change.RepCount, 2, HvStatus.InvalidHypercallInput, "rep count 2"u8);
            PostRefused(Change.VariableHeaderSize, 3, HvStatus.InvalidHypercallInput, "variable header 3"u8);
            PostRefused(Change.RegisterForm, 0, HvStatus.InvalidHypercallInput, "register form (280 bytes of input)"u8);
            PostRefused(Change.InputGpa, input + 12, HvStatus.InvalidAlignment, "input GPA 4-byte aligned"u8);
            PostRefused(Change.InputGpa, input + 4096 - 272, HvStatus.InvalidHypercallInput, "input crosses a page"u8);
            PostRefused(Change.InputNotRam, BeyondRam, HvStatus.InvalidHypercallInput, "input beyond guest RAM"u8);
            PostRefused(Change.InputNotRam, IoApicMmio, HvStatus.InvalidHypercallInput, "input in MMIO"u8);
            PostRefused(Change.Partition, 7, HvStatus.InvalidParameter, "partition 7"u8);
            PostRefused(Change.Vtl, 1, HvStatus.InvalidParameter, "VTL 1"u8);
            PostRefused(Change.Sint, 16, HvStatus.InvalidParameter, "SINT 16"u8);
            PostRefused(Change.Sint, 0x100 | MessageSint, HvStatus.InvalidParameter, "SINT with bits above the low byte"u8);
            PostRefused(Change.MessageType, 0, HvStatus.InvalidParameter, "message type 0"u8);
            PostRefused(Change.MessageType, (uint)HvMessageType.HvMessageTimerExpired, HvStatus.InvalidParameter, "a hypervisor message type (bit 31)"u8);
            PostRefused(Change.PayloadSize, 241, HvStatus.InvalidParameter, "payload size 241"u8);
            PostRefused(Change.PayloadSize, 255, HvStatus.InvalidParameter, "payload size 255"u8);
            PostRefused(Change.Vp, (uint)Vp.Count, HvStatus.InvalidVpIndex, "VP index one past the last VP"u8);
            PostRefused(Change.Vp, HvConstants.HV_ANY_VP, HvStatus.InvalidVpIndex, "HV_ANY_VP"u8);
            Clock.Delay(QuietMs);
            Snapshot.ExpectUnchanged("after every refused PostMessageDirect"u8);
        }

        // A target whose SynIC cannot take the event or message: SIEFP off,
        // SIMP off, SCONTROL off, a masked SINT (for messages). The target is
        // another VP, whose registers that VP itself changes.
        private struct MsrWrite { public uint Msr; public ulong Value; }
        private static void WriteMsrHere(void* argument) => Cpu.WriteMsr(((MsrWrite*)argument)->Msr, ((MsrWrite*)argument)->Value);

        private static void SetMsr(Vp* vp, uint msr, ulong value)
        {
            MsrWrite w = default;
            w.Msr = msr;
            w.Value = value;
            RunHereOrOn(vp, &WriteMsrHere, &w);
        }

        private static void DisabledSynicPartsRefuse()
        {
            if (!Need.DirectCallsImplemented()) return;
            Vp* target = LastVp;
            byte* payload = stackalloc byte[8];
            Payload.Fill(payload, 8, 3);     // posted below: its bytes go into the hypercall input and one message
            ulong siefp = (ulong)target->Sief | 1, simp = (ulong)target->Sim | 1;

            SetMsr(target, HvMsr.Siefp, (ulong)target->Sief);              // enable bit clear
            HvCallResult noSief = SignalTo(target->Index, 3);
            ulong taken = target->MessagesTaken[MessageSint];
            HvCallResult postWithoutSief = PostTo(target->Index, TestMessageType, payload, 8);
            bool postArrived = Clock.WaitAtLeast(&target->MessagesTaken[MessageSint], taken + 1, WaitMs);
            SetMsr(target, HvMsr.Siefp, siefp);

            SetMsr(target, HvMsr.Simp, (ulong)target->Sim);
            HvCallResult noSim = PostTo(target->Index, TestMessageType, payload, 8);
            SetMsr(target, HvMsr.Simp, simp);

            SetMsr(target, HvMsr.Scontrol, 0);
            HvCallResult signalOff = SignalTo(target->Index, 3);
            HvCallResult postOff = PostTo(target->Index, TestMessageType, payload, 8);
            SetMsr(target, HvMsr.Scontrol, 1);

            SintSetting.Apply(target, MessageSint, masked: true, autoEoi: Synic.AutoEoi);
            HvCallResult postMasked = PostTo(target->Index, TestMessageType, payload, 8);
            SintSetting.Restore(target, MessageSint);
            Clock.Delay(QuietMs);

            Expect.Equal(HvStatus.InvalidSynicState, noSief.Status);    // SignalEventDirect with the target's SIEFP disabled
            Expect.Equal(HvStatus.Success, postWithoutSief.Status);    // PostMessageDirect needs no SIEF page
            Expect.True(postArrived);    // that message was taken
            Expect.Equal(HvStatus.InvalidSynicState, noSim.Status);    // PostMessageDirect with the target's SIMP disabled
            Expect.Equal(HvStatus.InvalidSynicState, signalOff.Status);    // SignalEventDirect with the target's SCONTROL disabled
            Expect.Equal(HvStatus.InvalidSynicState, postOff.Status);    // PostMessageDirect with the target's SCONTROL disabled
            Expect.Equal(HvStatus.InvalidSynicState, postMasked.Status);    // PostMessageDirect to a masked SINT
            Expect.False(Synic.FlagIsSet(target, EventSint, 3));    // no flag was set
            Expect.Equal(HvMessageType.HvMessageTypeNone, target->Sim[MessageSint].Header.Type);    // the slot is free
        }

        // ---- the storm ----------------------------------------------------------

        // Every VP at once signals VP 0: one shared flag, over and over, and flags
        // of its own. VP 0 takes each flag of its own exactly once, and takes the
        // shared flag exactly as often as the callers were told NewlySignaled.
        private const ushort SharedFlag = 0;

        private struct StormWork
        {
            public int Sender, Rounds;
            public uint Target;
            public ulong SharedNewly, OwnNotNewly, Errors;
            public HvStatus FirstError;
        }

        private static ushort OwnFlag(int sender, int round, int rounds) => (ushort)(1 + sender * rounds + round);

        private static void StormFromHere(void* argument)
        {
            StormWork* w = (StormWork*)argument;
            for (int round = 0; round < w->Rounds; round++)
            {
                HvCallResult shared = Hypercall.SignalEventDirect(HvConstants.HV_PARTITION_ID_SELF, w->Target, 0, EventSint, SharedFlag);
                HvCallResult own = Hypercall.SignalEventDirect(HvConstants.HV_PARTITION_ID_SELF, w->Target, 0, EventSint, OwnFlag(w->Sender, round, w->Rounds));
                if (shared.Status != HvStatus.Success || own.Status != HvStatus.Success)
                {
                    if (w->Errors++ == 0) w->FirstError = shared.Status != HvStatus.Success ? shared.Status : own.Status;
                    continue;
                }
                if (shared.NewlySignaled) w->SharedNewly++;
                if (!own.NewlySignaled) w->OwnNotNewly++;
            }
        }

        private static void Storm()
        {
            if (!Need.DirectCallsImplemented()) return;
            int n = Vp.Count;
            int rounds = (HvConstants.HV_EVENT_FLAGS_COUNT - 1) / n;
            if (rounds > 250) rounds = 250;
            Vp* target = Vp.Get(0);
            StartRecording();
            ulong taken = target->FlagsTaken[EventSint];
            StormWork* work = stackalloc StormWork[n];
            for (int i = 0; i < n; i++)
            {
                work[i] = default;
                work[i].Sender = i;
                work[i].Rounds = rounds;
                work[i].Target = target->Index;
            }
            for (int i = 1; i < n; i++) Expect.True(Smp.Post(PerCpu.Get(i), &StormFromHere, &work[i]));    // work posted to VP i
            StormFromHere(&work[0]);
            for (int i = 1; i < n; i++) Expect.True(Smp.Wait(PerCpu.Get(i), 60000));    // VP i finished its share of the storm
            ulong sharedNewly = 0;
            for (int i = 0; i < n; i++) sharedNewly += work[i].SharedNewly;
            Clock.WaitAtLeast(&target->FlagsTaken[EventSint], taken + (ulong)(n * rounds) + sharedNewly, WaitMs);
            Clock.Delay(QuietMs);
            Synic.EventHandlers[EventSint] = null;

            Console.Print("direct storm: %u VPs x %u rounds; shared flag newly signaled %u times, taken %u times\n"u8, n, rounds, sharedNewly, s_sharedTaken[0]);

            for (int i = 0; i < n; i++)
            {
                Expect.Equal(0ul, work[i].Errors);    // calls that did not succeed
                if (work[i].Errors != 0) Expect.Equal(HvStatus.Success, work[i].FirstError);    // the first failed call's status
                Expect.Equal(0ul, work[i].OwnNotNewly);    // own flags not newly signaled
                for (int round = 0; round < rounds; round++)
                    Expect.Equal(1ul, Received(0, OwnFlag(i, round, rounds)));    // times VP 0 took one own flag of VP i
            }
            Expect.True(sharedNewly >= 1);    // the shared flag was newly signaled at least once
            Expect.Equal(sharedNewly, s_sharedTaken[0]);    // times VP 0 took the shared flag = times callers were told NewlySignaled
            Expect.Equal(taken + (ulong)(n * rounds) + sharedNewly, target->FlagsTaken[EventSint]);    // flags VP 0 took in all
        }

        // ---- the fuzz -----------------------------------------------------------

        // Thousands of random 0xC0/0xC1 calls: random control words, fields and
        // GPAs (misaligned, page-crossing, beyond RAM, in MMIO). Each must get one
        // of the documented statuses; the host side (tools/nested/run.sh) fails the
        // run if L1's kernel logged a problem. fuzz-seed= and fuzz-calls= replay one.
        private const ulong DefaultSeed = 0x5EED0C0C1D1EC7ul;
        private const int DefaultCalls = 4000;

        private static void Discard(int sint)
        {
            Vp* vp = Vp.Current;
            ulong* area = Synic.SiefArea(vp, sint);
            for (int w = 0; w < 32; w++) if (area[w] != 0) Cpu.AtomicSwap(&area[w], 0);
            HvMessage* slot = &vp->Sim[sint];
            if (slot->Header.Type == HvMessageType.HvMessageTypeNone) return;
            bool pending = (slot->Header.MessageFlags & HvMessageHeader.MessagePending) != 0;
            slot->Header.Type = HvMessageType.HvMessageTypeNone;
            if (pending) Cpu.WriteMsr(HvMsr.Eom, 0);
        }

        private static bool Documented(HvStatus s) => DirectCalls.Implemented
            ? s == HvStatus.Success || s == HvStatus.InvalidHypercallInput || s == HvStatus.InvalidAlignment || s == HvStatus.InvalidParameter
              || s == HvStatus.InvalidVpIndex || s == HvStatus.InvalidSynicState || s == HvStatus.ObjectInUse
            : s == HvStatus.InvalidHypercallCode || s == HvStatus.InvalidHypercallInput;   // stock KVM checks the control word's reserved bits first

        private static ulong RandomGpa(ref FuzzRandom rng, ulong length)
        {
            switch (rng.Below(8))
            {
                case 0: return BeyondRam + rng.Below(1ul << 30) * 8;
                case 1: return IoApicMmio + rng.Below(64) * 8;
                case 2: return Scratch.Base + 4096 - length + rng.Below(length) / 8 * 8 + 8;   // crosses the first page
                case 3: return Scratch.Base + rng.Below(Scratch.Bytes - 512);                  // any alignment
                default: return Scratch.Base + rng.Below((Scratch.Bytes - 512) / 8) * 8;       // 8-byte aligned
            }
        }

        private static void Fuzz()
        {
            if (!Need.DirectProbe()) return;
            FuzzRandom rng = FuzzRandom.FromOption("fuzz-seed"u8, DefaultSeed);
            int calls = BootInfo.TryGetOption("fuzz-calls"u8, out byte* text, out int length) ? (int)Format.ParseNumber(text, length) : DefaultCalls;
            Console.Print("direct fuzz: %u calls; replay with --test=direct.fuzz --append \"fuzz-seed=0x%x fuzz-calls=%u\"\n"u8, calls, rng.Seed, calls);
            Scratch.Ensure();
            for (int s = 0; s < Synic.SintCount; s++) Synic.RawHandlers[s] = &Discard;
            ulong* histogram = stackalloc ulong[64];
            for (int i = 0; i < 64; i++) histogram[i] = 0;
            ulong undocumented = 0;
            HvStatus firstUndocumented = HvStatus.Success;
            ulong firstUndocumentedCall = 0;
            for (int call = 0; call < calls; call++)
            {
                bool signal = rng.Below(2) == 0;
                RawCall c = default;
                c.Control = HvHypercallControl.For(signal ? HvCallCode.HvCallSignalEventDirect : HvCallCode.HvCallPostMessageDirect);
                if (rng.Below(8) == 0) c.Control.Fast = true;
                if (rng.Below(10) == 0) c.Control.RepCount = (ushort)rng.Below(4096);
                if (rng.Below(10) == 0) c.Control.VariableHeaderSize = (uint)rng.Below(1024);
                if (rng.Below(20) == 0) c.Control.Value |= rng.Next() & 0xF000F0007FFE0000ul & ~0x0FFF0FFF07FE0000ul;   // reserved bits 27-31, 44-47, 60-63
                ulong inputLength = signal ? 16ul : 280ul;
                c.InputGpa = RandomGpa(ref rng, inputLength);
                c.OutputGpa = signal ? RandomGpa(ref rng, 8) : rng.Next();
                c.WriteInput = c.InputGpa >= Scratch.Base && c.InputGpa + inputLength <= Scratch.Base + Scratch.Bytes;
                uint vp = rng.Below(4) switch { 0 => HvConstants.HV_VP_INDEX_SELF, 1 => (uint)rng.Next(), _ => (uint)rng.Below((ulong)Vp.Count + 1) };
                ulong partition = rng.Below(8) == 0 ? rng.Next() : HvConstants.HV_PARTITION_ID_SELF;
                byte vtl = rng.Below(8) == 0 ? (byte)rng.Next() : (byte)0;
                if (signal)
                {
                    c.Signal.TargetPartition = partition;
                    c.Signal.TargetVp = vp;
                    c.Signal.TargetVtl = vtl;
                    c.Signal.TargetSint = rng.Below(8) == 0 ? (byte)rng.Next() : (byte)rng.Below(16);
                    c.Signal.FlagNumber = rng.Below(8) == 0 ? (ushort)rng.Next() : (ushort)rng.Below(2048);
                }
                else
                {
                    c.Post.PartitionId = partition;
                    c.Post.VpIndex = vp;
                    c.Post.Vtl = vtl;
                    c.Post.Sint = rng.Below(8) == 0 ? (uint)rng.Next() : (uint)rng.Below(16);
                    c.Post.Message.Header.MessageType = rng.Below(8) == 0 ? (uint)rng.Next() : (uint)rng.Below(0x100);
                    c.Post.Message.Header.PayloadSize = (byte)rng.Next();
                    c.Post.Message.Header.MessageFlags = (byte)rng.Next();
                    c.Post.Message.Header.Sender = rng.Next();
                    for (int b = 0; b < HvConstants.HV_MESSAGE_PAYLOAD_BYTE_COUNT; b++) c.Post.Message.Payload[b] = (byte)rng.Next();
                }
                HvStatus status = Issue(&c);
                histogram[(ulong)status < 63 ? (int)status : 63]++;
                if (!Documented(status) && undocumented++ == 0) { firstUndocumented = status; firstUndocumentedCall = (ulong)call; }
            }
            Clock.Delay(QuietMs);
            for (int s = 0; s < Synic.SintCount; s++) Synic.RawHandlers[s] = null;

            Console.Write("direct fuzz: statuses"u8);
            for (int i = 0; i < 64; i++)
            {
                if (histogram[i] == 0) continue;
                Console.Print(" %s=%u"u8, HvStatusName.Of((HvStatus)i), histogram[i]);
            }
            Console.WriteLine();
            Expect.Equal(0ul, undocumented);    // calls answered with an undocumented status
            if (undocumented != 0)
            {
                Expect.Equal(HvStatus.Success, firstUndocumented);    // the first undocumented status
                Expect.Equal(0ul, firstUndocumentedCall);    // the call number that got it
            }
            if (DirectCalls.Implemented)
                // the fuzz reached success, parameter and alignment answers
                Expect.True(histogram[(int)HvStatus.Success] > 0 && histogram[(int)HvStatus.InvalidParameter] > 0 && histogram[(int)HvStatus.InvalidAlignment] > 0);
            // The kernel still works: a plain call to itself round-trips.
            if (DirectCalls.Implemented)
            {
                ulong flags = Vp.Current->FlagsTaken[EventSint];
                HvCallResult r = SignalTo(Vp.Current->Index, 2000);
                Expect.Equal(HvStatus.Success, r.Status);    // a good call after the fuzz
                Expect.True(Clock.WaitAtLeast(&Vp.Current->FlagsTaken[EventSint], flags + 1, WaitMs));    // its flag was taken
            }
        }

        // ---- helpers ------------------------------------------------------------

        // One line per call that matters, so a run shows what the hypervisor answered:
        // "direct: <what>: 0x0 SUCCESS, NewlySignaled 1".
        private static void Report(Text what, HvStatus status, int newlySignaled = -1)
        {
            Console.Print("direct: %s: 0x%x %s"u8, what, (ulong)status, HvStatusName.Of(status));
            if (newlySignaled >= 0) Console.Print(", NewlySignaled %u"u8, newlySignaled);
            Console.WriteLine();
        }

        private static void Report(Text what, HvCallResult r) => Report(what, r.Status, r.NewlySignaled ? 1 : 0);

        // "direct: VP 1 -> VP index 0 SignalEventDirect: 0x0 SUCCESS, NewlySignaled 1"
        private static void ReportPair(int from, uint toIndex, HvStatus status, bool newlySignaled)
        {
            Console.Print("direct: VP %u -> VP index %u SignalEventDirect: 0x%x %s, NewlySignaled %u\n"u8, from, toIndex, (ulong)status, HvStatusName.Of(status), newlySignaled ? 1 : 0);
        }

        // Two contiguous pages the calls may read and write: inputs and outputs at
        // any offset, page-crossing ones included, without touching kernel data.
        private static class Scratch
        {
            public const ulong Bytes = 8192;
            public static ulong Base;
            public static void Ensure()
            {
                if (Base == 0) Base = PageAllocator.AllocateContiguous(Bytes / 4096, zero: true);
            }
        }

        // Every VP's SIM and SIEF pages and SINT interrupt counts.
        private static class Snapshot
        {
            private static byte* s_pages;
            private static ulong s_interrupts;

            public static byte* Sief(int vp) => s_pages + vp * 8192 + 4096;

            private static ulong Interrupts()
            {
                ulong total = 0;
                for (int i = 0; i < Vp.Count; i++) for (int s = 0; s < Synic.SintCount; s++) total += Vp.Get(i)->SintInterrupts[s];
                return total;
            }

            public static void Take()
            {
                if (s_pages == null) s_pages = (byte*)PageAllocator.AllocateContiguous((ulong)Vp.MaxVps * 2);
                for (int i = 0; i < Vp.Count; i++)
                {
                    Memory.Copy(s_pages + i * 8192, Vp.Get(i)->Sim, 4096);
                    Memory.Copy(Sief(i), Vp.Get(i)->Sief, 4096);
                }
                s_interrupts = Interrupts();
            }

            public static bool SimsUnchanged()
            {
                for (int i = 0; i < Vp.Count; i++) if (!Memory.Equal(s_pages + i * 8192, Vp.Get(i)->Sim, 4096)) return false;
                return true;
            }

            public static bool Unchanged()
            {
                if (!SimsUnchanged() || Interrupts() != s_interrupts) return false;
                for (int i = 0; i < Vp.Count; i++) if (!Memory.Equal(Sief(i), Vp.Get(i)->Sief, 4096)) return false;
                return true;
            }

            public static void ExpectUnchanged(Text what)
            {
                Expect.Equal(s_interrupts, Interrupts(), what);
                for (int i = 0; i < Vp.Count; i++)
                {
                    Expect.True(Memory.Equal(s_pages + i * 8192, Vp.Get(i)->Sim, 4096), what);
                    Expect.True(Memory.Equal(Sief(i), Vp.Get(i)->Sief, 4096), what);
                }
            }
        }
    }

    // A SINT's configuration on any VP (the VP itself writes its SINTx MSR).
    public unsafe struct SintSetting
    {
        public int Sint;
        public bool Masked, AutoEoi;

        private static void ApplyHere(void* setting)
        {
            SintSetting* s = (SintSetting*)setting;
            Synic.Configure(s->Sint, s->Masked, s->AutoEoi);
        }

        public static void Apply(Vp* vp, int sint, bool masked, bool autoEoi)
        {
            SintSetting s = default;
            s.Sint = sint;
            s.Masked = masked;
            s.AutoEoi = autoEoi;
            if (vp == Vp.Current) ApplyHere(&s);
            else Expect.True(Smp.RunOn(&vp->Cpu, &ApplyHere, &s));    // the SINT was configured on the other VP
        }

        // Back to the boot configuration: unmasked, auto-EOI as the hypervisor recommends.
        public static void Restore(Vp* vp, int sint) => Apply(vp, sint, masked: false, autoEoi: Synic.AutoEoi);
    }

    // xorshift64*: a small, fast generator whose sequence a seed fixes, so a
    // fuzz run replays exactly.
    public struct FuzzRandom
    {
        public ulong Seed;
        private ulong _state;

        public static FuzzRandom FromSeed(ulong seed)
        {
            FuzzRandom r = default;
            r.Seed = seed;
            r._state = seed != 0 ? seed : 0x9E3779B97F4A7C15ul;
            return r;
        }

        public static unsafe FuzzRandom FromOption(ReadOnlySpan<byte> name, ulong fallback)
        {
            if (!BootInfo.TryGetOption(name, out byte* text, out int length)) return FromSeed(fallback);
            return FromSeed(Format.ParseNumber(text, length));
        }

        public ulong Next()
        {
            _state ^= _state >> 12;
            _state ^= _state << 25;
            _state ^= _state >> 27;
            return _state * 0x2545F4914F6CDD1Dul;
        }

        public ulong Below(ulong bound) => bound == 0 ? 0 : Next() % bound;
    }
}
