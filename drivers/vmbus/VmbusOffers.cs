using Kernel.Arch;
using Kernel.Runtime;

namespace Drivers.VmBus
{
    // The host's offers (Linux drivers/hv/channel_mgmt.c): REQUESTOFFERS, then an
    // OFFERCHANNEL for each device until ALLOFFERS_DELIVERED; a device that goes
    // away is rescinded. Drivers take offers by class (VmbusDrivers).
    public static unsafe class VmbusOffers
    {
        public const ulong TimeoutMs = 5000;        // for the whole list, up to ALLOFFERS_DELIVERED
        public const int MaxOffers = 64;

        public static VmbusOffer* Table;            // [MaxOffers]
        public static int Count;
        public static bool Complete;                // ALLOFFERS_DELIVERED arrived for the last REQUESTOFFERS
        public static ulong Dropped;                // offers that found the table full

        internal static void Initialize()
            => Table = (VmbusOffer*)Heap.AllocateRaw((ulong)(MaxOffers * sizeof(VmbusOffer)));

        // REQUESTOFFERS, then OFFERCHANNEL messages until ALLOFFERS_DELIVERED.
        public static VmbusResult Request()
        {
            if (VmbusConnection.State != VmbusState.Connected) return VmbusResult.NotReady;
            Complete = false;
            VmbusMessageHeader message = VmbusMessageHeader.Of(VmbusMessageType.RequestOffers);
            VmbusResult r = VmbusMessages.Request(&message, VmbusMessageHeader.Size, VmbusMessageType.AllOffersDelivered, TimeoutMs);
            Complete = r == VmbusResult.Done;
            return r;
        }

        public static VmbusOffer* Find(uint relid)
        {
            for (int i = 0; i < Count; i++) if (Table[i].ChildRelid == relid) return &Table[i];
            return null;
        }

        // After UNLOAD the host has withdrawn every offer.
        internal static void Forget()
        {
            Count = 0;
            Complete = false;
        }

        // The boot log: how the list ended, then one line an offer.
        public static void Print(VmbusResult r)
        {
            Console.Write("vmbus: offers: "u8);
            if (r != VmbusResult.Done) Console.Print("incomplete (%d received, no ALLOFFERS_DELIVERED)\n"u8, Count);
            else if (Count == 0) Console.WriteLine("none (ALLOFFERS_DELIVERED after 0 offers)"u8);
            else Console.Print("%d (ALLOFFERS_DELIVERED)\n"u8, Count);
            byte* line = stackalloc byte[VmbusText.MaxOfferLine];
            for (int i = 0; i < Count; i++)
            {
                Console.Write(line, VmbusText.OfferLine(&Table[i], line));
                Console.WriteLine();
            }
        }

        // ---- from the host (VmbusMessages' table) ------------------------------------

        // An offer of a relid already known replaces it (a host may offer again);
        // the binding stays with it.
        internal static void OnOffer(byte* message)
        {
            var offer = (VmbusOfferChannel*)message;
            VmbusOffer* known = Find(offer->ChildRelid);
            if (known != null)
            {
                bool bound = known->Bound;
                *known = VmbusOffer.Decode(offer);
                known->Bound = bound;
                return;
            }
            if (Count >= MaxOffers) { Dropped++; Console.WriteLine("vmbus: offer table full; OFFERCHANNEL dropped"u8); return; }
            Table[Count] = VmbusOffer.Decode(offer);
            Count++;
        }

        internal static void OnRescind(byte* message)
        {
            uint relid = ((VmbusRescindChannelOffer*)message)->ChildRelid;
            VmbusOffer* offer = Find(relid);
            if (offer != null) offer->Rescinded = true;
            Console.Print("vmbus: offer of relid %u rescinded\n"u8, relid);
        }
    }
}
