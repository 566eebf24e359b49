using System;
using Drivers.DynamicMemory;
using Drivers.VmBus;
using Kernel.Arch;
using Kernel.Runtime;

namespace Kernel.TestMode
{
    // The Dynamic Memory driver against QEMU's hv-balloon (QEMU 8.2+, -device
    // hv-balloon; qemu-run.sh --hv-balloon): the channel, the negotiation, the
    // status reports, and, when a host drives the balloon (dm-host on the
    // command line: the xunit run of tests/Kernel.Tests/DynamicMemoryTests.cs,
    // which reads the "dm-host:" lines below and answers through QEMU's QMP
    // monitor), a balloon down and up, a request beyond what the guest can
    // spare, and hot-add (dm-hotadd: the device has a memdev).
    //
    // A host step: the guest prints "dm-host: adjust <+/-pages> <step>", the host
    // moves the balloon target by that much (QMP balloon), the guest waits for
    // its own side to show it, checks the allocator, and prints
    // "dm-host: done <step> ballooned <n> free <n> total <n>", after which the
    // host reads query-balloon and checks it against those figures. After
    // "dm-host: status available <n> committed <n>" the host stops the guest
    // (QMP stop) until it has found those figures in QEMU's status report event.
    public static unsafe class DynamicMemoryTests
    {
        public static void Register()
        {
            TestRunner.Add("dm.channel_opened_on_the_offer"u8, &ChannelOpenedOnTheOffer);
            TestRunner.Add("dm.version_negotiated_newest_first"u8, &VersionNegotiatedNewestFirst);
            TestRunner.Add("dm.capabilities_accepted"u8, &CapabilitiesAccepted);
            TestRunner.Add("dm.status_report_carries_the_allocator_counts"u8, &StatusReportCarriesTheAllocatorCounts);
            TestRunner.Add("dm.status_reports_every_second"u8, &StatusReportsEverySecond);
            TestRunner.Add("dm.malformed_messages_dropped"u8, &MalformedMessagesDropped);
            TestRunner.Add("dm.balloon_down_takes_pages_out_of_the_allocator"u8, &BalloonDown);
            TestRunner.Add("dm.balloon_up_returns_the_pages"u8, &BalloonUp);
            TestRunner.Add("dm.request_beyond_spare_gets_a_partial_answer"u8, &RequestBeyondSpare);
            TestRunner.Add("dm.unballoon_after_partial_returns_everything"u8, &UnballoonAfterPartial);
            TestRunner.Add("dm.hot_add_extends_the_allocator"u8, &HotAdd);
            TestRunner.Add("dm.close_tears_down_the_ring_gpadl"u8, &CloseTearsDownTheRingGpadl);
        }

        // A host step waits this long: QEMU's hv-balloon acts on the first target
        // only 50 s after the capabilities exchange (HV_BALLOON_POST_INIT_WAIT).
        private const ulong HostStepTimeoutMs = 120_000;
        private const long BalloonPages = 16384;          // 64 MiB
        private const long HotAddPages = 16384;           // 64 MiB of the device's memdev
        private const long MoreThanTheGuestHas = 65000;   // 254 MiB: more than the 256 MiB guest has free

        // ---- prerequisites -----------------------------------------------------------

        private static bool Device()
        {
            if (!Need.VmbusHost()) return false;
            if (!Need.DynamicMemoryOffer()) return false;
            return Expect.True(DynamicMemoryDevice.Bound);    // the Dynamic Memory driver has the offered channel open
        }

        private static bool Ready() => Device() && Expect.Equal((ulong)DmState.Ready, (ulong)DynamicMemoryDevice.Session->State);    // protocol state (Ready = 3)

        private static bool HostDriven() => Ready() && Need.DynamicMemoryHost();

        private static DmSession* S => DynamicMemoryDevice.Session;

        // ---- the channel and the protocol ----------------------------------------------

        private static void ChannelOpenedOnTheOffer()
        {
            if (!Device()) return;
            VmbusChannel* c = DynamicMemoryDevice.Channel;
            Expect.True(c->IsOpen);    // channel open
            Expect.Equal((ulong)VmbusResult.Done, (ulong)DynamicMemoryDevice.OpenResult);    // OPENCHANNEL result (Done = 0)
            Expect.Equal(0ul, (ulong)((VmbusOpenChannelResult*)VmbusMessages.Last(VmbusMessageType.OpenChannelResult))->Status);    // OPENCHANNEL_RESULT status
            Expect.True(c->GpadlId != 0);    // the ring GPADL exists
            Expect.Equal(DynamicMemoryDevice.RingPages * 2ul, 2ul * c->RingPages);    // ring pages, both directions
            Expect.InRange(2, ulong.MaxValue, c->PacketsReceived);    // packets from the host (version and capabilities responses)
            Expect.InRange(2, ulong.MaxValue, c->PacketsSent);    // packets to the host (version request, capabilities report)
            Expect.Equal(0ul, c->PacketsDropped);    // packets dropped
            Expect.False(c->Broken);    // the inbound ring is sound
        }

        // QEMU accepts 0.3 to 2.0, so the newest the guest offers is the one taken.
        private static void VersionNegotiatedNewestFirst()
        {
            if (!Ready()) return;
            Expect.Equal((ulong)DmVersion.Win10, (ulong)S->TriedVersions[0]);    // first DM_VERSION_REQUEST: the newest version (2.0)
            Expect.Equal(1ul, (ulong)S->VersionsTried);    // version requests
            Expect.Equal((ulong)DmVersion.Win10, (ulong)S->Version);    // negotiated version
            Expect.Equal(1ul, S->Received[(int)DmMessageType.VersionResponse]);    // DM_VERSION_RESPONSE messages
        }

        private static void CapabilitiesAccepted()
        {
            if (!Ready()) return;
            Expect.True(S->Reported.Balloon);    // balloon reported
            Expect.True(S->Reported.HotAdd);    // hot-add reported
            Expect.Equal((ulong)DynamicMemoryDevice.HotAddAlignmentLog2MiB, (ulong)S->Reported.HotAddAlignmentLog2MiB);    // hot-add alignment (2^n MiB)
            Expect.False(S->Reported.HotRemove);    // no hot-remove reported
            Expect.Equal(1ul, S->Received[(int)DmMessageType.CapabilitiesResponse]);    // DM_CAPABILITIES_RESPONSE messages
            Expect.Equal(1ul, S->Sent[(int)DmMessageType.CapabilitiesReport]);    // DM_CAPABILITIES_REPORT messages
        }

        // available = free pages; committed = allocated pages, ballooned ones included.
        private static void StatusReportCarriesTheAllocatorCounts()
        {
            if (!Ready() || !Need.StatusReportsTaken()) return;
            Cpu.DisableInterrupts();
            ulong free = PageAllocator.FreePages, total = PageAllocator.TotalPages;
            bool sent = DmSession.PostStatus(S);
            DmStatusReport report = S->LastStatus;
            Cpu.EnableInterrupts();
            Expect.True(sent);    // DM_STATUS_REPORT sent
            Expect.Equal(free, report.AvailablePages);    // available pages = the allocator's free pages
            Expect.Equal(total - free, report.CommittedPages);    // committed pages = the allocator's pages in use (ballooned included)
            Expect.Equal((ulong)DmMessageType.StatusReport, (ulong)report.Header.Type);    // header type
            Expect.Equal(DmStatusReport.Size, (ulong)report.Header.MessageSize);    // header size
        }

        // The local APIC timer posts one report a second.
        private static void StatusReportsEverySecond()
        {
            if (!Ready() || !Need.StatusReportsTaken()) return;
            ulong ticks = DynamicMemoryDevice.StatusTimerTicks, reports = S->StatusReports;
            Clock.Delay(3500);
            Expect.InRange(3, 4, DynamicMemoryDevice.StatusTimerTicks - ticks);    // status timer interrupts in 3.5 s
            Expect.InRange(3, 4, S->StatusReports - reports);    // status reports in 3.5 s
        }

        // The session's verdict on a packet of `length` bytes at m, after the header is set.
        private static DmDrop Dropped(byte* m, DmMessageType type, uint size, uint length)
        {
            *(DmHeader*)m = DmHeader.Of(type, size, 1);
            return Dropped(m, length);
        }

        private static DmDrop Dropped(byte* m, uint length)
        {
            DmSession.Receive(S, m, length);
            return S->LastDrop;
        }

        // Bad host messages are dropped with their reason, and nothing else changes.
        private static void MalformedMessagesDropped()
        {
            if (!Ready()) return;
            byte* m = stackalloc byte[64];
            ulong dropped = S->Dropped, given = S->PagesGiven, ballooned = S->Balloon.Pages;
            Cpu.DisableInterrupts();
            DmDrop shortPacket = Dropped(m, 4);
            DmDrop beyond = Dropped(m, DmMessageType.BalloonRequest, 40, 16);       // says 40 bytes, the packet has 16
            DmDrop shortLayout = Dropped(m, DmMessageType.BalloonRequest, 12, 16);  // a balloon request needs 16
            DmDrop unknown = Dropped(m, DmMessageType.StatusReport, 48, 48);        // a guest-to-host type
            ((DmUnballoonRequest*)m)->RangeCount = 100;                             // 100 ranges in 8 bytes
            DmDrop ranges = Dropped(m, DmMessageType.UnballoonRequest, 24, 24);
            DmDrop state = Dropped(m, DmMessageType.VersionResponse, 16, 16);       // the negotiation is over
            Cpu.EnableInterrupts();
            Expect.Equal((ulong)DmDrop.ShorterThanHeader, (ulong)shortPacket);    // 4-byte packet (ShorterThanHeader = 1)
            Expect.Equal((ulong)DmDrop.BadHeaderSize, (ulong)beyond);    // header size beyond the packet (BadHeaderSize = 2)
            Expect.Equal((ulong)DmDrop.ShorterThanLayout, (ulong)shortLayout);    // 12-byte balloon request (ShorterThanLayout = 4)
            Expect.Equal((ulong)DmDrop.UnknownType, (ulong)unknown);    // a status report from the host (UnknownType = 3)
            Expect.Equal((ulong)DmDrop.RangesBeyondMessage, (ulong)ranges);    // range count past the message (RangesBeyondMessage = 5)
            Expect.Equal((ulong)DmDrop.WrongState, (ulong)state);    // a version response when Ready (WrongState = 6)
            Expect.Equal(dropped + 6, S->Dropped);    // messages dropped
            Expect.Equal(given, S->PagesGiven);    // no page given
            Expect.Equal(ballooned, S->Balloon.Pages);    // ballooned pages unchanged
            Expect.Equal((ulong)DmState.Ready, (ulong)S->State);    // state unchanged
        }

        // ---- host-driven steps ---------------------------------------------------------

        private static ulong s_wantBallooned, s_wantRequests, s_wantHotAdded;
        private static bool BalloonedIsWanted(void* _) => S->Balloon.Pages == s_wantBallooned;
        private static bool RequestsAnswered(void* _) => S->BalloonRequests >= s_wantRequests;
        private static bool HotAddedIsWanted(void* _) => S->HotAddedPages >= s_wantHotAdded;

        private static void AskHost(long pages, Text step)
        {
            Console.Print(pages < 0 ? "dm-host: adjust %d %s\n"u8 : "dm-host: adjust +%d %s\n"u8, pages, step);
        }

        private static void TellHostDone(Text step)
        {
            Console.Print("dm-host: done %s ballooned %u free %u total %u\n"u8, step, S->Balloon.Pages, PageAllocator.FreePages, PageAllocator.TotalPages);
        }

        // Sleeps (hlt) until `done` or the timeout: the channel's and the status
        // timer's interrupts wake it. A spinning wait would make the nested
        // runner's TCG emulate the spin for the ~50 s of hv-balloon's start.
        private static bool WaitForHost(delegate*<void*, bool> done, Text step)
        {
            if (Clock.SleepUntil(done, null, HostStepTimeoutMs)) return true;
            Console.Print("dm: the host did not complete step %s in time\n"u8, step);
            return false;
        }

        // One host step: ask, wait until `done`, tell the host the figures it checks.
        private static bool HostStep(long pages, delegate*<void*, bool> done, Text step)
        {
            AskHost(pages, step);
            bool finished = WaitForHost(done, step);
            TellHostDone(step);
            return finished;
        }

        // Every page of every ballooned run is out of the allocator, and nothing
        // the allocator hands out now is one of them.
        private static void CheckBalloonedPagesStayOut()
        {
            ulong notAllocated = 0;
            for (int r = 0; r < S->Balloon.RunCount; r++)
            {
                PageRun run = S->Balloon.Run(r);
                for (ulong p = run.Start; p < run.End; p++) if (!PageAllocator.IsAllocated(p * PageAllocator.PageSize)) notAllocated++;
            }
            Expect.Equal(0ul, notAllocated);    // ballooned pages the allocator would hand out
            const int probes = 256;
            ulong* pages = stackalloc ulong[probes];
            ulong landedInBalloon = 0;
            for (int i = 0; i < probes; i++)
            {
                pages[i] = (ulong)PageAllocator.Allocate();
                Cpu.DisableInterrupts();
                if (S->Balloon.Contains(pages[i] / PageAllocator.PageSize)) landedInBalloon++;
                Cpu.EnableInterrupts();
            }
            for (int i = 0; i < probes; i++) PageAllocator.Free((void*)pages[i]);
            Expect.Equal(0ul, landedInBalloon);    // pages allocated after the balloon that are ballooned
        }

        private static void BalloonDown()
        {
            if (!HostDriven()) return;
            ulong free = PageAllocator.FreePages, ballooned = S->Balloon.Pages;
            s_wantBallooned = ballooned + (ulong)BalloonPages;
            bool done = HostStep(-BalloonPages, &BalloonedIsWanted, "balloon-down"u8);
            if (!Expect.True(done)) return;    // the host's balloon request arrived and was answered within 120 s
            Expect.Equal(free - (ulong)BalloonPages, PageAllocator.FreePages);    // free pages after ballooning 64 MiB
            Expect.Equal(0ul, S->PartialAnswers);    // partial answers
            CheckBalloonedPagesStayOut();
        }

        private static void BalloonUp()
        {
            if (!HostDriven()) return;
            if (!Expect.Equal((ulong)BalloonPages, S->Balloon.Pages)) return;    // ballooned pages before (balloon_down_takes_pages_out_of_the_allocator)
            ulong free = PageAllocator.FreePages, returned = S->PagesReturned;
            s_wantBallooned = 0;
            bool done = HostStep(BalloonPages, &BalloonedIsWanted, "balloon-up"u8);
            if (!Expect.True(done)) return;    // the host's unballoon request arrived and was answered within 120 s
            Expect.Equal(free + (ulong)BalloonPages, PageAllocator.FreePages);    // free pages after the unballoon
            Expect.Equal(returned + (ulong)BalloonPages, S->PagesReturned);    // pages returned
            Expect.Equal(0ul, S->ForeignPages);    // pages named that were never ballooned
            Expect.Equal(1ul, S->Sent[(int)DmMessageType.UnballoonResponse]);    // DM_UNBALLOON_RESPONSE messages
        }

        // QEMU asks for 65000 pages; the guest gives all but its floor of 16 MiB,
        // QEMU asks for the rest, and the guest answers that with no range at all.
        private static void RequestBeyondSpare()
        {
            if (!HostDriven()) return;
            ulong requests = S->BalloonRequests, partial = S->PartialAnswers, given = S->PagesGiven;
            ulong free = PageAllocator.FreePages;
            s_wantRequests = requests + 2;
            bool done = HostStep(-MoreThanTheGuestHas, &RequestsAnswered, "balloon-partial"u8);
            if (!Expect.True(done)) return;    // two balloon requests arrived and were answered within 120 s
            Expect.Equal(DynamicMemoryDevice.FloorPages, PageAllocator.FreePages);    // free pages: exactly the floor is left
            Expect.Equal(free - DynamicMemoryDevice.FloorPages, S->PagesGiven - given);    // pages given: all but the floor
            Expect.Equal(partial + 2, S->PartialAnswers);    // partial answers (the second one empty)
            CheckBalloonedPagesStayOut();
        }

        private static void UnballoonAfterPartial()
        {
            if (!HostDriven()) return;
            ulong ballooned = S->Balloon.Pages;
            if (!Expect.True(ballooned > 0)) return;    // pages ballooned before (request_beyond_spare_gets_a_partial_answer)
            ulong free = PageAllocator.FreePages;
            s_wantBallooned = 0;
            bool done = HostStep((long)ballooned, &BalloonedIsWanted, "balloon-restore"u8);
            if (!Expect.True(done)) return;    // every ballooned page came back within 120 s
            Expect.Equal(free + ballooned, PageAllocator.FreePages);    // free pages after the unballoon
            Expect.Equal(0ul, S->ForeignPages);    // pages named that were never ballooned
        }

        // The device's memdev becomes a zone of the allocator: mapped, allocatable,
        // and in the next status report.
        private static void HotAdd()
        {
            if (!HostDriven() || !Need.DynamicMemoryHotAdd()) return;
            ulong total = PageAllocator.TotalPages, free = PageAllocator.FreePages, tables = Paging.TablesAddedByMapRam;
            int zones = PageAllocator.ZoneCount;
            s_wantHotAdded = S->HotAddedPages + (ulong)HotAddPages;
            AskHost(HotAddPages, "hot-add"u8);
            bool done = WaitForHost(&HotAddedIsWanted, "hot-add"u8);
            if (!done) TellHostDone("hot-add"u8);
            if (!Expect.True(done)) return;    // the host's hot-add request arrived and was answered within 120 s
            Expect.Equal(total + (ulong)HotAddPages, PageAllocator.TotalPages);    // allocator pages after the hot-add
            Expect.Equal((ulong)zones + 1, (ulong)PageAllocator.ZoneCount);    // allocator zones
            // Out of the new pages: one holds the zone's bitmap (16384 bits). From zone 0:
            // the page tables that map them, one page directory (2 MiB pages, aligned as asked).
            const ulong bitmapPages = 1;
            Expect.Equal(1ul, Paging.TablesAddedByMapRam - tables);    // page-table pages for 64 MiB at 32 GiB (one page directory)
            Expect.Equal(free + (ulong)HotAddPages - bitmapPages - (Paging.TablesAddedByMapRam - tables), PageAllocator.FreePages);    // free pages after the hot-add

            // The balloon's search takes the highest zone: the new memory, mapped and writable.
            ulong first = PageAllocator.TakeHighestRun(64, out ulong count);
            ulong end = first + count * PageAllocator.PageSize;
            ulong mismatches = 0;
            for (ulong a = first; a < end; a += 8) *(ulong*)a = a ^ 0x5A5A5A5A5A5A5A5Aul;
            for (ulong a = first; a < end; a += 8) if (*(ulong*)a != (a ^ 0x5A5A5A5A5A5A5A5Aul)) mismatches++;
            for (ulong a = first; a < end; a += PageAllocator.PageSize) PageAllocator.Free((void*)a);
            Expect.Equal(64ul, count);    // pages taken from the top
            Expect.True(first >= PageAllocator.Limit);    // they are hot-added memory, above 4 GiB
            Expect.Equal(0ul, mismatches);    // words that read back wrong

            // The host sees the new memory in the guest's next status report.
            Cpu.DisableInterrupts();
            bool sent = DmSession.PostStatus(S);
            DmStatusReport report = S->LastStatus;
            Cpu.EnableInterrupts();
            Console.Print("dm-host: status available %u committed %u\n"u8, report.AvailablePages, report.CommittedPages);
            TellHostDone("hot-add"u8);
            Expect.True(sent);    // DM_STATUS_REPORT sent after the hot-add
            Expect.Equal(PageAllocator.FreePages, report.AvailablePages);    // available pages in that report
        }

        // Last: CLOSECHANNEL, the ring GPADL torn down, the ring pages freed.
        private static void CloseTearsDownTheRingGpadl()
        {
            if (!Device()) return;
            ulong torn = VmbusMessages.Received[VmbusMessageType.GpadlTorndown], free = PageAllocator.FreePages;
            ulong ballooned = S->Balloon.Pages;
            VmbusResult r = DynamicMemoryDevice.Close();
            Expect.Equal((ulong)VmbusResult.Done, (ulong)r);    // close result (Done = 0)
            Expect.Equal(torn + 1, VmbusMessages.Received[VmbusMessageType.GpadlTorndown]);    // GPADL_TORNDOWN messages
            Expect.False(DynamicMemoryDevice.Bound);    // the driver let the channel go
            Expect.Equal((ulong)DmState.Closed, (ulong)S->State);    // protocol state (Closed = 0)
            Expect.Equal(free + 2ul * DynamicMemoryDevice.RingPages + ballooned, PageAllocator.FreePages);    // free pages: the rings and any ballooned page are back
        }
    }
}
