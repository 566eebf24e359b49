using System.Text.RegularExpressions;
using Xunit;

namespace Kernel.Tests;

public enum GuestOutcome { Passed, Failed, Skipped }

// At: where a failed check is, "tests/guest/File.cs:LINE" (empty when the guest named none).
public sealed record GuestResult(int Number, string Name, GuestOutcome Outcome, string Message, string At = "")
{
    // The tests of the Hyper-V interface (and what is built on it), by name prefix.
    public bool IsHyperV => Name.Split('.')[0] is "hv" or "synic" or "events" or "messages" or "direct" or "time" or "stimer" or "vmbus";

    // The message, and for a failed check the check itself, quoted from the source:
    // the guest image carries no text for most checks, only their line (tests/guest/Expect.cs).
    public string Detail => At == "" ? Message : $"{Message}\n  at {At}:\n{CheckSource.Quote(At)}";
}

// The source of a guest check: its statement, from the line the guest named to
// the line that ends it, with the comment lines just above it (what it checks).
public static class CheckSource
{
    public static string Quote(string at)
    {
        int colon = at.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(at[(colon + 1)..], out int line) || line < 1) return $"    (not a file:line: '{at}')";
        var path = Path.Combine(Repo.Root, at[..colon]);
        if (!File.Exists(path)) return $"    (no such file: {at[..colon]})";
        var lines = File.ReadAllLines(path);
        if (line > lines.Length) return $"    ({at[..colon]} has {lines.Length} lines)";
        int first = line - 1;
        while (first > 0 && lines[first - 1].TrimStart().StartsWith("//")) first--;
        int last = line - 1;
        while (last + 1 < lines.Length && !Regex.IsMatch(lines[last], @";\s*(//.*)?$")) last++;
        var quoted = string.Join("\n", lines[first..(last + 1)].Select(l => "    " + l.Trim()));
        // A guest that named a line which holds no check has its location wrong.
        return lines[line - 1].Contains("Expect.") ? quoted : quoted + $"\n    (line {line} holds no Expect check: the guest's location is wrong)";
    }
}

// Parses the guest's test mode, TAP version 14 (tests/guest/TestRunner.cs):
//   ok N - name | ok N - name # SKIP reason | not ok N - name, then a YAML
//   block whose message is 'expected X, got Y' or 'expected X, got Y (what)',
//   and whose at is the failed check's 'file:line'
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
                var at = "";
                // not ok: "  ---", "  message: '<the message, quotes doubled>'", ["  at: '<file:line>'"], "  ..."
                if (outcome == GuestOutcome.Failed && i + 2 < lines.Length && lines[i + 1] == "  ---"
                    && lines[i + 2].StartsWith("  message: '") && lines[i + 2].EndsWith('\''))
                {
                    message = lines[i + 2]["  message: '".Length..^1].Replace("''", "'");
                    if (i + 3 < lines.Length && lines[i + 3].StartsWith("  at: '") && lines[i + 3].EndsWith('\''))
                        at = lines[i + 3]["  at: '".Length..^1];
                }
                results.Add(new GuestResult(int.Parse(m.Groups[2].Value), m.Groups[3].Value, outcome, message, at));
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

    // The first line of the guest's output (stdout) that starts with `prefix`.
    public string Line(string prefix) => FirstLine(Process.Stdout, prefix, "the guest output");

    // The first line of the scripts' stderr that starts with `prefix`; a line that
    // qemu-run.sh wrote inside the nested Linux (run.sh --command) comes behind
    // "run.sh: inner command: ".
    private string StderrLine(string prefix) => FirstLine(Process.Stderr.Replace("run.sh: inner command: ", ""), prefix, "stderr");

    private string FirstLine(string text, string prefix, string where)
    {
        var line = text.Split('\n').Select(l => l.TrimEnd('\r')).FirstOrDefault(l => l.StartsWith(prefix));
        Assert.True(line != null, $"no '{prefix}' line in {where}:\n{Process.Output}");
        return line!;
    }

    // qemu-run.sh names the QEMU that ran the guest on stderr:
    // "qemu-run.sh: QEMU: <pinned|system> <version> (<path>)".
    public string QemuLine() => StderrLine("qemu-run.sh: QEMU: ");

    // The default: the pinned QEMU (tools/qemu/pinned.sh), e.g. "pinned 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)".
    public void AssertPinnedQemu() =>
        Assert.StartsWith($"qemu-run.sh: QEMU: pinned {PinnedQemu.Upstream} (Debian {PinnedQemu.DebianVersion}) ", QemuLine());

    // --qemu system: this host's qemu-system-x86_64, whatever its version (Debian 12: 7.2).
    public void AssertSystemQemu() =>
        Assert.StartsWith($"qemu-run.sh: QEMU: system {SystemQemu.Version} ", QemuLine());

    // tools/nested/run.sh names the inner QEMU as the outer Linux ran it:
    // "run.sh: inner QEMU: QEMU emulator version <version> (<path>)".
    public void AssertInnerQemu(string version) =>
        Assert.StartsWith($"run.sh: inner QEMU: QEMU emulator version {version} ", StderrLine("run.sh: inner QEMU: "));

    // tools/nested/run.sh names the outer QEMU on stderr. make test must run
    // the patched build (tools/nested/qemu): the system's QEMU 7.2 delivers
    // injected interrupts twice and aborts on OVMF's CR8 writes
    // (docs/qemu-svm-bugs.md), so a silent fallback would be a weaker test.
    public void AssertPatchedOuterQemu()
    {
        var line = StderrLine("run.sh: outer QEMU: ");
        Assert.True(line.StartsWith("run.sh: outer QEMU: patched "), $"the nested run did not use the patched outer QEMU: {line}");
    }
}

// The pinned QEMU's version, read from the one place that pins it.
public static class PinnedQemu
{
    private static readonly Lazy<string> s_debian = new(() =>
    {
        var m = Regex.Match(File.ReadAllText(Path.Combine(Repo.Root, "tools", "qemu", "pinned.sh")),
            @"^readonly qemu_version=(\S+)$", RegexOptions.Multiline);
        Assert.True(m.Success, "tools/qemu/pinned.sh sets no qemu_version");
        return m.Groups[1].Value;
    });

    // Debian's package version, e.g. 1:10.0.2+ds-2+deb13u1~bpo12+1.
    public static string DebianVersion => s_debian.Value;

    // QEMU's own, e.g. 10.0.2.
    public static string Upstream => Regex.Match(DebianVersion, @"^(?:\d+:)?([0-9.]+)").Groups[1].Value;

    // The tree tools/qemu/fetch.sh keeps it in (fetched on first use).
    private static readonly Lazy<string> s_tree = new(() =>
    {
        var r = Repo.Run(Path.Combine(Repo.Root, "tools", "qemu", "fetch.sh"), "", TimeSpan.FromMinutes(10));
        Assert.True(r.ExitCode == 0, "tools/qemu/fetch.sh:\n" + r.Output);
        return r.Stdout.Trim();
    });

    // How to run it outside qemu-run.sh: the binary, its -L arguments, its module dir.
    public static string Binary => Path.Combine(s_tree.Value, "usr/bin/qemu-system-x86_64");
    public static string DataArguments => $"-L {s_tree.Value}/usr/share/qemu -L {s_tree.Value}/usr/share/seabios";
    public static Dictionary<string, string> Environment =>
        new() { ["QEMU_MODULE_DIR"] = Path.Combine(s_tree.Value, "usr/lib/x86_64-linux-gnu/qemu") };
}

// The host's qemu-system-x86_64 (qemu-run.sh --qemu system).
public static class SystemQemu
{
    private static readonly Lazy<string> s_version = new(() =>
    {
        var r = Repo.Run("qemu-system-x86_64", "--version", TimeSpan.FromSeconds(30));
        var m = Regex.Match(r.Stdout, @"^QEMU emulator version (\S+)");
        Assert.True(m.Success, "qemu-system-x86_64 --version:\n" + r.Output);
        return m.Groups[1].Value;
    });

    // e.g. 7.2.22 on Debian 12.
    public static string Version => s_version.Value;
}
