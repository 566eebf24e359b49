using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;

namespace Kernel.TestMode
{
    // The Hyper-V interface, checked against the hypervisor that answers. The
    // structure follows kvm-unit-tests' hyperv_synic and hyperv_connections
    // (the Direct calls are in DirectTests). Without "Hv#1" every test here skips with the
    // reason, except hv.absent_is_reported_cleanly, which checks that skip; with only some
    // enlightenments, each test skips naming the one it lacks (kernel/test/Need.cs).
    public static unsafe class HvTests
    {
        public static TestCase[] All() => new TestCase[]
        {
            new TestCase("hv.absent_is_reported_cleanly", &AbsenceIsConsistent),
            new TestCase("hv.cpuid_vendor", &CpuidVendor),
            new TestCase("hv.cpuid_interface", &CpuidInterface),
            new TestCase("hv.cpuid_max_leaf", &CpuidMaxLeaf),
            new TestCase("hv.privileges_for_synic", &PrivilegesForSynic),
            new TestCase("hv.guest_os_id_reads_back", &GuestOsIdReadsBack),
            new TestCase("hv.hypercall_page_enabled", &HypercallPageEnabled),
            new TestCase("hv.hypercall_page_code", &HypercallPageCode),
            new TestCase("hv.vp_index_boot_vp", &VpIndexOfBootVp),
            new TestCase("hv.vp_index_read_only", &VpIndexIsReadOnly),
            new TestCase("hv.unknown_call_code", &UnknownCallCode),
            new TestCase("synic.sversion", &Sversion),
            new TestCase("synic.eom_reads_zero", &EomReadsZero),
            new TestCase("synic.scontrol_enabled", &ScontrolEnabled),
            new TestCase("synic.simp_siefp_read_back", &SimpSiefpReadBack),
            new TestCase("synic.pages_zero_after_enable", &PagesZeroAfterEnable),
            new TestCase("synic.simp_move_hides_stale_guest_data", &SimpMoveHidesStaleData),
            new TestCase("synic.sints_configured", &SintsConfigured),
            new TestCase("synic.sint_vector_below_16_faults", &SintVectorBelow16Faults),
            new TestCase("synic.apic_enabled", &ApicEnabled),
            new TestCase("synic.route_raises_sint", &RouteRaisesSint),
            new TestCase("events.signal_sets_exactly_its_flag", &SignalSetsExactlyItsFlag),
            new TestCase("events.slow_form_sets_flag", &SlowFormSetsFlag),
            new TestCase("events.already_set_raises_no_interrupt", &AlreadySetRaisesNoInterrupt),
            new TestCase("events.masked_sint_raises_no_interrupt", &MaskedSintRaisesNoInterrupt),
            new TestCase("messages.echoed_into_sim_slot", &MessageEchoedIntoSimSlot),
            new TestCase("messages.busy_slot_sets_pending_and_eom_redelivers", &BusySlotPendingThenEom),
        };

        private const ulong WaitMs = 2000;       // async delivery (QEMU's event loop) bound
        private const ulong QuietMs = 100;       // how long "no interrupt" is watched for

        private static string Text(uint a, uint b, uint c)
        {
            string s = new string(' ', 12);
            fixed (char* p = &s.GetPinnableReference())
                for (int i = 0; i < 4; i++)
                {
                    p[i] = (char)((a >> (8 * i)) & 0xFF);
                    p[4 + i] = (char)((b >> (8 * i)) & 0xFF);
                    p[8 + i] = (char)((c >> (8 * i)) & 0xFF);
                }
            return s;
        }

        // ---- detection -------------------------------------------------------------

        private static void AbsenceIsConsistent()
        {
            bool hv1 = Cpu.Cpuid(HvCpuid.Interface).Eax == HvCpuid.InterfaceSignatureHv1
                       && (Cpu.Cpuid(1).Ecx & HvCpuid.HypervisorPresentBit) != 0;
            Expect.Equal(hv1, HyperV.Present, "detection agrees with CPUID 0x40000001");
            if (HyperV.Present) return;
            ulong issued = Hypercall.Issued;
            HvCallResult r = Hypercall.SignalEventDirect(HvConstants.HV_PARTITION_ID_SELF, 0, 0, 1, 1);
            Expect.Equal(HvOutcome.Refused, r.Outcome, "SignalEventDirect without Hyper-V is refused");
            Expect.Equal(HyperV.AbsentReason, r.RefusalReason);
            Expect.Equal(issued, Hypercall.Issued, "hypercalls issued");
        }

        private static void CpuidVendor()
        {
            if (!Need.HvInterface()) return;
            CpuidResult r = Cpu.Cpuid(HvCpuid.VendorAndMaxFunction);
            Expect.Equal("Microsoft Hv", Text(r.Ebx, r.Ecx, r.Edx), "CPUID 0x40000000 EBX:ECX:EDX");
        }

        private static void CpuidInterface()
        {
            if (!Need.HvInterface()) return;
            Expect.Equal((ulong)HvCpuid.InterfaceSignatureHv1, Cpu.Cpuid(HvCpuid.Interface).Eax, "CPUID 0x40000001 EAX (\"Hv#1\")");
        }

        private static void CpuidMaxLeaf()
        {
            if (!Need.HvInterface()) return;
            Expect.InRange(HvCpuid.Limits, 0x400000FF, Cpu.Cpuid(HvCpuid.VendorAndMaxFunction).Eax, "CPUID 0x40000000 EAX (max leaf)");
        }

        // With the SynIC granted, so is everything the kernel's SynIC set-up uses.
        private static void PrivilegesForSynic()
        {
            if (!Need.Synic()) return;
            ulong needed = HvPartitionPrivilege.AccessHypercallMsrs | HvPartitionPrivilege.AccessVpIndex | HvPartitionPrivilege.AccessSynicRegs;
            Expect.Equal(needed, HyperV.Privileges & needed, "CPUID 0x40000003 EAX: hypercall MSRs, VP index, SynIC");
        }

        private static void GuestOsIdReadsBack()
        {
            if (!Need.HypercallMsrs()) return;
            HvGuestOsId id;
            id.Value = Cpu.ReadMsr(HvMsr.GuestOsId);
            Expect.Equal(HyperV.GuestOsId.Value, id.Value, "HV_X64_MSR_GUEST_OS_ID");
            Expect.True(id.IsOpenSource, "open-source bit 63");
            Expect.Equal((ulong)HyperV.OsIdThisKernel, id.OsId, "OS id field 55:48");
        }

        private static void HypercallPageEnabled()
        {
            if (!Need.HypercallMsrs()) return;
            HvHypercallMsr msr;
            msr.Value = Cpu.ReadMsr(HvMsr.Hypercall);
            Expect.True(msr.Enable, "HV_X64_MSR_HYPERCALL enable bit");
            Expect.Equal(BootSymbols.Get()->HypercallPage >> 12, msr.GpaPageNumber, "hypercall page frame");
        }

        // The hypervisor wrote its calling sequence: vmcall (0F 01 C1) or vmmcall (0F 01 D9), then ret.
        // tests/ decodes the same bytes with Iced from the hv-hypercall-page line.
        private static void HypercallPageCode()
        {
            if (!Need.HypercallMsrs()) return;
            byte* page = (byte*)BootSymbols.Get()->HypercallPage;
            bool vmcall = page[0] == 0x0F && page[1] == 0x01 && (page[2] == 0xC1 || page[2] == 0xD9);
            Expect.True(vmcall, "the page starts with vmcall or vmmcall");
            Expect.Equal(0xC3ul, page[3], "ret after it");
        }

        private static void VpIndexOfBootVp()
        {
            if (!Need.VpIndex()) return;
            Expect.Equal(0ul, Cpu.ReadMsr(HvMsr.VpIndex), "HV_X64_MSR_VP_INDEX of the boot VP");
        }

        private static void VpIndexIsReadOnly()
        {
            if (!Need.VpIndex()) return;
            ulong before = Interrupts.LastFault.Count;
            Expect.False(Cpu.TryWriteMsr(HvMsr.VpIndex, 5), "wrmsr VP_INDEX is accepted");
            Expect.Equal(before + 1, Interrupts.LastFault.Count, "faults caught");
            Expect.Equal(13ul, Interrupts.LastFault.Vector, "vector (#GP)");
            Expect.Equal(0ul, Cpu.ReadMsr(HvMsr.VpIndex), "VP_INDEX unchanged");
        }

        private static void UnknownCallCode()
        {
            if (!Need.HypercallPage()) return;
            HvHypercallControl control = default;
            control.CallCode = 0x7FFF;
            HvHypercallResult r = Hypercall.Slow(control, Hypercall.InputPage, Hypercall.OutputPage);
            Expect.Equal(HvStatus.InvalidHypercallCode, r.Status, "status of call code 0x7fff");
        }

        // ---- SynIC registers and pages -------------------------------------------

        private static void Sversion()
        {
            if (!Need.Synic()) return;
            Expect.Equal(1ul, Cpu.ReadMsr(HvMsr.Sversion), "SVERSION");
        }

        private static void EomReadsZero()
        {
            if (!Need.Synic()) return;
            Expect.Equal(0ul, Cpu.ReadMsr(HvMsr.Eom), "EOM");
        }

        private static void ScontrolEnabled()
        {
            if (!Need.Synic()) return;
            HvSynicScontrol s;
            s.Value = Cpu.ReadMsr(HvMsr.Scontrol);
            Expect.True(s.Enable, "SCONTROL enable bit");
        }

        private static void SimpSiefpReadBack()
        {
            if (!Need.Synic()) return;
            Vp* vp = Vp.Current;
            Expect.Equal((ulong)vp->Sim | 1, Cpu.ReadMsr(HvMsr.Simp), "SIMP = page | enable");
            Expect.Equal((ulong)vp->Sief | 1, Cpu.ReadMsr(HvMsr.Siefp), "SIEFP = page | enable");
        }

        // Read on every VP right after its SIMP/SIEFP enable, before any traffic.
        private static void PagesZeroAfterEnable()
        {
            if (!Need.Synic()) return;
            for (int i = 0; i < Vp.Count; i++)
                Expect.True(Vp.Get(i)->PagesZeroAtEnable, "SIM and SIEF pages all zero right after enable");
        }

        // Point SIMP and SIEFP at pages full of 0xFF: the guest's stale bytes must
        // not show through. KVM zeroes the new page; QEMU (whose userspace SynIC
        // backs hyperv-testdev and VMBus) instead moves its own message/event page
        // overlay, contents and all, to the new address. Either is correct.
        private static void SimpMoveHidesStaleData()
        {
            if (!Need.Synic()) return;
            Cpu.DisableInterrupts();
            byte* sim = (byte*)PageAllocator.Allocate();
            byte* sief = (byte*)PageAllocator.Allocate();
            byte* oldSim = stackalloc byte[4096];
            byte* oldSief = stackalloc byte[4096];
            Memory.Copy(oldSim, Vp.Current->Sim, 4096);
            Memory.Copy(oldSief, Vp.Current->Sief, 4096);
            Memory.Fill(sim, 0xFF, 4096);
            Memory.Fill(sief, 0xFF, 4096);
            ulong oldSimp = Cpu.ReadMsr(HvMsr.Simp), oldSiefp = Cpu.ReadMsr(HvMsr.Siefp);
            Cpu.WriteMsr(HvMsr.Simp, (ulong)sim | 1);
            Cpu.WriteMsr(HvMsr.Siefp, (ulong)sief | 1);
            bool simOk = Memory.IsZero(sim, 4096) || Memory.Equal(sim, oldSim, 4096);
            bool siefOk = Memory.IsZero(sief, 4096) || Memory.Equal(sief, oldSief, 4096);
            Cpu.WriteMsr(HvMsr.Simp, oldSimp);
            Cpu.WriteMsr(HvMsr.Siefp, oldSiefp);
            Cpu.EnableInterrupts();
            PageAllocator.Free(sim);
            PageAllocator.Free(sief);
            Expect.True(simOk, "new SIM page: zeroed, or the hypervisor's page moved there");
            Expect.True(siefOk, "new SIEF page: zeroed, or the hypervisor's page moved there");
        }

        private static void SintsConfigured()
        {
            if (!Need.Synic()) return;
            for (int sint = 0; sint < Synic.SintCount; sint++)
            {
                HvSynicSint value;
                value.Value = Cpu.ReadMsr(HvMsr.Sint(sint));
                if (!Expect.Equal((ulong)(Synic.VectorBase + sint), value.Vector, "SINT vector")) return;
                if (!Expect.False(value.Masked, "SINT masked")) return;
                if (!Expect.Equal((Vp.Current->AutoEoiMask & (1u << sint)) != 0, value.AutoEoi, "SINT auto-EOI as configured")) return;
            }
        }

        private static void SintVectorBelow16Faults()
        {
            if (!Need.Synic()) return;
            const int sint = 15;
            ulong before = Cpu.ReadMsr(HvMsr.Sint(sint));
            ulong faults = Interrupts.LastFault.Count;
            Expect.False(Cpu.TryWriteMsr(HvMsr.Sint(sint), 15), "unmasked SINT with vector 15 accepted");
            Expect.Equal(faults + 1, Interrupts.LastFault.Count, "faults caught");
            Expect.Equal(before, Cpu.ReadMsr(HvMsr.Sint(sint)), "SINT15 unchanged");
        }

        // The APIC carries SynIC interrupts; it is enabled, and its EOI goes
        // through HV_X64_MSR_EOI exactly when CPUID grants it (hv-vapic), under any flag set.
        private static void ApicEnabled()
        {
            if (!Need.HvInterface()) return;
            Expect.True(Apic.SoftwareEnabled, "local APIC software-enabled (SVR bit 8)");
            Expect.Equal(HyperV.Has(HvPartitionPrivilege.AccessIntrCtrlRegs), Apic.UseHvEoiMsr, "EOI through HV_X64_MSR_EOI exactly when offered");
        }

        // ---- hyperv-testdev: routes, events, messages ------------------------------

        private static void RouteRaisesSint()
        {
            if (!Need.TestDevice()) return;
            const int sint = 3;
            ulong interrupts = Synic.Interrupts[sint], flags = Synic.FlagsTaken[sint], messages = Synic.MessagesTaken[sint];
            TestDevice.CreateSintRoute(0, sint);
            TestDevice.RaiseSint(0, sint);
            bool arrived = WaitForCount(&Synic.Interrupts[sint], interrupts + 1, WaitMs);
            TestDevice.DestroySintRoute(0, sint);
            Expect.True(arrived, "SINT 3 interrupt within 2 s");
            Expect.Equal(interrupts + 1, Synic.Interrupts[sint], "SINT 3 interrupts");
            Expect.Equal(flags, Synic.FlagsTaken[sint], "event flags consumed");
            Expect.Equal(messages, Synic.MessagesTaken[sint], "messages consumed");
        }

        private static bool WaitForCount(ulong* counter, ulong atLeast, ulong milliseconds)
        {
            ulong deadline = Clock.Now100ns() + milliseconds * 10000;
            while (*counter < atLeast)
            {
                if (Clock.Now100ns() > deadline) return false;
                Cpu.Pause();
            }
            return true;
        }

        private static int s_lastFlag;
        private static void RecordFlag(int sint, int flag) => s_lastFlag = flag;

        // With interrupts off, watch the SIEF page itself: exactly bit `conn` of the
        // SINT's area becomes set. Then let the interrupt in: one interrupt, one flag.
        private static void SignalAndCheckFlag(bool fast)
        {
            const int sint = 5;
            uint conn = fast ? 9u : 10u;
            TestDevice.CreateEventConnection(conn, 0, sint);
            Synic.EventHandlers[sint] = &RecordFlag;
            s_lastFlag = -1;
            ulong interrupts = Synic.Interrupts[sint];
            ulong* area = Synic.SiefArea(Vp.Current, sint);

            Cpu.DisableInterrupts();
            HvCallResult r = fast ? Hypercall.SignalEvent(conn, 0) : Hypercall.SignalEventSlow(conn, 0);
            bool set = Clock.WaitForValue(&area[conn / 64], 1ul << (int)(conn % 64), 1ul << (int)(conn % 64), WaitMs);
            ulong otherBits = 0;
            for (int w = 0; w < 32; w++) otherBits |= w == conn / 64 ? area[w] & ~(1ul << (int)(conn % 64)) : area[w];
            Cpu.EnableInterrupts();
            bool interrupted = WaitForCount(&Synic.Interrupts[sint], interrupts + 1, WaitMs);
            Clock.Delay(QuietMs);

            Synic.EventHandlers[sint] = null;
            TestDevice.DestroyEventConnection(conn);
            Expect.Equal(HvStatus.Success, r.Status, fast ? "HvCallSignalEvent (fast) status" : "HvCallSignalEvent (memory form) status");
            Expect.True(set, "flag `conn` set in the SINT's SIEF area");
            Expect.Equal(0ul, otherBits, "no other flag set in the area");
            Expect.True(interrupted, "an interrupt arrived");
            Expect.Equal(interrupts + 1, Synic.Interrupts[sint], "exactly one interrupt");
            Expect.Equal((ulong)conn, (ulong)(long)s_lastFlag, "the handler was given flag `conn`");
            Expect.Equal(0ul, area[conn / 64] & (1ul << (int)(conn % 64)), "the handler cleared the flag");
        }

        private static void SignalSetsExactlyItsFlag()
        {
            if (!Need.TestDevice() || !Need.SignalEvents()) return;
            SignalAndCheckFlag(fast: true);
        }

        private static void SlowFormSetsFlag()
        {
            if (!Need.TestDevice() || !Need.SignalEvents()) return;
            SignalAndCheckFlag(fast: false);
        }

        private static ulong s_rawInterrupts;
        private static void CountOnly(int sint) => s_rawInterrupts++;

        private static void AlreadySetRaisesNoInterrupt()
        {
            if (!Need.TestDevice() || !Need.SignalEvents()) return;
            const int sint = 6;
            const uint conn = 11;
            TestDevice.CreateEventConnection(conn, 0, sint);
            Synic.RawHandlers[sint] = &CountOnly;      // leaves the flag set
            s_rawInterrupts = 0;
            ulong* area = Synic.SiefArea(Vp.Current, sint);
            HvCallResult first = Hypercall.SignalEvent(conn, 0);
            bool firstArrived;
            fixed (ulong* counter = &s_rawInterrupts) firstArrived = WaitForCount(counter, 1, WaitMs);
            HvCallResult second = Hypercall.SignalEvent(conn, 0);
            Clock.Delay(QuietMs);
            ulong count = s_rawInterrupts;
            bool stillSet = (area[0] & (1ul << (int)conn)) != 0;
            area[0] = 0;
            Synic.RawHandlers[sint] = null;
            TestDevice.DestroyEventConnection(conn);
            Expect.Equal(HvStatus.Success, first.Status, "first signal status");
            Expect.Equal(HvStatus.Success, second.Status, "second signal status");
            Expect.True(firstArrived, "the first signal interrupted");
            Expect.True(stillSet, "the flag stayed set");
            Expect.Equal(1ul, count, "interrupts after signalling a flag that was already set");
        }

        private static void MaskedSintRaisesNoInterrupt()
        {
            if (!Need.TestDevice() || !Need.SignalEvents()) return;
            const int sint = 7;
            const uint conn = 12;
            TestDevice.CreateEventConnection(conn, 0, sint);
            Synic.SetMasked(sint, true);
            ulong interrupts = Synic.Interrupts[sint];
            ulong* area = Synic.SiefArea(Vp.Current, sint);
            HvCallResult r = Hypercall.SignalEvent(conn, 0);
            bool set = Clock.WaitForValue(&area[0], 1ul << (int)conn, 1ul << (int)conn, WaitMs);
            Clock.Delay(QuietMs);
            ulong after = Synic.Interrupts[sint];
            area[0] = 0;
            Synic.SetMasked(sint, false);
            TestDevice.DestroyEventConnection(conn);
            Expect.Equal(HvStatus.Success, r.Status, "signal status");
            Expect.True(set, "the flag is set even though the SINT is masked");
            Expect.Equal(interrupts, after, "interrupts on the masked SINT");
        }

        private static void FillPayload(byte* payload, int length, byte seed)
        {
            for (int i = 0; i < length; i++) payload[i] = (byte)(seed + i * 7);
        }

        private static void MessageEchoedIntoSimSlot()
        {
            if (!Need.TestDevice() || !Need.PostMessages()) return;
            const int sint = 8;
            const uint conn = 13, type = 0x1234;
            const int length = 100;
            TestDevice.CreateMessageConnection(conn, 0, sint);
            byte* payload = stackalloc byte[length];
            FillPayload(payload, length, 0x30);
            ulong taken = Synic.MessagesTaken[sint];
            HvCallResult r = Hypercall.PostMessage(conn, type, payload, length);
            bool arrived = WaitForCount(&Synic.MessagesTaken[sint], taken + 1, WaitMs);
            TestDevice.DestroyMessageConnection(conn);
            Expect.Equal(HvStatus.Success, r.Status, "HvCallPostMessage status");
            if (!Expect.True(arrived, "a message arrived in SINT 8's slot")) return;
            HvMessage* m = Synic.LastReceived(sint);
            Expect.Equal(type, m->Header.MessageType, "message type");
            Expect.Equal((ulong)length, m->Header.PayloadSize, "payload size");
            Expect.True(Memory.Equal(m->Payload, payload, length), "payload bytes");
            Expect.Equal(0ul, Vp.Current->Sim[sint].Header.MessageType, "the handler freed the slot");
        }

        // kvm-unit-tests hyperv_connections' busy case: while the slot still holds a
        // message, the next one waits with MessagePending set; EOM lets it in.
        private static void BusySlotPendingThenEom()
        {
            if (!Need.TestDevice() || !Need.PostMessages()) return;
            const int sint = 9;
            const uint conn = 14;
            TestDevice.CreateMessageConnection(conn, 0, sint);
            byte* payload = stackalloc byte[16];
            HvMessage* slot = &Vp.Current->Sim[sint];
            ulong taken = Synic.MessagesTaken[sint];

            Cpu.DisableInterrupts();
            FillPayload(payload, 16, 1);
            HvCallResult first = Hypercall.PostMessage(conn, 0x100, payload, 16);
            bool firstInSlot = Clock.WaitForValue((ulong*)slot, 0xFFFFFFFF, 0x100, WaitMs);
            FillPayload(payload, 16, 2);
            // QEMU stages one message per route: until it has finished handing #1
            // over it answers INSUFFICIENT_BUFFERS, which a sender retries (as
            // Linux's vmbus_post_msg does). Bounded: it must get through.
            HvCallResult second = default;
            for (int attempt = 0; attempt < 1000; attempt++)
            {
                second = Hypercall.PostMessage(conn, 0x200, payload, 16);
                if (second.Status != HvStatus.InsufficientBuffers) break;
                Clock.Delay(1);
            }
            // Bytes 0-3 MessageType, byte 5 MessageFlags (bit 0 MessagePending).
            bool pending = Clock.WaitForValue((ulong*)slot, 0x0000FF00FFFFFFFFul, (1ul << 40) | 0x100, WaitMs);
            uint typeWhileBusy = slot->Header.MessageType;
            Cpu.EnableInterrupts();     // the handler takes #1, sees MessagePending, writes EOM, #2 arrives
            bool both = WaitForCount(&Synic.MessagesTaken[sint], taken + 2, WaitMs);
            TestDevice.DestroyMessageConnection(conn);

            Expect.Equal(HvStatus.Success, first.Status, "first post status");
            Expect.True(firstInSlot, "the first message reached the slot");
            Expect.Equal(HvStatus.Success, second.Status, "second post status (queued behind the busy slot)");
            Expect.True(pending, "MessagePending set in the busy slot");
            Expect.Equal(0x100ul, typeWhileBusy, "the slot kept the first message");
            Expect.True(both, "both messages were delivered after EOM");
            if (both)
            {
                Expect.Equal(0x100ul, Synic.LastReceived(sint, 1)->Header.MessageType, "first message type");
                Expect.Equal(0x200ul, Synic.LastReceived(sint)->Header.MessageType, "second message type");
                Expect.Equal(2ul, Synic.LastReceived(sint)->Payload[0], "second message payload");
            }
        }
    }
}
