using System.Text.RegularExpressions;
using Xunit;

namespace Kernel.Tests;

// The guest's test mode is TAP version 14: a real TCG run, cut from its
// "TAP version 14" line, is read by Perl's prove (tools/prove.sh: Debian's
// perl with a Test::Harness that knows version 14), and prove's counts agree
// with the guest's own summary line.
public class TapTests
{
    private static Repo.Result Prove(string tap)
    {
        var file = Path.Combine(Path.GetTempPath(), $"guest-{Guid.NewGuid():N}.tap");
        File.WriteAllText(file, tap);
        try { return Repo.Run(Path.Combine(Repo.Root, "tools", "prove.sh"), $"-v --exec cat {file}", TimeSpan.FromMinutes(3)); }
        finally { File.Delete(file); }
    }

    private static string TapStream(Repo.Result run)
    {
        var lines = run.Stdout.Replace("\r", "").Split('\n');
        int start = Array.IndexOf(lines, "TAP version 14");
        Assert.True(start >= 0, "no 'TAP version 14' line:\n" + run.Output);
        return string.Join('\n', lines[start..]) + "\n";
    }

    [Fact]
    public void ProveAcceptsAPassingRunWithTheGuestsCounts()
    {
        var run = Repo.QemuRun("--mode tcg --test");
        var guest = new GuestRun(run);
        Assert.True(guest.Summary.HasValue, run.Output);
        var prove = Prove(TapStream(run));
        Assert.True(prove.ExitCode == 0, prove.Output);
        Assert.Contains("All tests successful.", prove.Stdout);
        int total = guest.Summary!.Value.Passed + guest.Summary.Value.Failed + guest.Summary.Value.Skipped;
        Assert.Equal(total, guest.Plan);
        Assert.Matches($@"Files=1, Tests={total},", prove.Stdout);
        Assert.Equal(guest.Summary.Value.Skipped, Regex.Matches(prove.Stdout, @"^ok \d+ - \S+ # skip", RegexOptions.Multiline | RegexOptions.IgnoreCase).Count);
    }

    [Fact]
    public void ProveFailsARunWithAFailedTestAndNamesIt()
    {
        var run = Repo.QemuRun("--mode tcg --test=testmode --append inject-failure");
        Assert.Equal(1, run.ExitCode);
        var prove = Prove(TapStream(run));
        Assert.NotEqual(0, prove.ExitCode);
        Assert.Contains("not ok 1 - testmode.injected_failure", prove.Stdout);
        Assert.Matches(@"Failed test:\s+1\b", prove.Stdout);
        Assert.Contains("message: 'expected 1, got 2'", prove.Stdout);
        Assert.Matches(@"at: 'tests/guest/TestRunner\.cs:\d+'", prove.Stdout);
        Assert.DoesNotContain("Parse errors", prove.Stdout);
    }
}
