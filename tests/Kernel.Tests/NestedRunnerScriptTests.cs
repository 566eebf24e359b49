using Xunit;

namespace Kernel.Tests;

// tools/nested/run.sh refuses bad usage with status 2 and one clear line,
// before it prepares, builds or boots anything.
public class NestedRunnerScriptTests
{
    private static Repo.Result RunSh(string args) =>
        Repo.Run(Path.Combine(Repo.Root, "tools", "nested", "run.sh"), args, TimeSpan.FromSeconds(30));

    [Theory]
    [InlineData("--command --", "--command needs a command after --")]
    [InlineData("--share /nonexistent-dir -- -m 64", "--share /nonexistent-dir: not a writable directory")]
    [InlineData("--kvm other -- -m 64", "--kvm wants stock or direct")]
    [InlineData("--outer-qemu other -- -m 64", "--outer-qemu (or NESTED_OUTER_QEMU) wants patched or system, not 'other'")]
    [InlineData("-- -serial stdio", "inner args must not contain -serial")]
    [InlineData("--qmp /nonexistent-dir/q.sock -- -m 64", "--qmp /nonexistent-dir/q.sock: no such directory")]
    [InlineData("--qmp /tmp/q.sock --command -- true", "--qmp is for the inner QEMU (not with --command)")]
    public void BadUsageIsRefusedBeforeAnythingRuns(string args, string message)
    {
        var r = RunSh(args).AssertEnded(2, "run.sh: " + message);
        Assert.DoesNotContain("outer QEMU:", r.Stderr);
    }
}
