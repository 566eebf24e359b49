using System.Text.RegularExpressions;

namespace Kernel.Tests;

public enum GuestOutcome { Passed, Failed, Skipped }

public sealed record GuestResult(int Number, string Name, GuestOutcome Outcome, string Message);

// Parses the guest's test-mode lines (kernel/test/TestRunner.cs):
//   ok N - name | not ok N - name: message | skip N - name: reason
// and the closing "N passed, N failed, N skipped".
public sealed partial class GuestRun
{
    public Repo.Result Process { get; }
    public IReadOnlyList<GuestResult> Results { get; }
    public (int Passed, int Failed, int Skipped)? Summary { get; }

    [GeneratedRegex(@"^(ok|not ok|skip) (\d+) - ([^:\s]+)(?:: (.*))?$")]
    private static partial Regex ResultLine();

    [GeneratedRegex(@"^(\d+) passed, (\d+) failed, (\d+) skipped$")]
    private static partial Regex SummaryLine();

    public GuestRun(Repo.Result process)
    {
        Process = process;
        var results = new List<GuestResult>();
        foreach (var raw in process.Stdout.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            var m = ResultLine().Match(line);
            if (m.Success)
            {
                var outcome = m.Groups[1].Value switch { "ok" => GuestOutcome.Passed, "skip" => GuestOutcome.Skipped, _ => GuestOutcome.Failed };
                results.Add(new GuestResult(int.Parse(m.Groups[2].Value), m.Groups[3].Value, outcome, m.Groups[4].Value));
                continue;
            }
            var s = SummaryLine().Match(line);
            if (s.Success) Summary = (int.Parse(s.Groups[1].Value), int.Parse(s.Groups[2].Value), int.Parse(s.Groups[3].Value));
        }
        Results = results;
    }

    public GuestResult? Find(string name) => Results.FirstOrDefault(r => r.Name == name);

    // One nested boot (KVM under an outer QEMU whose SVM is emulated by TCG).
    // A guest failure is a failure: there is no second boot.
    public static GuestRun Nested(string arguments) => new(Repo.QemuRun(arguments, TimeSpan.FromMinutes(10)));
}
