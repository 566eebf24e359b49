using System;
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

    // Why a typed call was refused before any hypercall (HvCallResult.RefusalReason says it in words).
    public enum HvRefusal : byte
    {
        None,
        NoHypercallPage,
        SignalEventDirectSint, SignalEventDirectFlag, SignalEventDirectVtl,
        PostMessageDirectSint, PostMessageDirectVtl, PostMessageDirectPayload, PostMessageDirectType,
        SignalEventConnection, SignalEventFlag,
        PostMessageConnection, PostMessagePayload, PostMessageType,
        IpiVector,
    }

    // How a typed hypercall ended: one 64-bit value, so that it comes back in
    // RAX and costs nothing to make. It is the hypercall result value as the
    // hypervisor returned it (TLFS 3.8: status in bits 15:0, reps completed in
    // 43:32, every other bit reserved and zero), and, in reserved bits, the two
    // things only the kernel knows: why it refused the call before making it
    // (bits 55:48, an HvRefusal; 0 when the call was made) and SignalEventDirect's
    // output NewlySignaled (bit 56). No reference inside, so a function that
    // returns one has no GC-tracked locals for the compiler to zero.
    public struct HvCallResult
    {
        public ulong Value;

        private const int RefusalShift = 48, RefusalWidth = 8;
        public const int NewlySignaledShift = 56;

        public HvStatus Status => (HvStatus)Bitfield.Get(Value, 0, 16);
        public HvRefusal Refusal => (HvRefusal)Bitfield.Get(Value, RefusalShift, RefusalWidth);
        public bool NewlySignaled { get => Bitfield.Flag(Value, NewlySignaledShift); set => Value = Bitfield.WithFlag(Value, NewlySignaledShift, value); }
        public Text RefusalReason => Hypercall.Reason(Refusal);

        public HvOutcome Outcome
        {
            get
            {
                if (Refusal != HvRefusal.None) return HvOutcome.Refused;
                HvStatus status = Status;
                return status == HvStatus.Success ? HvOutcome.Done
                    : status == HvStatus.InvalidHypercallCode ? HvOutcome.NotProvided
                    : status == HvStatus.AccessDenied || status == HvStatus.OperationDenied ? HvOutcome.Denied
                    : HvOutcome.Failed;
            }
        }

        public static HvCallResult From(HvHypercallResult result) => new HvCallResult { Value = result.Value };
        public static HvCallResult Refused(HvRefusal why) => new HvCallResult { Value = (ulong)why << RefusalShift };
    }

    // Issuing hypercalls (TLFS 3.7): RCX = control, RDX and R8 the input and
    // output GPAs (memory, "slow", form) or up to 16 bytes of input (register,
    // "fast", form: control bit 16, set or cleared here, so a register call is
    // never read as GPAs); the hypervisor's code in the hypercall page returns
    // the result in RAX. The C# calls the page itself, with the arguments
    // declared where each ABI puts them in those registers.
    //
    // The memory-form typed calls write their input into the running VP's page,
    // which only a GS-relative load finds (Vp.Current). C# has no such load but
    // a call, and a call makes every argument still needed afterwards live
    // across it: a push, a move and a pop each. So a typed call checks its
    // arguments and tail-calls a two-instruction trampoline in
    // boot/hypercall.asm, which puts the running VP's record (GS:0) into the
    // last argument and jumps to the C# body that writes the input and calls
    // the page: the body finds everything in its argument registers.
    public static unsafe class Hypercall
    {
#if ABI_WIN64
        // Microsoft x64: the first three arguments are RCX, RDX and R8.
        [RuntimeImport("hv_hypercall_page")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern HvCallResult Page(ulong control, ulong rdx, ulong r8);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static HvCallResult Call(ulong control, ulong rdx, ulong r8) => Page(control, rdx, r8);
#else
        // System V: the third, fourth and fifth arguments are RDX, RCX and R8;
        // the page reads neither RDI nor RSI, which get zero (an xor each, where
        // a stub moving the three into place would cost three moves and a jump).
        [RuntimeImport("hv_hypercall_page")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern HvCallResult Page(ulong unusedRdi, ulong unusedRsi, ulong rdx, ulong control, ulong r8);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static HvCallResult Call(ulong control, ulong rdx, ulong r8) => Page(0, 0, rdx, control, r8);
#endif

        // Every hypercall issued (tests check that a refused call issued none).
        public static ulong Issued;

        private const ulong FastBit = HvHypercallControl.FastBit;

        // Per-VP hypercall input and output pages (TLFS 3.7: input and output
        // must be 8-byte aligned and must not cross a page). Page-aligned pages
        // satisfy both for any input up to 4 KiB. Identity mapping: GPA = VA.
        public static byte* InputPage => Vp.Current->HypercallInput;
        public static byte* OutputPage => Vp.Current->HypercallOutput;

        // The way to the hypercall page of every call, inlined, counted as it
        // goes: in a typed call's tail, the page's ret returns to the caller.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static HvCallResult Issue(ulong control, ulong rdx, ulong r8)
        {
            Issued++;
            return Call(control, rdx, r8);
        }

        public static HvHypercallResult Slow(HvHypercallControl control, void* input, void* output)
            => new HvHypercallResult { Value = Issue(control.Value & ~FastBit, (ulong)input, (ulong)output).Value };

        public static HvHypercallResult Fast(HvHypercallControl control, ulong input0, ulong input1)
            => new HvHypercallResult { Value = Issue(control.Value | FastBit, input0, input1).Value };

        // A refusal is rare and says why on the console: kept out of line, so
        // that the typed calls' own code is only the checks and the call.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static HvCallResult Refuse(HvRefusal why)
        {
            Console.Print("hv: hypercall refused: %s\n"u8, Reason(why));
            return HvCallResult.Refused(why);
        }

        public static Text OutcomeName(HvOutcome outcome) => outcome switch
        {
            HvOutcome.Done => "Done"u8,
            HvOutcome.NotProvided => "NotProvided"u8,
            HvOutcome.Denied => "Denied"u8,
            HvOutcome.Failed => "Failed"u8,
            HvOutcome.Refused => "Refused"u8,
            _ => "(unknown outcome)"u8,
        };

        public static Text Reason(HvRefusal why)
        {
            switch (why)
            {
                case HvRefusal.None: return default;
                case HvRefusal.NoHypercallPage: return HyperV.Present ? "the hypercall page is not enabled"u8 : HyperV.AbsentReason;
                case HvRefusal.SignalEventDirectSint: return "SignalEventDirect: TargetSint must be 0-15"u8;
                case HvRefusal.SignalEventDirectFlag: return "SignalEventDirect: FlagNumber must be below 2048"u8;
                case HvRefusal.SignalEventDirectVtl: return "SignalEventDirect: TargetVtl must be 0-2"u8;
                case HvRefusal.PostMessageDirectSint: return "PostMessageDirect: Sint must be 0-15"u8;
                case HvRefusal.PostMessageDirectVtl: return "PostMessageDirect: Vtl must be 0-2"u8;
                case HvRefusal.PostMessageDirectPayload: return "PostMessageDirect: payload over 240 bytes"u8;
                case HvRefusal.PostMessageDirectType: return "PostMessageDirect: message type must be non-zero and below 0x80000000 (hypervisor types)"u8;
                case HvRefusal.SignalEventConnection: return "SignalEvent: connection id has 24 bits"u8;
                case HvRefusal.SignalEventFlag: return "SignalEvent: FlagNumber must be below 2048"u8;
                case HvRefusal.PostMessageConnection: return "PostMessage: connection id has 24 bits"u8;
                case HvRefusal.PostMessagePayload: return "PostMessage: payload over 240 bytes"u8;
                case HvRefusal.PostMessageType: return "PostMessage: message type must be non-zero and below 0x80000000 (hypervisor types)"u8;
                case HvRefusal.IpiVector: return "SendSyntheticClusterIpi: vectors below 0x10 are reserved"u8;
                default: return "unknown refusal"u8;
            }
        }

        // HvCallSignalEventDirect (0x00C0): set flag `flag` in SINT `sint`'s SIEF
        // area of VP `vp` at `vtl` in `partition`, and assert that SINT if the flag
        // was newly set. Memory form: the call has output (NewlySignaled), which a
        // register call could only return with XMM fast output.
        public static HvCallResult SignalEventDirect(ulong partition, uint vp, byte vtl, byte sint, ushort flag)
        {
            if (sint >= HvConstants.HV_SYNIC_SINT_COUNT) return Refuse(HvRefusal.SignalEventDirectSint);
            if (flag >= HvConstants.HV_EVENT_FLAGS_COUNT) return Refuse(HvRefusal.SignalEventDirectFlag);
            if (vtl > HvConstants.HV_VTL_MAX) return Refuse(HvRefusal.SignalEventDirectVtl);
            if (!HyperV.HypercallPageEnabled) return Refuse(HvRefusal.NoHypercallPage);
            return SignalEventDirectOnThisVp(partition, vp, vtl, sint, flag, null);
        }


        // boot/hypercall.asm: `current` becomes the running VP's record, then IssueSignalEventDirect.
        [RuntimeImport("hv_signal_event_direct_on_this_vp")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern HvCallResult SignalEventDirectOnThisVp(ulong partition, uint vp, byte vtl, byte sint, ushort flag, Vp* current);

        [RuntimeExport("hv_issue_signal_event_direct")]
        private static HvCallResult IssueSignalEventDirect(ulong partition, uint vp, byte vtl, byte sint, ushort flag, Vp* current)
        {
            var input = (HvSignalEventDirectInput*)current->HypercallInput;
            var output = (HvSignalEventDirectOutput*)current->HypercallOutput;
            input->TargetPartition = partition;
            input->TargetVp = vp;
            input->TargetVtl = vtl;
            input->TargetSint = sint;
            input->FlagNumber = flag;
            HvCallResult result = Issue((ulong)HvCallCode.HvCallSignalEventDirect, (ulong)input, (ulong)output);
            // The hypervisor writes the output only when the call succeeds (TLFS 3.8).
            if ((ushort)result.Value == (ushort)HvStatus.Success) result.Value |= (ulong)output->NewlySignaled << HvCallResult.NewlySignaledShift;   // the TLFS's BOOLEAN is 0 or 1
            return result;
        }

        // HvCallPostMessageDirect (0x00C1): place a message in SINT `sint`'s SIM slot of VP `vp`.
        // Every field of the input is written, reserved ones zero; the payload
        // bytes after `payloadSize` are not part of the message (TLFS 11.11.1:
        // PayloadSize says how many count) and are left as they are.
        public static HvCallResult PostMessageDirect(ulong partition, uint vp, byte vtl, byte sint, HvMessageType messageType, byte* payload, uint payloadSize)
        {
            if (sint >= HvConstants.HV_SYNIC_SINT_COUNT) return Refuse(HvRefusal.PostMessageDirectSint);
            if (vtl > HvConstants.HV_VTL_MAX) return Refuse(HvRefusal.PostMessageDirectVtl);
            if (payloadSize > HvConstants.HV_MESSAGE_PAYLOAD_BYTE_COUNT) return Refuse(HvRefusal.PostMessageDirectPayload);
            if ((uint)messageType - 1 >= HvConstants.HV_MESSAGE_TYPE_HYPERVISOR_MASK - 1) return Refuse(HvRefusal.PostMessageDirectType);   // 0 is HvMessageTypeNone; 0x80000000 and up are the hypervisor's
            if (!HyperV.HypercallPageEnabled) return Refuse(HvRefusal.NoHypercallPage);
            // Bytes 8-15 of the input, VpIndex, Vtl and its three bytes of padding,
            // as one argument: so that under System V the body's record fits the
            // sixth register and the payload size stays the one argument on the
            // stack, where the caller put it (a jump to the trampoline, not a
            // call). The body's order leaves sint and the type where they came.
            return PostMessageDirectOnThisVp(partition, vp | (ulong)vtl << 32, payload, sint, messageType, null, payloadSize);
        }


        // boot/hypercall.asm: `current` becomes the running VP's record, then IssuePostMessageDirect.
        [RuntimeImport("hv_post_message_direct_on_this_vp")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern HvCallResult PostMessageDirectOnThisVp(ulong partition, ulong vpAndVtl, byte* payload, byte sint, HvMessageType messageType, Vp* current, uint payloadSize);

        [RuntimeExport("hv_issue_post_message_direct")]
        private static HvCallResult IssuePostMessageDirect(ulong partition, ulong vpAndVtl, byte* payload, byte sint, HvMessageType messageType, Vp* current, uint payloadSize)
        {
            var input = (HvPostMessageDirectInput*)current->HypercallInput;
            input->PartitionId = partition;
            *(ulong*)&input->VpIndex = vpAndVtl;                // VpIndex, Vtl, and Vtl's three bytes of padding zero
            input->Sint = sint;
            input->Message.Header.MessageType = (uint)messageType;
            *(uint*)&input->Message.Header.PayloadSize = payloadSize;   // PayloadSize, and MessageFlags and the reserved bytes zero
            input->Message.Header.Sender = 0;
            input->Padding2 = 0;
            Memory.CopyForward(input->Message.Payload, payload, payloadSize);
            return Issue((ulong)HvCallCode.HvCallPostMessageDirect, (ulong)input, 0);
        }

        // HvCallSignalEvent (0x005D), register form: RDX = ConnectionId | FlagNumber << 32.
        public static HvCallResult SignalEvent(uint connectionId, ushort flag)
        {
            if (connectionId > 0xFFFFFF) return Refuse(HvRefusal.SignalEventConnection);
            if (flag >= HvConstants.HV_EVENT_FLAGS_COUNT) return Refuse(HvRefusal.SignalEventFlag);
            if (!HyperV.HypercallPageEnabled) return Refuse(HvRefusal.NoHypercallPage);
            return Issue((ulong)HvCallCode.HvCallSignalEvent | FastBit, connectionId | ((ulong)flag << 32), 0);
        }

        // The same call in memory form, for hypervisors or tests that want it.
        public static HvCallResult SignalEventSlow(uint connectionId, ushort flag)
        {
            if (connectionId > 0xFFFFFF) return Refuse(HvRefusal.SignalEventConnection);
            if (flag >= HvConstants.HV_EVENT_FLAGS_COUNT) return Refuse(HvRefusal.SignalEventFlag);
            if (!HyperV.HypercallPageEnabled) return Refuse(HvRefusal.NoHypercallPage);
            var input = (HvSignalEventInput*)Vp.Current->HypercallInput;
            input->ConnectionId = connectionId;
            input->FlagNumber = flag;
            input->RsvdZ = 0;
            return Issue((ulong)HvCallCode.HvCallSignalEvent, (ulong)input, 0);
        }

        // HvCallSendSyntheticClusterIpi (0x000B), register form: RDX = Vector |
        // TargetVtl << 32, R8 = ProcessorMask (bit n = VP index n, n < 64).
        public static HvCallResult SendSyntheticClusterIpi(byte vector, ulong processorMask)
        {
            if (vector < 0x10) return Refuse(HvRefusal.IpiVector);
            if (!HyperV.HypercallPageEnabled) return Refuse(HvRefusal.NoHypercallPage);
            return Issue((ulong)HvCallCode.HvCallSendSyntheticClusterIpi | FastBit, vector, processorMask);
        }

        // HvCallPostMessage (0x005C): send a message to a connection (memory form).
        // As PostMessageDirect: every field written, the payload's tail left alone.
        // The type is a raw uint here because VMBus's sender passes its own
        // uint constant; PostMessageDirect takes the HvMessageType.
        public static HvCallResult PostMessage(uint connectionId, uint messageType, byte* payload, uint payloadSize)
        {
            if (connectionId > 0xFFFFFF) return Refuse(HvRefusal.PostMessageConnection);
            if (payloadSize > HvConstants.HV_MESSAGE_PAYLOAD_BYTE_COUNT) return Refuse(HvRefusal.PostMessagePayload);
            if (messageType - 1 >= HvConstants.HV_MESSAGE_TYPE_HYPERVISOR_MASK - 1) return Refuse(HvRefusal.PostMessageType);
            if (!HyperV.HypercallPageEnabled) return Refuse(HvRefusal.NoHypercallPage);
            return PostMessageOnThisVp(connectionId, messageType, payload, payloadSize, null);
        }

        // boot/hypercall.asm: `current` becomes the running VP's record, then IssuePostMessage.
        [RuntimeImport("hv_post_message_on_this_vp")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern HvCallResult PostMessageOnThisVp(uint connectionId, uint messageType, byte* payload, uint payloadSize, Vp* current);

        [RuntimeExport("hv_issue_post_message")]
        private static HvCallResult IssuePostMessage(uint connectionId, uint messageType, byte* payload, uint payloadSize, Vp* current)
        {
            var input = (HvPostMessageInput*)current->HypercallInput;
            *(ulong*)input = connectionId;                      // ConnectionId, and the reserved word zero
            input->MessageType = messageType;
            input->PayloadSize = payloadSize;
            Memory.CopyForward(input->Payload, payload, payloadSize);
            return Issue((ulong)HvCallCode.HvCallPostMessage, (ulong)input, 0);
        }
    }
}
