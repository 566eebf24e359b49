using System;
using Drivers.VmBus;
using Kernel.Runtime;
using Kernel.Arch;
using Kernel.Hv;

namespace Kernel.TestMode
{
    // Prerequisites of guest tests, in one place. Each returns true when the
    // test can run, or marks it skipped with the one reason that names what is
    // missing: the CPUID bit that grants it and the QEMU flag that sets that bit.
    // A test chains the ones it needs (`if (!Need.A() || !Need.B()) return;`);
    // the first missing one names the skip.
    //
    // Only CPUID decides (TLFS 2.4). What CPUID grants must work: a granted
    // feature that does not is a failure, never a skip (see HypercallPage).
    //
    // QEMU 7.2 sets the bits from its hv-* flags and refuses flag sets that
    // break its own dependencies (hv-synic needs hv-vpindex; hv-stimer needs
    // hv-synic and hv-time; hv-stimer-direct needs hv-stimer; hv-ipi and
    // hv-tlbflush need hv-vpindex); the hypercall MSRs come with any hv-* flag.
    public static class Need
    {
        public static Text NoTestDevice => "no hyperv-testdev (QEMU -device hyperv-testdev, KVM only)"u8;
        public static Text OneVp => "one VP: cross-VP tests need --smp 2 or more"u8;

        private static bool Skip(Text reason)
        {
            Expect.Skip(reason);
            return false;
        }

        // CPUID 0x40000001 is "Hv#1".
        public static bool HvInterface()
        {
            if (HyperV.Present) return true;
            return Skip(Missing.HvInterface);
        }

        // HV_X64_MSR_GUEST_OS_ID and HV_X64_MSR_HYPERCALL (TLFS 3.13).
        public static bool HypercallMsrs()
        {
            if (!HvInterface()) return false;
            return HyperV.Has(HvPartitionPrivilege.AccessHypercallMsrs) || Skip(Missing.HypercallMsrs);
        }

        // A hypercall can be issued. With the MSRs granted, a page the
        // hypervisor did not enable is a failure of the test, not a skip.
        public static bool HypercallPage()
        {
            if (!HypercallMsrs()) return false;
            // Outside the suites' files: the text says what, and no line is given (Expect.cs).
            return Expect.True(HyperV.HypercallPageEnabled, "the hypercall page is enabled (CPUID 0x40000003 EAX bit 5 grants it)"u8, line: 0);
        }

        // HV_X64_MSR_VP_INDEX.
        public static bool VpIndex()
        {
            if (!HvInterface()) return false;
            return HyperV.Has(HvPartitionPrivilege.AccessVpIndex) || Skip(Missing.VpIndex);
        }

        // The SynIC registers (SCONTROL, SIMP, SIEFP, SINTx, EOM, SVERSION), enabled at boot on every VP.
        public static bool Synic()
        {
            if (!HvInterface()) return false;
            return Hv.Synic.Available || Skip(Missing.Synic);
        }

        // The SynIC and hypercalls: what the Direct calls and the VMBus client use.
        public static bool SynicAccess() => Synic() && HypercallPage();

        // HvCallPostMessage (0x005C).
        public static bool PostMessages()
        {
            if (!HypercallPage()) return false;
            return HyperV.Has(HvPartitionPrivilege.PostMessages) || Skip(Missing.PostMessages);
        }

        // HvCallSignalEvent (0x005D).
        public static bool SignalEvents()
        {
            if (!HypercallPage()) return false;
            return HyperV.Has(HvPartitionPrivilege.SignalEvents) || Skip(Missing.SignalEvents);
        }

        // QEMU's hyperv-testdev, which routes SINTs and creates connections into the SynIC.
        public static bool TestDevice()
        {
            if (!Synic()) return false;
            return TestMode.TestDevice.Present || Skip(NoTestDevice);
        }

        // The processors listed in the ACPI MADT (no Hyper-V needed).
        public static bool MadtProcessors()
        {
            return Acpi.CpuCount > 0 || Skip(Acpi.Error.IsEmpty ? "ACPI enumeration failed"u8 : Acpi.Error);
        }

        // Two or more VPs (no Hyper-V needed).
        public static bool Vps()
        {
            return Vp.Count >= 2 || Skip(OneVp);
        }

        // HV_X64_MSR_TIME_REF_COUNT.
        public static bool ReferenceCounter()
        {
            if (!HvInterface()) return false;
            return ReferenceTime.CounterAvailable || Skip(Missing.ReferenceCounter);
        }

        // HV_X64_MSR_REFERENCE_TSC and its page.
        public static bool TscPage()
        {
            if (!HvInterface()) return false;
            return ReferenceTime.TscPageAvailable || Skip(Missing.TscPage);
        }

        // HV_X64_MSR_TSC_FREQUENCY and HV_X64_MSR_APIC_FREQUENCY.
        public static bool FrequencyMsrs()
        {
            if (!HvInterface()) return false;
            return HyperV.Has(HvPartitionPrivilege.AccessFrequencyRegs) || Skip(Missing.FrequencyMsrs);
        }

        // The synthetic timers, with what every timer test also uses: the SynIC
        // (expiry messages) and the reference counter (due times).
        public static bool SyntheticTimers()
        {
            if (!HvInterface()) return false;
            if (!HyperV.Has(HvPartitionPrivilege.AccessSyntheticTimerRegs)) return Skip(Missing.SyntheticTimers);
            return Synic() && ReferenceCounter();
        }

        // Direct-mode synthetic timers (an APIC vector instead of a message).
        public static bool DirectTimers()
        {
            if (!SyntheticTimers()) return false;
            return SyntheticTimer.DirectModeAvailable || Skip(Missing.DirectTimers);
        }

        // HvCallSendSyntheticClusterIpi (0x000B): recommended by the hypervisor,
        // addressed by VP index, issued as a hypercall.
        public static bool SyntheticIpi()
        {
            if (!HvInterface()) return false;
            if ((HyperV.Recommendations & HvRecommendation.SyntheticClusterIpi) == 0) return Skip(Missing.SyntheticIpi);
            return VpIndex() && HypercallPage();
        }

        // A VMBus host answering (QEMU -device vmbus-bridge): the client needs the
        // SynIC and HvCallPostMessage; the first test to ask connects if boot did not.
        public static bool VmbusHost()
        {
            if (!SynicAccess() || !PostMessages()) return false;
            if (!VmbusConnection.ConnectAttempted) VmbusConnection.ConnectAtBoot();
            if (VmbusConnection.LastConnect == VmbusResult.NoHost) return Skip(VmbusConnection.NoHostReason);
            if (VmbusConnection.LastConnect == VmbusResult.NotReady) return Skip(VmbusConnection.NotReadyReason);
            return true;
        }

        public static Text NoDynamicMemoryOffer => "no Dynamic Memory device offered (QEMU 8.2 or newer with -device hv-balloon: qemu-run.sh --hv-balloon)"u8;
        public static Text NoDynamicMemoryHost => "no host drives the balloon (dm-host on the command line: the xunit Dynamic Memory run answers the dm-host: lines over QMP)"u8;
        public static Text NoHotAdd => "the host has no memory to hot-add (dm-hotadd on the command line: hv-balloon with a memdev)"u8;
        public static Text StatusReportsSuppressed => "the host suppresses status reports (hv-balloon status-report=off)"u8;

        // An offer of the Dynamic Memory class on the bus.
        public static unsafe bool DynamicMemoryOffer()
        {
            Guid dm = Drivers.DynamicMemory.DynamicMemoryDevice.Class;
            for (int i = 0; i < VmbusOffers.Count; i++)
                if (VmbusOffers.Table[i].InterfaceType.Is(dm)) return true;
            return Skip(NoDynamicMemoryOffer);
        }

        public static bool DynamicMemoryHost() => BootInfo.HasOption("dm-host"u8) || Skip(NoDynamicMemoryHost);

        public static bool DynamicMemoryHotAdd() => BootInfo.HasOption("dm-hotadd"u8) || Skip(NoHotAdd);

        public static unsafe bool StatusReportsTaken()
            => !Drivers.DynamicMemory.DynamicMemoryDevice.Session->SuppressStatusReports || Skip(StatusReportsSuppressed);

        // qemu-run.sh's word on which KVM answers the Direct calls (--kvm stock|direct).
        public static unsafe bool RunnerNamedTheKvmSide(out byte* value, out int length)
        {
            return BootInfo.TryGetOption("hv-direct"u8, out value, out length)
                || Skip("no hv-direct=implemented|absent on the command line (qemu-run.sh adds it in kvm and nested modes)"u8);
        }

        // The Direct calls' boot probe ran (kernel/hv/DirectCalls.cs): the SynIC,
        // hypercalls, and the SignalEvents privilege it is made under.
        public static bool DirectProbe() => SynicAccess() && SignalEvents();

        // The successful path of HvCallSignalEventDirect and HvCallPostMessageDirect.
        public static bool DirectCallsImplemented()
        {
            if (!DirectProbe()) return false;
            if (DirectCalls.Implemented) return true;
            return Skip(DirectCalls.AbsentReason);
        }

        // What a hypervisor without the Direct calls must do: refuse them, change nothing.
        public static bool DirectCallsAbsent()
        {
            if (!DirectProbe()) return false;
            if (!DirectCalls.Implemented) return true;
            return Skip("this hypervisor implements the Direct calls; the direct.absent_* tests check one that does not"u8);
        }
    }
}
