using System.Diagnostics;
using System.Text;

namespace Kernel.Tests;

// Where the repository is, and how to run its scripts.
public static class Repo
{
    public static string Root { get; } = FindRoot();
    // The image qemu-run.sh boots unless told --image minimal: the kernel with its test tree.
    public static string KernelElf => Path.Combine(Root, "build", "kernel-test.elf");
    // The minimal enlightened guest (kernel/ and drivers/ alone).
    public static string MinimalKernelElf => Path.Combine(Root, "build", "kernel.elf");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "qemu-run.sh"))) return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (qemu-run.sh) above " + AppContext.BaseDirectory);
    }

    private static readonly Lazy<bool> s_built = new(() =>
    {
        var r = Run("make", "-s kernel", TimeSpan.FromMinutes(5));
        if (r.ExitCode != 0) throw new InvalidOperationException("make kernel failed:\n" + r.Output);
        return true;
    });

    // Builds the kernel once per test run (make is incremental, so this is cheap after `make test`).
    public static void EnsureKernelBuilt() => _ = s_built.Value;

    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string Output => Stdout + Stderr;
    }

    // onStdoutLine, when given, sees each stdout line as it arrives (a host that
    // answers the guest while it runs); it runs on the reader's thread.
    public static Result Run(string file, string arguments, TimeSpan timeout, IDictionary<string, string>? environment = null,
                             Action<string>? onStdoutLine = null)
    {
        var psi = new ProcessStartInfo(file, arguments)
        {
            WorkingDirectory = Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) psi.Environment[name] = value;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data == null) return;
            lock (stdout) stdout.AppendLine(e.Data);
            onStdoutLine?.Invoke(e.Data.TrimEnd('\r'));
        };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {arguments} did not finish within {timeout}");
        }
        p.WaitForExit();
        return new Result(p.ExitCode, stdout.ToString(), stderr.ToString());
    }

    public static Result QemuRun(string arguments, TimeSpan? timeout = null)
    {
        EnsureKernelBuilt();
        return Run(Path.Combine(Root, "qemu-run.sh"), arguments, timeout ?? TimeSpan.FromMinutes(6));
    }
}
