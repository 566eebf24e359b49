using System.Text.RegularExpressions;
using Xunit;

namespace Kernel.Tests;

public enum GuestOutcome { Passed, Failed, Skipped }

public sealed record GuestResult(int Number, string Name, GuestOutcome Outcome, string Message);

// Parses the guest's test mode, TAP version 14 (kernel/test/TestRunner.cs):
//   ok N - name | ok N - name # SKIP reason | not ok N - name, then a YAML
//   block whose message is 'expected X, got Y (what)'
// and the closing "N passed, N failed, N skipped".
public sealed partial class GuestRun
{
    public Repo.Result Process { get; }
    public IReadOnlyList<GuestResult> Results { get; }
    public (int Passed, int Failed, int Skipped)? Summary { get; }
    public int? Plan { get; }

    [GeneratedRegex(@"^(ok|not ok) (\d+) - (\S+)(?: # SKIP (.*))?$")]
    private static partial Regex ResultLine();

    [GeneratedRegex(@"^(\d+) passed, (\d+) failed, (\d+) skipped$")]
    private static partial Regex SummaryLine();

    [GeneratedRegex(@"^1\.\.(\d+)")]
    private static partial Regex PlanLine();

    public GuestRun(Repo.Result process)
    {
        Process = process;
        var results = new List<GuestResult>();
        var lines = process.Stdout.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        for (int i = 0; i < lines.Length; i++)
        {
            var m = ResultLine().Match(lines[i]);
            if (m.Success)
            {
                var skipped = m.Groups[4].Success;
                var outcome = m.Groups[1].Value == "not ok" ? GuestOutcome.Failed : skipped ? GuestOutcome.Skipped : GuestOutcome.Passed;
                var message = skipped ? m.Groups[4].Value : "";
                // not ok: "  ---", "  message: '<the message, quotes doubled>'", "  ..."
                if (outcome == GuestOutcome.Failed && i + 2 < lines.Length && lines[i + 1] == "  ---"
                    && lines[i + 2].StartsWith("  message: '") && lines[i + 2].EndsWith('\''))
                    message = lines[i + 2]["  message: '".Length..^1].Replace("''", "'");
                results.Add(new GuestResult(int.Parse(m.Groups[2].Value), m.Groups[3].Value, outcome, message));
                continue;
            }
            var p = PlanLine().Match(lines[i]);
            if (p.Success) Plan = int.Parse(p.Groups[1].Value);
            var s = SummaryLine().Match(lines[i]);
            if (s.Success) Summary = (int.Parse(s.Groups[1].Value), int.Parse(s.Groups[2].Value), int.Parse(s.Groups[3].Value));
        }
        Results = results;
    }

    public GuestResult? Find(string name) => Results.FirstOrDefault(r => r.Name == name);

    // One nested boot (KVM under an outer QEMU whose SVM is emulated by TCG).
    // A guest failure is a failure: there is no second boot.
    public static GuestRun Nested(string arguments) => new(Repo.QemuRun(arguments, TimeSpan.FromMinutes(15)));

    // tools/nested/run.sh names the outer QEMU on stderr. make test must run
    // the patched build (tools/nested/qemu): the system's QEMU 7.2 delivers
    // injected interrupts twice and aborts on OVMF's CR8 writes
    // (docs/qemu-svm-bugs.md), so a silent fallback would be a weaker test.
    public void AssertPatchedOuterQemu()
    {
        var line = Process.Stderr.Split('\n').FirstOrDefault(l => l.StartsWith("run.sh: outer QEMU: "));
        Assert.True(line != null, "no 'run.sh: outer QEMU:' line:\n" + Process.Output);
        Assert.True(line!.StartsWith("run.sh: outer QEMU: patched "), $"the nested run did not use the patched outer QEMU: {line}");
    }
}
