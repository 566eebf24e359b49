using Xunit;

namespace Kernel.Tests;

public static class ScriptAssert
{
    // A script (qemu-run.sh, tools/nested/run.sh, ...) ended with `status` and
    // said each of `onStderr` on its stderr; on a mismatch, the message holds its
    // whole output. The result comes back for what else a test checks.
    public static Repo.Result AssertEnded(this Repo.Result r, int status, params string[] onStderr)
    {
        Assert.True(r.ExitCode == status, $"expected exit status {status}, got {r.ExitCode}; the output:\n{r.Output}");
        foreach (var text in onStderr) Assert.Contains(text, r.Stderr);
        return r;
    }
}
