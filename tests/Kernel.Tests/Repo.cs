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
        using var process = new RunningProcess(file, arguments, environment, onStdoutLine);
        return process.WaitForExit(timeout);
    }

    public static Result QemuRun(string arguments, TimeSpan? timeout = null)
    {
        EnsureKernelBuilt();
        return Run(Path.Combine(Root, "qemu-run.sh"), arguments, timeout ?? TimeSpan.FromMinutes(6));
    }
}

// A program started in the repository and not waited for: its stdin closed, its
// stdout and stderr collected as they come (onStdoutLine, when given, sees each
// stdout line on the reader's thread). Dispose kills what is left of it.
public sealed class RunningProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new(), _stderr = new();
    private readonly string _command;

    public RunningProcess(string file, string arguments, IDictionary<string, string>? environment = null, Action<string>? onStdoutLine = null)
    {
        _command = $"{file} {arguments}";
        var psi = new ProcessStartInfo(file, arguments)
        {
            WorkingDirectory = Repo.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) psi.Environment[name] = value;
        _process = Process.Start(psi)!;
        _process.StandardInput.Close();
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data == null) return;
            lock (_stdout) _stdout.AppendLine(e.Data);
            onStdoutLine?.Invoke(e.Data.TrimEnd('\r'));
        };
        _process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_stderr) _stderr.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    // Returns once `done` holds; fails if the program ends first or time runs out.
    public void WaitUntil(Func<bool> done, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!done())
        {
            if (_process.HasExited || DateTime.UtcNow > deadline)
                throw new InvalidOperationException($"{_command}: {what} (exit {(_process.HasExited ? _process.ExitCode.ToString() : "none yet")}):\n{Stdout}{Stderr}");
            Thread.Sleep(50);
        }
    }

    // Its result once it ends; past `timeout` it is killed and this throws.
    public Repo.Result WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{_command} did not finish within {timeout}:\n{Stdout}{Stderr}");
        }
        _process.WaitForExit();                          // the output readers are done
        return new Repo.Result(_process.ExitCode, Stdout, Stderr);
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}
