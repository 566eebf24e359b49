using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;

namespace Drivers.VmBus
{
    // One row of the message table: the bytes a message of the type must have
    // for its layout to be read, and what is done with it once it is kept.
    internal readonly unsafe struct VmbusMessageHandler
    {
        public readonly uint MinimumSize;                   // 0: not a message a guest receives
        public readonly delegate*<byte*, void> Handle;      // null: a reply, read by the request that awaits it

        public VmbusMessageHandler(uint minimumSize, delegate*<byte*, void> handle)
        {
            MinimumSize = minimumSize;
            Handle = handle;
        }
    }

    // The host's channel-management messages, as Linux's vmbus_on_msg_dpc and
    // channel_message_table (drivers/hv/vmbus_drv.c, channel_mgmt.c): every
    // message the host sends on the VMBus SINT passes through Receive (in
    // interrupt context), which checks it against its type's row of the one
    // table, keeps a private copy of it (the last of each type), hands that to
    // the row's handler and counts it. A request's reply is found among those
    // copies by WaitForReply.
    public static unsafe class VmbusMessages
    {
        // How long a request waits for its reply.
        public const ulong ResponseTimeoutMs = 2000;

        public static ulong* Received;              // [type] accepted messages of each type
        public static ulong UnknownMessages;        // unknown type: logged and ignored
        public static ulong RejectedMessages;       // shorter than the type requires: logged and rejected
        public static ulong ForeignMessages;        // not a VMBus message (SynIC type != 1)

        private static byte* s_last;                // [type * 240] the last accepted message of each type

        internal static void Initialize()
        {
            Received = (ulong*)Heap.AllocateRaw(VmbusMessageType.Count * 8);
            s_last = (byte*)Heap.AllocateRaw(VmbusMessageType.Count * VmbusConstants.MaxMessageSize);
        }

        // The last accepted message of `type` (zero-filled past its size).
        public static byte* Last(uint type) => s_last + type * VmbusConstants.MaxMessageSize;

        // ---- the table ---------------------------------------------------------------

        // The messages a guest receives: type, the size of its layout, handler.
        // Every other type is unknown: logged and ignored.
        private static VmbusMessageHandler HandlerFor(uint type) => type switch
        {
            VmbusMessageType.OfferChannel => new VmbusMessageHandler(VmbusOfferChannel.Size, &VmbusOffers.OnOffer),
            VmbusMessageType.RescindChannelOffer => new VmbusMessageHandler(VmbusRescindChannelOffer.Size, &VmbusOffers.OnRescind),
            VmbusMessageType.AllOffersDelivered => new VmbusMessageHandler(VmbusMessageHeader.Size, null),
            VmbusMessageType.OpenChannelResult => new VmbusMessageHandler(VmbusOpenChannelResult.Size, null),
            VmbusMessageType.GpadlCreated => new VmbusMessageHandler(VmbusGpadlCreated.Size, null),
            VmbusMessageType.GpadlTorndown => new VmbusMessageHandler(VmbusGpadlTorndown.Size, null),
            VmbusMessageType.VersionResponse => new VmbusMessageHandler(VmbusVersionResponse.Size, null),
            VmbusMessageType.UnloadResponse => new VmbusMessageHandler(VmbusMessageHeader.Size, null),
            _ => default,
        };

        // ---- receiving -----------------------------------------------------------------

        internal static void OnSynicMessage(int sint, HvMessage* message) => Receive(message);

        public static void Receive(HvMessage* message)
        {
            if (message->Header.MessageType != VmbusConstants.HvMessageTypeVmbus)
            {
                ForeignMessages++;
                Console.Print("vmbus: ignored SynIC message type 0x%x on the VMBus SINT (not a VMBus message)\n"u8, message->Header.MessageType);
                return;
            }
            uint size = message->Header.PayloadSize;
            if (size > VmbusConstants.MaxMessageSize) size = VmbusConstants.MaxMessageSize;
            byte* payload = message->Payload;
            if (size < VmbusMessageHeader.Size)
            {
                RejectedMessages++;
                Console.Print("vmbus: rejected a message of %u bytes: shorter than the 8-byte VMBus message header\n"u8, size);
                return;
            }
            uint type = ((VmbusMessageHeader*)payload)->MessageType;
            VmbusMessageHandler handler = HandlerFor(type);
            if (handler.MinimumSize == 0)
            {
                UnknownMessages++;
                Console.Print("vmbus: ignored a message of unknown type %u (%u bytes)\n"u8, type, size);
                return;
            }
            if (size < handler.MinimumSize)
            {
                RejectedMessages++;
                Console.Print("vmbus: rejected %s: %u bytes, shorter than the %u bytes its layout requires\n"u8, VmbusText.MessageTypeName(type), size, handler.MinimumSize);
                return;
            }
            // A copy the host cannot change while it is read (as Linux's msg_copy).
            byte* kept = Last(type);
            Memory.Copy(kept, payload, size);
            Memory.Zero(kept + size, VmbusConstants.MaxMessageSize - size);
            if (handler.Handle != null) handler.Handle(kept);
            Received[type]++;           // last: a waiter that sees the count sees the copy
        }

        // ---- requests and their replies ---------------------------------------------

        // Posts a request and waits for its reply of `replyType`; a post failure or
        // a timeout is logged.
        public static VmbusResult Request(void* message, uint size, uint replyType, ulong milliseconds)
            => Request(message, size, replyType, null, 0, milliseconds, out _);

        // The same for a reply that names its request: the one whose idOf is `id`.
        public static VmbusResult Request(void* message, uint size, uint replyType, delegate*<byte*, uint> idOf, uint id, ulong milliseconds, out byte* reply)
        {
            reply = null;
            ulong seen = Received[replyType];
            if (!VmbusConnection.Post(message, size)) return VmbusResult.PostFailed;
            reply = WaitForReply(replyType, seen, idOf, id, milliseconds);
            if (reply != null) return VmbusResult.Done;
            PrintTimeout(((VmbusMessageHeader*)message)->MessageType, replyType, milliseconds);
            return VmbusResult.Timeout;
        }

        private struct AwaitedReply
        {
            public uint Type;
            public ulong Seen;                          // Received[Type] before the request
            public delegate*<byte*, uint> IdOf;         // null: any reply of the type
            public uint Id;
        }

        // Until a message of `type` arrives after the `seen`th whose idOf is `id`
        // (a GPADL id, a relid; any message of the type when idOf is null);
        // returns its copy, or null on timeout.
        public static byte* WaitForReply(uint type, ulong seen, delegate*<byte*, uint> idOf, uint id, ulong milliseconds)
        {
            AwaitedReply awaited;
            awaited.Type = type;
            awaited.Seen = seen;
            awaited.IdOf = idOf;
            awaited.Id = id;
            return Clock.WaitUntil(&HasArrived, &awaited, milliseconds) ? Last(type) : null;
        }

        private static bool HasArrived(void* state)
        {
            var awaited = (AwaitedReply*)state;
            ulong count = Received[awaited->Type];
            if (count <= awaited->Seen) return false;
            if (awaited->IdOf == null || awaited->IdOf(Last(awaited->Type)) == awaited->Id) return true;
            awaited->Seen = count;      // an answer to something else: keep waiting
            return false;
        }

        public static void PrintTimeout(uint sent, uint awaited, ulong milliseconds)
        {
            Console.Print("vmbus: timeout: no %s within %u ms of %s; carrying on\n"u8, VmbusText.MessageTypeName(awaited), milliseconds, VmbusText.MessageTypeName(sent));
        }
    }
}
