using System;
using Kernel.Runtime;
using Kernel.Arch;

namespace Kernel.Hv
{
    // Does this hypervisor implement HvCallSignalEventDirect (0x00C0) and
    // HvCallPostMessageDirect (0x00C1) for this partition? Hyper-V grants them
    // only to privileged callers (the root, VTL2); stock KVM implements neither
    // (INVALID_HYPERCALL_CODE); the project's KVM (tools/nested/kvm) does.
    //
    // Decided once at boot by a call that cannot change anything: SignalEventDirect
    // to HV_ANY_VP, an index no VP has. A hypervisor that implements the call
    // rejects the argument (INVALID_VP_INDEX); one that does not rejects the call.
    public static class DirectCalls
    {
        public static bool Probed;
        public static HvStatus ProbeStatus;
        public static bool Implemented;

        private const byte ProbeSint = 1;

        public static void Probe()
        {
            if (!HyperV.HypercallPageEnabled) return;
            // Both calls act on the SynIC, and a hypervisor that checks grants
            // (KVM with hv-enforce-cpuid) wants the SignalEvents privilege for
            // SignalEventDirect: without it the probe is not made at all.
            if (!HyperV.Has(HvPartitionPrivilege.SignalEvents))
            {
                Console.WriteLine("hv: HvCallSignalEventDirect and HvCallPostMessageDirect: not probed: the hypervisor grants no HvCallSignalEvent (CPUID 0x40000003 EBX bit 5, SignalEvents; QEMU hv-synic)"u8);
                return;
            }
            HvCallResult r = Hypercall.SignalEventDirect(HvConstants.HV_PARTITION_ID_SELF, HvConstants.HV_ANY_VP, 0, ProbeSint, 0);
            Probed = true;
            ProbeStatus = r.Status;
            Implemented = r.Outcome == HvOutcome.Failed || r.Outcome == HvOutcome.Done;   // the call is there, the argument is not
            Console.Print("hv: HvCallSignalEventDirect and HvCallPostMessageDirect: %s (SignalEventDirect to HV_ANY_VP: 0x%x %s)\n"u8,
                Implemented ? "implemented"u8 : r.Outcome == HvOutcome.Denied ? "not granted to this partition"u8 : "not implemented by this hypervisor"u8,
                (ulong)r.Status, HvStatusName.Of(r.Status));
        }

        // Why a test of the successful path cannot run here.
        public static Text AbsentReason =>
            HyperV.Kind == Hypervisor.Kvm
                ? "this KVM does not implement the Direct calls (INVALID_HYPERCALL_CODE); the project's KVM does: qemu-run.sh --kvm direct"u8
                : "this hypervisor does not grant the Direct calls to this partition (Hyper-V: root or VTL2 only)"u8;
    }
}
