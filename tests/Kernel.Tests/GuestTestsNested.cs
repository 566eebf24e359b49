using System.Globalization;
using System.Text.RegularExpressions;
using Iced.Intel;
using Xunit;

namespace Kernel.Tests;

// One nested boot (KVM's Hyper-V emulation, reached through tools/nested) in
// test mode, with KVM's tracepoints recorded. Every guest test is an xunit
// case; the hypercall page the hypervisor wrote is decoded with Iced; and the
// trace proves from outside the guest what the guest says it did.
public class GuestTestsNested
{
    private static readonly string TracePath = Path.Combine(Repo.Root, "build", "nested-test.trace");

    private static readonly Lazy<GuestRun> s_run = new(() =>
        GuestRun.Nested($"--mode nested --test --trace {TracePath}"));

    // The direct-boot nested run, for comparison with the UEFI one.
    public static GuestRun Run => s_run.Value;

    public static IEnumerable<object[]> Names() => GuestRuns.Names(s_run);

    [SkippableTheory]
    [MemberData(nameof(Names))]
    public void Guest(string name) => GuestAssert.Reported(s_run.Value, name);

    [SkippableFact]
    public void FirstBootHadNoFailures() => GuestAssert.FirstBootClean(s_run.Value);

    [Fact]
    public void CrossVpTestsSkipWithOneVp()
    {
        var cross = s_run.Value.Results.Where(r => r.Name.StartsWith("cross.")).ToList();
        Assert.NotEmpty(cross);
        Assert.All(cross, r => Assert.Equal((GuestOutcome.Skipped, "one VP: cross-VP tests need --smp 2 or more"), (r.Outcome, r.Message)));
    }

    [Fact]
    public void AllHyperVTestsRanAndPassed()
    {
        var run = s_run.Value;
        Assert.True(run.Process.ExitCode == 0, "qemu-run.sh --mode nested --test failed:\n" + run.Process.Output);
        var hv = run.Results.Where(r => !r.Name.StartsWith("boot.") && !r.Name.StartsWith("cpu.") && r.Name.Split('.')[0] is "hv" or "synic" or "events" or "messages" or "direct").ToList();
        Assert.True(hv.Count >= 20, $"only {hv.Count} Hyper-V results");
        Assert.All(hv, r => Assert.Equal(GuestOutcome.Passed, r.Outcome));
    }

    private static string Line(string tag)
    {
        var line = s_run.Value.Process.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith(tag));
        Assert.True(line != null, $"no '{tag}' line in the guest output:\n{s_run.Value.Process.Stdout}");
        return line!.TrimEnd('\r');
    }

    private static ulong Hex(string s) => ulong.Parse(s.StartsWith("0x") ? s[2..] : s, NumberStyles.HexNumber);

    [Fact]
    public void HypercallPageIsVmcallOrVmmcallThenRet()
    {
        var bytes = Line("hv-hypercall-page:")["hv-hypercall-page:".Length..]
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(b => Convert.ToByte(b, 16)).ToArray();
        Assert.Equal(32, bytes.Length);
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(bytes));
        var first = decoder.Decode();
        var second = decoder.Decode();
        Assert.Contains(first.Code, new[] { Code.Vmcall, Code.Vmmcall });
        Assert.Equal(FlowControl.Return, second.FlowControl);
    }

    private static string[] Trace()
    {
        _ = s_run.Value;
        Assert.True(File.Exists(TracePath), "no trace file at " + TracePath);
        return File.ReadAllLines(TracePath);
    }

    [Fact]
    public void TraceShowsGuestOsIdAndHypercallPageWrites()
    {
        var m = Regex.Match(Line("hv: guest OS ID"), @"guest OS ID (0x[0-9a-f]+), hypercall page at (0x[0-9a-f]+) enabled");
        Assert.True(m.Success, "unexpected line: " + Line("hv: guest OS ID"));
        ulong osId = Hex(m.Groups[1].Value), page = Hex(m.Groups[2].Value);
        var trace = Trace();
        Assert.Contains(trace, l => l.Contains($"kvm_msr: msr_write 40000000 = 0x{osId:x}"));
        Assert.Contains(trace, l => l.Contains($"kvm_msr: msr_write 40000001 = 0x{page | 1:x}"));
    }

    [Fact]
    public void TraceShowsSynicSetUpInTlfsOrder()
    {
        var m = Regex.Match(Line("hv: SynIC enabled on VP 0"), @"SIM (0x[0-9a-f]+) SIEF (0x[0-9a-f]+)");
        Assert.True(m.Success);
        ulong sim = Hex(m.Groups[1].Value), sief = Hex(m.Groups[2].Value);
        var guestWrites = Trace().Where(l => l.Contains("kvm_hv_synic_set_msr") && l.Contains("host 0")).ToList();
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
        var m = Regex.Match(Line("hv-trace: SignalEventDirect"), @"control=(0x[0-9a-f]+) input=(0x[0-9a-f]+) output=(0x[0-9a-f]+)");
        Assert.True(m.Success);
        ulong control = Hex(m.Groups[1].Value), input = Hex(m.Groups[2].Value), output = Hex(m.Groups[3].Value);
        bool fast = (control & (1ul << 16)) != 0;
        string expected = $"kvm_hv_hypercall: code 0xc0 {(fast ? "fast" : "slow")} var_cnt 0x0 rep_cnt 0x0 idx 0x0 in 0x{input:x} out 0x{output:x}";
        Assert.Contains(Trace(), l => l.Contains(expected));
    }
}

// The same test mode with 2 and 4 VPs: the cross-VP tests run, the event
// ping-pong with its full 100,000 round trips (about 35 s nested).
public class GuestTestsNestedSmp2
{
    private static readonly Lazy<GuestRun> s_run = new(() =>
        GuestRun.Nested("--mode nested --smp 2 --test"));

    public static IEnumerable<object[]> Names() => GuestRuns.Names(s_run);

    [SkippableTheory]
    [MemberData(nameof(Names))]
    public void Guest(string name) => GuestAssert.Reported(s_run.Value, name);

    [SkippableFact]
    public void FirstBootHadNoFailures() => GuestAssert.FirstBootClean(s_run.Value);

    [Fact]
    public void EveryCrossVpTestRanAndPassed() => GuestRuns.CrossTestsPassed(s_run.Value, 2);
}

public class GuestTestsNestedSmp4
{
    private static readonly Lazy<GuestRun> s_run = new(() =>
        GuestRun.Nested("--mode nested --smp 4 --test"));

    public static IEnumerable<object[]> Names() => GuestRuns.Names(s_run);

    [SkippableTheory]
    [MemberData(nameof(Names))]
    public void Guest(string name) => GuestAssert.Reported(s_run.Value, name);

    [SkippableFact]
    public void FirstBootHadNoFailures() => GuestAssert.FirstBootClean(s_run.Value);

    [Fact]
    public void EveryCrossVpTestRanAndPassed() => GuestRuns.CrossTestsPassed(s_run.Value, 4);
}

public static class GuestRuns
{
    // The guest test names of one boot, for [MemberData]: a boot that fails
    // becomes one failing case that carries the reason.
    public static IEnumerable<object[]> Names(Lazy<GuestRun> run)
    {
        GuestRun r;
        try { r = run.Value; }
        catch (Exception e) { return new[] { new object[] { "(boot failed: " + e.Message.Split('\n')[0] + ")" } }; }
        if (r.Results.Count == 0) return new[] { new object[] { "(no guest results)" } };
        return r.Results.Select(x => new object[] { x.Name });
    }

    public static void CrossTestsPassed(GuestRun run, int vps)
    {
        Assert.True(run.Process.ExitCode == 0, $"--smp {vps} run failed:\n" + run.Process.Output);
        Assert.Equal(vps - 1, run.Process.Stdout.Split('\n').Count(l => l.StartsWith("smp: VP ") && l.Contains(" online")));
        var cross = run.Results.Where(r => r.Name.StartsWith("cross.") || r.Name.StartsWith("smp.")).ToList();
        Assert.True(cross.Count >= 12, $"only {cross.Count} smp/cross results");
        Assert.All(cross, r => Assert.Equal(GuestOutcome.Passed, r.Outcome));
    }
}

// Crash reporting through the hypervisor: the kernel writes CRASH_P0..P4 and
// CRASH_CTL; QEMU logs them; qemu-run.sh prints the five and exits "crashed".
public class NestedCrashReport
{
    [Fact]
    public void PageFaultIsReportedThroughTheCrashMsrs()
    {
        var r = Repo.QemuRun("--mode nested --append crash=pf", TimeSpan.FromMinutes(10));
        Assert.True(r.ExitCode == 2, r.Output);
        var m = Regex.Match(r.Stdout, @"FATAL EXCEPTION #PF page fault \(vector 14\) error code (0x[0-9a-f]+) RIP (0x[0-9a-f]+)");
        Assert.True(m.Success, r.Output);
        ulong rip = ulong.Parse(m.Groups[2].Value[2..], NumberStyles.HexNumber);
        Assert.Contains($"the hypervisor reported a guest crash: P0 (vector) 0xe, P1 (RIP) 0x{rip:x}, P2 (error code) 0x2, P3 (CR2) 0x10, P4 (code) 0xc5e0", r.Stderr);
    }
}

// Nested runs with a reduced or empty hv-* flag set: clean skips, never faults.
public class GuestTestsNestedWithoutHyperV
{
    [Fact]
    public void HvNoneSkipsCleanly()
    {
        var run = new GuestRun(Repo.QemuRun("--mode nested --hv none --test", TimeSpan.FromMinutes(10)));
        Assert.True(run.Process.ExitCode == 0, "qemu-run.sh --mode nested --hv none --test failed:\n" + run.Process.Output);
        Assert.DoesNotContain("FATAL", run.Process.Stdout);
        var hvTests = run.Results.Where(r => r.Name.Split('.')[0] is "synic" or "events" or "messages" or "direct" or "time" or "stimer" or "cross"
                                             || (r.Name.StartsWith("hv.") && r.Name != "hv.absent_is_reported_cleanly")).ToList();
        Assert.True(hvTests.Count >= 20, $"only {hvTests.Count} Hyper-V tests");
        Assert.All(hvTests, r => Assert.Equal((GuestOutcome.Skipped, "no Hyper-V interface (CPUID 0x40000001 is not \"Hv#1\")"), (r.Outcome, r.Message)));
        Assert.DoesNotContain(run.Results, r => r.Outcome == GuestOutcome.Failed);
        Assert.Equal(GuestOutcome.Passed, run.Find("hv.absent_is_reported_cleanly")!.Outcome);
    }
}
