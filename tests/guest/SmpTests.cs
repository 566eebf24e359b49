using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;

namespace Kernel.TestMode
{
    // Every VP, and signals between VPs (kvm-unit-tests hyperv_synic's SINT
    // storm, hyperv_connections across VPs, synthetic IPIs, and an event
    // ping-pong). With one VP the cross-VP tests skip with the reason.
    public static unsafe class SmpTests
    {
        public static void Register()
        {
            TestRunner.Add("smp.all_madt_processors_online"u8, &AllProcessorsOnline);
            TestRunner.Add("smp.run_on_each_vp"u8, &RunOnEachVp);
            TestRunner.Add("smp.vp_index_follows_apic_order"u8, &VpIndexFollowsApicOrder);
            TestRunner.Add("smp.each_vp_has_its_own_synic_pages"u8, &EachVpHasOwnPages);
            TestRunner.Add("cross.sint_storm"u8, &SintStorm);
            TestRunner.Add("cross.event_connection_interrupts_only_the_target_vp"u8, &EventConnectionToOtherVp);
            TestRunner.Add("cross.message_lands_in_the_target_vps_slot"u8, &MessageToOtherVp);
            TestRunner.Add("cross.synthetic_ipi_hits_exactly_the_mask"u8, &SyntheticIpi);
            TestRunner.Add("cross.every_stimer_on_every_vp"u8, &TimerOnEveryVp);
            TestRunner.Add("cross.tsc_page_monotonic_across_vps"u8, &TscPageMonotonicAcrossVps);
            TestRunner.Add("cross.event_ping_pong"u8, &EventPingPong);
        }

        private const ulong WaitMs = 3000;

        // ---- bring-up ------------------------------------------------------------------

        private static void AllProcessorsOnline()
        {
            if (!Need.MadtProcessors()) return;
            Expect.Equal((ulong)Acpi.CpuCount, (ulong)Vp.Count);    // VPs registered vs MADT processors
            Expect.Equal((ulong)Acpi.CpuCount, (ulong)Smp.OnlineCount());    // VPs online
            Expect.Equal((ulong)Acpi.ApicIds[0], (ulong)PerCpu.Get(0)->ApicId);    // the boot VP is the MADT's first processor
        }

        private struct Seen { public ulong Number; public ulong ApicId; public ulong Cr4; }

        private static void WhoAmI(void* result)
        {
            Seen* seen = (Seen*)result;
            seen->Number = (ulong)PerCpu.Current->Number;
            seen->ApicId = Apic.Id;
            seen->Cr4 = Cpu.ReadCr4();
        }

        private static void RunOnEachVp()
        {
            if (!Need.Vps()) return;
            for (int i = 1; i < PerCpu.Count; i++)
            {
                Seen seen = default;
                Expect.True(Smp.RunOn(PerCpu.Get(i), &WhoAmI, &seen));    // work ran within 5 s
                Expect.Equal((ulong)i, seen.Number);    // PerCpu.Current->Number where the work ran
                Expect.Equal((ulong)PerCpu.Get(i)->ApicId, seen.ApicId);    // APIC id where the work ran
                Expect.Equal(3ul << 9, seen.Cr4 & (3ul << 9));    // SSE enabled on the AP (CR4.OSFXSR|OSXMMEXCPT)
            }
        }

        private static void ReadVpIndex(void* result) => *(ulong*)result = Cpu.ReadMsr(HvMsr.VpIndex);

        private static void VpIndexFollowsApicOrder()
        {
            if (!Need.VpIndex() || !Need.Vps()) return;
            for (int i = 0; i < Vp.Count; i++)
            {
                ulong index = 0;
                if (i == 0) ReadVpIndex(&index); else Smp.RunOn(PerCpu.Get(i), &ReadVpIndex, &index);
                Expect.Equal((ulong)i, index);    // HV_X64_MSR_VP_INDEX on the i-th MADT processor
                Expect.Equal(index, (ulong)Vp.Get(i)->Index);    // the kernel's record of it
            }
        }

        private struct PageMsrs { public ulong Simp, Siefp; }
        private static void ReadPageMsrs(void* result)
        {
            ((PageMsrs*)result)->Simp = Cpu.ReadMsr(HvMsr.Simp);
            ((PageMsrs*)result)->Siefp = Cpu.ReadMsr(HvMsr.Siefp);
        }

        private static void EachVpHasOwnPages()
        {
            if (!Need.Synic() || !Need.Vps()) return;
            for (int i = 0; i < Vp.Count; i++)
            {
                Vp* vp = Vp.Get(i);
                PageMsrs msrs = default;
                if (i == 0) ReadPageMsrs(&msrs); else Smp.RunOn(&vp->Cpu, &ReadPageMsrs, &msrs);
                Expect.Equal((ulong)vp->Sim | 1, msrs.Simp);    // SIMP on that VP
                Expect.Equal((ulong)vp->Sief | 1, msrs.Siefp);    // SIEFP on that VP
                for (int j = 0; j < i; j++)
                {
                    Vp* other = Vp.Get(j);
                    // pages differ between VPs
                    Expect.True(vp->Sim != other->Sim && vp->Sief != other->Sief && vp->HypercallInput != other->HypercallInput);
                }
            }
        }

        // ---- the SINT storm --------------------------------------------------------------

        private static void ConfigureStormSints(void* restore)
        {
            for (int sint = 0; sint < Synic.SintCount; sint++)
                Synic.Configure(sint, masked: false, autoEoi: restore != null ? Synic.AutoEoi : sint % 2 == 0);
        }

        private static void FireAllSintsAtNext(void* unused)
        {
            uint target = Vp.Get((PerCpu.Current->Number + 1) % Vp.Count)->Index;
            for (uint sint = 0; sint < 16; sint++) TestDevice.RaiseSint(target, sint);
        }

        private static void OnEachVp(delegate*<void*, void> work, void* argument)
        {
            for (int i = 1; i < PerCpu.Count; i++) Smp.RunOn(PerCpu.Get(i), work, argument);
            work(argument);
        }

        // Every VP fires all 16 SINTs at the next VP; each VP then counts exactly
        // one interrupt per SINT, on its own vector, with even SINTs auto-EOI and
        // odd SINTs EOI'd by the handler (kvm-unit-tests hyperv_synic).
        private static void SintStorm()
        {
            if (!Need.TestDevice() || !Need.Vps()) return;
            int n = Vp.Count;
            ulong* before = stackalloc ulong[n * 16];
            for (int i = 0; i < n; i++) for (int s = 0; s < 16; s++) before[i * 16 + s] = Vp.Get(i)->SintInterrupts[s];
            OnEachVp(&ConfigureStormSints, null);
            for (int i = 0; i < n; i++) for (uint s = 0; s < 16; s++) TestDevice.CreateSintRoute(Vp.Get(i)->Index, s);
            OnEachVp(&FireAllSintsAtNext, null);
            Clock.Delay(200);
            bool all = true;
            for (int i = 0; i < n; i++)
                for (int s = 0; s < 16; s++)
                    all &= Clock.WaitAtLeast(&Vp.Get(i)->SintInterrupts[s], before[i * 16 + s] + 1, WaitMs);
            Clock.Delay(50);
            for (int i = 0; i < n; i++) for (uint s = 0; s < 16; s++) TestDevice.DestroySintRoute(Vp.Get(i)->Index, s);
            OnEachVp(&ConfigureStormSints, (void*)1);
            Expect.True(all);    // every SINT of every VP interrupted
            for (int i = 0; i < n; i++)
            {
                ulong total = 0;
                for (int s = 0; s < 16; s++)
                {
                    ulong got = Vp.Get(i)->SintInterrupts[s] - before[i * 16 + s];
                    total += got;
                    Expect.Equal(1ul, got);    // interrupts on one SINT vector of one VP
                }
                Expect.Equal(16ul, total);    // interrupts counted by one VP's handler
            }
        }

        // ---- connections across VPs ------------------------------------------------------

        private static void EventConnectionToOtherVp()
        {
            if (!Need.TestDevice() || !Need.SignalEvents() || !Need.Vps()) return;
            const int sint = 5;
            const uint conn = 21;
            Vp* me = Vp.Current;
            Vp* target = Vp.Get(1);
            TestDevice.CreateEventConnection(conn, target->Index, sint);
            ulong targetInterrupts = target->SintInterrupts[sint], targetFlags = target->FlagsTaken[sint];
            ulong myInterrupts = me->SintInterrupts[sint];
            HvCallResult r = Hypercall.SignalEvent(conn, 0);
            bool arrived = Clock.WaitAtLeast(&target->FlagsTaken[sint], targetFlags + 1, WaitMs);
            Clock.Delay(50);
            TestDevice.DestroyEventConnection(conn);
            Expect.Equal(HvStatus.Success, r.Status);    // SignalEvent status
            Expect.True(arrived);    // VP 1 took the flag
            Expect.Equal(targetInterrupts + 1, target->SintInterrupts[sint]);    // VP 1 interrupted once
            Expect.Equal(myInterrupts, me->SintInterrupts[sint]);    // VP 0 not interrupted
            Expect.True(Memory.IsZero(Synic.SiefArea(me, sint), 256));    // VP 0's SIEF area untouched
        }

        private static void MessageToOtherVp()
        {
            if (!Need.TestDevice() || !Need.PostMessages() || !Need.Vps()) return;
            const int sint = 8;
            const uint conn = 22;
            Vp* me = Vp.Current;
            Vp* target = Vp.Get(Vp.Count - 1);
            TestDevice.CreateMessageConnection(conn, target->Index, sint);
            byte* payload = stackalloc byte[24];
            for (int i = 0; i < 24; i++) payload[i] = (byte)(0xA0 + i);
            ulong taken = target->MessagesTaken[sint], mine = me->MessagesTaken[sint];
            HvCallResult r = Hypercall.PostMessage(conn, 0x77, payload, 24);
            bool arrived = Clock.WaitAtLeast(&target->MessagesTaken[sint], taken + 1, WaitMs);
            TestDevice.DestroyMessageConnection(conn);
            Expect.Equal(HvStatus.Success, r.Status);    // PostMessage status
            if (!Expect.True(arrived)) return;    // the last VP took a message on SINT 8
            HvMessage* m = Synic.LastReceived(target, sint);
            Expect.Equal(0x77ul, m->Header.MessageType);    // message type
            Expect.True(Memory.Equal(m->Payload, payload, 24));    // payload
            Expect.Equal(mine, me->MessagesTaken[sint]);    // VP 0 took no message
        }

        // ---- synthetic IPIs ----------------------------------------------------------------

        private const byte IpiVector = 0x41;
        private static ulong* s_ipiCounts;

        private static void OnIpi(InterruptFrame* frame)
        {
            s_ipiCounts[PerCpu.Current->Number]++;
            Apic.EndOfInterrupt();
        }

        private static void SyntheticIpi()
        {
            if (!Need.SyntheticIpi() || !Need.Vps()) return;
            if (s_ipiCounts == null) s_ipiCounts = (ulong*)Heap.AllocateRaw(Vp.MaxVps * 8);
            for (int i = 0; i < Vp.Count; i++) s_ipiCounts[i] = 0;
            Interrupts.SetHandler(IpiVector, &OnIpi);
            // Every other AP, starting with VP 1: VPs 1 and 3 of 4, VP 1 of 2.
            ulong mask = 0;
            for (int i = 1; i < Vp.Count; i += 2) mask |= 1ul << (int)Vp.Get(i)->Index;
            HvCallResult r = Hypercall.SendSyntheticClusterIpi(IpiVector, mask);
            bool arrived = Clock.WaitAtLeast(&s_ipiCounts[1], 1, WaitMs);
            Clock.Delay(100);
            Interrupts.SetHandler(IpiVector, null);
            Expect.Equal(HvStatus.Success, r.Status);    // HvCallSendSyntheticClusterIpi status
            Expect.True(arrived);    // VP 1 interrupted
            for (int i = 0; i < Vp.Count; i++)
                Expect.Equal((mask >> (int)Vp.Get(i)->Index) & 1, s_ipiCounts[i]);    // IPIs taken by a VP (1 if in the mask, else 0)
        }

        // ---- time on every VP -------------------------------------------------------------

        // Arms each of the four timers in turn on the running VP; the result has
        // bit t set when timer t's message came back to this VP with TimerIndex t.
        private static void EachTimerHere(void* result)
        {
            ulong arrived = 0;
            for (int timer = 0; timer < SyntheticTimer.Count; timer++)
            {
                ulong taken = Vp.Current->MessagesTaken[TimeTests.TimerSint];
                SyntheticTimer.StartOneShot(timer, TimeTests.TimerSint, ReferenceTime.ReadCounter() + 20000);
                bool came = Clock.WaitAtLeast(&Vp.Current->MessagesTaken[TimeTests.TimerSint], taken + 1, 2000);
                SyntheticTimer.Stop(timer);
                if (came && ((HvTimerMessagePayload*)Synic.LastReceived(TimeTests.TimerSint)->Payload)->TimerIndex == timer)
                    arrived |= 1ul << timer;
            }
            *(ulong*)result = arrived;
        }

        private static void TimerOnEveryVp()
        {
            if (!Need.SyntheticTimers() || !Need.Vps()) return;
            for (int i = 0; i < Vp.Count; i++)
            {
                ulong result = 0;
                if (i == 0) EachTimerHere(&result); else Expect.True(Smp.RunOn(PerCpu.Get(i), &EachTimerHere, &result, 15000));    // work ran
                Expect.Equal(0xFul, result);    // timers whose message came back to the VP that armed them (bit per timer)
            }
        }

        private static void ReadTscPage(void* result) => ReferenceTime.TryReadTscPage(out *(ulong*)result);

        private static void TscPageMonotonicAcrossVps()
        {
            if (!Need.TscPage() || !Need.Vps()) return;
            ReferenceTime.EnableTscPage();
            for (int round = 0; round < 20; round++)
                for (int i = 1; i < Vp.Count; i++)
                {
                    ulong mine = 0, theirs = 0, again = 0;
                    ReadTscPage(&mine);
                    Smp.RunOn(PerCpu.Get(i), &ReadTscPage, &theirs);
                    ReadTscPage(&again);
                    if (!Expect.True(mine != 0 && mine <= theirs && theirs <= again)) return;    // TSC page time: VP 0, then another VP, then VP 0 again, never goes back
                }
        }

        // ---- event ping-pong ----------------------------------------------------------------

        private const int PingSint = 11;
        private const uint PingToVp1 = 31, PongToVp0 = 32;
        private static ulong s_pings, s_pongs, s_strayFlags;

        // Runs on VP 1 in interrupt context: every ping is answered with a pong.
        private static void OnPing(int sint, int flag)
        {
            if (flag == PingToVp1 && PerCpu.Current->Number == 1) { s_pings++; Hypercall.SignalEvent(PongToVp0, 0); }
            else if (flag == PongToVp0 && PerCpu.Current->Number == 0) s_pongs++;
            else s_strayFlags++;
        }

        public static int PingPongRounds = 100000;
        private const ulong PongDueMs = 1000, PongLostMs = 30000;

        // Where a lost round stopped: which side has the flag, who was interrupted.
        private static void ReportLostRound(int round)
        {
            Vp* vp0 = Vp.Get(0), vp1 = Vp.Get(1);
            Console.Print("ping-pong: round %u lost: pings %u pongs %u"u8, round, s_pings, s_pongs);
            Console.Print(", VP 1 SIEF word 0x%x interrupts %u, VP 0 SIEF word 0x%x interrupts %u\n"u8,
                Synic.SiefArea(vp1, PingSint)[0], vp1->SintInterrupts[PingSint], Synic.SiefArea(vp0, PingSint)[0], vp0->SintInterrupts[PingSint]);
        }

        // Two VPs exchange events in turn through two event connections; none may
        // be lost or duplicated. The round trip's median and p99 are printed.
        private static void EventPingPong()
        {
            if (!Need.TestDevice() || !Need.SignalEvents() || !Need.Vps()) return;
            TestDevice.CreateEventConnection(PingToVp1, Vp.Get(1)->Index, PingSint);
            TestDevice.CreateEventConnection(PongToVp0, Vp.Get(0)->Index, PingSint);
            Synic.EventHandlers[PingSint] = &OnPing;
            s_pings = s_pongs = s_strayFlags = 0;
            ulong pages = ((ulong)PingPongRounds * 8 + 4095) / 4096;
            ulong* cycles = (ulong*)PageAllocator.AllocateContiguous(pages);
            ulong lost = 0, late = 0;
            int rounds = 0;
            for (; rounds < PingPongRounds; rounds++)
            {
                ulong start = Cpu.ReadTscOrdered();
                Hypercall.SignalEvent(PingToVp1, 0);
                fixed (ulong* pongs = &s_pongs)
                    if (!Clock.WaitAtLeast(pongs, (ulong)rounds + 1, PongDueMs))
                    {
                        // Late is not lost: a host that runs the emulator slowly (or
                        // descheduled it) delays a round trip; only one that never comes is lost.
                        late++;
                        if (!Clock.WaitAtLeast(pongs, (ulong)rounds + 1, PongLostMs)) { lost++; ReportLostRound(rounds); break; }
                    }
                cycles[rounds] = Cpu.ReadTscOrdered() - start;
            }
            Clock.Delay(20);
            Synic.EventHandlers[PingSint] = null;
            TestDevice.DestroyEventConnection(PingToVp1);
            TestDevice.DestroyEventConnection(PongToVp0);
            if (rounds > 0)
            {
                Statistics.Sort(cycles, rounds);
                Console.Print("ping-pong: %u round trips, median %u p99 %u max %u TSC cycles; %u later than 1 s\n"u8,
                    rounds, cycles[rounds / 2], cycles[(int)((ulong)rounds * 99 / 100)], cycles[rounds - 1], late);
            }
            for (ulong p = 0; p < pages; p++) PageAllocator.Free((void*)((ulong)cycles + p * 4096));
            Expect.Equal(0ul, lost);    // round trips lost (no pong within 30 s)
            Expect.Equal((ulong)PingPongRounds, s_pings);    // pings taken by VP 1
            Expect.Equal((ulong)PingPongRounds, s_pongs);    // pongs taken by VP 0
            Expect.Equal(0ul, s_strayFlags);    // flags on the wrong VP
        }
    }
}
