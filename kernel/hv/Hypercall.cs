using System.Runtime;
using System.Runtime.CompilerServices;
using Kernel.Arch;
using Kernel.Runtime;

namespace Kernel.Hv
{
    // How a typed hypercall ended, from the caller's point of view.
    public enum HvOutcome
    {
        Done,           // the hypervisor returned HV_STATUS_SUCCESS
        NotProvided,    // HV_STATUS_INVALID_HYPERCALL_CODE: this hypervisor does not implement the call
        Denied,         // ACCESS_DENIED or OPERATION_DENIED: implemented, but not for this caller
        Failed,         // any other status
        Refused,        // bad arguments or no hypercall page: refused before any hypercall was made
    }

    public struct HvCallResult
    {
        public HvStatus Status;
        public HvOutcome Outcome;
        public bool NewlySignaled;         // SignalEventDirect's output
        public string RefusalReason;

        public static HvCallResult From(HvHypercallResult result)
        {
            HvCallResult r = default;
            r.Status = result.Status;
            r.Outcome = result.Status == HvStatus.Success ? HvOutcome.Done
                : result.Status == HvStatus.InvalidHypercallCode ? HvOutcome.NotProvided
                : result.Status == HvStatus.AccessDenied || result.Status == HvStatus.OperationDenied ? HvOutcome.Denied
                : HvOutcome.Failed;
            return r;
        }

        public static HvCallResult Refuse(string reason)
        {
            HvCallResult r = default;
            r.Outcome = HvOutcome.Refused;
            r.RefusalReason = reason;
            Console.Write("hv: hypercall refused: ");
            Console.WriteLine(reason);
            return r;
        }
    }

    // Issuing hypercalls (TLFS 3.7). The two stubs in boot/hypercall.asm call the
    // hypercall page: the memory ("slow") form passes input and output GPAs, the
    // register ("fast") form passes up to 16 bytes of input in RDX and R8.
    public static unsafe class Hypercall
    {
        [RuntimeImport("hv_hypercall_slow")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern ulong CallSlow(ulong control, ulong inputGpa, ulong outputGpa);

        [RuntimeImport("hv_hypercall_fast")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern ulong CallFast(ulong control, ulong input0, ulong input1);

        // Every hypercall issued, and the last one's registers (for tests and traces).
        public static ulong Issued;
        public static ulong LastControl, LastRdx, LastR8;

        // Per-VP hypercall input and output pages (TLFS 3.7: input and output
        // must be 8-byte aligned and must not cross a page). Page-aligned pages
        // satisfy both for any input up to 4 KiB. Identity mapping: GPA = VA.
        public static byte* InputPage => Vp.Current->HypercallInput;
        public static byte* OutputPage => Vp.Current->HypercallOutput;

        public static HvHypercallResult Slow(HvHypercallControl control, void* input, void* output)
        {
            control.Fast = false;
            Issued++;
            LastControl = control.Value;
            LastRdx = (ulong)input;
            LastR8 = (ulong)output;
            return new HvHypercallResult { Value = CallSlow(control.Value, (ulong)input, (ulong)output) };
        }

        public static HvHypercallResult Fast(HvHypercallControl control, ulong input0, ulong input1)
        {
            control.Fast = true;
            Issued++;
            LastControl = control.Value;
            LastRdx = input0;
            LastR8 = input1;
            return new HvHypercallResult { Value = CallFast(control.Value, input0, input1) };
        }

        // A rep hypercall (TLFS 3.7.4) may return before finishing all elements:
        // call again from the first element not completed until all are done or
        // the status is an error.
        public static HvHypercallResult Rep(HvHypercallControl control, void* input, void* output, ushort count)
        {
            ushort done = 0;
            HvHypercallResult result = default;
            while (done < count)
            {
                control.RepCount = count;
                control.RepStartIndex = done;
                result = Slow(control, input, output);
                if (result.Status != HvStatus.Success) break;
                done = result.RepsCompleted;
            }
            return result;
        }

        private static bool Ready(out HvCallResult refusal)
        {
            refusal = default;
            if (HyperV.HypercallPageEnabled) return true;
            refusal = HvCallResult.Refuse(HyperV.Present ? "the hypercall page is not enabled" : HyperV.AbsentReason);
            return false;
        }

        // HvCallSignalEventDirect (0x00C0): set flag `flag` in SINT `sint`'s SIEF
        // area of VP `vp` at `vtl` in `partition`, and assert that SINT if the flag
        // was newly set. Memory form: the call has output (NewlySignaled), which a
        // register call could only return with XMM fast output.
        public static HvCallResult SignalEventDirect(ulong partition, uint vp, byte vtl, byte sint, ushort flag)
        {
            if (sint >= HvConstants.HV_SYNIC_SINT_COUNT) return HvCallResult.Refuse("SignalEventDirect: TargetSint must be 0-15");
            if (flag >= HvConstants.HV_EVENT_FLAGS_COUNT) return HvCallResult.Refuse("SignalEventDirect: FlagNumber must be below 2048");
            if (vtl > HvConstants.HV_VTL_MAX) return HvCallResult.Refuse("SignalEventDirect: TargetVtl must be 0-2");
            if (!Ready(out HvCallResult refusal)) return refusal;

            var input = (HvSignalEventDirectInput*)InputPage;
            var output = (HvSignalEventDirectOutput*)OutputPage;
            input->TargetPartition = partition;
            input->TargetVp = vp;
            input->TargetVtl = vtl;
            input->TargetSint = sint;
            input->FlagNumber = flag;
            output->NewlySignaled = 0;
            HvCallResult result = HvCallResult.From(Slow(HvHypercallControl.For(HvCallCode.HvCallSignalEventDirect), input, output));
            result.NewlySignaled = result.Status == HvStatus.Success && output->NewlySignaled != 0;
            return result;
        }

        // HvCallPostMessageDirect (0x00C1): place a message in SINT `sint`'s SIM slot of VP `vp`.
        public static HvCallResult PostMessageDirect(ulong partition, uint vp, byte vtl, byte sint, uint messageType, byte* payload, uint payloadSize)
        {
            if (sint >= HvConstants.HV_SYNIC_SINT_COUNT) return HvCallResult.Refuse("PostMessageDirect: Sint must be 0-15");
            if (vtl > HvConstants.HV_VTL_MAX) return HvCallResult.Refuse("PostMessageDirect: Vtl must be 0-2");
            if (payloadSize > HvConstants.HV_MESSAGE_PAYLOAD_BYTE_COUNT) return HvCallResult.Refuse("PostMessageDirect: payload over 240 bytes");
            if (messageType == HvConstants.HvMessageTypeNone || (messageType & 0x80000000) != 0)
                return HvCallResult.Refuse("PostMessageDirect: message type must be non-zero and below 0x80000000 (hypervisor types)");
            if (!Ready(out HvCallResult refusal)) return refusal;

            var input = (HvPostMessageDirectInput*)InputPage;
            Memory.Zero(input, (ulong)sizeof(HvPostMessageDirectInput));
            input->PartitionId = partition;
            input->VpIndex = vp;
            input->Vtl = vtl;
            input->Sint = sint;
            input->Message.Header.MessageType = messageType;
            input->Message.Header.PayloadSize = (byte)payloadSize;
            Memory.Copy(input->Message.Payload, payload, payloadSize);
            return HvCallResult.From(Slow(HvHypercallControl.For(HvCallCode.HvCallPostMessageDirect), input, null));
        }

        // HvCallSignalEvent (0x005D), register form: RDX = ConnectionId | FlagNumber << 32.
        public static HvCallResult SignalEvent(uint connectionId, ushort flag)
        {
            if (connectionId > 0xFFFFFF) return HvCallResult.Refuse("SignalEvent: connection id has 24 bits");
            if (flag >= HvConstants.HV_EVENT_FLAGS_COUNT) return HvCallResult.Refuse("SignalEvent: FlagNumber must be below 2048");
            if (!Ready(out HvCallResult refusal)) return refusal;
            return HvCallResult.From(Fast(HvHypercallControl.For(HvCallCode.HvCallSignalEvent), connectionId | ((ulong)flag << 32), 0));
        }

        // The same call in memory form, for hypervisors or tests that want it.
        public static HvCallResult SignalEventSlow(uint connectionId, ushort flag)
        {
            if (connectionId > 0xFFFFFF) return HvCallResult.Refuse("SignalEvent: connection id has 24 bits");
            if (flag >= HvConstants.HV_EVENT_FLAGS_COUNT) return HvCallResult.Refuse("SignalEvent: FlagNumber must be below 2048");
            if (!Ready(out HvCallResult refusal)) return refusal;
            var input = (HvSignalEventInput*)InputPage;
            input->ConnectionId = connectionId;
            input->FlagNumber = flag;
            input->RsvdZ = 0;
            return HvCallResult.From(Slow(HvHypercallControl.For(HvCallCode.HvCallSignalEvent), input, null));
        }

        // HvCallSendSyntheticClusterIpi (0x000B), register form: RDX = Vector |
        // TargetVtl << 32, R8 = ProcessorMask (bit n = VP index n, n < 64).
        public static HvCallResult SendSyntheticClusterIpi(byte vector, ulong processorMask)
        {
            if (vector < 0x10) return HvCallResult.Refuse("SendSyntheticClusterIpi: vectors below 0x10 are reserved");
            if (!Ready(out HvCallResult refusal)) return refusal;
            return HvCallResult.From(Fast(HvHypercallControl.For(HvCallCode.HvCallSendSyntheticClusterIpi), vector, processorMask));
        }

        // HvCallPostMessage (0x005C): send a message to a connection (memory form).
        public static HvCallResult PostMessage(uint connectionId, uint messageType, byte* payload, uint payloadSize)
        {
            if (connectionId > 0xFFFFFF) return HvCallResult.Refuse("PostMessage: connection id has 24 bits");
            if (payloadSize > HvConstants.HV_MESSAGE_PAYLOAD_BYTE_COUNT) return HvCallResult.Refuse("PostMessage: payload over 240 bytes");
            if (messageType == HvConstants.HvMessageTypeNone || (messageType & 0x80000000) != 0)
                return HvCallResult.Refuse("PostMessage: message type must be non-zero and below 0x80000000 (hypervisor types)");
            if (!Ready(out HvCallResult refusal)) return refusal;
            var input = (HvPostMessageInput*)InputPage;
            Memory.Zero(input, (ulong)sizeof(HvPostMessageInput));
            input->ConnectionId = connectionId;
            input->MessageType = messageType;
            input->PayloadSize = payloadSize;
            Memory.Copy(input->Payload, payload, payloadSize);
            return HvCallResult.From(Slow(HvHypercallControl.For(HvCallCode.HvCallPostMessage), input, null));
        }
    }
}
