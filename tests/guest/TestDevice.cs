using System;
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

        private static ulong* s_routes;        // bit sint of s_routes[vp]
        private static ulong* s_messageConns;  // bit per connection id (0-255)
        private static ulong* s_eventConns;

        // The device answers reads with 0; with no device the port floats to all ones.
        public static bool Present => Cpu.InDword(Port) == 0;

        private static void Write(Control control, uint vp, uint sint, uint connectionId)
            => Cpu.OutDword(Port, (connectionId << 24) | ((uint)control << 16) | (vp << 8) | sint);

        private static void Book()
        {
            if (s_routes != null) return;
            s_routes = (ulong*)Runtime.Heap.AllocateRaw(256 * 8);
            s_messageConns = (ulong*)Runtime.Heap.AllocateRaw(4 * 8);
            s_eventConns = (ulong*)Runtime.Heap.AllocateRaw(4 * 8);
        }

        private static bool Check(bool ok, ReadOnlySpan<byte> refusal)
        {
            if (!ok) { Console.Write("hyperv-testdev: refused: "u8); Console.WriteLine(refusal); }
            return ok;
        }

        private static bool Has(ulong* set, uint i) => (set[i / 64] & (1ul << (int)(i % 64))) != 0;
        private static void Put(ulong* set, uint i, bool on) { if (on) set[i / 64] |= 1ul << (int)(i % 64); else set[i / 64] &= ~(1ul << (int)(i % 64)); }

        public static bool CreateSintRoute(uint vp, uint sint)
        {
            Book();
            if (!Check(vp < 256 && sint < 16 && (s_routes[vp] & (1ul << (int)sint)) == 0, "SINT route exists or is out of range"u8)) return false;
            Write(Control.SintRouteCreate, vp, sint, 0);
            s_routes[vp] |= 1ul << (int)sint;
            return true;
        }

        public static bool DestroySintRoute(uint vp, uint sint)
        {
            Book();
            if (!Check(vp < 256 && sint < 16 && (s_routes[vp] & (1ul << (int)sint)) != 0, "no such SINT route"u8)) return false;
            Write(Control.SintRouteDestroy, vp, sint, 0);
            s_routes[vp] &= ~(1ul << (int)sint);
            return true;
        }

        // Asks QEMU to assert the SINT of a route (an interrupt with no message or flag).
        public static bool RaiseSint(uint vp, uint sint)
        {
            Book();
            if (!Check(vp < 256 && sint < 16 && (s_routes[vp] & (1ul << (int)sint)) != 0, "no such SINT route"u8)) return false;
            Write(Control.SintRouteSetSint, vp, sint, 0);
            return true;
        }

        // A message connection echoes every message posted to it into the SIM slot of (vp, sint).
        public static bool CreateMessageConnection(uint connectionId, uint vp, uint sint)
        {
            Book();
            if (!Check(connectionId < 256 && vp < 256 && sint < 16 && !Has(s_messageConns, connectionId), "message connection exists or is out of range"u8)) return false;
            Write(Control.MessageConnectionCreate, vp, sint, connectionId);
            Put(s_messageConns, connectionId, true);
            return true;
        }

        public static bool DestroyMessageConnection(uint connectionId)
        {
            Book();
            if (!Check(connectionId < 256 && Has(s_messageConns, connectionId), "no such message connection"u8)) return false;
            Write(Control.MessageConnectionDestroy, 0, 0, connectionId);
            Put(s_messageConns, connectionId, false);
            return true;
        }

        // An event connection sets flag number = connectionId in (vp, sint)'s SIEF area on each signal.
        public static bool CreateEventConnection(uint connectionId, uint vp, uint sint)
        {
            Book();
            if (!Check(connectionId < 256 && vp < 256 && sint < 16 && !Has(s_eventConns, connectionId), "event connection exists or is out of range"u8)) return false;
            Write(Control.EventConnectionCreate, vp, sint, connectionId);
            Put(s_eventConns, connectionId, true);
            return true;
        }

        public static bool DestroyEventConnection(uint connectionId)
        {
            Book();
            if (!Check(connectionId < 256 && Has(s_eventConns, connectionId), "no such event connection"u8)) return false;
            Write(Control.EventConnectionDestroy, 0, 0, connectionId);
            Put(s_eventConns, connectionId, false);
            return true;
        }
    }
}
