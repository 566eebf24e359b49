using Xunit;

namespace Kernel.Tests;

// The contract of qemu-run.sh: selection, exit statuses, clear errors.
public class QemuRunScriptTests
{
    [Fact]
    public void TestEqualsNameRunsOnlyThatPrefix()
    {
        var run = new GuestRun(Repo.QemuRun("--mode tcg --test=format.hex"));
        Assert.Equal(0, run.Process.ExitCode);
        // The selected test, then the interrupt guard's verdict, which closes every run.
        Assert.Equal(new[] { "format.hex", "guard.no_interrupt_delivered_twice" }, run.Results.Select(r => r.Name));
        Assert.All(run.Results, r => Assert.Equal(GuestOutcome.Passed, r.Outcome));
    }

    [Theory]
    [InlineData("ud", 6, "#UD invalid opcode")]
    [InlineData("gp", 13, "#GP general protection")]
    [InlineData("pf", 14, "#PF page fault")]
    [InlineData("de", 0, "#DE divide error")]
    [InlineData("df", 8, "#DF double fault")]
    public void CrashOptionEndsWithCrashStatusAndReport(string kind, int vector, string name)
    {
        var r = Repo.QemuRun($"--mode tcg --append crash={kind}").AssertEnded(2);
        Assert.Matches($@"FATAL EXCEPTION {System.Text.RegularExpressions.Regex.Escape(name)} \(vector {vector}\) error code 0x[0-9a-f]+ RIP 0x[0-9a-f]{{16}}", r.Stdout);
    }

    [Fact]
    public void FailingGuestTestGivesFailureStatus()
    {
        var run = new GuestRun(Repo.QemuRun("--mode tcg --test=testmode. --append inject-failure"));
        Assert.Equal(1, run.Process.ExitCode);
        var failed = Assert.Single(run.Results, r => r.Outcome == GuestOutcome.Failed);
        Assert.Equal("testmode.injected_failure", failed.Name);
        Assert.Equal("expected 1, got 2", failed.Message);
        // The failed check's location: the line of FailOnPurpose's check, which the host quotes.
        var runner = File.ReadAllLines(Path.Combine(Repo.Root, "tests", "guest", "TestRunner.cs"));
        int line = Array.FindIndex(runner, l => l.Contains("FailOnPurpose() => Expect.Equal(1ul, 2ul)")) + 1;
        Assert.True(line > 0, "tests/guest/TestRunner.cs has no FailOnPurpose check");
        Assert.Equal($"tests/guest/TestRunner.cs:{line}", failed.At);
        Assert.Contains("Expect.Equal(1ul, 2ul);    // the deliberately wrong expectation of inject-failure", failed.Detail);
    }

    [Fact]
    public void UnknownTestPrefixFailsRatherThanPassingEmpty()
    {
        var run = new GuestRun(Repo.QemuRun("--mode tcg --test=no.such.test"));
        Assert.Equal(1, run.Process.ExitCode);
        Assert.Contains("no test matches", run.Process.Stdout);
    }

    // -S starts QEMU with the CPU stopped, so the guest can never finish.
    [Fact]
    public void TimeoutHasItsOwnStatus() =>
        Repo.QemuRun("--mode tcg --timeout 2 -- -S").AssertEnded(3, "timeout");

    [Theory]
    [InlineData("--mode bogus", "--mode must be")]
    [InlineData("--smp 0", "--smp must be")]
    [InlineData("--timeout soon", "--timeout must be")]
    [InlineData("--hv bogus", "--hv takes")]
    [InlineData("--frobnicate", "unknown option")]
    [InlineData("--qemu bogus", "--qemu (or QEMU_RUN_QEMU) must be pinned or system, not 'bogus'")]
    [InlineData("--qmp /nonexistent-dir/q.sock", "--qmp /nonexistent-dir/q.sock: no directory /nonexistent-dir")]
    [InlineData("--qmp /tmp/a,b.sock", "--qmp: the socket path must not contain a comma")]
    [InlineData("--qmp /etc/hostname", "--qmp /etc/hostname: exists and is not a socket")]
    public void BadArgumentsAreRefusedClearly(string args, string message) =>
        Repo.QemuRun(args).AssertEnded(64, message);

    [Theory]
    [InlineData("--gdb=0")]
    [InlineData("--gdb=65536")]
    [InlineData("--gdb=")]
    [InlineData("--gdb=12ab")]
    [InlineData("--gdb=-1")]
    public void BadGdbPortIsRefusedClearly(string args)
    {
        var r = Repo.QemuRun("--mode tcg " + args).AssertEnded(64, $"--gdb=PORT takes a TCP port number, 1-65535, not '{args["--gdb=".Length..]}'");
        Assert.DoesNotContain("QEMU: ", r.Stderr);                     // refused before any QEMU was looked for
    }

    // kvm and nested refuse --gdb with "not available here" and say why, before anything runs.
    [Theory]
    [InlineData("--mode kvm", "KVM's guest debugging has never run under this script")]
    [InlineData("--mode nested", "the nested Linux, which has no network")]
    public void GdbOutsideTcgIsRefusedClearly(string mode, string reason)
    {
        var r = Repo.QemuRun(mode + " --gdb --test").AssertEnded(69, "--gdb is offered in tcg mode only", reason);
        Assert.DoesNotContain("QEMU: ", r.Stderr);
    }

    // A port some socket here already uses: refused, and nothing is started.
    [Fact]
    public void GdbPortInUseIsRefusedClearly()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        int port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var r = Repo.QemuRun($"--mode tcg --gdb={port} --test").AssertEnded(69, $"--gdb={port}: a TCP socket here already uses port {port}");
        Assert.DoesNotContain("attach", r.Stderr);
    }

    // --gdb drops the default timeout for a human, but an explicit --timeout still
    // ends a run that no gdb ever attached to (QEMU waits halted, -S).
    [Fact]
    public void GdbKeepsAnExplicitTimeout() =>
        Repo.QemuRun("--mode tcg --gdb --timeout 2 --test").AssertEnded(3, "qemu-run.sh: gdb: --timeout 2 holds: the run ends after 2s", "timeout: the guest did not finish within 2s");

    // --help prints the usage block of the script's header, all of it and only it.
    [Fact]
    public void HelpPrintsTheUsageBlock()
    {
        var r = Repo.Run(Path.Combine(Repo.Root, "qemu-run.sh"), "--help", TimeSpan.FromSeconds(30)).AssertEnded(64);
        var lines = r.Stderr.TrimEnd('\n').Split('\n');
        Assert.Equal("qemu-run.sh: boot the kernel under QEMU and report what the guest reported.", lines[0]);
        Assert.StartsWith("Usage: ./qemu-run.sh ", lines[2]);
        Assert.Contains("[--gdb[=PORT]]", r.Stderr);
        Assert.EndsWith("[-- extra qemu args]", lines[^1].Trim());
    }

    [Fact]
    public void BadQemuVariableIsRefusedClearly()
    {
        Repo.EnsureKernelBuilt();
        Repo.Run(Path.Combine(Repo.Root, "qemu-run.sh"), "--mode tcg --test=format", TimeSpan.FromMinutes(1),
                new Dictionary<string, string> { ["QEMU_RUN_QEMU"] = "qemu9" })
            .AssertEnded(64, "--qemu (or QEMU_RUN_QEMU) must be pinned or system, not 'qemu9'");
    }

    // The option picks the QEMU and outranks the variable; the stderr line says which ran.
    [Fact]
    public void QemuOptionAndVariablePickTheQemu()
    {
        Repo.EnsureKernelBuilt();
        var system = new GuestRun(Repo.Run(Path.Combine(Repo.Root, "qemu-run.sh"), "--mode tcg --test=format.hex",
            TimeSpan.FromMinutes(1), new Dictionary<string, string> { ["QEMU_RUN_QEMU"] = "system" }));
        Assert.True(system.Process.ExitCode == 0, system.Process.Output);
        system.AssertSystemQemu();
        var pinned = new GuestRun(Repo.Run(Path.Combine(Repo.Root, "qemu-run.sh"), "--mode tcg --test=format.hex --qemu pinned",
            TimeSpan.FromMinutes(1), new Dictionary<string, string> { ["QEMU_RUN_QEMU"] = "system" }));
        Assert.True(pinned.Process.ExitCode == 0, pinned.Process.Output);
        pinned.AssertPinnedQemu();
    }

    // The pinned QEMU loads only its own modules: -device help loads every one
    // (a module missing from its tree would come from the host's 7.2 and abort
    // it, "Only modules from the same build can be loaded"), and lists the
    // devices QEMU 10 has that 7.2 lacks, hv-balloon among them.
    [Fact]
    public void PinnedQemuLoadsOnlyItsOwnModules()
    {
        var r = Repo.Run(PinnedQemu.Binary, PinnedQemu.DataArguments + " -device help", TimeSpan.FromMinutes(1), PinnedQemu.Environment).AssertEnded(0);
        Assert.DoesNotContain("Only modules from the same build", r.Output);
        Assert.Contains("name \"hv-balloon\", bus vmbus", r.Stdout);
        Assert.Contains("name \"vmbus-bridge\"", r.Stdout);
    }

    [Fact]
    public void BenchModeReportsAnOrderedBootTimeline()
    {
        // No timing is judged here (that is make bench's job): only that the
        // milestones exist and come in boot order.
        var r = Repo.QemuRun("--mode tcg --append bench").AssertEnded(0);
        var m = System.Text.RegularExpressions.Regex.Match(r.Stdout,
            @"bench-timeline: entry=(\d+) long_mode=(\d+) runtime_started=(\d+) hv_ready=(\d+) all_vps_ready=(\d+) test_ready=(\d+)");
        Assert.True(m.Success, r.Stdout);
        var t = Enumerable.Range(1, 6).Select(i => ulong.Parse(m.Groups[i].Value)).ToArray();
        Assert.True(t[0] > 0 && t.Zip(t.Skip(1)).All(p => p.First < p.Second), "milestones out of order: " + string.Join(" ", t));
        Assert.Contains("bench: hypercalls skipped: no Hyper-V interface", r.Stdout);
    }

    [Fact]
    public void KvmModeSaysClearlyWhenThisHostCannot()
    {
        // This project's CI hosts have no KVM Hyper-V emulation; elsewhere the run simply passes.
        var r = Repo.QemuRun("--mode kvm --test=hv.cpuid");
        Assert.True(r.ExitCode == 0 || (r.ExitCode == 69 && r.Stderr.Contains("does not run Hyper-V-enlightened guests")), r.Output);
    }

    // --hv-balloon needs what the device needs, and says which is missing.
    [Theory]
    [InlineData("--mode tcg --hv-balloon", "--hv-balloon needs KVM (mode kvm or nested)")]
    [InlineData("--mode nested --hv hv-vpindex --hv-balloon", "--hv-balloon needs hv-synic among the --hv flags")]
    [InlineData("--mode nested --qemu system --hv-balloon", "--hv-balloon: this QEMU (system 7.2")]
    public void HvBalloonNeedsKvmTheSynicAndAQemuThatHasIt(string args, string message) =>
        Repo.QemuRun(args + " --test").AssertEnded(69, message);

    // --qmp: the guest QEMU's monitor on a unix socket (a TCG boot held with -S:
    // the monitor answers, reads the machine's state, and ends the run).
    [Fact]
    public async Task QmpSocketReachesTheMonitor()
    {
        Repo.EnsureKernelBuilt();
        string socket = Path.Combine(Path.GetTempPath(), $"qemu-run-qmp-test-{Environment.ProcessId}.sock");
        File.Delete(socket);
        var run = Task.Run(() => Repo.QemuRun($"--mode tcg --qmp {socket} --timeout 60 -- -S"));
        using (var qmp = QmpClient.Connect(socket, TimeSpan.FromSeconds(30)))
        {
            Assert.Equal("prelaunch", qmp.Execute("query-status")!["status"]!.GetValue<string>());
            qmp.Execute("quit");
        }
        (await run).AssertEnded(2, "without reporting a result");
    }

    [Fact]
    public void TraceNeedsKvm() =>
        Repo.QemuRun("--mode tcg --trace /tmp/never.trace --test").AssertEnded(69, "--trace needs KVM");

    // The opposite: only TCG can log every instruction, and a nested run is refused before it starts.
    [Fact]
    public void ExecTraceNeedsTcg()
    {
        var r = Repo.QemuRun("--mode nested --exec-trace /tmp/never.trace --test").AssertEnded(69, "--exec-trace needs --mode tcg");
        Assert.False(File.Exists("/tmp/never.trace"), "a trace file was written");
    }
}
