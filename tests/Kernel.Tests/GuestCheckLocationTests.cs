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

    [Fact]
    public void ChecksOutsideASuitesFileGiveNoLine()
    {
        var wrong = new List<string>();
        foreach (var path in Directory.GetFiles(Path.Combine(Repo.Root, "tests", "guest"), "*.cs", SearchOption.AllDirectories))
        {
            var text = File.ReadAllText(path);
            if (path.EndsWith("Expect.cs") || text.Contains("TestRunner.Add(") || text.Contains("new TestCase(")) continue;
            var lines = text.Split('\n');
            for (int i = 0; i < lines.Length; i++)
                if (Check.IsMatch(lines[i]) && !lines[i].Contains("line: 0"))
                    wrong.Add($"{Path.GetRelativePath(Repo.Root, path)}:{i + 1}: {lines[i].Trim()}");
        }
        Assert.True(wrong.Count == 0, "checks outside a suite's file without line: 0:\n" + string.Join("\n", wrong));
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
