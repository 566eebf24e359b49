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
                Console.Write("dm: OPENCHANNEL of relid "u8);
                Console.WriteDecimal((ulong)offer->ChildRelid);
                Console.Write(" failed: "u8);
                Console.WriteLine(VmbusConnection.ResultName(OpenResult));
                return false;
            }
            Console.Write("dm: channel open: relid "u8);
            Console.WriteDecimal((ulong)Channel->Relid);
            Console.Write(", GPADL "u8);
            Console.WriteHex(Channel->GpadlId);
            Console.Write(", rings 2 x "u8);
            Console.WriteDecimal((ulong)RingPages);
            Console.Write(" pages, host signalled through "u8);
            if (Channel->UsesMonitor) { Console.Write("monitor id "u8); Console.WriteDecimal((ulong)Channel->MonitorId); }
            else { Console.Write("connection "u8); Console.WriteDecimal((ulong)Channel->SignalConnectionId); }
            Console.WriteLine();

            ulong flags = Cpu.SaveFlagsAndDisableInterrupts();
            DmSession.Start(Session);
            Drain();
            Cpu.RestoreInterrupts(flags);

            // One answer per version offered, and the capabilities exchange.
            Clock.WaitUntil(&SessionSettled, null, NegotiationTimeoutMs * (DmVersion.Count + 1));
            if (Session->State != DmState.Ready)
            {
                Console.Write("dm: the protocol did not start: "u8);
                Console.WriteLine(Session->State == DmState.Failed ? "refused by the host"u8 : "no answer within the timeout"u8);
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
            Console.Write("dm: channel closed; "u8);
            Console.WriteDecimal(ballooned);
            Console.WriteLine(" ballooned pages returned to the allocator"u8);
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
                Console.Write("dm: no status reports: the APIC timer cannot count 1 s at "u8);
                Console.WriteDecimal(TimerFrequency);
                Console.WriteLine(" Hz"u8);
                return;
            }
            Console.Write("dm: status reports every "u8);
            Console.WriteDecimal(StatusPeriodMs);
            Console.Write(" ms (local APIC timer, vector "u8);
            Console.WriteHex(StatusTimerVector);
            Console.Write(", "u8);
            Console.WriteDecimal(TimerFrequency);
            Console.WriteLine(" Hz)"u8);
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
                Console.Write("dm: hot-add of "u8);
                Console.WriteDecimal(count);
                Console.Write(" pages at "u8);
                Console.WriteHex(firstPage * PageAllocator.PageSize);
                Console.Write(" refused: "u8);
                Console.WriteLine(refusal);
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
                    Console.Write("dm: protocol "u8);
                    WriteVersion((uint)e->A);
                    Console.Write(" accepted (tried "u8);
                    for (uint i = 0; i < Session->VersionsTried; i++)
                    {
                        if (i > 0) Console.Write(", "u8);
                        WriteVersion(Session->TriedVersions[i]);
                    }
                    Console.WriteLine(")"u8);
                    break;
                case DmEventKind.VersionRefused:
                    Console.Write("dm: protocol "u8);
                    WriteVersion((uint)e->A);
                    Console.WriteLine(" refused by the host"u8);
                    break;
                case DmEventKind.NoVersionLeft:
                    Console.WriteLine("dm: the host refused every protocol version (2.0, 1.0, 0.3)"u8);
                    break;
                case DmEventKind.CapabilitiesAccepted:
                    Console.Write("dm: capabilities accepted: balloon, hot-add (2^"u8);
                    Console.WriteDecimal((ulong)HotAddAlignmentLog2MiB);
                    Console.Write(" MiB alignment); the host "u8);
                    Console.WriteLine(Session->SuppressStatusReports ? "suppresses status reports"u8 : "takes status reports"u8);
                    break;
                case DmEventKind.CapabilitiesRefused:
                    Console.WriteLine("dm: the host refused the capabilities report"u8);
                    break;
                case DmEventKind.Ballooned:
                    Console.Write("dm: balloon request for "u8);
                    Console.WriteDecimal(e->A);
                    Console.Write(" pages: gave "u8);
                    Console.WriteDecimal(e->B);
                    Console.Write(" in "u8);
                    Console.WriteDecimal(e->C);
                    Console.Write(" response(s); "u8);
                    Console.WriteDecimal(Session->Balloon.Pages);
                    Console.Write(" pages ballooned in all"u8);
                    Console.WriteLine(e->B < e->A ? " (partial: the guest keeps its floor of free pages)"u8 : ""u8);
                    break;
                case DmEventKind.Unballooned:
                    Console.Write("dm: unballoon: "u8);
                    Console.WriteDecimal(e->A);
                    Console.Write(" pages back"u8);
                    if (e->B != 0) { Console.Write(", "u8); Console.WriteDecimal(e->B); Console.Write(" named pages were never ballooned (ignored)"u8); }
                    Console.Write("; "u8);
                    Console.WriteDecimal(Session->Balloon.Pages);
                    Console.WriteLine(e->C != 0 ? " still ballooned, more to come"u8 : " still ballooned"u8);
                    break;
                case DmEventKind.HotAdded:
                    Console.Write("dm: hot-add of "u8);
                    Console.WriteDecimal(e->B);
                    Console.Write(" pages at "u8);
                    Console.WriteHex(e->A * PageAllocator.PageSize);
                    Console.Write(": "u8);
                    Console.WriteDecimal(e->C);
                    Console.WriteLine(" added"u8);
                    break;
                case DmEventKind.StatusPosted:
                    if (Session->StatusReports != 0) break;
                    Console.Write("dm: first status report: available "u8);
                    Console.WriteDecimal(e->A);
                    Console.Write(" pages, committed "u8);
                    Console.WriteDecimal(e->B);
                    Console.WriteLine(" pages"u8);
                    break;
                case DmEventKind.InfoMaxPageCount:
                    Console.Write("dm: the host may give this guest up to "u8);
                    Console.WriteDecimal(e->A);
                    Console.WriteLine(" pages"u8);
                    break;
                case DmEventKind.Dropped:
                    Console.Write("dm: dropped "u8);
                    Console.Write(DmMessageName.Of(e->Type));
                    Console.Write(" ("u8);
                    Console.WriteDecimal(e->A);
                    Console.Write(" bytes): "u8);
                    Console.WriteLine(DropReason(e->Reason));
                    break;
                case DmEventKind.SendFailed:
                    Console.Write("dm: could not send "u8);
                    Console.Write(DmMessageName.Of(e->Type));
                    Console.WriteLine(" (the outbound ring stayed full)"u8);
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

        public static void WriteVersion(uint version)
        {
            Console.WriteDecimal((ulong)DmVersion.Major(version));
            Console.Write('.');
            Console.WriteDecimal((ulong)DmVersion.Minor(version));
        }
    }
}
