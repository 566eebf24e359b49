using Xunit;

namespace Kernel.Tests;

// Boots the kernel once under TCG in test mode; every guest test becomes its own
// xunit case, named after it. A failing guest test fails here with the guest's
// own message; a guest skip is an xunit skip with the guest's reason.
public class GuestTestsTcg
{
    private static readonly Lazy<GuestRun> s_run = new(() => new GuestRun(Repo.QemuRun("--mode tcg --test")));

    // The default run, for comparison with the run on the system's QEMU.
    public static GuestRun Run => s_run.Value;

    public static IEnumerable<object[]> Names() => GuestRuns.Names(s_run);

    [Theory]
    [MemberData(nameof(Names), DisableDiscoveryEnumeration = true)]
    public void Guest(string name) => GuestAssert.Reported(s_run.Value, name);

    [Fact]
    public void RanOnThePinnedQemu() => s_run.Value.AssertPinnedQemu();

    [Fact]
    public void RunPassesWithSummaryLine()
    {
        var run = s_run.Value;
        Assert.True(run.Summary.HasValue, "no 'N passed, N failed, N skipped' line:\n" + run.Process.Output);
        Assert.Equal(0, run.Summary!.Value.Failed);
        Assert.Equal(run.Results.Count(r => r.Outcome == GuestOutcome.Passed), run.Summary.Value.Passed);
        Assert.True(run.Results.Count >= 12, $"only {run.Results.Count} guest results");
        Assert.Equal(0, run.Process.ExitCode);
    }
}

public static class GuestAssert
{
    public static void Reported(GuestRun run, string name)
    {
        var result = run.Find(name);
        Assert.True(result != null, $"the guest did not report '{name}'. Output:\n{run.Process.Output}");
        Assert.SkipWhen(result!.Outcome == GuestOutcome.Skipped, result.Message);
        Assert.True(result.Outcome == GuestOutcome.Passed, $"guest: not ok {result.Number} - {name}: {result.Message}");
    }
}
