using System.Text.RegularExpressions;
using Xunit;

namespace Kernel.Tests;

// A failed guest check is located by its line and the file of the test that
// ran it (tests/guest/Expect.cs, TestRunner.cs): that holds for checks in the
// suites' own files. A check elsewhere (a shared prerequisite in Need.cs) must
// say what it checks and pass line: 0, or the host would quote a line of the
// wrong file.
public class GuestCheckLocationTests
{
    private static readonly Regex Check = new(@"\bExpect\.(Equal|True|False|InRange)\(");

    private static List<Match> Suites() => Regex.Matches(File.ReadAllText(Path.Combine(Repo.Root, "tests", "guest", "TestRunner.cs")),
        @"Suite\(""([^""]+)""u8, &(?:(\w+)\.)?(\w+)\)").ToList();

    private static HashSet<string> SuiteFiles() => Suites().Select(s => s.Groups[1].Value).ToHashSet();

    [Fact]
    public void ChecksOutsideASuitesFileGiveNoLine()
    {
        var suiteFiles = SuiteFiles();
        var wrong = new List<string>();
        foreach (var path in Directory.GetFiles(Path.Combine(Repo.Root, "tests", "guest"), "*.cs", SearchOption.AllDirectories))
        {
            var file = Path.GetRelativePath(Repo.Root, path).Replace('\\', '/');
            if (file.EndsWith("/Expect.cs") || suiteFiles.Contains(file)) continue;
            var lines = File.ReadAllLines(path);
            for (int i = 0; i < lines.Length; i++)
                if (Check.IsMatch(lines[i]) && !lines[i].Contains("line: 0"))
                    wrong.Add($"{file}:{i + 1}: {lines[i].Trim()}");
        }
        Assert.True(wrong.Count == 0, "checks outside a suite's file without line: 0:\n" + string.Join("\n", wrong));
    }

    // TestRunner.RegisterAll: Suite("tests/guest/X.cs"u8, &Class.Register): the file
    // must declare the class, and every file that adds tests must be a suite's.
    [Fact]
    public void EachSuiteIsRegisteredWithItsOwnFile()
    {
        var suites = Suites();
        Assert.True(suites.Count >= 10, $"TestRunner.cs registers {suites.Count} suites");
        var wrong = new List<string>();
        foreach (var s in suites)
        {
            string file = s.Groups[1].Value, type = s.Groups[2].Success ? s.Groups[2].Value : "TestRunner";
            var path = Path.Combine(Repo.Root, file);
            if (!File.Exists(path)) wrong.Add($"{file}: no such file (suite {type})");
            else if (!Regex.IsMatch(File.ReadAllText(path), $@"\bclass {type}\b")) wrong.Add($"{file} does not declare {type}");
        }
        var listed = SuiteFiles();
        foreach (var path in Directory.GetFiles(Path.Combine(Repo.Root, "tests", "guest"), "*.cs", SearchOption.AllDirectories))
        {
            var file = Path.GetRelativePath(Repo.Root, path).Replace('\\', '/');
            if (Regex.IsMatch(File.ReadAllText(path), @"TestRunner\.Add(Closing)?\(") && !listed.Contains(file))
                wrong.Add($"{file} adds tests but is no suite in TestRunner.RegisterAll");
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public void TheHostQuotesTheCheckWithItsComment()
    {
        var runner = File.ReadAllLines(Path.Combine(Repo.Root, "tests", "guest", "TestRunner.cs"));
        int line = Array.FindIndex(runner, l => l.Contains("FailOnPurpose() => Expect.Equal(")) + 1;
        Assert.True(line > 0, "tests/guest/TestRunner.cs has no FailOnPurpose check");
        Assert.Contains("Expect.Equal(1ul, 2ul);    // the deliberately wrong expectation of inject-failure",
            CheckSource.Quote($"tests/guest/TestRunner.cs:{line}"));
        Assert.Contains("holds no Expect check", CheckSource.Quote($"tests/guest/TestRunner.cs:1"));
    }
}
