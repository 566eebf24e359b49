// A GPADL (guest physical address descriptor list: one range of whole pages the
// host may map) as the messages that carry it: GPADL_HEADER with the first 26
// page frame numbers, then as many GPADL_BODY messages of 28 as the rest needs
// (Linux drivers/hv/channel.c, create_gpadl_header).
//
// Plain C#, no kernel dependencies: tests/Kernel.Tests compiles this file.
#nullable disable

namespace Drivers.VmBus
{
    public static unsafe class VmbusGpadlMessages
    {
        // range_buflen is 16 bits: 8 bytes of range header plus 8 per page.
        public const int MaxPages = (0xFFFF - 8) / 8;

        public static int BodyMessagesFor(int pages)
        {
            if (pages <= VmbusGpadlHeader.MaxPfns) return 0;
            int rest = pages - VmbusGpadlHeader.MaxPfns;
            return (rest + VmbusGpadlBody.MaxPfns - 1) / VmbusGpadlBody.MaxPfns;
        }

        // Fills the header for `pages` pages starting at pfns[0]; returns the message
        // size in bytes (0 if the page count is out of range). Carries up to 26 frames.
        public static uint BuildHeader(VmbusGpadlHeader* m, uint relid, uint gpadlId, ulong* pfns, int pages)
        {
            if (pages <= 0 || pages > MaxPages) return 0;
            Zero(m, sizeof(VmbusGpadlHeader));
            m->Header.MessageType = VmbusMessageType.GpadlHeader;
            m->ChildRelid = relid;
            m->GpadlId = gpadlId;
            m->RangeCount = 1;
            m->RangeBufferLength = (ushort)(8 + 8 * pages);
            m->ByteCount = (uint)pages * VmbusConstants.PageSize;
            m->ByteOffset = 0;
            int here = pages < VmbusGpadlHeader.MaxPfns ? pages : VmbusGpadlHeader.MaxPfns;
            for (int i = 0; i < here; i++) m->SetPfn(i, pfns[i]);
            return VmbusGpadlHeader.FixedSize + (uint)here * 8;
        }

        // Fills body message `index` (0-based) of a GPADL of `pages` pages; returns its size.
        public static uint BuildBody(VmbusGpadlBody* m, uint gpadlId, ulong* pfns, int pages, int index)
        {
            int first = VmbusGpadlHeader.MaxPfns + index * VmbusGpadlBody.MaxPfns;
            if (index < 0 || first >= pages) return 0;
            int count = pages - first < VmbusGpadlBody.MaxPfns ? pages - first : VmbusGpadlBody.MaxPfns;
            Zero(m, sizeof(VmbusGpadlBody));
            m->Header.MessageType = VmbusMessageType.GpadlBody;
            m->GpadlId = gpadlId;
            for (int i = 0; i < count; i++) m->Pfns[i] = pfns[first + i];
            return VmbusGpadlBody.FixedSize + (uint)count * 8;
        }

        private static void Zero(void* message, int bytes)
        {
            for (int i = 0; i < bytes; i++) ((byte*)message)[i] = 0;
        }
    }
}
