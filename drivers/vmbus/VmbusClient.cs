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

    // The VMBus client: the connection (INITIATE_CONTACT / VERSION_RESPONSE),
    // the offers (REQUESTOFFERS, OFFERCHANNEL until ALLOFFERS_DELIVERED) and
    // UNLOAD. Messages go out through Hypercall.PostMessage; the host's come
    // back through the SynIC receive path (Synic.MessageHandlers) of the VMBus
    // SINT, and channel events through Synic.EventHandlers of the same SINT.
    // The client is synchronous: one request at a time, each answer awaited
    // with a bound (interrupts must be on). Channels: VmbusChannel.cs.
    public static unsafe partial class VmbusClient
    {
        public const int Sint = VmbusConstants.MessageSint;
        public const ulong ResponseTimeoutMs = 2000;
        public const ulong OffersTimeoutMs = 5000;
        public const int MaxOffers = 64;
        private const int MaxPostRetries = 100;

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

        public static VmbusOffer* Offers;           // [MaxOffers]
        public static int OfferCount;
        public static bool OffersComplete;          // ALLOFFERS_DELIVERED arrived for the last REQUESTOFFERS
        public static ulong OffersDropped;

        public static ulong* Received;              // [type] accepted messages of each type
        public static ulong UnknownMessages;        // unknown type: logged and ignored
        public static ulong RejectedMessages;       // shorter than the type requires: logged and rejected
        public static ulong ForeignMessages;        // not a VMBus message (SynIC type != 1)

        private static byte* s_last;                // [type * 240] the last accepted payload of each type
        private static byte* s_interruptPage;       // protocols before Win8: host-to-guest bits, then guest-to-host bits
        private static byte* s_monitorPages;        // two pages: parent to child, child to parent
        private static ulong* s_fenceWord;
        private static uint s_nextGpadlId;

        // ---- bookkeeping -----------------------------------------------------------

        private static void EnsureBookkeeping()
        {
            if (Received != null) return;
            Received = (ulong*)Heap.AllocateRaw(VmbusMessageType.Count * 8);
            s_last = (byte*)Heap.AllocateRaw(VmbusMessageType.Count * VmbusConstants.MaxMessageSize);
            Attempts = (VmbusAttempt*)Heap.AllocateRaw((ulong)(VmbusVersion.Count * sizeof(VmbusAttempt)));
            Offers = (VmbusOffer*)Heap.AllocateRaw((ulong)(MaxOffers * sizeof(VmbusOffer)));
            s_fenceWord = (ulong*)Heap.AllocateRaw(8);
            AllocateChannelTables();
            s_nextGpadlId = 0xE1E10;
            VmbusRing.FullFence = &FullFence;
        }

        // xchg is a full barrier on x86: it orders a store before a later load.
        private static void FullFence() => Cpu.AtomicSwap(s_fenceWord, 0);

        public static byte* Last(uint type) => s_last + type * VmbusConstants.MaxMessageSize;

        // SynIC on, hypercall page on, HvCallPostMessage granted, interrupts on
        // (the answers arrive as SINT interrupts). Nothing is touched before all hold.
        private static bool Prepare()
        {
            EnsureBookkeeping();
            if (!HyperV.Present) { NotReadyReason = HyperV.AbsentReason; return false; }
            if (!Synic.Available || Synic.MessageHandlers == null || !Vp.Current->SynicEnabled)
            {
                NotReadyReason = "the SynIC is not enabled (CPUID 0x40000003 EAX bit 2; QEMU hv-synic)"u8;
                return false;
            }
            if (!HyperV.HypercallPageEnabled) { NotReadyReason = "no hypercall page (CPUID 0x40000003 EAX bit 5)"u8; return false; }
            // HvCallPostMessage carries every VMBus message: without the privilege, not one is sent.
            if (!HyperV.Has(HvPartitionPrivilege.PostMessages))
            {
                NotReadyReason = "the hypervisor grants no HvCallPostMessage (CPUID 0x40000003 EBX bit 4, PostMessages; QEMU hv-synic)"u8;
                return false;
            }
            if (!Cpu.InterruptsEnabled()) { NotReadyReason = "interrupts are disabled: VMBus answers arrive as SINT interrupts"u8; return false; }
            if (s_monitorPages == null)
            {
                s_interruptPage = (byte*)PageAllocator.Allocate(zero: true);
                s_monitorPages = (byte*)PageAllocator.AllocateContiguous(2, zero: true);
            }
            Synic.MessageHandlers[Sint] = &OnMessage;
            Synic.EventHandlers[Sint] = &OnEvent;
            NotReadyReason = default;
            return true;
        }

        // ---- sending and waiting ---------------------------------------------------

        // HvCallPostMessage of one VMBus message. A host whose queue is full answers
        // INSUFFICIENT_BUFFERS (QEMU: 16 messages); retry that, bounded, as Linux does.
        public static HvCallResult Post(uint connectionId, void* message, uint size)
        {
            HvCallResult r = default;
            for (int attempt = 0; attempt < MaxPostRetries; attempt++)
            {
                r = Hypercall.PostMessage(connectionId, VmbusConstants.HvMessageTypeVmbus, (byte*)message, size);
                if (r.Outcome == HvOutcome.Done || (r.Status != HvStatus.InsufficientBuffers && r.Status != HvStatus.InsufficientMemory)) break;
                Clock.Delay(1);
            }
            return r;
        }

        private static bool Posted(HvCallResult r, uint type)
        {
            if (r.Outcome == HvOutcome.Done) return true;
            Console.Write("vmbus: HvCallPostMessage of "u8);
            Console.Write(VmbusMessageType.Name(type));
            Console.Write(" failed: status "u8);
            Console.WriteHex((ulong)r.Status);
            Console.WriteLine();
            return false;
        }

        // Until Received[type] passes `seen`; false on timeout.
        public static bool WaitForCount(uint type, ulong seen, ulong milliseconds)
        {
            ulong deadline = Clock.Now100ns() + milliseconds * 10000;
            while (Received[type] <= seen)
            {
                if (Clock.Now100ns() > deadline) return false;
                Cpu.Pause();
            }
            return true;
        }

        // Until a message of `type` arrives after `seen` whose u32 at `offset` is `value`
        // (a GPADL id, a relid); returns its payload, or null on timeout.
        public static byte* WaitForReply(uint type, ulong seen, uint offset, uint value, ulong milliseconds)
        {
            ulong deadline = Clock.Now100ns() + milliseconds * 10000;
            while (true)
            {
                ulong count = Received[type];
                if (count > seen)
                {
                    byte* last = Last(type);
                    if (*(uint*)(last + offset) == value) return last;
                    seen = count;           // an answer to something else: keep waiting
                }
                if (Clock.Now100ns() > deadline) return null;
                Cpu.Pause();
            }
        }

        private static void Timeout(uint sent, uint awaited, ulong milliseconds)
        {
            Console.Write("vmbus: timeout: no "u8);
            Console.Write(VmbusMessageType.Name(awaited));
            Console.Write(" within "u8);
            Console.WriteDecimal(milliseconds);
            Console.Write(" ms of "u8);
            Console.Write(VmbusMessageType.Name(sent));
            Console.WriteLine("; carrying on"u8);
        }

        // ---- connecting ------------------------------------------------------------

        // Boot: connect, list the offers, log both. One line in Kernel.Enlighten.
        public static void ConnectAtBoot()
        {
            VmbusResult r = Connect();
            if (r == VmbusResult.Done)
            {
                r = RequestOffers();
                PrintOffers(r);
                return;
            }
            Console.Write("vmbus: not connected: "u8);
            if (r == VmbusResult.NoHost) Console.WriteLine(NoHostReason);
            else if (r == VmbusResult.NotReady) Console.WriteLine(NotReadyReason);
            else if (r == VmbusResult.Refused) Console.WriteLine("the host refused every protocol version"u8);
            else if (r == VmbusResult.Timeout) Console.WriteLine("no VERSION_RESPONSE (timeout)"u8);
            else Console.WriteLine("HvCallPostMessage failed"u8);
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
            else message.InterruptPage = (ulong)s_interruptPage;
            message.MonitorPage1 = (ulong)s_monitorPages;
            message.MonitorPage2 = (ulong)s_monitorPages + VmbusConstants.PageSize;
            uint connection = VmbusVersion.ContactConnectionFor(version);

            ulong seen = Received[VmbusMessageType.VersionResponse];
            HvCallResult post = Post(connection, &message, VmbusInitiateContact.Size);
            VmbusAttempt* attempt = &Attempts[AttemptCount++];
            attempt->Version = version;
            attempt->ConnectionId = connection;
            attempt->PostStatus = post.Status;

            Console.Write("vmbus: INITIATE_CONTACT "u8);
            WriteVersion(version);
            Console.Write(" to connection "u8);
            Console.WriteDecimal((ulong)connection);
            Console.Write(": "u8);
            if (post.Outcome != HvOutcome.Done)
            {
                bool noListener = post.Outcome != HvOutcome.Refused && post.Status == HvStatus.InvalidConnectionId;
                attempt->Result = noListener ? VmbusResult.NoHost : VmbusResult.PostFailed;
                Console.Write("HvCallPostMessage status "u8);
                Console.WriteHex((ulong)post.Status);
                Console.WriteLine(noListener ? " (no listener on this connection)"u8 : " (post failed)"u8);
                return attempt->Result;
            }
            if (!WaitForCount(VmbusMessageType.VersionResponse, seen, ResponseTimeoutMs))
            {
                attempt->Result = VmbusResult.Timeout;
                Console.WriteLine("no answer"u8);
                Timeout(VmbusMessageType.InitiateContact, VmbusMessageType.VersionResponse, ResponseTimeoutMs);
                return VmbusResult.Timeout;
            }
            var response = (VmbusVersionResponse*)Last(VmbusMessageType.VersionResponse);
            if (response->VersionSupported == 0 || response->ConnectionState != 0)
            {
                attempt->Result = VmbusResult.Refused;
                Console.Write("refused by the host"u8);
                if (response->VersionSupported != 0)
                {
                    Console.Write(" (connection state "u8);
                    Console.WriteDecimal((ulong)response->ConnectionState);
                    Console.Write(")"u8);
                }
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
            Console.Write("vmbus: connected: protocol "u8);
            WriteVersion(version);
            Console.Write(" ("u8);
            Console.WriteHex(version, 8);
            Console.Write("), messages to connection "u8);
            Console.WriteDecimal((ulong)MessageConnectionId);
            Console.Write(" (host returned connection id "u8);
            Console.WriteDecimal((ulong)HostConnectionId);
            Console.Write("), SINT "u8);
            Console.WriteDecimal((ulong)Sint);
            Console.Write(", target VP "u8);
            Console.WriteDecimal((ulong)target);
            Console.WriteLine(VmbusVersion.UsesInterruptPage(version) ? ", channel events through the interrupt page"u8 : ", channel events as SIEF flags (one per relid)"u8);
            return VmbusResult.Done;
        }

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

        public static void WriteVersion(uint version)
        {
            Console.WriteDecimal((ulong)VmbusVersion.Major(version));
            Console.Write('.');
            Console.WriteDecimal((ulong)VmbusVersion.Minor(version));
        }

        // ---- offers ----------------------------------------------------------------

        // REQUESTOFFERS, then OFFERCHANNEL messages until ALLOFFERS_DELIVERED.
        public static VmbusResult RequestOffers()
        {
            if (State != VmbusState.Connected) return VmbusResult.NotReady;
            OffersComplete = false;
            ulong seen = Received[VmbusMessageType.AllOffersDelivered];
            VmbusMessageHeader message = VmbusMessageHeader.Of(VmbusMessageType.RequestOffers);
            if (!Posted(Post(MessageConnectionId, &message, VmbusMessageHeader.Size), VmbusMessageType.RequestOffers)) return VmbusResult.PostFailed;
            if (!WaitForCount(VmbusMessageType.AllOffersDelivered, seen, OffersTimeoutMs))
            {
                Timeout(VmbusMessageType.RequestOffers, VmbusMessageType.AllOffersDelivered, OffersTimeoutMs);
                return VmbusResult.Timeout;
            }
            OffersComplete = true;
            return VmbusResult.Done;
        }

        private static void PrintOffers(VmbusResult r)
        {
            Console.Write("vmbus: offers: "u8);
            if (r != VmbusResult.Done)
            {
                Console.Write("incomplete ("u8);
                Console.WriteDecimal((long)OfferCount);
                Console.WriteLine(" received, no ALLOFFERS_DELIVERED)"u8);
            }
            else if (OfferCount == 0) Console.WriteLine("none (ALLOFFERS_DELIVERED after 0 offers)"u8);
            else
            {
                Console.WriteDecimal((long)OfferCount);
                Console.WriteLine(" (ALLOFFERS_DELIVERED)"u8);
            }
            for (int i = 0; i < OfferCount; i++) PrintOffer(&Offers[i]);
        }

        public static void PrintOffer(VmbusOffer* offer)
        {
            byte* text = stackalloc byte[Guid.FormattedLength];
            Console.Write("vmbus:   relid "u8);
            Console.WriteDecimal((ulong)offer->ChildRelid);
            Console.Write(" class "u8);
            Console.Write(text, offer->InterfaceType.Format(text));
            ReadOnlySpan<byte> name = VmbusClass.Name(&offer->InterfaceType);
            Console.Write(" ("u8);
            Console.Write(name.IsEmpty ? "unknown class"u8 : name);
            Console.Write(") instance "u8);
            Console.Write(text, offer->InterfaceInstance.Format(text));
            Console.Write(" connection "u8);
            Console.WriteDecimal((ulong)offer->ConnectionId);
            Console.Write(" monitor "u8);
            if (offer->MonitorAllocated) Console.WriteDecimal((ulong)offer->MonitorId);
            else Console.Write("none"u8);
            Console.Write(" mmio "u8);
            Console.WriteDecimal((ulong)offer->MmioMegabytes);
            Console.Write(" MiB subchannel "u8);
            Console.WriteDecimal((ulong)offer->SubChannelIndex);
            Console.WriteLine(offer->Rescinded ? " (rescinded)"u8 : ""u8);
        }

        public static VmbusOffer* FindOffer(uint relid)
        {
            for (int i = 0; i < OfferCount; i++) if (Offers[i].ChildRelid == relid) return &Offers[i];
            return null;
        }

        // ---- unloading -------------------------------------------------------------

        // UNLOAD, then UNLOAD_RESPONSE. Disconnected afterwards either way: on a
        // timeout the kernel carries on without the host's acknowledgement.
        public static VmbusResult Unload()
        {
            if (State != VmbusState.Connected) return VmbusResult.NotReady;
            ulong seen = Received[VmbusMessageType.UnloadResponse];
            VmbusMessageHeader message = VmbusMessageHeader.Of(VmbusMessageType.Unload);
            VmbusResult result;
            if (!Posted(Post(MessageConnectionId, &message, VmbusMessageHeader.Size), VmbusMessageType.Unload)) result = VmbusResult.PostFailed;
            else if (!WaitForCount(VmbusMessageType.UnloadResponse, seen, ResponseTimeoutMs))
            {
                Timeout(VmbusMessageType.Unload, VmbusMessageType.UnloadResponse, ResponseTimeoutMs);
                result = VmbusResult.Timeout;
            }
            else
            {
                Console.WriteLine("vmbus: UNLOAD: UNLOAD_RESPONSE received; disconnected"u8);
                result = VmbusResult.Done;
            }
            State = VmbusState.Disconnected;
            Version = 0;
            OfferCount = 0;
            OffersComplete = false;
            ForgetChannels();
            return result;
        }

        // Before the kernel exits: unload if connected. One line in KernelMain.
        public static void Shutdown()
        {
            if (State == VmbusState.Connected) Unload();
        }

        // ---- the receive path ------------------------------------------------------

        private static void OnMessage(int sint, HvMessage* message) => Receive(message);

        // Every message the host sends on the VMBus SINT passes here (in interrupt
        // context): checked against its type's layout, then kept and counted.
        public static void Receive(HvMessage* message)
        {
            EnsureBookkeeping();
            if (message->Header.MessageType != VmbusConstants.HvMessageTypeVmbus)
            {
                ForeignMessages++;
                Console.Write("vmbus: ignored SynIC message type "u8);
                Console.WriteHex(message->Header.MessageType);
                Console.WriteLine(" on the VMBus SINT (not a VMBus message)"u8);
                return;
            }
            uint size = message->Header.PayloadSize;
            if (size > VmbusConstants.MaxMessageSize) size = VmbusConstants.MaxMessageSize;
            byte* payload = message->Payload;
            VmbusMessageCheck check = VmbusMessages.Check(payload, size, out uint type, out uint required);
            if (check == VmbusMessageCheck.ShorterThanHeader)
            {
                RejectedMessages++;
                Console.Write("vmbus: rejected a message of "u8);
                Console.WriteDecimal((ulong)size);
                Console.WriteLine(" bytes: shorter than the 8-byte VMBus message header"u8);
                return;
            }
            if (check == VmbusMessageCheck.UnknownType)
            {
                UnknownMessages++;
                Console.Write("vmbus: ignored a message of unknown type "u8);
                Console.WriteDecimal((ulong)type);
                Console.Write(" ("u8);
                Console.WriteDecimal((ulong)size);
                Console.WriteLine(" bytes)"u8);
                return;
            }
            if (check == VmbusMessageCheck.ShorterThanLayout)
            {
                RejectedMessages++;
                Console.Write("vmbus: rejected "u8);
                Console.Write(VmbusMessageType.Name(type));
                Console.Write(": "u8);
                Console.WriteDecimal((ulong)size);
                Console.Write(" bytes, shorter than the "u8);
                Console.WriteDecimal((ulong)required);
                Console.WriteLine(" bytes its layout requires"u8);
                return;
            }
            byte* last = Last(type);
            Memory.Copy(last, payload, size);
            Memory.Zero(last + size, VmbusConstants.MaxMessageSize - size);
            if (type == VmbusMessageType.OfferChannel) AddOffer((VmbusOfferChannel*)last);
            else if (type == VmbusMessageType.RescindChannelOffer) Rescind(((VmbusRescindChannelOffer*)last)->ChildRelid);
            Received[type]++;           // last: a waiter that sees the count sees the copy
        }

        // An offer of a relid already known replaces it (a host may offer again);
        // the binding stays with it.
        private static void AddOffer(VmbusOfferChannel* message)
        {
            VmbusOffer* known = FindOffer(message->ChildRelid);
            if (known != null)
            {
                bool bound = known->Bound;
                *known = VmbusOffer.Decode(message);
                known->Bound = bound;
                return;
            }
            if (OfferCount >= MaxOffers) { OffersDropped++; Console.WriteLine("vmbus: offer table full; OFFERCHANNEL dropped"u8); return; }
            Offers[OfferCount] = VmbusOffer.Decode(message);
            OfferCount++;
        }

        private static void Rescind(uint relid)
        {
            VmbusOffer* offer = FindOffer(relid);
            if (offer != null) offer->Rescinded = true;
            Console.Write("vmbus: offer of relid "u8);
            Console.WriteDecimal((ulong)relid);
            Console.WriteLine(" rescinded"u8);
        }

        // A SIEF flag on the VMBus SINT: from Win8 the flag number is the channel's relid;
        // before, flag 0 says "look at the interrupt page", one bit per relid.
        private static void OnEvent(int sint, int flag)
        {
            if (State == VmbusState.Connected && VmbusVersion.UsesInterruptPage(Version))
            {
                ulong* words = (ulong*)s_interruptPage;
                for (int w = 0; w < (int)(VmbusConstants.MaxRelid + 1) / 64; w++)
                {
                    if (words[w] == 0) continue;
                    ulong taken = Cpu.AtomicSwap(&words[w], 0);
                    for (int bit = 0; bit < 64; bit++)
                        if ((taken & (1ul << bit)) != 0) ChannelInterrupt((uint)(w * 64 + bit));
                }
                return;
            }
            ChannelInterrupt((uint)flag);
        }
    }
}
