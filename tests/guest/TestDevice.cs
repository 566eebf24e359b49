using Kernel.Runtime;
using Kernel.Arch;
using Kernel.Hv;

namespace Kernel.TestMode
{
    // QEMU's hyperv-testdev (KVM only): an I/O port at 0x3000 through which the
    // guest asks QEMU to create SINT routes and message/event connections, so
    // that the host side of the SynIC can be driven from inside the guest.
    // QEMU aborts on an inconsistent request (destroying what does not exist),
    // so this keeps book of what it created and refuses such requests itself.
    public static unsafe class TestDevice
    {
        private const ushort Port = 0x3000;
        private enum Control : uint
        {
            SintRouteCreate = 1, SintRouteDestroy = 2, SintRouteSetSint = 3,
            MessageConnectionCreate = 4, MessageConnectionDestroy = 5,
            EventConnectionCreate = 6, EventConnectionDestroy = 7,
        }

        // What this guest created: one bit per SINT route (vp * 16 + sint), per
        // message connection and per event connection (ids 0-255).
        private static ulong* s_routes, s_messageConns, s_eventConns;

        // The device answers reads with 0; with no device the port floats to all ones.
        public static bool Present => Cpu.InDword(Port) == 0;

        public static bool CreateSintRoute(uint vp, uint sint) => Request(Control.SintRouteCreate, vp, sint, 0, "SINT route exists or is out of range"u8);
        public static bool DestroySintRoute(uint vp, uint sint) => Request(Control.SintRouteDestroy, vp, sint, 0, "no such SINT route"u8);

        // Asks QEMU to assert the SINT of a route (an interrupt with no message or flag).
        public static bool RaiseSint(uint vp, uint sint) => Request(Control.SintRouteSetSint, vp, sint, 0, "no such SINT route"u8);

        // A message connection echoes every message posted to it into the SIM slot of (vp, sint).
        public static bool CreateMessageConnection(uint connectionId, uint vp, uint sint)
            => Request(Control.MessageConnectionCreate, vp, sint, connectionId, "message connection exists or is out of range"u8);
        public static bool DestroyMessageConnection(uint connectionId)
            => Request(Control.MessageConnectionDestroy, 0, 0, connectionId, "no such message connection"u8);

        // An event connection sets flag number = connectionId in (vp, sint)'s SIEF area on each signal.
        public static bool CreateEventConnection(uint connectionId, uint vp, uint sint)
            => Request(Control.EventConnectionCreate, vp, sint, connectionId, "event connection exists or is out of range"u8);
        public static bool DestroyEventConnection(uint connectionId)
            => Request(Control.EventConnectionDestroy, 0, 0, connectionId, "no such event connection"u8);

        // A create needs the route or connection absent, everything else needs it
        // present; what the book refuses never reaches QEMU.
        private static bool Request(Control control, uint vp, uint sint, uint connectionId, Text refusal)
        {
            if (s_routes == null)
            {
                s_routes = (ulong*)Heap.AllocateRaw(256 * 16 / 8);
                s_messageConns = (ulong*)Heap.AllocateRaw(256 / 8);
                s_eventConns = (ulong*)Heap.AllocateRaw(256 / 8);
            }
            bool route = control <= Control.SintRouteSetSint;
            ulong* set = route ? s_routes : control <= Control.MessageConnectionDestroy ? s_messageConns : s_eventConns;
            uint entry = route ? vp * 16 + sint : connectionId;
            bool create = control == Control.SintRouteCreate || control == Control.MessageConnectionCreate || control == Control.EventConnectionCreate;
            if (vp >= 256 || sint >= 16 || connectionId >= 256 || ((set[entry / 64] >> (int)(entry % 64)) & 1) == (create ? 1ul : 0ul))
            {
                Console.Print("hyperv-testdev: refused: %s\n"u8, refusal);
                return false;
            }
            Cpu.OutDword(Port, (connectionId << 24) | ((uint)control << 16) | (vp << 8) | sint);
            if (control != Control.SintRouteSetSint) set[entry / 64] ^= 1ul << (int)(entry % 64);
            return true;
        }
    }
}
