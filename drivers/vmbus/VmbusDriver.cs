using System;
using Kernel.Runtime;
using Kernel.Arch;

namespace Drivers.VmBus
{
    // A VMBus device driver: the device class it serves and its probe, which is
    // handed each offer of that class (Linux's hv_driver: id_table and probe).
    public unsafe struct VmbusDriver
    {
        public ReadOnlySpan<byte> Name;
        public Guid Class;
        public delegate*<VmbusOffer*, bool> Probe;

        public VmbusDriver(ReadOnlySpan<byte> name, Guid deviceClass, delegate*<VmbusOffer*, bool> probe)
        {
            Name = name;
            Class = deviceClass;
            Probe = probe;
        }
    }

    // Offers to drivers, by class (Linux's vmbus_match and vmbus_probe).
    public static unsafe class VmbusDrivers
    {
        public static int BoundOffers;

        // After ALLOFFERS_DELIVERED: each offer goes to the driver of its class (one
        // line each); an offer of a class no driver serves is left alone.
        public static void Bind(VmbusDriver[] drivers)
        {
            if (VmbusConnection.State != VmbusState.Connected || !VmbusOffers.Complete) return;
            for (int i = 0; i < VmbusOffers.Count; i++)
            {
                VmbusOffer* offer = &VmbusOffers.Table[i];
                if (offer->Rescinded || offer->Bound) continue;
                for (int d = 0; d < drivers.Length; d++)
                {
                    if (!offer->InterfaceType.Is(drivers[d].Class)) continue;
                    Console.Print("vmbus: relid %u -> driver %s\n"u8, offer->ChildRelid, drivers[d].Name);
                    offer->Bound = drivers[d].Probe(offer);
                    if (offer->Bound) BoundOffers++;
                    break;
                }
            }
        }
    }
}
