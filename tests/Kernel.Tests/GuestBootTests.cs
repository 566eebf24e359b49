using Xunit;

namespace Kernel.Tests;

// The fixture of every boot of the test image. A test class names its boot
// (IGuestBoot: qemu-run.sh's arguments, as data) and adds the checks only that
// run has; from here it gets one xunit case per guest test, named after the
// class and the guest test (a failing guest test fails with the guest's own
// message, a guest skip is an xunit skip with the guest's reason), and the
// checks every boot shares. The boot happens when the first of its cases runs
// (DisableDiscoveryEnumeration keeps it out of discovery, so --list-tests and a
// --filter that selects other classes boot nothing), once.
public abstract class GuestBootTests<TBoot> where TBoot : IGuestBoot
{
    protected static GuestRun Run => TBoot.Boot.Run;

    public static IEnumerable<object[]> GuestTests() => TBoot.Boot.TestNames();

    [Theory]
    [MemberData(nameof(GuestTests), DisableDiscoveryEnumeration = true)]
    public void Guest(string name) => GuestAssert.Reported(Run, name);

    [Fact]
    public void RunPassesWithSummaryLine() => GuestAssert.PassedWithSummary(Run);

    // qemu-run.sh names the QEMU that ran the guest: the one --qemu chose, the
    // pinned one by default; in nested mode the outer Linux ran that version.
    [Fact]
    public void RanOnTheQemuItWasGiven()
    {
        if (TBoot.Boot.Qemu == "system") Run.AssertSystemQemu(); else Run.AssertPinnedQemu();
        if (TBoot.Boot.Mode == "nested") Run.AssertInnerQemu(TBoot.Boot.QemuVersion);
    }
}

// The boots whose guest runs under the nested runner's KVM (tools/nested).
public abstract class NestedGuestBootTests<TBoot> : GuestBootTests<TBoot> where TBoot : IGuestBoot
{
    [Fact]
    public void RanOnThePatchedOuterQemu() => Run.AssertPatchedOuterQemu();
}

public static class GuestAssert
{
    public static void Reported(GuestRun run, string name)
    {
        var result = run.Find(name);
        Assert.True(result != null, $"the guest did not report '{name}'. Output:\n{run.Process.Output}");
        Assert.SkipWhen(result!.Outcome == GuestOutcome.Skipped, result.Message);
        Assert.True(result.Outcome == GuestOutcome.Passed, $"guest: not ok {result.Number} - {name}: {result.Detail}");
    }

    // The run ended with status 0 and the guest's closing "N passed, N failed,
    // N skipped" line: no failure, the passes counted as reported, and more than
    // a handful of results (a whole suite or a selection of it, not an empty run).
    public static void PassedWithSummary(GuestRun run)
    {
        Assert.True(run.Summary.HasValue, "no 'N passed, N failed, N skipped' line:\n" + run.Process.Output);
        Assert.True(run.Summary!.Value.Failed == 0 && run.Process.ExitCode == 0,
            $"expected 0 failures and exit 0, got {run.Summary.Value.Failed} and {run.Process.ExitCode}:\n{run.Process.Output}");
        Assert.DoesNotContain(run.Results, r => r.Outcome == GuestOutcome.Failed);
        Assert.Equal(run.Results.Count(r => r.Outcome == GuestOutcome.Passed), run.Summary.Value.Passed);
        Assert.True(run.Results.Count >= 12, $"only {run.Results.Count} guest results");
    }

    // Name and outcome of every selected guest test, in order, as in the
    // expected boot; on a difference, every differing test.
    public static void SameOutcomes(GuestBoot expectedBoot, GuestBoot boot, Func<GuestResult, bool> select, int minimum)
    {
        var expected = expectedBoot.Run.Results.Where(select).ToList();
        var got = boot.Run.Results.Where(select).ToList();
        Assert.True(expected.Count >= minimum, $"only {expected.Count} results from {expectedBoot}:\n{expectedBoot.Run.Process.Output}");
        var differences = new List<string>();
        var gotByName = got.ToDictionary(r => r.Name, r => r);
        foreach (var e in expected)
        {
            if (!gotByName.TryGetValue(e.Name, out var g)) differences.Add($"{e.Name}: expected {e.Outcome}, got no result");
            else if (g.Outcome != e.Outcome) differences.Add($"{e.Name}: expected {e.Outcome}, got {g.Outcome} {g.Detail}".TrimEnd());
        }
        var expectedNames = expected.Select(r => r.Name).ToHashSet();
        differences.AddRange(got.Where(g => !expectedNames.Contains(g.Name)).Select(g => $"{g.Name}: expected no result, got {g.Outcome}"));
        if (differences.Count == 0 && !expected.Select(r => r.Name).SequenceEqual(got.Select(r => r.Name)))
            differences.Add($"order: expected {string.Join(" ", expected.Select(r => r.Name))}\n       got {string.Join(" ", got.Select(r => r.Name))}");
        Assert.True(differences.Count == 0, $"{boot} (got) against {expectedBoot} (expected):\n{string.Join("\n", differences)}\n\noutput:\n{boot.Run.Process.Output}");
    }
}
