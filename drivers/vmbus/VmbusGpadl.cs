using Kernel.Arch;

namespace Drivers.VmBus
{
    // GPADLs: guest pages described to the host, which maps them until the guest
    // tears the description down (Linux drivers/hv/channel.c,
    // vmbus_establish_gpadl and vmbus_teardown_gpadl). A channel's rings are one.
    public static unsafe class VmbusGpadl
    {
        // The id of the first GPADL, as Linux's (connection.c, next_gpadl_handle);
        // the host only asks that ids be unique within the connection.
        private const uint FirstGpadlId = 0xE1E10;
        private static uint s_created;

        // Describes `pages` guest pages (frame numbers in pfns) to the host as one
        // GPADL: GPADL_HEADER, GPADL_BODY for the frames that do not fit it
        // (VmbusGpadlMessages), then GPADL_CREATED.
        public static VmbusResult Create(uint relid, ulong* pfns, int pages, out uint gpadlId)
        {
            gpadlId = 0;
            if (VmbusConnection.State != VmbusState.Connected) return VmbusResult.NotReady;
            if (pages <= 0 || pages > VmbusGpadlMessages.MaxPages) return VmbusResult.Invalid;
            uint id = FirstGpadlId + s_created++;
            ulong seen = VmbusMessages.Received[VmbusMessageType.GpadlCreated];

            VmbusGpadlHeader header;
            uint size = VmbusGpadlMessages.BuildHeader(&header, relid, id, pfns, pages);
            if (!VmbusConnection.Post(&header, size)) return VmbusResult.PostFailed;
            int bodies = VmbusGpadlMessages.BodyMessagesFor(pages);
            for (int i = 0; i < bodies; i++)
            {
                VmbusGpadlBody body;
                size = VmbusGpadlMessages.BuildBody(&body, id, pfns, pages, i);
                if (!VmbusConnection.Post(&body, size)) return VmbusResult.PostFailed;
            }
            var created = (VmbusGpadlCreated*)VmbusMessages.WaitForReply(VmbusMessageType.GpadlCreated, seen, &CreatedId, id, VmbusMessages.ResponseTimeoutMs);
            if (created == null)
            {
                VmbusMessages.PrintTimeout(VmbusMessageType.GpadlHeader, VmbusMessageType.GpadlCreated, VmbusMessages.ResponseTimeoutMs);
                return VmbusResult.Timeout;
            }
            if (created->CreationStatus != 0) return VmbusResult.Refused;
            gpadlId = id;
            return VmbusResult.Done;
        }

        // The same for physically contiguous pages (the identity map makes GPA = VA).
        public static VmbusResult Create(uint relid, void* region, int pages, out uint gpadlId)
        {
            gpadlId = 0;
            if (pages <= 0 || pages > VmbusGpadlMessages.MaxPages || ((ulong)region & (VmbusConstants.PageSize - 1)) != 0) return VmbusResult.Invalid;
            ulong listPages = ((ulong)pages * 8 + PageAllocator.PageSize - 1) / PageAllocator.PageSize;
            ulong* pfns = (ulong*)PageAllocator.AllocateContiguous(listPages);
            for (int i = 0; i < pages; i++) pfns[i] = ((ulong)region >> 12) + (ulong)i;
            VmbusResult r = Create(relid, pfns, pages, out gpadlId);
            for (ulong p = 0; p < listPages; p++) PageAllocator.Free((byte*)pfns + p * PageAllocator.PageSize);
            return r;
        }

        // GPADL_TEARDOWN, then GPADL_TORNDOWN: only then are the pages the guest's again.
        public static VmbusResult Teardown(uint relid, uint gpadlId)
        {
            if (VmbusConnection.State != VmbusState.Connected) return VmbusResult.NotReady;
            VmbusGpadlTeardown message = default;
            message.Header.MessageType = VmbusMessageType.GpadlTeardown;
            message.ChildRelid = relid;
            message.GpadlId = gpadlId;
            return VmbusMessages.Request(&message, VmbusGpadlTeardown.Size, VmbusMessageType.GpadlTorndown, &TornDownId, gpadlId, VmbusMessages.ResponseTimeoutMs, out _);
        }

        // The GPADL each reply is about.
        private static uint CreatedId(byte* reply) => ((VmbusGpadlCreated*)reply)->GpadlId;
        private static uint TornDownId(byte* reply) => ((VmbusGpadlTorndown*)reply)->GpadlId;
    }
}
