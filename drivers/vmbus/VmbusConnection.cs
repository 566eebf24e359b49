using System;
using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;

namespace Drivers.VmBus
{
    public enum VmbusState { Disconnected, Connected }

    // How a VMBus operation ended.
    public enum VmbusResult
    {
        Done,
        NoHost,         // nobody listens on the message connection (HV_STATUS_INVALID_CONNECTION_ID)
        Refused,        // the host answered no: version not supported, non-zero status
        Timeout,        // no answer within the bound
        PostFailed,     // HvCallPostMessage failed with another status
        NotReady,       // no SynIC or hypercall page, interrupts off, or not connected
        Invalid,        // bad arguments, refused before anything was sent
    }

    // One INITIATE_CONTACT: the version, where it was posted, and how it ended.
    public struct VmbusAttempt
    {
        public uint Version;
        public uint ConnectionId;
        public HvStatus PostStatus;
        public VmbusResult Result;
    }

    // The connection to the VMBus host, as Linux's drivers/hv/connection.c: the
    // protocol version (INITIATE_CONTACT, newest first, until a VERSION_RESPONSE
    // accepts one), the message connection every later message goes to, the
    // pages INITIATE_CONTACT names, UNLOAD, and posting, through which every
    // guest-to-host message goes. The host's messages come back through the
    // SynIC message slot of the VMBus SINT (VmbusMessages), channel events
    // through its event flags (VmbusChannels). The client is synchronous: one
    // request at a time, each answer awaited with a bound (interrupts must be on).
    public static unsafe class VmbusConnection
    {
        public const int Sint = VmbusConstants.MessageSint;

        // A host whose message queue is full answers INSUFFICIENT_BUFFERS (QEMU
        // holds 16 messages): post again after a pause, at most this often
        // (Linux's vmbus_post_msg: 100 tries).
        private const int MaxPostAttempts = 100;
        private const ulong PostRetryDelayMs = 1;

        public static Text NoHostReason => "no VMBus host: HvCallPostMessage to message connections 4 and 1 returned HV_STATUS_INVALID_CONNECTION_ID (QEMU -device vmbus-bridge, KVM only)"u8;

        public static VmbusState State;
        public static uint Version;                 // the negotiated protocol version
        public static uint MessageConnectionId;     // where messages go after INITIATE_CONTACT
        public static uint HostConnectionId;        // the connection id VERSION_RESPONSE carried
        public static uint TargetVp;                // the VP the host sends messages to

        public static bool ConnectAttempted;        // ConnectAtBoot (or a test) has tried
        public static VmbusResult LastConnect;
        public static Text NotReadyReason;

        public static VmbusAttempt* Attempts;       // [VmbusVersion.Count]
        public static int AttemptCount;

        // Named in INITIATE_CONTACT. Protocols before Win8 signal channel events
        // through the interrupt page (host-to-guest bits, then guest-to-host bits);
        // a channel offered with a monitor id signals the host through the second
        // monitor page (parent to child, then child to parent).
        public static byte* InterruptPage;
        public static byte* MonitorPages;

        // ---- connecting ------------------------------------------------------------

        // Boot: connect, list the offers, log both. One line in Kernel.Enlighten.
        public static void ConnectAtBoot()
        {
            VmbusResult r = Connect();
            if (r == VmbusResult.Done)
            {
                VmbusOffers.Print(VmbusOffers.Request());
                return;
            }
            Console.Print("vmbus: not connected: %s\n"u8,
                r == VmbusResult.NoHost ? NoHostReason
                : r == VmbusResult.NotReady ? NotReadyReason
                : r == VmbusResult.Refused ? "the host refused every protocol version"u8
                : r == VmbusResult.Timeout ? "no VERSION_RESPONSE (timeout)"u8
                : "HvCallPostMessage failed"u8);
        }

        // INITIATE_CONTACT with each version, newest first, until the host accepts one.
        // A refusal (VERSION_RESPONSE with version_supported 0, or no listener on the
        // version's contact connection) moves to the next; a timeout ends the attempt.
        public static VmbusResult Connect()
        {
            ConnectAttempted = true;
            if (State == VmbusState.Connected) return LastConnect = VmbusResult.Done;
            if (!Prepare()) return LastConnect = VmbusResult.NotReady;
            AttemptCount = 0;
            bool hostAnswered = false;
            for (int i = 0; i < VmbusVersion.Count; i++)
            {
                VmbusResult r = Contact(VmbusVersion.At(i));
                if (r == VmbusResult.Done) return LastConnect = r;
                if (r == VmbusResult.Refused) { hostAnswered = true; continue; }
                if (r == VmbusResult.NoHost) continue;
                return LastConnect = r;        // timeout or a post failure: stop here, as Linux does
            }
            return LastConnect = hostAnswered ? VmbusResult.Refused : VmbusResult.NoHost;
        }

        // SynIC on, hypercall page on, HvCallPostMessage granted, interrupts on
        // (the answers arrive as SINT interrupts). Nothing is touched before all hold.
        private static bool Prepare()
        {
            if (Attempts == null)
            {
                Attempts = (VmbusAttempt*)Heap.AllocateRaw((ulong)(VmbusVersion.Count * sizeof(VmbusAttempt)));
                VmbusMessages.Initialize();
                VmbusOffers.Initialize();
                VmbusChannels.Initialize();
            }
            if (!HyperV.Present) { NotReadyReason = Missing.HvInterface; return false; }
            if (!Synic.Available) { NotReadyReason = Missing.Synic; return false; }
            if (Synic.MessageHandlers == null || !Vp.Current->SynicEnabled) { NotReadyReason = "the SynIC is not enabled on this VP"u8; return false; }
            if (!HyperV.Has(HvPartitionPrivilege.AccessHypercallMsrs)) { NotReadyReason = Missing.HypercallMsrs; return false; }
            if (!HyperV.HypercallPageEnabled) { NotReadyReason = "the hypercall page is not enabled"u8; return false; }
            // HvCallPostMessage carries every VMBus message: without the privilege, not one is sent.
            if (!HyperV.Has(HvPartitionPrivilege.PostMessages)) { NotReadyReason = Missing.PostMessages; return false; }
            if (!Cpu.InterruptsEnabled()) { NotReadyReason = "interrupts are disabled: VMBus answers arrive as SINT interrupts"u8; return false; }
            if (MonitorPages == null)
            {
                InterruptPage = (byte*)PageAllocator.Allocate(zero: true);
                MonitorPages = (byte*)PageAllocator.AllocateContiguous(2, zero: true);
            }
            Synic.MessageHandlers[Sint] = &VmbusMessages.OnSynicMessage;
            Synic.EventHandlers[Sint] = &VmbusChannels.OnSynicEvent;
            NotReadyReason = default;
            return true;
        }

        private static VmbusResult Contact(uint version)
        {
            VmbusInitiateContact message = default;
            message.Header.MessageType = VmbusMessageType.InitiateContact;
            message.VersionRequested = version;
            uint target = VmbusVersion.TargetsAnyVp(version) ? Vp.Current->Index : 0;
            message.TargetVcpu = target;
            if (VmbusVersion.UsesMessageSint(version))
            {
                message.MessageSint = (byte)Sint;
                message.MessageVtl = 0;
            }
            else message.InterruptPage = (ulong)InterruptPage;
            message.MonitorPage1 = (ulong)MonitorPages;
            message.MonitorPage2 = (ulong)MonitorPages + VmbusConstants.PageSize;
            uint connection = VmbusVersion.ContactConnectionFor(version);

            ulong seen = VmbusMessages.Received[VmbusMessageType.VersionResponse];
            HvCallResult post = PostTo(connection, &message, VmbusInitiateContact.Size);
            VmbusAttempt* attempt = &Attempts[AttemptCount++];
            attempt->Version = version;
            attempt->ConnectionId = connection;
            attempt->PostStatus = post.Status;

            Console.Print("vmbus: INITIATE_CONTACT %u.%u to connection %u: "u8, VmbusVersion.Major(version), VmbusVersion.Minor(version), connection);
            if (post.Outcome != HvOutcome.Done)
            {
                bool noListener = post.Outcome != HvOutcome.Refused && post.Status == HvStatus.InvalidConnectionId;
                attempt->Result = noListener ? VmbusResult.NoHost : VmbusResult.PostFailed;
                Console.Print("HvCallPostMessage status 0x%x%s\n"u8, (ulong)post.Status, noListener ? " (no listener on this connection)"u8 : " (post failed)"u8);
                return attempt->Result;
            }
            var response = (VmbusVersionResponse*)VmbusMessages.WaitForReply(VmbusMessageType.VersionResponse, seen, null, 0, VmbusMessages.ResponseTimeoutMs);
            if (response == null)
            {
                attempt->Result = VmbusResult.Timeout;
                Console.WriteLine("no answer"u8);
                VmbusMessages.PrintTimeout(VmbusMessageType.InitiateContact, VmbusMessageType.VersionResponse, VmbusMessages.ResponseTimeoutMs);
                return VmbusResult.Timeout;
            }
            if (response->VersionSupported == 0 || response->ConnectionState != 0)
            {
                attempt->Result = VmbusResult.Refused;
                Console.Write("refused by the host"u8);
                if (response->VersionSupported != 0) Console.Print(" (connection state %u)"u8, response->ConnectionState);
                Console.WriteLine();
                return VmbusResult.Refused;
            }
            attempt->Result = VmbusResult.Done;
            Console.WriteLine("accepted"u8);

            Version = version;
            HostConnectionId = response->MessageConnectionId;
            // 5.0+: later messages go where the host says (if it says); before, to connection 1.
            MessageConnectionId = VmbusVersion.UsesMessageSint(version) && HostConnectionId != 0 ? HostConnectionId : connection;
            TargetVp = target;
            State = VmbusState.Connected;
            Console.Print("vmbus: connected: protocol %u.%u (0x%08x), messages to connection %u"u8,
                VmbusVersion.Major(version), VmbusVersion.Minor(version), version, MessageConnectionId);
            Console.Print(" (host returned connection id %u), SINT %u, target VP %u%s\n"u8, HostConnectionId, Sint, target,
                VmbusVersion.UsesInterruptPage(version) ? ", channel events through the interrupt page"u8 : ", channel events as SIEF flags (one per relid)"u8);
            return VmbusResult.Done;
        }

        // ---- unloading -------------------------------------------------------------

        // UNLOAD, then UNLOAD_RESPONSE. Disconnected afterwards either way: on a
        // timeout the kernel carries on without the host's acknowledgement.
        public static VmbusResult Unload()
        {
            if (State != VmbusState.Connected) return VmbusResult.NotReady;
            VmbusMessageHeader message = VmbusMessageHeader.Of(VmbusMessageType.Unload);
            VmbusResult result = VmbusMessages.Request(&message, VmbusMessageHeader.Size, VmbusMessageType.UnloadResponse, VmbusMessages.ResponseTimeoutMs);
            if (result == VmbusResult.Done) Console.WriteLine("vmbus: UNLOAD: UNLOAD_RESPONSE received; disconnected"u8);
            State = VmbusState.Disconnected;
            Version = 0;
            VmbusOffers.Forget();
            VmbusChannels.ForgetAll();
            return result;
        }

        // Before the kernel exits: unload if connected. One line in KernelMain.
        public static void Shutdown()
        {
            if (State == VmbusState.Connected) Unload();
        }

        // ---- posting ---------------------------------------------------------------

        // HvCallPostMessage of one VMBus message to `connectionId`, retried as
        // Linux's vmbus_post_msg does: while the host's queue is full
        // (INSUFFICIENT_BUFFERS, INSUFFICIENT_MEMORY), and on INVALID_CONNECTION_ID
        // unless the message is INITIATE_CONTACT, for which that status means "no
        // listener for this version's contact connection" and moves Connect on.
        public static HvCallResult PostTo(uint connectionId, void* message, uint size)
        {
            bool contact = ((VmbusMessageHeader*)message)->MessageType == VmbusMessageType.InitiateContact;
            HvCallResult r = default;
            for (int attempt = 0; attempt < MaxPostAttempts; attempt++)
            {
                r = Hypercall.PostMessage(connectionId, VmbusConstants.HvMessageTypeVmbus, (byte*)message, size);
                if (r.Outcome == HvOutcome.Done || r.Outcome == HvOutcome.Refused) break;
                bool busy = r.Status == HvStatus.InsufficientBuffers || r.Status == HvStatus.InsufficientMemory
                         || (r.Status == HvStatus.InvalidConnectionId && !contact);
                if (!busy) break;
                Clock.Delay(PostRetryDelayMs);
            }
            return r;
        }

        // One channel-management message to the message connection; a failure is logged.
        public static bool Post(void* message, uint size)
        {
            HvCallResult r = PostTo(MessageConnectionId, message, size);
            if (r.Outcome == HvOutcome.Done) return true;
            Console.Print("vmbus: HvCallPostMessage of %s failed: status 0x%x\n"u8, VmbusText.MessageTypeName(((VmbusMessageHeader*)message)->MessageType), (ulong)r.Status);
            return false;
        }

        // ---- naming ----------------------------------------------------------------

        public static Text ResultName(VmbusResult r) => r switch
        {
            VmbusResult.Done => "done"u8,
            VmbusResult.NoHost => "no VMBus host"u8,
            VmbusResult.Refused => "refused by the host"u8,
            VmbusResult.Timeout => "no answer (timeout)"u8,
            VmbusResult.PostFailed => "HvCallPostMessage failed"u8,
            VmbusResult.NotReady => "not ready (not connected, or no SynIC)"u8,
            VmbusResult.Invalid => "invalid arguments"u8,
            _ => "unknown result"u8,
        };
    }
}
