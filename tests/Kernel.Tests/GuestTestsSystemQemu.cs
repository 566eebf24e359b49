using System.Text.RegularExpressions;
using Xunit;

namespace Kernel.Tests;

// The guest runs on the pinned QEMU (tools/qemu/pinned.sh, 10.0.2) by default;
// the system's QEMU (Debian 12's 7.2, qemu-run.sh --qemu system) stays
// supported. These two boots, the test mode under TCG and nested, keep it so:
// every guest test reports on 7.2 what it reports on the pinned QEMU, name for
// name, except a test that needs a newer QEMU, which skips there saying so.
public sealed class GuestTestsTcgSystemQemu : GuestBootTests<GuestTestsTcgSystemQemu>, IGuestBoot
{
    public static GuestBoot Boot { get; } = new("--mode tcg --test --qemu system");

    [Fact]
    public void ResultsEqualThePinnedQemusRun() => SystemQemuRuns.AssertSameResults(GuestTestsTcg.Boot.Run, Run);
}

public sealed class GuestTestsNestedSystemQemu : NestedGuestBootTests<GuestTestsNestedSystemQemu>, IGuestBoot
{
    public static GuestBoot Boot { get; } = new("--mode nested --test --qemu system");

    [Fact]
    public void ResultsEqualThePinnedQemusRun() => SystemQemuRuns.AssertSameResults(GuestTestsNested.Boot.Run, Run);
}

public static class SystemQemuRuns
{
    // How a guest test that needs a newer QEMU than the system's says so when it skips:
    // its reason names the QEMU version it needs ("... (QEMU 8.2 or newer)").
    private static readonly Regex NeedsNewerQemu = new(@"QEMU \d+(\.\d+)* or newer");

    public static void AssertSameResults(GuestRun pinned, GuestRun system)
    {
        Assert.True(pinned.Process.ExitCode == 0, "the run on the pinned QEMU failed:\n" + pinned.Process.Output);
        Assert.True(system.Process.ExitCode == 0, "the run on the system's QEMU failed:\n" + system.Process.Output);
        Assert.Equal(pinned.Results.Select(r => r.Name), system.Results.Select(r => r.Name));
        var differences = pinned.Results.Zip(system.Results)
            .Where(p => (p.First.Outcome, p.First.Message) != (p.Second.Outcome, p.Second.Message))
            .Where(p => !(p.Second.Outcome == GuestOutcome.Skipped && NeedsNewerQemu.IsMatch(p.Second.Message)))
            .Select(p => $"{p.First.Name}: pinned {p.First.Outcome} '{p.First.Message}', system {p.Second.Outcome} '{p.Second.Message}'")
            .ToList();
        Assert.True(differences.Count == 0, "results that differ on the system's QEMU with no skip naming a newer QEMU:\n" + string.Join("\n", differences));
    }
}
