using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Xunit;

namespace Kernel.Tests;

// The host side of the Dynamic Memory protocol's end-to-end test: QEMU's own
// hv-balloon, driven through its QMP monitor while the guest's dm.* tests run.
// The guest asks for each step on its serial console ("dm-host: adjust
// <+/-pages> <step>", tests/guest/DynamicMemoryTests.cs); this driver moves the
// balloon target by that much (QMP balloon), and when the guest says
// "dm-host: done <step> ballooned <n> free <n> total <n>" it reads QEMU's view
// (query-balloon) for the checks below. In nested mode the monitor is reached
// through the outer machine's third serial port (tools/nested/run.sh --qmp).
public sealed partial class DynamicMemoryHost : IGuestHost
{
    public const long PageSize = 4096;
    public const long GuestMemory = 256L << 20;        // qemu-run.sh -m 256M

    public sealed record Step(string Name, long Pages, long ActualBefore, long Target)
    {
        public long? ActualAfter { get; set; }
        public long GuestBallooned { get; set; }
        public long GuestFree { get; set; }
        public long GuestTotal { get; set; }
    }

    private readonly string _socket;
    private QmpClient? _qmp;
    public List<Step> Steps { get; } = new();
    public List<string> Errors { get; } = new();
    public (long Available, long Committed)? GuestStatus { get; private set; }
    public JsonObject? StatusEvent { get; private set; }
    public (long Available, long Committed)? StatusQuery { get; private set; }

    private Task<QmpClient>? _connecting;

    public DynamicMemoryHost(string socket) => _socket = socket;

    public QmpClient Qmp => _qmp ??= QmpClient.Connect(_socket, TimeSpan.FromMinutes(2));

    // The monitor is connected from another thread as soon as QEMU makes the socket,
    // so that the first status report events are not missed.
    public void BeforeBoot()
    {
        File.Delete(_socket);
        _connecting = Task.Run(() => Qmp);
    }

    public void AfterBoot()
    {
        if (!_connecting!.Wait(TimeSpan.FromSeconds(10))) Errors.Add("QMP: never connected to " + _socket);
        else if (_connecting.IsFaulted) Errors.Add("QMP: " + _connecting.Exception!.InnerException!.Message);
    }

    [GeneratedRegex(@"^dm-host: adjust ([+-]\d+) (\S+)$")]
    private static partial Regex AdjustLine();

    [GeneratedRegex(@"^dm-host: done (\S+) ballooned (\d+) free (\d+) total (\d+)$")]
    private static partial Regex DoneLine();

    private static readonly TimeSpan StatusEventTimeout = TimeSpan.FromSeconds(15);

    [GeneratedRegex(@"^dm-host: status available (\d+) committed (\d+)$")]
    private static partial Regex StatusLine();

    private long Actual() => Qmp.Execute("query-balloon")!["actual"]!.GetValue<long>();

    // Called with every guest line as it arrives. A failure is recorded, never
    // thrown: it would end the reader of the guest's output.
    public void OnGuestLine(string line)
    {
        if (!line.StartsWith("dm-host: ")) return;
        try
        {
            var m = AdjustLine().Match(line);
            if (m.Success)
            {
                long pages = long.Parse(m.Groups[1].Value);
                long before = Actual();
                var step = new Step(m.Groups[2].Value, pages, before, before + pages * PageSize);
                Steps.Add(step);
                Qmp.Execute("balloon", new JsonObject { ["value"] = step.Target });
                return;
            }
            m = DoneLine().Match(line);
            if (m.Success)
            {
                var step = Steps.LastOrDefault(s => s.Name == m.Groups[1].Value);
                if (step == null) { Errors.Add("done for a step never asked for: " + line); return; }
                step.GuestBallooned = long.Parse(m.Groups[2].Value);
                step.GuestFree = long.Parse(m.Groups[3].Value);
                step.GuestTotal = long.Parse(m.Groups[4].Value);
                step.ActualAfter = Actual();
                return;
            }
            m = StatusLine().Match(line);
            if (m.Success)
            {
                var status = (Available: long.Parse(m.Groups[1].Value), Committed: long.Parse(m.Groups[2].Value));
                GuestStatus = status;
                // The guest is held (QMP stop) while QEMU's view is read, so that it cannot
                // finish and take QEMU with it first. QMP passes at most one
                // HV_BALLOON_STATUS_REPORT a second (a second's reports collapse into its
                // last), so the one with these figures can take a second to come.
                Qmp.Execute("stop");
                try
                {
                    StatusEvent = Qmp.WaitForEvent(e => (string?)e["event"] == "HV_BALLOON_STATUS_REPORT"
                        && e["data"]!["available"]!.GetValue<long>() == status.Available * PageSize
                        && e["data"]!["committed"]!.GetValue<long>() == status.Committed * PageSize, StatusEventTimeout);
                    // Without that event QEMU may have no report to answer the query with
                    // ("not received yet"): say what was missing rather than the query's error.
                    if (StatusEvent == null)
                    {
                        Errors.Add($"{line}: no HV_BALLOON_STATUS_REPORT with these figures within {StatusEventTimeout.TotalSeconds} s; events seen: "
                            + string.Join(" | ", Qmp.Events.Select(e => e.ToJsonString())));
                        return;
                    }
                    var last = Qmp.Execute("query-hv-balloon-status-report")!;
                    StatusQuery = (last["available"]!.GetValue<long>() / PageSize, last["committed"]!.GetValue<long>() / PageSize);
                }
                finally { Qmp.Execute("cont"); }
                return;
            }
            Errors.Add("a dm-host: line this driver does not know: " + line);
        }
        catch (Exception e)
        {
            Errors.Add($"{line}: {e.GetType().Name}: {e.Message}");
        }
    }
}

// One nested boot with hv-balloon (a 256 MiB memdev to hot-add from, status
// reports on), the dm.* tests, and the host above answering them.
public sealed class GuestTestsNestedDynamicMemory : NestedGuestBootTests<GuestTestsNestedDynamicMemory>, IGuestBoot
{
    private static readonly string s_socket = Path.Combine(Path.GetTempPath(), $"kernel-tests-qmp-{Environment.ProcessId}.sock");
    private static readonly DynamicMemoryHost s_host = new(s_socket);

    public static GuestBoot Boot { get; } =
        new($"--mode nested --smp 2 --hv-balloon --qmp {s_socket} --append \"dm-host dm-hotadd\" --test=dm", s_host);

    private static DynamicMemoryHost.Step StepNamed(string name)
    {
        _ = Run;
        Assert.True(s_host.Errors.Count == 0, "the host side of the run went wrong:\n" + string.Join("\n", s_host.Errors));
        var step = s_host.Steps.SingleOrDefault(s => s.Name == name);
        Assert.True(step != null, $"the guest never asked for step {name}:\n" + Run.Process.Output);
        Assert.True(step!.ActualAfter != null, $"the guest never finished step {name}:\n" + Run.Process.Output);
        return step;
    }

    [Fact]
    public void EveryDynamicMemoryTestRanAndPassed()
    {
        Assert.True(Run.Process.ExitCode == 0, "the Dynamic Memory run failed:\n" + Run.Process.Output);
        var dm = Run.Results.Where(r => r.Name.StartsWith("dm.")).ToList();
        Assert.True(dm.Count >= 12, $"only {dm.Count} dm results");
        Assert.All(dm, r => Assert.Equal(GuestOutcome.Passed, r.Outcome));
    }

    // The boot log: the offer, the driver bound to it, the channel, the protocol.
    [Fact]
    public void ChannelOpenedAndProtocolNegotiated()
    {
        var stdout = Run.Process.Stdout;
        Assert.Matches(@"vmbus:   relid (\d+) class 525074dc-8985-46e2-8057-a307dc18a502 \(dynamic-memory\)", stdout);
        Assert.Matches(@"vmbus: relid \d+ -> driver dynamic-memory", stdout);
        Assert.Matches(@"dm: channel open: relid \d+, GPADL 0x[0-9a-f]+, rings 2 x 8 pages, host signalled through connection \d+", stdout);
        Assert.Contains("dm: protocol 2.0 accepted (tried 2.0)", stdout);
        Assert.Contains("dm: capabilities accepted: balloon, hot-add (2^1 MiB alignment); the host takes status reports", stdout);
        Assert.Matches(@"dm: status reports every 1000 ms \(local APIC timer, vector 0x42, \d+ Hz\)", stdout);
    }

    // QEMU's own count: query-balloon's actual reached the target, and is what
    // the guest says it has left.
    [Fact]
    public void QemuSeesTheBalloonGoDown()
    {
        var step = StepNamed("balloon-down");
        Assert.Equal(DynamicMemoryHost.GuestMemory, step.ActualBefore);
        Assert.Equal(step.Target, step.ActualAfter);
        Assert.Equal(16384, step.GuestBallooned);
        AssertQemuCountsWhatTheGuestKept(step);
    }

    [Fact]
    public void QemuSeesTheBalloonGoBackUp()
    {
        var step = StepNamed("balloon-up");
        Assert.Equal(DynamicMemoryHost.GuestMemory, step.Target);
        AssertEverythingBack(step);
    }

    // Asked for more than it can spare, the guest gave what it could: QEMU stops
    // short of its target, at exactly what the guest kept.
    [Fact]
    public void QemuSeesThePartialAnswer()
    {
        var step = StepNamed("balloon-partial");
        Assert.True(step.ActualAfter > step.Target, $"actual {step.ActualAfter} should stay above the target {step.Target}");
        Assert.True(step.GuestBallooned > 0, "the guest gave something");
        AssertQemuCountsWhatTheGuestKept(step);
    }

    [Fact]
    public void QemuGetsEverythingBackAfterThePartialAnswer() => AssertEverythingBack(StepNamed("balloon-restore"));

    // QEMU's actual after a step is the guest's memory less what the guest says it ballooned.
    private static void AssertQemuCountsWhatTheGuestKept(DynamicMemoryHost.Step step) =>
        Assert.Equal(DynamicMemoryHost.GuestMemory - step.GuestBallooned * DynamicMemoryHost.PageSize, step.ActualAfter);

    // The guest holds no ballooned page and QEMU counts all its memory.
    private static void AssertEverythingBack(DynamicMemoryHost.Step step)
    {
        Assert.Equal(0, step.GuestBallooned);
        Assert.Equal(DynamicMemoryHost.GuestMemory, step.ActualAfter);
    }

    // Hot-add: the memdev's pages in QEMU's count, in the guest's allocator, and
    // in a status report QEMU passed on as an HV_BALLOON_STATUS_REPORT event.
    [Fact]
    public void QemuSeesTheHotAddAndTheGuestsStatusReport()
    {
        var step = StepNamed("hot-add");
        Assert.Equal(DynamicMemoryHost.GuestMemory + 16384 * DynamicMemoryHost.PageSize, step.Target);
        Assert.Equal(step.Target, step.ActualAfter);
        Assert.True(s_host.GuestStatus != null, "the guest printed no status after the hot-add:\n" + Run.Process.Output);
        var (available, committed) = s_host.GuestStatus!.Value;
        var seen = string.Join("\n", s_host.Qmp.Events.Where(e => (string?)e["event"] == "HV_BALLOON_STATUS_REPORT").TakeLast(5).Select(e => e.ToJsonString()));
        Assert.True(s_host.StatusEvent != null, $"no HV_BALLOON_STATUS_REPORT with available {available} and committed {committed} pages; the last ones:\n{seen}");
        Assert.Equal((available, committed), s_host.StatusQuery);
        Assert.Equal(step.GuestTotal, available + committed);      // every page the guest has, the hot-added ones included
    }

    // Status reports reached QEMU at the protocol's cadence: about one a second.
    [Fact]
    public void QemuReceivedStatusReportsEverySecond()
    {
        _ = Run;
        var reports = s_host.Qmp.Events.Where(e => (string?)e["event"] == "HV_BALLOON_STATUS_REPORT").ToList();
        Assert.True(reports.Count >= 30, $"only {reports.Count} HV_BALLOON_STATUS_REPORT events");
        var seconds = reports.Select(e => e["timestamp"]!["seconds"]!.GetValue<long>() + e["timestamp"]!["microseconds"]!.GetValue<long>() / 1e6).ToList();
        var gaps = seconds.Zip(seconds.Skip(1), (a, b) => b - a).OrderBy(g => g).ToList();
        double median = gaps[gaps.Count / 2];
        Assert.InRange(median, 0.5, 1.5);
    }
}
