using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Drivers.DynamicMemory;
using Xunit;

namespace Kernel.Tests;

// The Dynamic Memory protocol as the kernel compiles it (drivers/dynmem/): the
// layouts, and the session fed by a model host and a model page allocator,
// including every kind of bad message. Each message is placed so that it ends
// at a page with no access behind it: reading one byte past it kills the test.
public unsafe class DynamicMemoryProtocolTests : IDisposable
{
    // ---- the model kernel: a page allocator and the packets the session sent ----

    private static readonly SortedSet<ulong> s_free = new();
    private static readonly HashSet<ulong> s_allocated = new();
    private static readonly List<byte[]> s_sent = new();
    private static readonly List<DmEvent> s_events = new();
    private static readonly List<(ulong First, ulong Count)> s_added = new();
    private static bool s_sendFails;
    private static ulong s_addLimit = ulong.MaxValue;

    private static bool Send(void* message, uint size)
    {
        if (s_sendFails) return false;
        s_sent.Add(new ReadOnlySpan<byte>(message, (int)size).ToArray());
        return true;
    }

    // The highest free run, as PageAllocator.TakeHighestRun.
    private static ulong TakePages(ulong max, ulong* count)
    {
        *count = 0;
        if (s_free.Count == 0) return 0;
        ulong top = s_free.Max, first = top;
        while (*count < max && s_free.Contains(first))
        {
            s_free.Remove(first);
            s_allocated.Add(first);
            (*count)++;
            if (first == 0) break;
            first--;
        }
        return *count == 0 ? 0 : top + 1 - *count;
    }

    private static void ReturnPage(ulong page)
    {
        Assert.True(s_allocated.Remove(page), $"page {page} returned but not allocated");
        s_free.Add(page);
    }

    private static ulong AddMemory(ulong first, ulong count)
    {
        if (count > s_addLimit) return 0;
        s_added.Add((first, count));
        for (ulong p = first; p < first + count; p++) s_free.Add(p);
        return count;
    }

    private static ulong FreePages() => (ulong)s_free.Count;
    private static ulong UsedPages() => 1000;
    private static void OnEvent(DmEvent* e) => s_events.Add(*e);

    private readonly DmSession* _s;
    private readonly PageRun* _runs;
    private readonly byte* _scratch;
    private const int RunCapacity = 4096;

    public DynamicMemoryProtocolTests()
    {
        s_free.Clear(); s_allocated.Clear(); s_sent.Clear(); s_events.Clear(); s_added.Clear();
        s_sendFails = false;
        s_addLimit = ulong.MaxValue;
        for (ulong p = 0x1000; p < 0x1000 + 20000; p++) s_free.Add(p);     // 20000 free pages
        _s = (DmSession*)NativeMemory.AllocZeroed((nuint)sizeof(DmSession));
        _runs = (PageRun*)NativeMemory.AllocZeroed((nuint)(RunCapacity * sizeof(PageRun)));
        _scratch = (byte*)NativeMemory.AllocZeroed(DmConstants.MaxMessageSize);
        _s->Scratch = _scratch;
        _s->Balloon.Initialize(_runs, RunCapacity);
        _s->FloorPages = 1000;
        _s->HotAddAlignmentLog2MiB = 1;
        _s->Services.Send = &Send;
        _s->Services.TakePages = &TakePages;
        _s->Services.ReturnPage = &ReturnPage;
        _s->Services.AddMemory = &AddMemory;
        _s->Services.FreePages = &FreePages;
        _s->Services.UsedPages = &UsedPages;
        _s->Services.OnEvent = &OnEvent;
    }

    public void Dispose()
    {
        NativeMemory.Free(_s);
        NativeMemory.Free(_runs);
        NativeMemory.Free(_scratch);
    }

    // ---- messages that end at an inaccessible page -----------------------------------

    [DllImport("libc", SetLastError = true)] private static extern nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);
    [DllImport("libc", SetLastError = true)] private static extern int mprotect(nint addr, nuint length, int prot);
    [DllImport("libc", SetLastError = true)] private static extern int munmap(nint addr, nuint length);
    private const int ProtNone = 0, ProtReadWrite = 3, MapPrivateAnonymous = 0x02 | 0x20;

    // Hands the session `bytes` laid out so that the byte after them faults.
    private void Feed(byte[] bytes, uint? length = null)
    {
        nint region = mmap(0, 8192, ProtReadWrite, MapPrivateAnonymous, -1, 0);
        Assert.NotEqual(-1, (long)region);
        Assert.Equal(0, mprotect(region + 4096, 4096, ProtNone));
        byte* at = (byte*)region + 4096 - bytes.Length;
        bytes.CopyTo(new Span<byte>(at, bytes.Length));
        DmSession.Receive(_s, at, length ?? (uint)bytes.Length);
        munmap(region, 8192);
    }

    private static byte[] Message<T>(T message) where T : unmanaged
    {
        var b = new byte[sizeof(T)];
        fixed (byte* p = b) Unsafe.Copy(p, ref message);
        return b;
    }

    // The first `size` bytes of a message: a truncated one.
    private static byte[] Bytes<T>(T message, int size) where T : unmanaged => Message(message)[..size];

    private static T Sent<T>(int index) where T : unmanaged
    {
        fixed (byte* p = s_sent[index]) return *(T*)p;
    }

    private static DmHeader H(DmMessageType type, uint size) => DmHeader.Of(type, size, 7);

    private static byte[] VersionResponse(bool accepted) => Message(new DmVersionResponse { Header = H(DmMessageType.VersionResponse, 16), Flags = accepted ? 1ul : 0 });
    private static byte[] CapabilitiesResponse(bool accepted, bool suppress = false)
        => Message(new DmCapabilitiesResponse { Header = H(DmMessageType.CapabilitiesResponse, 16), Flags = (accepted ? 1ul : 0) | (suppress ? 4ul : 0) });
    private static byte[] BalloonRequest(uint pages) => Message(new DmBalloonRequest { Header = H(DmMessageType.BalloonRequest, 16), PageCount = pages });

    private static byte[] UnballoonRequest(bool more, params (ulong First, ulong Count)[] ranges)
    {
        var b = new byte[16 + 8 * ranges.Length];
        fixed (byte* p = b)
        {
            var r = (DmUnballoonRequest*)p;
            r->Header = H(DmMessageType.UnballoonRequest, (uint)b.Length);
            r->Flags = more ? 1u : 0;
            r->RangeCount = (uint)ranges.Length;
            for (int i = 0; i < ranges.Length; i++) ((DmPageRange*)(p + 16))[i] = DmPageRange.Of(ranges[i].First, ranges[i].Count);
        }
        return b;
    }

    // Starts the session and gives it the host's answers, in order.
    private void StartAndAnswer(params byte[][] answers)
    {
        DmSession.Start(_s);
        foreach (var answer in answers) Feed(answer);
    }

    // A session that has negotiated (what it sent and reported so far forgotten),
    // then given the host's `messages`.
    private void MakeReady(params byte[][] messages)
    {
        StartAndAnswer(VersionResponse(true), CapabilitiesResponse(true));
        Assert.Equal(DmState.Ready, _s->State);
        s_sent.Clear();
        s_events.Clear();
        foreach (var message in messages) Feed(message);
    }

    private static List<(ulong First, ulong Count)> Ranges(byte[] response)
    {
        var list = new List<(ulong, ulong)>();
        fixed (byte* p = response)
        {
            var r = (DmBalloonResponse*)p;
            for (int i = 0; i < r->RangeCount; i++) { var range = ((DmPageRange*)(p + 16))[i]; list.Add((range.StartPage, range.PageCount)); }
        }
        return list;
    }

    // ---- layouts -------------------------------------------------------------------

    [Fact]
    public void LayoutsHaveTheProtocolsSizesAndOffsets()
    {
        Assert.Equal(8, sizeof(DmHeader));
        Assert.Equal(16, sizeof(DmVersionRequest));
        Assert.Equal(16, sizeof(DmVersionResponse));
        Assert.Equal(32, sizeof(DmCapabilitiesReport));
        Assert.Equal(16, sizeof(DmCapabilitiesResponse));
        Assert.Equal(48, sizeof(DmStatusReport));
        Assert.Equal(16, sizeof(DmBalloonRequest));
        Assert.Equal(16, sizeof(DmBalloonResponse));
        Assert.Equal(16, sizeof(DmUnballoonRequest));
        Assert.Equal(8, sizeof(DmUnballoonResponse));
        Assert.Equal(24, sizeof(DmHotAddRequest));
        Assert.Equal(16, sizeof(DmHotAddResponse));
        Assert.Equal(24, sizeof(DmHotRemoveRequest));
        Assert.Equal(8, (int)Marshal.OffsetOf<DmStatusReport>(nameof(DmStatusReport.AvailablePages)));
        Assert.Equal(16, (int)Marshal.OffsetOf<DmStatusReport>(nameof(DmStatusReport.CommittedPages)));
        Assert.Equal(12, (int)Marshal.OffsetOf<DmUnballoonRequest>(nameof(DmUnballoonRequest.RangeCount)));
        Assert.Equal(510, DmConstants.MaxRangesPerMessage);
    }

    [Fact]
    public void PageRangeIsStartPageInTheLow40BitsAndCountInTheHigh24()
    {
        var r = DmPageRange.Of(0x12_3456_789A, 0xABCDEF);
        Assert.Equal(0xABCDEF_12_3456_789Aul, r.Value);
        Assert.Equal(0x12_3456_789Aul, r.StartPage);
        Assert.Equal(0xABCDEFul, r.PageCount);
    }

    [Fact]
    public void HeaderAndBitFieldsEncodeAsOnTheWire()
    {
        var b = Message(DmHeader.Of(DmMessageType.BalloonResponse, 0x1234, 0xA1B2C3D4));
        Assert.Equal(new byte[] { 7, 0, 0x34, 0x12, 0xD4, 0xC3, 0xB2, 0xA1 }, b);
        DmCapabilities caps = default;
        caps.Balloon = true;
        caps.HotAdd = true;
        caps.HotAddAlignmentLog2MiB = 7;
        Assert.Equal(0b0_0111_1_1ul, caps.Value);
        DmBalloonResponse response = default;
        response.MorePages = true;
        response.RangeCount = 3;
        Assert.Equal(0b111u, response.Flags);
        Assert.Equal(0x00020000u, DmVersion.Win10);
        Assert.Equal(0x00000003u, DmVersion.Win7);
    }

    // ---- negotiation -------------------------------------------------------------------

    [Fact]
    public void VersionsAreOfferedNewestFirstAndTheLastIsMarked()
    {
        StartAndAnswer(VersionResponse(false), VersionResponse(false));
        Assert.Equal(3, s_sent.Count);
        Assert.Equal(DmVersion.Win10, Sent<DmVersionRequest>(0).Version);
        Assert.False(Sent<DmVersionRequest>(0).IsLastAttempt);
        Assert.Equal(DmVersion.Win8, Sent<DmVersionRequest>(1).Version);
        Assert.Equal(DmVersion.Win7, Sent<DmVersionRequest>(2).Version);
        Assert.True(Sent<DmVersionRequest>(2).IsLastAttempt);
        Feed(VersionResponse(false));
        Assert.Equal(DmState.Failed, _s->State);
        Assert.Contains(s_events, e => e.Kind == DmEventKind.NoVersionLeft);
        Assert.Equal(3, s_sent.Count);
    }

    [Fact]
    public void AcceptedVersionIsFollowedByTheCapabilities()
    {
        StartAndAnswer(VersionResponse(false), VersionResponse(true));
        Assert.Equal(DmVersion.Win8, _s->Version);
        Assert.Equal(DmState.CapabilitiesSent, _s->State);
        var caps = Sent<DmCapabilitiesReport>(2);
        Assert.Equal(DmMessageType.CapabilitiesReport, caps.Header.Type);
        Assert.Equal(32, caps.Header.MessageSize);
        Assert.True(caps.Capabilities.Balloon);
        Assert.True(caps.Capabilities.HotAdd);
        Assert.Equal(1u, caps.Capabilities.HotAddAlignmentLog2MiB);
        Assert.False(caps.Capabilities.HotRemove);
        Assert.Equal(ulong.MaxValue, caps.MaxPageNumber);
        Feed(CapabilitiesResponse(true));
        Assert.Equal(DmState.Ready, _s->State);
        var status = Sent<DmStatusReport>(3);                   // the first report follows at once
        Assert.Equal(DmMessageType.StatusReport, status.Header.Type);
        Assert.Equal(20000ul, status.AvailablePages);
        Assert.Equal(1000ul, status.CommittedPages);
    }

    [Fact]
    public void RefusedCapabilitiesFailTheSession()
    {
        StartAndAnswer(VersionResponse(true), CapabilitiesResponse(false));
        Assert.Equal(DmState.Failed, _s->State);
        Feed(BalloonRequest(10));
        Assert.Equal(DmDrop.WrongState, _s->LastDrop);
        Assert.Equal(20000, s_free.Count);
    }

    [Fact]
    public void SuppressedStatusReportsAreNotSent()
    {
        StartAndAnswer(VersionResponse(true), CapabilitiesResponse(true, suppress: true));
        int sent = s_sent.Count;
        Assert.False(DmSession.PostStatus(_s));
        Assert.Equal(sent, s_sent.Count);
        Assert.Equal(2ul, _s->StatusSuppressed);    // the one after the capabilities, and this one
    }

    [Fact]
    public void StatusReportCountsBalloonedPagesAsCommitted()
    {
        MakeReady(BalloonRequest(300));
        s_sent.Clear();
        Assert.True(DmSession.PostStatus(_s));
        var status = Sent<DmStatusReport>(0);
        Assert.Equal(19700ul, status.AvailablePages);
        Assert.Equal(1300ul, status.CommittedPages);
        Assert.Equal(48, status.Header.MessageSize);
    }

    // ---- balloon ---------------------------------------------------------------------------

    [Fact]
    public void BalloonRequestIsAnsweredWithThePagesTaken()
    {
        MakeReady(BalloonRequest(5000));
        var response = s_sent[0];
        Assert.Equal(DmMessageType.BalloonResponse, Sent<DmBalloonResponse>(0).Header.Type);
        Assert.False(Sent<DmBalloonResponse>(0).MorePages);
        Assert.Equal((ulong)response.Length, (ulong)Sent<DmBalloonResponse>(0).Header.MessageSize);
        var ranges = Ranges(response);
        Assert.Equal(5000ul, ranges.Aggregate(0ul, (n, r) => n + r.Count));
        foreach (var (first, count) in ranges)
            for (ulong p = first; p < first + count; p++) Assert.Contains(p, s_allocated);
        Assert.Equal(5000ul, _s->Balloon.Pages);
        Assert.Equal(15000, s_free.Count);
    }

    // 20000 free, a floor of 1000: 19000 to spare; the next request finds nothing.
    [Fact]
    public void RequestBeyondTheFloorGetsWhatCanBeSparedThenAnEmptyAnswer()
    {
        MakeReady(BalloonRequest(25000));
        Assert.Equal(1000, s_free.Count);
        Assert.Equal(19000ul, _s->Balloon.Pages);
        Assert.False(Sent<DmBalloonResponse>(s_sent.Count - 2).MorePages);    // then a status report
        Feed(BalloonRequest(6000));
        var empty = Sent<DmBalloonResponse>(s_sent.Count - 2);
        Assert.Equal(0u, empty.RangeCount);
        Assert.False(empty.MorePages);
        Assert.Equal(16, empty.Header.MessageSize);
        Assert.Equal(2ul, _s->PartialAnswers);
        Assert.Equal(1000, s_free.Count);
    }

    // Scattered free pages need more than 510 ranges: several responses, all
    // but the last with more_pages set.
    [Fact]
    public void ManyRangesSpanSeveralResponses()
    {
        s_free.Clear();
        for (ulong p = 0; p < 3000; p++) s_free.Add(0x10000 + 2 * p);          // every other page
        _s->FloorPages = 0;
        MakeReady(BalloonRequest(1200));
        var responses = s_sent.Where(b => b[0] == (byte)DmMessageType.BalloonResponse).ToList();
        Assert.Equal(3, responses.Count);
        fixed (byte* a = responses[0], b = responses[1], c = responses[2])
        {
            Assert.Equal(510u, ((DmBalloonResponse*)a)->RangeCount);
            Assert.True(((DmBalloonResponse*)a)->MorePages);
            Assert.Equal(16 + 510 * 8, ((DmBalloonResponse*)a)->Header.MessageSize);
            Assert.True(((DmBalloonResponse*)b)->MorePages);
            Assert.Equal(180u, ((DmBalloonResponse*)c)->RangeCount);
            Assert.False(((DmBalloonResponse*)c)->MorePages);
        }
        Assert.Equal(1200ul, _s->Balloon.Pages);
    }

    [Fact]
    public void PagesOfAResponseThatCannotBeSentGoBack()
    {
        MakeReady();
        s_sendFails = true;
        Feed(BalloonRequest(700));
        Assert.Equal(0ul, _s->Balloon.Pages);
        Assert.Equal(20000, s_free.Count);
        Assert.Empty(s_allocated);
        Assert.Contains(s_events, e => e.Kind == DmEventKind.SendFailed && e.Type == DmMessageType.BalloonResponse);
    }

    // ---- unballoon --------------------------------------------------------------------------

    [Fact]
    public void UnballoonReturnsExactlyTheNamedPagesAndAnswersAtTheEnd()
    {
        MakeReady(BalloonRequest(100));
        var (first, _) = Ranges(s_sent[0])[0];
        s_sent.Clear();
        Feed(UnballoonRequest(true, (first + 10, 5)));            // out of the middle of a run
        Assert.Empty(s_sent);                                     // more to come: no answer yet
        Assert.Equal(95ul, _s->Balloon.Pages);
        Assert.False(_s->Balloon.Contains(first + 12));
        Assert.True(_s->Balloon.Contains(first + 15));
        Feed(UnballoonRequest(false, (first, 10), (first + 15, 85)));
        Assert.Equal(DmMessageType.UnballoonResponse, Sent<DmUnballoonResponse>(0).Header.Type);
        Assert.Equal(8, Sent<DmUnballoonResponse>(0).Header.MessageSize);
        Assert.Equal(0ul, _s->Balloon.Pages);
        Assert.Equal(20000, s_free.Count);
    }

    [Fact]
    public void UnballoonOfPagesNeverGivenChangesNothing()
    {
        MakeReady(BalloonRequest(100));
        var (first, _) = Ranges(s_sent[0])[0];
        Feed(UnballoonRequest(false, (first - 50, 60), (5, 3)));   // 50 + 3 pages the guest never gave
        Assert.Equal(53ul, _s->ForeignPages);
        Assert.Equal(90ul, _s->Balloon.Pages);
        Assert.Equal(19910, s_free.Count);
        Assert.DoesNotContain(5ul, s_free);
    }

    // ---- hot-add -----------------------------------------------------------------------------

    [Fact]
    public void HotAddAddsTheRangeAndSaysHowMuch()
    {
        MakeReady(Message(new DmHotAddRequest { Header = H(DmMessageType.HotAddRequest, 24), Range = DmPageRange.Of(0x800000, 16384), Region = DmPageRange.Of(0x800000, 16384) }));
        Assert.Equal((0x800000ul, 16384ul), s_added.Single());
        var r = Sent<DmHotAddResponse>(0);
        Assert.Equal(DmMessageType.HotAddResponse, r.Header.Type);
        Assert.Equal(16384u, r.PageCount);
        Assert.Equal(1u, r.Result);
        Assert.Equal(16384ul, _s->HotAddedPages);
    }

    [Fact]
    public void HotAddWithoutTheRegionIsTakenToo()
    {
        MakeReady(Bytes(new DmHotAddRequest { Header = H(DmMessageType.HotAddRequest, 16), Range = DmPageRange.Of(0x900000, 512) }, 16));
        Assert.Equal((0x900000ul, 512ul), s_added.Single());
    }

    // A range the kernel cannot add: failure with no pages, which the host may retry.
    [Fact]
    public void RefusedHotAddIsAFailureWithNoPages()
    {
        MakeReady();
        s_addLimit = 100;
        Feed(Message(new DmHotAddRequest { Header = H(DmMessageType.HotAddRequest, 24), Range = DmPageRange.Of(0x800000, 16384) }));
        var r = Sent<DmHotAddResponse>(0);
        Assert.Equal(0u, r.PageCount);
        Assert.Equal(0u, r.Result);
        Assert.Equal(0ul, _s->HotAddedPages);
    }

    [Fact]
    public void WithoutHotAddTheHostIsToldToStopForGood()
    {
        _s->Services.AddMemory = null;
        MakeReady(Message(new DmHotAddRequest { Header = H(DmMessageType.HotAddRequest, 24), Range = DmPageRange.Of(0x800000, 16384) }));
        var r = Sent<DmHotAddResponse>(0);
        Assert.Equal(0u, r.PageCount);
        Assert.Equal(1u, r.Result);
    }

    [Fact]
    public void InfoMessageCarriesTheMaximumPageCount()
    {
        MakeReady();
        var b = new byte[16 + 8 + 8];
        fixed (byte* p = b)
        {
            ((DmInfoMessage*)p)->Header = H(DmMessageType.InfoMessage, (uint)b.Length);
            ((DmInfoMessage*)p)->InfoSize = 16;
            ((DmInfoRecord*)(p + 16))->Type = DmInfoRecord.TypeMaxPageCount;
            ((DmInfoRecord*)(p + 16))->DataSize = 8;
            *(ulong*)(p + 24) = 0x123456;
        }
        Feed(b);
        Assert.Equal(0x123456ul, _s->MaxPageCount);
    }

    // ---- bad messages: dropped with the reason, nothing else changes ------------------------

    public static IEnumerable<object[]> BadMessages()
    {
        yield return new object[] { "4 bytes", new byte[] { 6, 0, 16, 0 }, DmDrop.ShorterThanHeader };
        yield return new object[] { "size below the header", Message(new DmBalloonRequest { Header = H(DmMessageType.BalloonRequest, 4), PageCount = 10 }), DmDrop.BadHeaderSize };
        yield return new object[] { "size beyond the packet", Message(new DmBalloonRequest { Header = H(DmMessageType.BalloonRequest, 17), PageCount = 10 }), DmDrop.BadHeaderSize };
        yield return new object[] { "a type the guest sends", Message(new DmStatusReport { Header = H(DmMessageType.StatusReport, 48) }), DmDrop.UnknownType };
        yield return new object[] { "type 99", Message(new DmBalloonRequest { Header = H((DmMessageType)99, 16) }), DmDrop.UnknownType };
        yield return new object[] { "a balloon request of 12 bytes", Bytes(new DmBalloonRequest { Header = H(DmMessageType.BalloonRequest, 12), PageCount = 10 }, 12), DmDrop.ShorterThanLayout };
        yield return new object[] { "a hot-add of 12 bytes", Bytes(new DmHotAddRequest { Header = H(DmMessageType.HotAddRequest, 12) }, 12), DmDrop.ShorterThanLayout };
        var tooMany = UnballoonRequest(false, (0x1000, 1));
        tooMany[12] = 2;                                          // two ranges in a message that holds one
        yield return new object[] { "an unballoon with more ranges than bytes", tooMany, DmDrop.RangesBeyondMessage };
        yield return new object[] { "an info message with records past its end", Message(new DmInfoMessage { Header = H(DmMessageType.InfoMessage, 16), InfoSize = 8 }), DmDrop.RangesBeyondMessage };
        yield return new object[] { "a version response after the negotiation", VersionResponse(true), DmDrop.WrongState };
        yield return new object[] { "a hot-remove request (not offered)", Message(new DmHotRemoveRequest { Header = H(DmMessageType.HotRemoveRequest, 24), PageCount = 10 }), DmDrop.NotOffered };
    }

    [Theory]
    [MemberData(nameof(BadMessages))]
    public void BadMessageIsDroppedAndChangesNothing(string what, byte[] message, DmDrop reason)
    {
        MakeReady(BalloonRequest(100));
        s_sent.Clear();
        ulong ballooned = _s->Balloon.Pages, requests = _s->BalloonRequests;
        int free = s_free.Count;
        Feed(message);
        Assert.True(reason == _s->LastDrop, $"{what}: dropped as {_s->LastDrop}, not {reason}");
        Assert.Equal(1ul, _s->Dropped);
        Assert.Empty(s_sent);
        Assert.Equal(ballooned, _s->Balloon.Pages);
        Assert.Equal(requests, _s->BalloonRequests);
        Assert.Equal(free, s_free.Count);
        Assert.Equal(DmState.Ready, _s->State);
        Assert.Contains(s_events, e => e.Kind == DmEventKind.Dropped && e.Reason == reason);
    }

    // The ring's length counts the sender's padding; the header's size is what counts.
    [Fact]
    public void PaddingAfterTheMessageIsIgnored()
    {
        MakeReady();
        var padded = new byte[24];
        BalloonRequest(10).CopyTo(padded, 0);
        Feed(padded);
        Assert.Equal(10ul, _s->Balloon.Pages);
        Assert.Equal(0ul, _s->Dropped);
    }

    // ---- the balloon's page set ------------------------------------------------------------------

    [Fact]
    public void BalloonPagesMergeNeighboursAndSplitOnRemoval()
    {
        var runs = stackalloc PageRun[4];
        BalloonPages set = default;
        set.Initialize(runs, 4);
        Assert.True(set.Add(100, 10));
        Assert.True(set.Add(120, 10));
        Assert.True(set.Add(110, 10));              // joins both: one run
        Assert.Equal(1, set.RunCount);
        Assert.Equal(30ul, set.Pages);
        Assert.False(set.Add(125, 10));             // overlaps: refused
        Assert.Equal(30ul, set.Pages);
        Assert.Equal(5ul, set.Remove(110, 5, null, out ulong kept));
        Assert.Equal(0ul, kept);
        Assert.Equal(2, set.RunCount);
        Assert.False(set.Contains(112));
        Assert.True(set.Contains(115));
        Assert.Equal(25ul, set.Remove(0, 1000, null, out _));
        Assert.Equal(0, set.RunCount);
    }

    // A split needs a free run slot; without one the run stays whole and ballooned.
    [Fact]
    public void BalloonPagesKeepARunWhoseSplitWouldNotFit()
    {
        var runs = stackalloc PageRun[2];
        BalloonPages set = default;
        set.Initialize(runs, 2);
        Assert.True(set.Add(100, 10));
        Assert.True(set.Add(200, 10));
        Assert.False(set.Add(300, 10));             // no third run
        Assert.Equal(0ul, set.Remove(104, 2, null, out ulong kept));
        Assert.Equal(2ul, kept);
        Assert.Equal(20ul, set.Pages);
        Assert.Equal(3ul, set.Remove(100, 3, null, out _));     // from the edge: no split needed
        Assert.Equal(17ul, set.Pages);
    }
}
