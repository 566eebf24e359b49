using System.Text.RegularExpressions;
using Xunit;

namespace Kernel.Tests;

// The README's "Where things are" table is the map a newcomer reads first: every
// path it names exists, and every folder of the source tree is on it.
public class ReadmeTests
{
    private static readonly Lazy<string[]> s_rows = new(() =>
    {
        string readme = File.ReadAllText(Path.Combine(Repo.Root, "README.md"));
        var section = Regex.Match(readme, @"^## Where things are\n(.*?)^## ", RegexOptions.Singleline | RegexOptions.Multiline);
        Assert.True(section.Success, "README.md has no '## Where things are' section");
        return section.Groups[1].Value.Split('\n').Where(l => l.StartsWith("| `")).ToArray();
    });

    // The backticked paths of the table's first column.
    private static IEnumerable<string> PathsNamed() =>
        s_rows.Value.SelectMany(row => Regex.Matches(row.Split('|')[1], "`([^`]+)`").Select(m => m.Groups[1].Value));

    [Fact]
    public void EveryPathInTheTableExists()
    {
        var missing = new List<string>();
        foreach (string named in PathsNamed())
        {
            // "kernel/arch/Acpi.cs, `Smp.cs`": a bare file name belongs to the folder of the path before it.
            string path = named.TrimEnd('/');
            if (!File.Exists(Path.Combine(Repo.Root, path)) && !Directory.Exists(Path.Combine(Repo.Root, path))
                && !PathsNamed().Any(p => p.Contains('/') && File.Exists(Path.Combine(Repo.Root, Path.GetDirectoryName(p.TrimEnd('/'))!, path))))
                missing.Add(named);
        }
        Assert.True(missing.Count == 0, "README 'Where things are' names what the tree does not have: " + string.Join(", ", missing));
    }

    [Fact]
    public void EveryFolderOfTheTreeIsInTheTable()
    {
        var named = PathsNamed().Select(p => p.TrimEnd('/')).ToHashSet();
        var folders = new[] { "boot", "kernel", "drivers", "tests", "tools" }
            .SelectMany(top => Directory.EnumerateDirectories(Path.Combine(Repo.Root, top), "*", SearchOption.AllDirectories).Prepend(Path.Combine(Repo.Root, top)))
            .Select(d => Path.GetRelativePath(Repo.Root, d).Replace('\\', '/'))
            .Where(d => !d.Split('/').Any(part => part is "bin" or "obj" || part.StartsWith('.')))
            .ToList();
        // A folder is on the map when it, or something in it, is named.
        bool OnTheMap(string folder) => named.Any(n => n == folder || n.StartsWith(folder + "/"));
        var unmapped = folders.Where(f => !OnTheMap(f)).ToList();
        Assert.True(unmapped.Count == 0, "folders missing from README 'Where things are': " + string.Join(", ", unmapped));
    }
}
