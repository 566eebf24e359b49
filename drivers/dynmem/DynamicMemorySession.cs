// The guest side of the Dynamic Memory protocol as a small state machine, in
// the shape of Linux's hv_balloon.c: negotiate a version (newest first), report
// capabilities, then answer the host's balloon, unballoon and hot-add requests
// and post a status report every second.
//
//   Closed --Start--> VersionSent --accepted--> CapabilitiesSent --accepted--> Ready
//                        | refused: the next older version; none left: Failed
//
// Every host message is checked before use, in one order: the packet holds a
// DM header; the header's size is at least the header and at most the packet;
// the type is one a guest receives (the table below, with its minimum size);
// the size covers that minimum; the state allows it; then the handler checks
// its variable part (a range count against the size). A message that fails a
// check is dropped with the reason recorded, and nothing changes.
//
// The session owns no memory and calls no kernel code: the kernel supplies the
// page allocator and the channel through DmServices, and runs the session in
// one context at a time (the channel's interrupt, or with interrupts off).
//
// Plain C#, no kernel dependencies: tests/Kernel.Tests compiles this file.
#nullable disable

namespace Drivers.DynamicMemory
{
    public enum DmState { Closed, VersionSent, CapabilitiesSent, Ready, Failed }

    // Why a host message was dropped.
    public enum DmDrop
    {
        None,
        ShorterThanHeader,      // the packet has fewer than 8 bytes
        BadHeaderSize,          // the header's size is below 8 or beyond the packet
        UnknownType,            // a type a guest never receives
        ShorterThanLayout,      // fewer bytes than the type's fixed part
        RangesBeyondMessage,    // a range count larger than the message holds
        WrongState,             // a message the current state does not expect
        NotOffered,             // a request for a capability the guest did not report
    }

    public enum DmEventKind
    {
        VersionRefused,         // A = the version the host refused
        Negotiated,             // A = the version
        CapabilitiesAccepted,
        CapabilitiesRefused,
        NoVersionLeft,          // every version refused: the session failed
        Ballooned,              // A = pages asked for, B = pages given, C = responses sent
        Unballooned,            // A = pages returned, B = pages named that were not ballooned, C = more to come (1)
        HotAdded,               // A = first page, B = pages offered, C = pages added
        StatusPosted,           // A = available pages, B = committed pages
        InfoMaxPageCount,       // A = the host's maximum page count for this guest
        Dropped,                // Type, Reason, A = message size
        SendFailed,             // Type
    }

    public struct DmEvent
    {
        public DmEventKind Kind;
        public DmMessageType Type;
        public DmDrop Reason;
        public ulong A, B, C;
    }

    // What the kernel provides. All page numbers are 4 KiB guest page frame numbers.
    public unsafe struct DmServices
    {
        public delegate*<void*, uint, bool> Send;               // one in-band packet; false if it could not be sent
        public delegate*<ulong, ulong*, ulong> TakePages;       // (at most n, out count): the first page of a free run taken from the allocator
        public delegate*<ulong, void> ReturnPage;               // a ballooned page back to the allocator
        public delegate*<ulong, ulong, ulong> AddMemory;        // hot-add (first page, count): pages added; null: no hot-add
        public delegate*<ulong> FreePages;                      // free in the allocator now
        public delegate*<ulong> UsedPages;                      // allocated by the kernel (the balloon's not included)
        public delegate*<DmEvent*, void> OnEvent;               // told of every event, in the session's context
    }

    internal unsafe struct DmHandler
    {
        public uint MinimumSize;
        public delegate*<DmSession*, byte*, uint, void> Handle;
        public DmHandler(uint minimumSize, delegate*<DmSession*, byte*, uint, void> handle) { MinimumSize = minimumSize; Handle = handle; }
    }

    public unsafe struct DmSession
    {
        public DmServices Services;
        public DmState State;
        public uint Version;                    // the negotiated one
        public uint VersionsTried;
        public fixed uint TriedVersions[DmVersion.Count];
        public DmCapabilities Reported;         // what the guest said it can do
        public bool SuppressStatusReports;      // the host's wish (DM_CAPABILITIES_RESPONSE)
        public ulong FloorPages;                // the balloon never leaves fewer free pages than this
        public uint HotAddAlignmentLog2MiB;     // reported; hot-add ranges are 2^n MiB aligned
        public uint NextTransactionId;
        public byte* Scratch;                   // DmConstants.MaxMessageSize bytes for building responses

        public BalloonPages Balloon;
        public ulong HotAddedPages;
        public ulong MaxPageCount;              // from DM_INFO_MESSAGE, 0 if the host sent none

        public fixed ulong Received[16];        // accepted host messages, by type
        public fixed ulong Sent[16];            // guest messages sent, by type
        public ulong Dropped;
        public DmDrop LastDrop;
        public ulong BalloonRequests, PagesRequested, PagesGiven, PartialAnswers;
        public ulong UnballoonRequests, PagesReturned, ForeignPages;
        public ulong HotAddRequests;
        public DmStatusReport LastStatus;
        public ulong StatusReports, StatusSuppressed;

        // The host messages a guest receives: type, the size of its fixed part, handler.
        // Linux's channel_mgmt.c keeps VMBus messages in the same kind of table.
        private static DmHandler HandlerFor(DmMessageType type) => type switch
        {
            DmMessageType.VersionResponse => new DmHandler(DmVersionResponse.Size, &OnVersionResponse),
            DmMessageType.CapabilitiesResponse => new DmHandler(DmCapabilitiesResponse.Size, &OnCapabilitiesResponse),
            DmMessageType.BalloonRequest => new DmHandler(DmBalloonRequest.Size, &OnBalloonRequest),
            DmMessageType.UnballoonRequest => new DmHandler(DmUnballoonRequest.Size, &OnUnballoonRequest),
            DmMessageType.HotAddRequest => new DmHandler(DmHotAddRequest.Size, &OnHotAddRequest),
            DmMessageType.InfoMessage => new DmHandler(DmInfoMessage.Size, &OnInfoMessage),
            DmMessageType.HotRemoveRequest => new DmHandler(DmHotRemoveRequest.Size, &OnHotRemoveRequest),
            DmMessageType.Error => new DmHandler(DmHeader.Size, &OnError),
            _ => default,
        };

        // ---- starting ----------------------------------------------------------------

        // The first DM_VERSION_REQUEST, for the newest version. The channel is open.
        public static void Start(DmSession* s)
        {
            s->State = DmState.VersionSent;
            s->VersionsTried = 0;
            RequestVersion(s, 0);
        }

        private static void RequestVersion(DmSession* s, int index)
        {
            DmVersionRequest m = default;
            m.Header = Header(s, DmMessageType.VersionRequest, DmVersionRequest.Size);
            m.Version = DmVersion.At(index);
            m.IsLastAttempt = index == DmVersion.Count - 1;
            s->TriedVersions[s->VersionsTried++] = m.Version;
            Send(s, &m, DmVersionRequest.Size);
        }

        private static DmHeader Header(DmSession* s, DmMessageType type, uint size) => DmHeader.Of(type, size, ++s->NextTransactionId);

        private static bool Send(DmSession* s, void* message, uint size)
        {
            var type = ((DmHeader*)message)->Type;
            if (s->Services.Send != null && s->Services.Send(message, size))
            {
                if ((int)type < 16) s->Sent[(int)type]++;
                return true;
            }
            Event(s, DmEventKind.SendFailed, type, 0, 0, 0);
            return false;
        }

        private static void Event(DmSession* s, DmEventKind kind, DmMessageType type, ulong a, ulong b, ulong c, DmDrop reason = DmDrop.None)
        {
            if (s->Services.OnEvent == null) return;
            DmEvent e;
            e.Kind = kind;
            e.Type = type;
            e.Reason = reason;
            e.A = a;
            e.B = b;
            e.C = c;
            s->Services.OnEvent(&e);
        }

        private static void Drop(DmSession* s, DmMessageType type, DmDrop reason, ulong size)
        {
            s->Dropped++;
            s->LastDrop = reason;
            Event(s, DmEventKind.Dropped, type, size, 0, 0, reason);
        }

        // ---- receiving ---------------------------------------------------------------

        // One in-band packet's data from the host (`length` bytes: the ring's
        // length, which may include the sender's padding to 8 bytes).
        public static void Receive(DmSession* s, byte* packet, uint length)
        {
            if (length < DmHeader.Size) { Drop(s, DmMessageType.Error, DmDrop.ShorterThanHeader, length); return; }
            var header = (DmHeader*)packet;
            uint size = header->MessageSize;
            if (size < DmHeader.Size || size > length) { Drop(s, header->Type, DmDrop.BadHeaderSize, size); return; }
            DmHandler handler = HandlerFor(header->Type);
            if (handler.Handle == null) { Drop(s, header->Type, DmDrop.UnknownType, size); return; }
            if (size < handler.MinimumSize) { Drop(s, header->Type, DmDrop.ShorterThanLayout, size); return; }
            handler.Handle(s, packet, size);
        }

        private static void Accepted(DmSession* s, byte* message) => s->Received[(int)((DmHeader*)message)->Type]++;

        private static void OnVersionResponse(DmSession* s, byte* message, uint size)
        {
            if (s->State != DmState.VersionSent) { Drop(s, DmMessageType.VersionResponse, DmDrop.WrongState, size); return; }
            Accepted(s, message);
            uint version = s->TriedVersions[s->VersionsTried - 1];
            if (((DmVersionResponse*)message)->IsAccepted)
            {
                s->Version = version;
                Event(s, DmEventKind.Negotiated, DmMessageType.VersionResponse, version, 0, 0);
                ReportCapabilities(s);
                return;
            }
            Event(s, DmEventKind.VersionRefused, DmMessageType.VersionResponse, version, 0, 0);
            if (s->VersionsTried < DmVersion.Count) { RequestVersion(s, (int)s->VersionsTried); return; }
            s->State = DmState.Failed;
            Event(s, DmEventKind.NoVersionLeft, DmMessageType.VersionResponse, 0, 0, 0);
        }

        private static void ReportCapabilities(DmSession* s)
        {
            DmCapabilitiesReport m = default;
            m.Header = Header(s, DmMessageType.CapabilitiesReport, DmCapabilitiesReport.Size);
            m.Capabilities.Balloon = s->Services.TakePages != null;
            m.Capabilities.HotAdd = s->Services.AddMemory != null;
            m.Capabilities.HotAddAlignmentLog2MiB = s->HotAddAlignmentLog2MiB;
            m.Capabilities.HotRemove = false;
            m.MinPageCount = 0;
            m.MaxPageNumber = ulong.MaxValue;
            s->Reported = m.Capabilities;
            s->State = DmState.CapabilitiesSent;
            Send(s, &m, DmCapabilitiesReport.Size);
        }

        private static void OnCapabilitiesResponse(DmSession* s, byte* message, uint size)
        {
            if (s->State != DmState.CapabilitiesSent) { Drop(s, DmMessageType.CapabilitiesResponse, DmDrop.WrongState, size); return; }
            Accepted(s, message);
            var r = (DmCapabilitiesResponse*)message;
            if (!r->IsAccepted)
            {
                s->State = DmState.Failed;
                Event(s, DmEventKind.CapabilitiesRefused, DmMessageType.CapabilitiesResponse, 0, 0, 0);
                return;
            }
            s->SuppressStatusReports = r->SuppressPressureReports;
            s->State = DmState.Ready;
            Event(s, DmEventKind.CapabilitiesAccepted, DmMessageType.CapabilitiesResponse, r->Flags, 0, 0);
            PostStatus(s);
        }

        // ---- balloon: pages to the host --------------------------------------------------

        // Gives the host what it asks for, down to FloorPages free pages: a request
        // beyond that gets what can be spared, and one that finds nothing to spare
        // gets a single response with no ranges (the host then stops asking). The
        // pages go out in responses of at most 510 ranges; every response but the
        // last has more_pages set.
        private static void OnBalloonRequest(DmSession* s, byte* message, uint size)
        {
            if (s->State != DmState.Ready) { Drop(s, DmMessageType.BalloonRequest, DmDrop.WrongState, size); return; }
            if (!s->Reported.Balloon) { Drop(s, DmMessageType.BalloonRequest, DmDrop.NotOffered, size); return; }
            Accepted(s, message);
            ulong asked = ((DmBalloonRequest*)message)->PageCount;
            ulong free = s->Services.FreePages();
            ulong spare = free > s->FloorPages ? free - s->FloorPages : 0;
            ulong target = asked < spare ? asked : spare;
            s->BalloonRequests++;
            s->PagesRequested += asked;
            if (target < asked) s->PartialAnswers++;

            ulong given = 0, responses = 0;
            bool more = true;
            while (more)
            {
                var response = (DmBalloonResponse*)s->Scratch;
                var ranges = (DmPageRange*)(s->Scratch + DmBalloonResponse.Size);
                uint count = 0;
                bool exhausted = false;
                while (count < DmConstants.MaxRangesPerMessage && given < target)
                {
                    ulong want = target - given;
                    if (want > DmPageRange.MaxPageCount) want = DmPageRange.MaxPageCount;
                    ulong got;
                    ulong first = s->Services.TakePages(want, &got);
                    if (got == 0) { exhausted = true; break; }
                    if (!s->Balloon.Add(first, got))
                    {
                        // No room to remember them: they go back, and this is where the answer ends.
                        for (ulong p = 0; p < got; p++) s->Services.ReturnPage(first + p);
                        exhausted = true;
                        break;
                    }
                    ranges[count++] = DmPageRange.Of(first, got);
                    given += got;
                }
                more = !exhausted && given < target;
                uint bytes = DmBalloonResponse.Size + count * 8;
                response->Header = Header(s, DmMessageType.BalloonResponse, bytes);
                response->Reserved = 0;
                response->Flags = 0;
                response->RangeCount = count;
                response->MorePages = more;
                if (!Send(s, response, bytes))
                {
                    // The host never saw these ranges: they are still the guest's (Linux does the same).
                    for (uint i = 0; i < count; i++)
                        s->Balloon.Remove(ranges[i].StartPage, ranges[i].PageCount, s->Services.ReturnPage, out ulong _);
                    given -= Sum(ranges, count);
                    break;
                }
                responses++;
            }
            s->PagesGiven += given;
            Event(s, DmEventKind.Ballooned, DmMessageType.BalloonRequest, asked, given, responses);
            PostStatus(s);
        }

        private static ulong Sum(DmPageRange* ranges, uint count)
        {
            ulong n = 0;
            for (uint i = 0; i < count; i++) n += ranges[i].PageCount;
            return n;
        }

        // ---- unballoon: pages back from the host ----------------------------------------

        // Takes back exactly the pages named that are ballooned; a page the guest
        // never gave is counted and left alone. Answered after the last request
        // of a series (more_pages clear).
        private static void OnUnballoonRequest(DmSession* s, byte* message, uint size)
        {
            if (s->State != DmState.Ready) { Drop(s, DmMessageType.UnballoonRequest, DmDrop.WrongState, size); return; }
            var request = (DmUnballoonRequest*)message;
            if (request->RangeCount > (size - DmUnballoonRequest.Size) / 8) { Drop(s, DmMessageType.UnballoonRequest, DmDrop.RangesBeyondMessage, size); return; }
            Accepted(s, message);
            s->UnballoonRequests++;
            var ranges = (DmPageRange*)(message + DmUnballoonRequest.Size);
            ulong returned = 0, foreign = 0;
            for (uint i = 0; i < request->RangeCount; i++)
            {
                ulong count = ranges[i].PageCount;
                ulong back = s->Balloon.Remove(ranges[i].StartPage, count, s->Services.ReturnPage, out ulong kept);
                returned += back;
                foreign += count - back - kept;
            }
            s->PagesReturned += returned;
            s->ForeignPages += foreign;
            Event(s, DmEventKind.Unballooned, DmMessageType.UnballoonRequest, returned, foreign, request->MorePages ? 1ul : 0);
            if (request->MorePages) return;
            DmUnballoonResponse response;
            response.Header = Header(s, DmMessageType.UnballoonResponse, DmUnballoonResponse.Size);
            Send(s, &response, DmUnballoonResponse.Size);
            PostStatus(s);
        }

        // ---- hot-add: new memory from the host -----------------------------------------

        private static void OnHotAddRequest(DmSession* s, byte* message, uint size)
        {
            if (s->State != DmState.Ready) { Drop(s, DmMessageType.HotAddRequest, DmDrop.WrongState, size); return; }
            Accepted(s, message);
            s->HotAddRequests++;
            var request = (DmHotAddRequest*)message;
            ulong first = request->Range.StartPage, count = request->Range.PageCount;
            ulong added = s->Services.AddMemory != null && count > 0 ? s->Services.AddMemory(first, count) : 0;
            s->HotAddedPages += added;
            DmHotAddResponse response;
            response.Header = Header(s, DmMessageType.HotAddResponse, DmHotAddResponse.Size);
            response.PageCount = (uint)added;
            // Without hot-add: success with no pages, so the host stops for good (as Linux
            // answers); a range that could not be added: failure, which the host may retry.
            response.Result = added > 0 || s->Services.AddMemory == null ? 1u : 0u;
            Event(s, DmEventKind.HotAdded, DmMessageType.HotAddRequest, first, count, added);
            Send(s, &response, DmHotAddResponse.Size);
            PostStatus(s);
        }

        // ---- the rest ------------------------------------------------------------------

        private static void OnInfoMessage(DmSession* s, byte* message, uint size)
        {
            var info = (DmInfoMessage*)message;
            if (info->InfoSize > size - DmInfoMessage.Size) { Drop(s, DmMessageType.InfoMessage, DmDrop.RangesBeyondMessage, size); return; }
            Accepted(s, message);
            byte* record = message + DmInfoMessage.Size;
            byte* end = record + info->InfoSize;
            while (record + DmInfoRecord.Size <= end)
            {
                var r = (DmInfoRecord*)record;
                if (r->DataSize > (ulong)(end - record) - DmInfoRecord.Size) break;
                if (r->Type == DmInfoRecord.TypeMaxPageCount && r->DataSize == 8)
                {
                    s->MaxPageCount = *(ulong*)(record + DmInfoRecord.Size);
                    Event(s, DmEventKind.InfoMaxPageCount, DmMessageType.InfoMessage, s->MaxPageCount, 0, 0);
                }
                record += DmInfoRecord.Size + r->DataSize;
            }
        }

        // The guest reports no hot-remove (DmCapabilities.HotRemove is clear), as Linux.
        private static void OnHotRemoveRequest(DmSession* s, byte* message, uint size) => Drop(s, DmMessageType.HotRemoveRequest, DmDrop.NotOffered, size);

        private static void OnError(DmSession* s, byte* message, uint size) => Accepted(s, message);

        // ---- status ------------------------------------------------------------------------

        // DM_STATUS_REPORT: available = free pages; committed = pages in use plus the
        // ballooned ones, which the host counts as the guest's (Linux reports the same).
        public static bool PostStatus(DmSession* s)
        {
            if (s->State != DmState.Ready) return false;
            if (s->SuppressStatusReports) { s->StatusSuppressed++; return false; }
            DmStatusReport m = default;
            m.Header = Header(s, DmMessageType.StatusReport, DmStatusReport.Size);
            m.AvailablePages = s->Services.FreePages();
            m.CommittedPages = s->Services.UsedPages() + s->Balloon.Pages;
            if (!Send(s, &m, DmStatusReport.Size)) return false;
            s->LastStatus = m;
            s->StatusReports++;
            Event(s, DmEventKind.StatusPosted, DmMessageType.StatusReport, m.AvailablePages, m.CommittedPages, 0);
            return true;
        }

        // The channel closed: the host forgets what was ballooned (QEMU resets the
        // device), so every ballooned page is the guest's again.
        public static void Close(DmSession* s)
        {
            s->Balloon.Remove(0, ulong.MaxValue, s->Services.ReturnPage, out ulong _);
            s->State = DmState.Closed;
        }
    }
}
