using System.Globalization;
using System.Text.RegularExpressions;
using Iced.Intel;
using Xunit;

namespace Kernel.Tests;

// The boots of the test mode under stock KVM's Hyper-V emulation, with KVM's
// tracepoints recorded (--trace): the hypercall page the hypervisor wrote is
// decoded with Iced, and the trace proves from outside the guest what the guest
// says it did. Two boots take this shape: nested mode, and kvm mode run inside
// the nested Linux.
public abstract class TracedStockKvmBootTests<TBoot> : NestedGuestBootTests<TBoot> where TBoot : IGuestBoot
{
    [Fact]
    public void CrossVpTestsSkipWithOneVp()
    {
        var cross = Run.Results.Where(r => r.Name.StartsWith("cross.")).ToList();
        Assert.NotEmpty(cross);
        Assert.All(cross, r => Assert.Equal((GuestOutcome.Skipped, "one VP: cross-VP tests need --smp 2 or more"), (r.Outcome, r.Message)));
    }

    [Fact]
    public void AllHyperVTestsRanAndPassed()
    {
        Assert.True(Run.Process.ExitCode == 0, "the traced run failed:\n" + Run.Process.Output);
        var hv = Run.Results.Where(r => r.Name.Split('.')[0] is "hv" or "synic" or "events" or "messages"
                                        || DirectBranch.RunsOnStockKvm(r.Name)).ToList();
        Assert.True(hv.Count >= 30, $"only {hv.Count} Hyper-V results");
        Assert.All(hv, r => Assert.Equal(GuestOutcome.Passed, r.Outcome));
    }

    // Stock KVM: the probe sees INVALID_HYPERCALL_CODE, the direct.absent_* tests
    // pass, and every test of the successful path skips saying why.
    [Fact]
    public void StockKvmRefusesTheDirectCalls() => DirectBranch.AssertStock(Run);

    private static ulong Hex(string s) => ulong.Parse(s.StartsWith("0x") ? s[2..] : s, NumberStyles.HexNumber);

    [Fact]
    public void HypercallPageIsVmcallOrVmmcallThenRet()
    {
        var bytes = Run.Line("hv-hypercall-page:")["hv-hypercall-page:".Length..]
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(b => Convert.ToByte(b, 16)).ToArray();
        Assert.Equal(32, bytes.Length);
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(bytes));
        var first = decoder.Decode();
        var second = decoder.Decode();
        Assert.Contains(first.Code, new[] { Code.Vmcall, Code.Vmmcall });
        Assert.Equal(FlowControl.Return, second.FlowControl);
    }

    [Fact]
    public void TraceShowsGuestOsIdAndHypercallPageWrites()
    {
        var m = Regex.Match(Run.Line("hv: guest OS ID"), @"guest OS ID (0x[0-9a-f]+), hypercall page at (0x[0-9a-f]+) enabled");
        Assert.True(m.Success, "unexpected line: " + Run.Line("hv: guest OS ID"));
        ulong osId = Hex(m.Groups[1].Value), page = Hex(m.Groups[2].Value);
        var trace = KvmTrace.Read(TBoot.Boot);
        Assert.Contains(trace, l => l.Contains($"kvm_msr: msr_write 40000000 = 0x{osId:x}"));
        Assert.Contains(trace, l => l.Contains($"kvm_msr: msr_write 40000001 = 0x{page | 1:x}"));
    }

    [Fact]
    public void TraceShowsSynicSetUpInTlfsOrder()
    {
        var m = Regex.Match(Run.Line("hv: SynIC enabled on VP 0"), @"SIM (0x[0-9a-f]+) SIEF (0x[0-9a-f]+)");
        Assert.True(m.Success);
        ulong sim = Hex(m.Groups[1].Value), sief = Hex(m.Groups[2].Value);
        var guestWrites = KvmTrace.Read(TBoot.Boot).Where(l => l.Contains("kvm_hv_synic_set_msr") && l.Contains("host 0")).ToList();
        int Index(string needle) => guestWrites.FindIndex(l => l.Contains(needle));
        int simp = Index($"msr 0x40000083 data 0x{sim | 1:x} "), siefp = Index($"msr 0x40000082 data 0x{sief | 1:x} ");
        int sint0 = Index("msr 0x40000090 data 0x"), sint15 = Index("msr 0x4000009f data 0x"), scontrol = Index("msr 0x40000080 data 0x1 ");
        Assert.True(simp >= 0, "no SIMP write of the printed page");
        Assert.True(siefp > simp, "SIEFP after SIMP");
        Assert.True(sint0 > siefp && sint15 > sint0, "SINT0..15 after SIEFP");
        Assert.True(scontrol > sint15, "SCONTROL enable last");
    }

    [Fact]
    public void TraceShowsSignalEventDirectAsTheGuestIssuedIt()
    {
        var m = Regex.Match(Run.Line("hv-trace: SignalEventDirect control="), @"control=(0x[0-9a-f]+) input=(0x[0-9a-f]+) output=(0x[0-9a-f]+)");
        Assert.True(m.Success);
        ulong control = Hex(m.Groups[1].Value), input = Hex(m.Groups[2].Value), output = Hex(m.Groups[3].Value);
        bool fast = (control & (1ul << 16)) != 0;
        string expected = $"kvm_hv_hypercall: code 0xc0 {(fast ? "fast" : "slow")} var_cnt 0x0 rep_cnt 0x0 idx 0x0 in 0x{input:x} out 0x{output:x}";
        Assert.Contains(KvmTrace.Read(TBoot.Boot), l => l.Contains(expected));
    }

    // Stock KVM's own record of the answer: the call ends with status 2.
    [Fact]
    public void TraceShowsStockKvmAnsweringInvalidHypercallCode()
    {
        var call = DirectBranch.FindCallInTrace(KvmTrace.Read(TBoot.Boot), Run.Line("hv-trace: SignalEventDirect control="));
        Assert.Contains("kvm_hv_hypercall_done: result 0x2", call.Done);
        Assert.Empty(call.Interrupts);
    }
}

// The boots with several VPs under the nested KVM: every cross-VP test runs on
// all of them, and passes; so do the SMP tests.
public abstract class CrossVpBootTests<TBoot> : NestedGuestBootTests<TBoot> where TBoot : IGuestBoot
{
    [Fact]
    public void EveryCrossVpTestRanAndPassed()
    {
        Assert.True(TBoot.Boot.Vps >= 2, $"{TBoot.Boot}: cross-VP tests need --smp 2 or more");
        Assert.True(Run.Process.ExitCode == 0, $"--smp {TBoot.Boot.Vps} run failed:\n" + Run.Process.Output);
        Assert.Equal(TBoot.Boot.Vps - 1, Run.Process.Stdout.Split('\n').Count(l => l.StartsWith("smp: VP ") && l.Contains(" online")));
        var cross = Run.Results.Where(r => r.Name.StartsWith("cross.") || r.Name.StartsWith("smp.")).ToList();
        Assert.True(cross.Count >= 11, $"only {cross.Count} smp/cross results");
        Assert.All(cross, r => Assert.Equal(GuestOutcome.Passed, r.Outcome));
    }
}

// Nested mode: KVM under an outer QEMU whose SVM is emulated by TCG (tools/nested).
public sealed class GuestTestsNested : TracedStockKvmBootTests<GuestTestsNested>, IGuestBoot
{
    public static GuestBoot Boot { get; } = new($"--mode nested --test --trace {Path.Combine(Repo.Root, "build", "nested-test.trace")}");
}

// `qemu-run.sh --mode kvm --test --trace FILE`, the path a CI runner with
// /dev/kvm takes, run as a command inside the nested Linux, whose KVM emulates
// Hyper-V (tools/nested/run.sh --command; the trace comes back through
// --share). Its results are the nested mode's, test for test.
public sealed class GuestTestsKvmModeInNestedLinux : TracedStockKvmBootTests<GuestTestsKvmModeInNestedLinux>, IGuestBoot
{
    private static readonly string s_shared = Path.Combine(Repo.Root, "build", "kvm-mode");

    public static GuestBoot Boot { get; } =
        GuestBoot.InsideNestedLinux(s_shared, $"--mode kvm --timeout 600 --test --trace {Path.Combine(s_shared, "kvm.trace")}");

    [Fact]
    public void ResultsEqualTheNestedMode() => GuestAssert.SameOutcomes(GuestTestsNested.Boot, Boot, _ => true, minimum: 1);
}

// The project's KVM (tools/nested/kvm, --kvm direct) under the whole test mode
// with 2 VPs: every Direct test runs its successful path and passes, and
// every other test passes as it does under stock KVM.
public sealed class GuestTestsNestedDirect : CrossVpBootTests<GuestTestsNestedDirect>, IGuestBoot
{
    public static GuestBoot Boot { get; } = new("--mode nested --kvm direct --smp 2 --test");

    [Fact]
    public void TheProjectsKvmImplementsTheDirectCalls() => DirectBranch.AssertImplemented(Run, Boot.Vps);
}

// The project's KVM with 4 VPs, the Direct suite alone, traced: every VP
// signals every VP (itself by its index), the storm runs with four senders,
// and KVM's trace shows the call, the SINT it raised on the target vCPU, and
// status 0. (The whole suite would overflow the trace buffer: the ping-pong.)
public sealed class GuestTestsNestedDirectSmp4 : NestedGuestBootTests<GuestTestsNestedDirectSmp4>, IGuestBoot
{
    public static GuestBoot Boot { get; } =
        new($"--mode nested --kvm direct --smp 4 --test=direct --trace {Path.Combine(Repo.Root, "build", "nested-direct.trace")}");

    [Fact]
    public void TheProjectsKvmImplementsTheDirectCalls() => DirectBranch.AssertImplemented(Run, Boot.Vps);

    [Fact]
    public void TraceShowsTheCallTheInterruptOnTheTargetAndSuccess()
    {
        var tag = Run.Line("hv-trace: SignalEventDirect success");
        var m = Regex.Match(tag, @"vp=(\d+) sint=(\d+)");
        Assert.True(m.Success, tag);
        var call = DirectBranch.FindCallInTrace(KvmTrace.Read(Boot), tag);
        Assert.Contains("kvm_hv_hypercall_done: result 0x0", call.Done);
        Assert.Contains(call.Interrupts, l => l.Contains($"kvm_hv_synic_set_irq: vcpu_id {m.Groups[1].Value} sint {m.Groups[2].Value} "));
        Assert.Single(call.Interrupts);
    }
}

// The same test mode with 2 and 4 VPs: the cross-VP tests run, the event
// ping-pong with its full 100,000 round trips (about 35 s nested). The 2-VP
// boot also has hv-balloon, so the whole test mode runs beside a live
// Dynamic Memory channel (its status reports, the timer and channel
// interrupts); with no host driving the balloon, those steps skip.
public sealed class GuestTestsNestedSmp2 : CrossVpBootTests<GuestTestsNestedSmp2>, IGuestBoot
{
    public static GuestBoot Boot { get; } = new("--mode nested --smp 2 --hv-balloon --test");

    [Fact]
    public void DynamicMemoryRanBesideTheWholeTestMode()
    {
        var dm = Run.Results.Where(r => r.Name.StartsWith("dm.")).ToList();
        Assert.True(dm.Count >= 12, $"only {dm.Count} dm results");
        foreach (var r in dm)
        {
            bool hostDriven = r.Name is "dm.balloon_down_takes_pages_out_of_the_allocator" or "dm.balloon_up_returns_the_pages"
                or "dm.request_beyond_spare_gets_a_partial_answer" or "dm.unballoon_after_partial_returns_everything" or "dm.hot_add_extends_the_allocator";
            if (hostDriven) Assert.Equal((GuestOutcome.Skipped, "no host drives the balloon (dm-host on the command line: the xunit Dynamic Memory run answers the dm-host: lines over QMP)"), (r.Outcome, r.Message));
            else Assert.True(r.Outcome == GuestOutcome.Passed, $"{r.Name}: {r.Outcome} {r.Detail}");
        }
    }
}

public sealed class GuestTestsNestedSmp4 : CrossVpBootTests<GuestTestsNestedSmp4>, IGuestBoot
{
    public static GuestBoot Boot { get; } = new("--mode nested --smp 4 --test");
}

// KVM's trace of a --trace boot, whole: not a ring buffer that wrapped (its
// header counts as many entries in the buffer as were written).
public static class KvmTrace
{
    public static string[] Read(GuestBoot boot)
    {
        _ = boot.Run;
        string path = boot.TracePath ?? throw new InvalidOperationException($"{boot}: no --trace");
        Assert.True(File.Exists(path), "no trace file at " + path + ":\n" + boot.Run.Process.Output);
        var trace = File.ReadAllLines(path);
        var counts = trace.Take(5).FirstOrDefault(l => l.Contains("entries-in-buffer/entries-written:"));
        Assert.True(counts != null && Regex.IsMatch(counts, @"entries-written: (\d+)/\1 "), "the trace lost events: " + counts);
        return trace;
    }
}

// Which branch of the Direct tests a run took, asserted from outside: a
// regression of the project's KVM to status 2 fails here, not as a skip.
public static class DirectBranch
{
    // A boot of the whole test mode under stock KVM gives `expected`'s Hyper-V
    // results, test for test: every one passes but the Direct tests of the
    // successful path, which skip saying why.
    public static void AssertSameHyperVResultsOnStock(GuestBoot expected, GuestBoot boot)
    {
        GuestAssert.SameOutcomes(expected, boot, r => r.IsHyperV, minimum: 20);
        Assert.All(boot.Run.Results.Where(r => r.IsHyperV && !r.Name.StartsWith("direct.")), r => Assert.Equal(GuestOutcome.Passed, r.Outcome));
        AssertStock(boot.Run);
    }

    // The tests that check a hypervisor without the calls, and those that need no successful call.
    private static readonly string[] s_anySide = { "direct.hypervisor_answers_as_expected", "direct.input_layout",
        "direct.bad_arguments_refused_without_hypercall", "direct.fuzz_answers_documented_statuses" };

    public static bool RunsOnStockKvm(string name) => name.StartsWith("direct.absent_") || s_anySide.Contains(name);

    public static void AssertStock(GuestRun run)
    {
        Assert.Contains("hv: HvCallSignalEventDirect and HvCallPostMessageDirect: not implemented by this hypervisor (SignalEventDirect to HV_ANY_VP: 0x2 INVALID_HYPERCALL_CODE)", run.Process.Stdout);
        var direct = run.Results.Where(r => r.Name.StartsWith("direct.")).ToList();
        Assert.True(direct.Count >= 20, $"only {direct.Count} direct results");
        foreach (var r in direct)
        {
            if (RunsOnStockKvm(r.Name)) Assert.True(r.Outcome == GuestOutcome.Passed, $"{r.Name}: {r.Outcome} {r.Detail}");
            else Assert.Equal((GuestOutcome.Skipped, "this KVM does not implement the Direct calls (INVALID_HYPERCALL_CODE); the project's KVM does: qemu-run.sh --kvm direct"), (r.Outcome, r.Message));
        }
    }

    public static void AssertImplemented(GuestRun run, int vps)
    {
        Assert.True(run.Process.ExitCode == 0, "the run with the project's KVM failed:\n" + run.Process.Output);
        Assert.Contains("hv: HvCallSignalEventDirect and HvCallPostMessageDirect: implemented (SignalEventDirect to HV_ANY_VP: 0xe INVALID_VP_INDEX)", run.Process.Stdout);
        var direct = run.Results.Where(r => r.Name.StartsWith("direct.")).ToList();
        Assert.True(direct.Count >= 20, $"only {direct.Count} direct results");
        foreach (var r in direct)
        {
            if (r.Name.StartsWith("direct.absent_"))
                Assert.Equal((GuestOutcome.Skipped, "this hypervisor implements the Direct calls; the direct.absent_* tests check one that does not"), (r.Outcome, r.Message));
            else Assert.True(r.Outcome == GuestOutcome.Passed, $"{r.Name}: {r.Outcome} {r.Detail}");
        }
        // Every VP signalled every VP, and was told NewlySignaled each time.
        var pairs = run.Process.Stdout.Split('\n').Count(l => Regex.IsMatch(l, @"^direct: VP \d+ -> VP index \d+ SignalEventDirect: 0x0 SUCCESS, NewlySignaled 1"));
        Assert.Equal(vps * vps, pairs);
    }

    public sealed record TracedCall(string Hypercall, string Done, IReadOnlyList<string> Interrupts);

    // The guest's tagged line names the GPAs of one SignalEventDirect; KVM's
    // trace has the hypercall line with them, then, in the same vCPU thread, the
    // SINT interrupts it raised and the line with its result. The last such call counts.
    public static TracedCall FindCallInTrace(string[] trace, string tagLine)
    {
        var m = Regex.Match(tagLine, @"input=(0x[0-9a-f]+) output=(0x[0-9a-f]+)");
        Assert.True(m.Success, tagLine);
        string call = $"kvm_hv_hypercall: code 0xc0 slow var_cnt 0x0 rep_cnt 0x0 idx 0x0 in {m.Groups[1].Value} out {m.Groups[2].Value}";
        int at = Array.FindLastIndex(trace, l => l.Contains(call));
        Assert.True(at >= 0, "KVM's trace has no " + call);
        string task = Task(trace[at]);       // the vCPU thread, e.g. "CPU 0/KVM-231"
        var interrupts = new List<string>();
        for (int i = at + 1; i < trace.Length; i++)
        {
            if (Task(trace[i]) != task) continue;
            if (trace[i].Contains("kvm_hv_synic_set_irq:")) interrupts.Add(trace[i]);
            if (trace[i].Contains("kvm_hv_hypercall_done:")) return new TracedCall(trace[at], trace[i], interrupts);
        }
        Assert.Fail("KVM's trace has no kvm_hv_hypercall_done after " + trace[at]);
        return null!;
    }

    // An ftrace line starts with "<task>-<pid> [<cpu>]"; a task name may hold spaces.
    private static string Task(string line)
    {
        var m = Regex.Match(line, @"^\s*(.+?-\d+)\s+\[\d+\]");
        return m.Success ? m.Groups[1].Value : "";
    }
}

// Crash reporting through the hypervisor: the kernel writes CRASH_P0..P4 and
// CRASH_CTL; QEMU logs them; qemu-run.sh prints the five and exits "crashed".
public class NestedCrashReport
{
    [Fact]
    public void PageFaultIsReportedThroughTheCrashMsrs()
    {
        var r = Repo.QemuRun("--mode nested --append crash=pf", TimeSpan.FromMinutes(10)).AssertEnded(2);
        var m = Regex.Match(r.Stdout, @"FATAL EXCEPTION #PF page fault \(vector 14\) error code (0x[0-9a-f]+) RIP (0x[0-9a-f]+)");
        Assert.True(m.Success, r.Output);
        ulong rip = ulong.Parse(m.Groups[2].Value[2..], NumberStyles.HexNumber);
        Assert.Contains($"the hypervisor reported a guest crash: P0 (vector) 0xe, P1 (RIP) 0x{rip:x}, P2 (error code) 0x2, P3 (CR2) 0x10, P4 (code) 0xc5e0", r.Stderr);
    }
}

// Nested runs with a reduced or empty hv-* flag set: EnlightenmentSubsetTests.cs.
