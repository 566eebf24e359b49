using System.Text.RegularExpressions;
using Xunit;

namespace Kernel.Tests;

// A fresh Debian 12 machine has the base system (the packages of Priority
// "required": coreutils, apt, dpkg, tar, gzip, findutils, util-linux, mawk, ...)
// and, per the README, the .NET SDK, git and make. Everything else a target
// runs must come from tools/deps.sh, which declares it per group as
// `want <command> <package>`. These tests run each target with a PATH that
// holds exactly that and nothing more, so a script that starts using a
// command deps.sh does not provide for its target fails here, on any machine,
// however much happens to be installed.
public class FreshMachineTests
{
    // `make run` and a TCG boot on the pinned QEMU (cached): the build, run and qemu groups.
    [Fact]
    public void TcgRunNeedsOnlyTheRunGroup()
    {
        using var path = RestrictedPath.For("build", "run", "qemu");
        var r = path.Run("./qemu-run.sh", "--mode tcg --test=format", TimeSpan.FromMinutes(2));
        Assert.True(r.ExitCode == 0, r.Output);
    }

    // A UEFI boot of the Gen2 disk: the image group (mtools for the command line, OVMF).
    [Fact]
    public void UefiRunNeedsOnlyTheImageGroup()
    {
        UefiImage.EnsureBuilt();
        using var path = RestrictedPath.For("build", "run", "qemu", "image");
        var r = path.Run("./qemu-run.sh", "--uefi --mode tcg --test=format", TimeSpan.FromMinutes(2));
        Assert.True(r.ExitCode == 0, r.Output);
    }

    // Every command of every Makefile recipe is a project script, or declared
    // for the groups the Makefile asks deps.sh for.
    [Fact]
    public void MakefileRecipesUseOnlyDeclaredCommands()
    {
        var r = Repo.Run("make", "-n -B kernel image run test bench", TimeSpan.FromMinutes(1));
        Assert.True(r.ExitCode == 0, r.Output);
        var allowed = RestrictedPath.Commands("build", "run", "qemu", "image", "nested", "kvm", "qemu-build", "test")
            .Concat(RestrictedPath.BaseCommands()).Concat(RestrictedPath.Brought).ToHashSet();
        var missing = new List<string>();
        foreach (var raw in r.Stdout.Replace("\\\n", " ").Split('\n'))     // a recipe line continued with \ is one command
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#') || line.StartsWith("make[")) continue;
            foreach (var command in RestrictedPath.CommandWords(line))
                if (!command.Contains('/') && !allowed.Contains(command)) missing.Add($"{command} (in: {line})");
        }
        Assert.True(missing.Count == 0, "commands the Makefile runs that tools/deps.sh does not provide:\n" + string.Join("\n", missing.Distinct()));
    }

    // The pinned QEMU fetched into an empty cache (Debian's packages from
    // bookworm-backports, a few seconds), then a TCG boot on it: the qemu group.
    [Fact]
    public void PinnedQemuFromScratchNeedsOnlyTheQemuGroup()
    {
        var cache = Directory.CreateTempSubdirectory("fresh-qemu-cache");
        try
        {
            var env = new Dictionary<string, string> { ["QEMU_CACHE"] = cache.FullName };
            using var path = RestrictedPath.For("build", "run", "qemu");
            var fetch = path.Run("tools/qemu/fetch.sh", "", TimeSpan.FromMinutes(10), env);
            Assert.True(fetch.ExitCode == 0, "tools/qemu/fetch.sh from an empty cache:\n" + fetch.Output);
            Assert.StartsWith(cache.FullName + "/", fetch.Stdout.Trim());
            var boot = new GuestRun(path.Run("./qemu-run.sh", "--mode tcg --test=format", TimeSpan.FromMinutes(2), env));
            Assert.True(boot.Process.ExitCode == 0, boot.Process.Output);
            boot.AssertPinnedQemu();
            Assert.Contains(fetch.Stdout.Trim(), boot.QemuLine());
        }
        finally { cache.Delete(recursive: true); }
    }

    // The nested runner's cache built from nothing (Debian's kernel and busybox,
    // the initramfs), then the project's KVM (Debian's kernel sources, gcc):
    // the nested and kvm groups. A minute or two, and the Debian mirror.
    [Fact]
    public void NestedCacheAndTheProjectsKvmFromScratchNeedOnlyTheirGroups()
    {
        var cache = Directory.CreateTempSubdirectory("fresh-nested-cache");
        try
        {
            var env = new Dictionary<string, string> { ["NESTED_CACHE"] = cache.FullName };
            using (var path = RestrictedPath.For("build", "run", "nested"))
            {
                var prepare = path.Run("tools/nested/prepare.sh", "", TimeSpan.FromMinutes(10), env);
                Assert.True(prepare.ExitCode == 0, "prepare.sh from an empty cache:\n" + prepare.Output);
            }
            using (var path = RestrictedPath.For("build", "run", "nested", "kvm"))
            {
                var build = path.Run("tools/nested/kvm/build.sh", "", TimeSpan.FromMinutes(15), env);
                Assert.True(build.ExitCode == 0, "kvm/build.sh from an empty cache:\n" + build.Output);
            }
        }
        finally { cache.Delete(recursive: true); }
    }
}

// A directory of symlinks to the commands a target may use, put first and
// alone on PATH for a child process.
public sealed class RestrictedPath : IDisposable
{
    private readonly DirectoryInfo _dir;

    private RestrictedPath(DirectoryInfo dir) => _dir = dir;

    // The .NET SDK, git and make: what the README says a fresh machine brings.
    public static readonly string[] Brought = { "dotnet", "git", "make" };

    public static RestrictedPath For(params string[] groups)
    {
        var dir = Directory.CreateTempSubdirectory("restricted-path");
        foreach (var command in Commands(groups).Concat(BaseCommands()).Concat(Brought).Distinct())
        {
            var target = Resolve(command);
            if (target != null) File.CreateSymbolicLink(Path.Combine(dir.FullName, command), target);
        }
        return new RestrictedPath(dir);
    }

    // The PATH value itself, for a child process started some other way.
    public string Value => _dir.FullName;

    public Repo.Result Run(string script, string arguments, TimeSpan timeout, IDictionary<string, string>? env = null)
    {
        var all = new Dictionary<string, string>(env ?? new Dictionary<string, string>()) { ["PATH"] = _dir.FullName };
        return Repo.Run(Path.Combine(Repo.Root, script), arguments, timeout, all);
    }

    public void Dispose() => _dir.Delete(recursive: true);

    // The commands tools/deps.sh declares (`want <command> <package>`) in the
    // case arms of the given groups.
    public static IEnumerable<string> Commands(params string[] groups)
    {
        var deps = File.ReadAllText(Path.Combine(Repo.Root, "tools", "deps.sh"));
        foreach (var group in groups)
        {
            var arm = Regex.Match(deps, @"^\s*" + Regex.Escape(group) + @"\)(.*?);;", RegexOptions.Multiline | RegexOptions.Singleline);
            Assert.True(arm.Success, $"tools/deps.sh has no '{group})' group");
            foreach (Match m in Regex.Matches(arm.Groups[1].Value, @"\bwant\s+(\S+)\s+\S+"))
                yield return m.Groups[1].Value;
        }
    }

    // Every command of the base system: the files in bin/ and sbin/ of the
    // installed packages of Priority "required" and of what they depend on
    // (apt brings gpgv, for instance).
    public static IEnumerable<string> BaseCommands() => s_base.Value;

    private static readonly Lazy<string[]> s_base = new(() =>
    {
        var installed = Repo.Run("dpkg-query", "-W -f=${Package}\\t${Priority}\\t${Pre-Depends},${Depends}\\n", TimeSpan.FromMinutes(1)).Stdout
            .Split('\n').Select(l => l.Split('\t')).Where(f => f.Length == 3)
            .GroupBy(f => f[0].Split(':')[0]).ToDictionary(g => g.Key, g => g.First());
        var basePackages = new HashSet<string>();
        var queue = new Queue<string>(installed.Values.Where(f => f[1].Trim() == "required").Select(f => f[0].Split(':')[0]));
        while (queue.Count > 0)
        {
            var package = queue.Dequeue();
            if (!basePackages.Add(package) || !installed.TryGetValue(package, out var fields)) continue;
            foreach (var dependency in fields[2].Split(',', StringSplitOptions.RemoveEmptyEntries))
                foreach (var alternative in dependency.Split('|'))
                {
                    var name = alternative.Trim().Split(' ', '(', ':')[0];
                    if (installed.ContainsKey(name)) { queue.Enqueue(name); break; }
                }
        }
        var files = Repo.Run("dpkg", "-L " + string.Join(' ', basePackages), TimeSpan.FromMinutes(1)).Stdout.Split('\n');
        var commands = files.Select(f => f.Trim()).Where(f => Regex.IsMatch(f, @"^(/usr)?/s?bin/[^/]+$")).Select(f => Path.GetFileName(f)!).ToHashSet();
        // Names that update-alternatives made (awk -> /etc/alternatives/awk -> mawk) for a base command.
        foreach (var link in Directory.EnumerateFiles("/usr/bin"))
        {
            var target = new FileInfo(link).LinkTarget;
            if (target == null || !target.StartsWith("/etc/alternatives/")) continue;
            var final = File.ResolveLinkTarget(link, returnFinalTarget: true);
            if (final != null && commands.Contains(Path.GetFileName(final.FullName))) commands.Add(Path.GetFileName(link));
        }
        return commands.ToArray();
    });

    private static string? Resolve(string command)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            var candidate = Path.Combine(dir, command);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    // The command words of one shell line: the first word, and the first word
    // after each |, &&, ||, ; and $( — past VAR=value assignments and @/-.
    public static IEnumerable<string> CommandWords(string line)
    {
        foreach (var part in Regex.Split(line, @"\|\||&&|\||;|\$\("))
        {
            var words = part.Trim().TrimStart('@', '-', '(').Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .SkipWhile(w => Regex.IsMatch(w, @"^[A-Za-z_][A-Za-z0-9_]*=")).ToArray();
            if (words.Length == 0) continue;
            var word = words[0];
            if (word is "if" or "then" or "else" or "fi" or "for" or "do" or "done" or "while" or "case" or "esac" or "exit" or "cd" or "echo" or "set" or "true" or "false" or "test" or "[" or "]" or "{" or "}" or ")" or "export" or "read") continue;
            yield return word;
        }
    }
}
