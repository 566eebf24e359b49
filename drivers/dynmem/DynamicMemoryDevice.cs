using System;
using Drivers.VmBus;
using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;

namespace Drivers.DynamicMemory
{
    // The Dynamic Memory device driver: binds the protocol session
    // (DynamicMemorySession.cs) to its VMBus channel and to the kernel's page
    // allocator. The host's messages are handled in the channel's interrupt
    // (on the VP that opened the channel), the once-a-second status report in
    // that VP's local APIC timer interrupt: both run with interrupts off, so
    // the session is never entered twice. Code outside them (the tests)
    // touches the session only with interrupts off as well.
    public static unsafe class DynamicMemoryDevice
    {
        // 525074dc-8985-46e2-8057-a307dc18a502 (Linux HV_DM_GUID).
        public static Guid Class => Guid.From(0x525074dc, 0x8985, 0x46e2, 0x8057a307dc18a502);

        public const uint RingPages = 8;                    // each direction, header page included (28 KiB of data)
        public const ulong StatusPeriodMs = 1000;           // "the host expects the guest to post status every second"
        public const byte StatusTimerVector = 0x42;
        public const ulong NegotiationTimeoutMs = 5000;     // Linux waits 5 s for each answer
        public const ulong FloorPages = 4096;               // the balloon leaves 16 MiB free for the kernel
        public const uint HotAddAlignmentLog2MiB = 1;       // 2 MiB: hot-added memory is mapped with 2 MiB pages
        private const int BalloonRunCapacity = 2048;        // 32 KiB of runs
        private const uint ReceiveBufferBytes = DmConstants.MaxMessageSize + 64;

        public static DmSession* Session;
        public static VmbusOffer* Offer;                    // the one the driver was given
        public static VmbusChannel* Channel;
        public static VmbusResult OpenResult;
        public static ulong TimerFrequency;                 // local APIC timer ticks per second
        public static ulong StatusTimerTicks;
        private static byte* s_receiveBuffer;

        public static bool Bound => Channel != null;

        // ---- binding -------------------------------------------------------------------

        // The offer of a Dynamic Memory device (VmbusDrivers.Bind calls this): open its
        // channel, negotiate, report capabilities, start the status reports.
        public static bool Probe(VmbusOffer* offer)
        {
            if (Channel != null) { Console.WriteLine("dm: a second Dynamic Memory offer ignored (one device per guest)"u8); return false; }
            EnsureSession();
            Offer = offer;
            Channel = VmbusChannels.Open(offer, RingPages, &OnChannelInterrupt, out OpenResult, &OnChannelClose);
            if (Channel == null)
            {
                Console.Print("dm: OPENCHANNEL of relid %u failed: %s\n"u8, offer->ChildRelid, VmbusConnection.ResultName(OpenResult));
                return false;
            }
            Console.Print("dm: channel open: relid %u, GPADL 0x%x, rings 2 x %u pages, host signalled through %s%u\n"u8,
                Channel->Relid, Channel->GpadlId, RingPages, Channel->UsesMonitor ? "monitor id "u8 : "connection "u8,
                Channel->UsesMonitor ? Channel->MonitorId : Channel->SignalConnectionId);

            ulong flags = Cpu.SaveFlagsAndDisableInterrupts();
            DmSession.Start(Session);
            Drain();
            Cpu.RestoreInterrupts(flags);

            // One answer per version offered, and the capabilities exchange.
            Clock.WaitUntil(&SessionSettled, null, NegotiationTimeoutMs * (DmVersion.Count + 1));
            if (Session->State != DmState.Ready)
            {
                Console.Print("dm: the protocol did not start: %s\n"u8, Session->State == DmState.Failed ? "refused by the host"u8 : "no answer within the timeout"u8);
                return true;        // the channel stays open: the host may still answer
            }
            StartStatusTimer();
            return true;
        }

        // One session for the life of the kernel; a new probe (after an UNLOAD and a
        // new connection) starts it afresh over the same buffers.
        private static void EnsureSession()
        {
            if (Session == null)
            {
                Session = (DmSession*)Heap.AllocateRaw((ulong)sizeof(DmSession));
                s_receiveBuffer = (byte*)Heap.AllocateRaw(ReceiveBufferBytes);
                s_scratch = (byte*)PageAllocator.Allocate(zero: true);
                s_runs = (PageRun*)PageAllocator.AllocateContiguous((ulong)(BalloonRunCapacity * sizeof(PageRun)) / PageAllocator.PageSize, zero: true);
            }
            *Session = default;
            Session->Scratch = s_scratch;
            Session->Balloon.Initialize(s_runs, BalloonRunCapacity);
            Session->FloorPages = FloorPages;
            Session->HotAddAlignmentLog2MiB = HotAddAlignmentLog2MiB;
            Session->Services.Send = &Send;
            Session->Services.TakePages = &TakePages;
            Session->Services.ReturnPage = &ReturnPage;
            Session->Services.AddMemory = &AddMemory;
            Session->Services.FreePages = &FreePages;
            Session->Services.UsedPages = &UsedPages;
            Session->Services.OnEvent = &Log;
        }

        private static byte* s_scratch;
        private static PageRun* s_runs;

        // ---- the channel -----------------------------------------------------------------

        private static void OnChannelInterrupt(VmbusChannel* channel) => Drain();

        private static void Drain() => VmbusPackets.Drain(Channel, s_receiveBuffer, ReceiveBufferBytes, &OnPacket);

        private static void OnPacket(VmbusChannel* channel, byte* data, uint length) => DmSession.Receive(Session, data, length);

        // Closed by the guest or gone with an UNLOAD: the host has reset the device
        // and forgotten what was ballooned, so those pages are the guest's again.
        private static void OnChannelClose(VmbusChannel* channel)
        {
            ApicTimer.Stop();
            ulong flags = Cpu.SaveFlagsAndDisableInterrupts();
            ulong ballooned = Session->Balloon.Pages;
            DmSession.Close(Session);
            Cpu.RestoreInterrupts(flags);
            Channel = null;
            Console.Print("dm: channel closed; %u ballooned pages returned to the allocator\n"u8, ballooned);
        }

        // Closes the channel (CLOSECHANNEL, then the ring GPADL's teardown).
        public static VmbusResult Close() => Channel == null ? VmbusResult.NotReady : VmbusChannels.Close(Channel);

        // ---- the status report -------------------------------------------------------------

        private static void StartStatusTimer()
        {
            // TLFS 2.4.4: HV_X64_MSR_APIC_FREQUENCY with AccessFrequencyRegs; else measure it.
            TimerFrequency = HyperV.Has(HvPartitionPrivilege.AccessFrequencyRegs) ? Cpu.ReadMsr(HvMsr.ApicFrequency) : ApicTimer.MeasureFrequency();
            Interrupts.SetHandler(StatusTimerVector, &OnStatusTimer);
            if (!ApicTimer.StartPeriodic(StatusTimerVector, TimerFrequency, StatusPeriodMs))
            {
                Console.Print("dm: no status reports: the APIC timer cannot count 1 s at %u Hz\n"u8, TimerFrequency);
                return;
            }
            Console.Print("dm: status reports every %u ms (local APIC timer, vector 0x%x, %u Hz)\n"u8, StatusPeriodMs, StatusTimerVector, TimerFrequency);
        }

        private static void OnStatusTimer(InterruptFrame* frame)
        {
            StatusTimerTicks++;
            if (Session != null) DmSession.PostStatus(Session);
            Apic.EndOfInterrupt();
        }

        // ---- what the session asks of the kernel -------------------------------------------

        private static bool Send(void* message, uint size)
            => Channel != null && VmbusPackets.Send(Channel, (byte*)message, size, ((DmHeader*)message)->TransactionId, false) == VmbusRingStatus.Done;

        private static ulong TakePages(ulong max, ulong* count)
        {
            ulong first = PageAllocator.TakeHighestRun(max, out ulong n);
            *count = n;
            return first / PageAllocator.PageSize;
        }

        private static void ReturnPage(ulong page) => PageAllocator.Free((void*)(page * PageAllocator.PageSize));

        private static bool SessionSettled(void* _) => Session->State == DmState.Ready || Session->State == DmState.Failed;

        private static ulong AddMemory(ulong firstPage, ulong count)
        {
            Text refusal = PageAllocator.CheckNewZone(firstPage, count);
            if (!refusal.IsEmpty)
            {
                Console.Print("dm: hot-add of %u pages at 0x%x refused: %s\n"u8, count, firstPage * PageAllocator.PageSize, refusal);
                return 0;
            }
            return PageAllocator.AddZone(firstPage, count);
        }

        private static ulong FreePages() => PageAllocator.FreePages;

        private static ulong UsedPages() => PageAllocator.TotalPages - PageAllocator.FreePages - Session->Balloon.Pages;

        // ---- the log -------------------------------------------------------------------------

        // One line per event, from the session's context (line-atomic: Console).
        // Status reports are many: only the first is logged (the tests print theirs).
        private static void Log(DmEvent* e)
        {
            switch (e->Kind)
            {
                case DmEventKind.Negotiated:
                    Console.Print("dm: protocol %u.%u accepted (tried "u8, DmVersion.Major((uint)e->A), DmVersion.Minor((uint)e->A));
                    for (uint i = 0; i < Session->VersionsTried; i++)
                        Console.Print(i > 0 ? ", %u.%u"u8 : "%u.%u"u8, DmVersion.Major(Session->TriedVersions[i]), DmVersion.Minor(Session->TriedVersions[i]));
                    Console.WriteLine(")"u8);
                    break;
                case DmEventKind.VersionRefused:
                    Console.Print("dm: protocol %u.%u refused by the host\n"u8, DmVersion.Major((uint)e->A), DmVersion.Minor((uint)e->A));
                    break;
                case DmEventKind.NoVersionLeft:
                    Console.WriteLine("dm: the host refused every protocol version (2.0, 1.0, 0.3)"u8);
                    break;
                case DmEventKind.CapabilitiesAccepted:
                    Console.Print("dm: capabilities accepted: balloon, hot-add (2^%u MiB alignment); the host %s\n"u8,
                        HotAddAlignmentLog2MiB, Session->SuppressStatusReports ? "suppresses status reports"u8 : "takes status reports"u8);
                    break;
                case DmEventKind.CapabilitiesRefused:
                    Console.WriteLine("dm: the host refused the capabilities report"u8);
                    break;
                case DmEventKind.Ballooned:
                    Console.Print("dm: balloon request for %u pages: gave %u in %u response(s); %u pages ballooned in all%s\n"u8, e->A, e->B, e->C,
                        Session->Balloon.Pages, e->B < e->A ? " (partial: the guest keeps its floor of free pages)"u8 : ""u8);
                    break;
                case DmEventKind.Unballooned:
                    Console.Print("dm: unballoon: %u pages back"u8, e->A);
                    if (e->B != 0) Console.Print(", %u named pages were never ballooned (ignored)"u8, e->B);
                    Console.Print("; %u%s\n"u8, Session->Balloon.Pages, e->C != 0 ? " still ballooned, more to come"u8 : " still ballooned"u8);
                    break;
                case DmEventKind.HotAdded:
                    Console.Print("dm: hot-add of %u pages at 0x%x: %u added\n"u8, e->B, e->A * PageAllocator.PageSize, e->C);
                    break;
                case DmEventKind.StatusPosted:
                    if (Session->StatusReports != 0) break;
                    Console.Print("dm: first status report: available %u pages, committed %u pages\n"u8, e->A, e->B);
                    break;
                case DmEventKind.InfoMaxPageCount:
                    Console.Print("dm: the host may give this guest up to %u pages\n"u8, e->A);
                    break;
                case DmEventKind.Dropped:
                    Console.Print("dm: dropped %s (%u bytes): %s\n"u8, DmMessageName.Of(e->Type), e->A, DropReason(e->Reason));
                    break;
                case DmEventKind.SendFailed:
                    Console.Print("dm: could not send %s (the outbound ring stayed full)\n"u8, DmMessageName.Of(e->Type));
                    break;
            }
        }

        public static Text DropReason(DmDrop reason) => reason switch
        {
            DmDrop.ShorterThanHeader => "shorter than the 8-byte DM header"u8,
            DmDrop.BadHeaderSize => "the header's size is below 8 or beyond the packet"u8,
            DmDrop.UnknownType => "not a message a guest receives"u8,
            DmDrop.ShorterThanLayout => "shorter than its type's layout"u8,
            DmDrop.RangesBeyondMessage => "its count runs past the end of the message"u8,
            DmDrop.WrongState => "not expected in the protocol's current state"u8,
            DmDrop.NotOffered => "a capability the guest did not report"u8,
            _ => "no reason"u8,
        };
    }
}
