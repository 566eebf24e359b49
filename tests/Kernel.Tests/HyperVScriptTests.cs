using System.Diagnostics;
using System.IO.Pipes;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit;

namespace Kernel.Tests;

// tools/hyperv/New-Gen2TestVm.ps1 boots build/gen2.vhdx as a Hyper-V Generation 2
// VM and reads the guest's COM1 through a named pipe. No Hyper-V here, so these
// tests run it under PowerShell 7 (the .NET tool pinned in .config/dotnet-tools.json)
// with stand-ins: functions named like the Hyper-V cmdlets, declaring the real
// cmdlets' parameter names, that record each call as a JSON line; and a COM1 pipe
// server that replays what a real guest wrote on its serial port (the same UEFI
// image under OVMF and TCG, qemu-run.sh --uefi). What only a real Hyper-V host
// shows (that the VM boots, that Hyper-V's pipe behaves like the stand-in) is not
// checked here.
public class HyperVScriptTests
{
    private static string Script => Path.Combine(Repo.Root, "tools", "hyperv", "New-Gen2TestVm.ps1");
    private const string VmName = "cs-gen2-standin";

    // ---- PowerShell's own parser ------------------------------------------------

    [Fact]
    public void ScriptParsesWithoutErrors()
    {
        Assert.True(File.Exists(Script), "missing " + Script);
        var (tokens, errors) = Parse(Script);
        Assert.True(errors.Count == 0, $"PowerShell's parser found {errors.Count} error(s) in {Script}:\n" + string.Join("\n", errors));
        Assert.True(tokens > 50, $"expected the parser to read the whole script, got {tokens} tokens");
    }

    // The check above can fail: the same parser call reports a broken script.
    [Fact]
    public void ParserCheckReportsABrokenScript()
    {
        using var dir = new TempDir("hv-parse");
        var broken = Path.Combine(dir.Path, "broken.ps1");
        File.WriteAllText(broken, "param([string] $Vhdx)\nif ($Vhdx) { Write-Host 'unclosed'\n");
        var (_, errors) = Parse(broken);
        Assert.True(errors.Count > 0, "expected a parse error for an unclosed '{', got none");
        Assert.Contains(errors, e => e.Contains("Missing closing '}'"));
    }

    // ---- runs against the stand-ins ---------------------------------------------

    [Fact]
    public void PassingGuestExitsZeroAfterAGeneration2Boot()
    {
        using var run = StandinRun.Start(Transcripts.Passing.Value, closeAfterTranscript: true);
        var r = RunToVerdict(run, "-ProcessorCount 3 -TimeoutSeconds 120", 0, "passed");
        AssertEchoedTap(run.Transcript!, r);
        Assert.True(run.Connected, "the script never connected to the COM1 pipe server\n" + r.Output);

        var calls = run.Calls();
        AssertGeneration2Boot(calls, run, processors: 3);
        // No VM of that name existed: nothing is stopped or removed before New-VM.
        int created = calls.FindIndex(c => c.Cmdlet == "New-VM");
        Assert.True(calls.Take(created).All(c => c.Cmdlet == "Get-VM"),
            "expected only Get-VM before New-VM, got: " + string.Join(", ", calls.Take(created).Select(c => c.Cmdlet)));
    }

    [Fact]
    public void FailingGuestExitsOne()
    {
        using var run = StandinRun.Start(Transcripts.Failing.Value, closeAfterTranscript: true);
        var r = RunToVerdict(run, "-TimeoutSeconds 120", 1, "failed");
        Assert.Contains("not ok 1 - testmode.injected_failure", r.Stdout);
        AssertCleanedUp(run.Calls(), run);
    }

    // A guest that stays silent with COM1 open (hung before its result): the
    // script must give up at -TimeoutSeconds with status 3, and still clean up.
    [Fact]
    public void SilentGuestTimesOutWithStatusThree()
    {
        using var run = StandinRun.Start(transcript: null, closeAfterTranscript: false);
        const int timeout = 3;
        var clock = Stopwatch.StartNew();
        Repo.Result r;
        try { r = run.RunScript($"-TimeoutSeconds {timeout}", TimeSpan.FromSeconds(60)); }
        catch (TimeoutException) { throw new Xunit.Sdk.XunitException($"expected exit 3 soon after -TimeoutSeconds {timeout}, got no exit within 60 s: the deadline does not hold while the guest is silent"); }
        clock.Stop();
        r.AssertEnded(3);
        Assert.True(run.Connected, "the script never connected to the COM1 pipe server\n" + r.Output);
        Assert.True(r.Stderr.Contains($"no result line from the guest within {timeout} s"),
            $"expected the timeout error on stderr, got:\n{r.Output}");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(timeout), $"expected the script to wait at least {timeout} s, it returned after {clock.Elapsed.TotalSeconds:F1} s");
        AssertCleanedUp(run.Calls(), run);
    }

    // A guest that crashes powers off (EfiBoot.PowerOff) and Hyper-V closes the
    // pipe: the script stops reading at once, with no result, status 2 (as qemu-run.sh's crash).
    [Fact]
    public void CrashedGuestThatPowersOffEndsTheReadWithStatusTwo()
    {
        var transcript = Transcripts.Crashed.Value;
        using var run = StandinRun.Start(transcript, closeAfterTranscript: true);
        Repo.Result r;
        try { r = run.RunScript("-TimeoutSeconds 600", TimeSpan.FromSeconds(90)); }
        catch (TimeoutException) { throw new Xunit.Sdk.XunitException("expected the script to stop when the guest closed COM1, got no exit within 90 s (its -TimeoutSeconds was 600)"); }
        r.AssertEnded(2);
        Assert.Contains("FATAL EXCEPTION #UD invalid opcode", r.Stdout);
        Assert.True(r.Stderr.Contains("the guest powered off without a result line"), $"expected the powered-off error on stderr, got:\n{r.Output}");
        AssertCleanedUp(run.Calls(), run);
    }

    // COM1's pipe never appears (no server): the script gives up after
    // -ConnectTimeoutSeconds with status 70, and the VM and the disk copy are gone.
    [Fact]
    public void UnreachableComPortEndsWithStatusSeventyAndCleansUp()
    {
        using var run = StandinRun.Start(transcript: null, closeAfterTranscript: false, comPipe: false);
        Repo.Result r;
        try { r = run.RunScript("-TimeoutSeconds 600 -ConnectTimeoutSeconds 2", TimeSpan.FromSeconds(60)); }
        catch (TimeoutException) { throw new Xunit.Sdk.XunitException("expected exit 70 soon after -ConnectTimeoutSeconds 2, got no exit within 60 s"); }
        r.AssertEnded(70);
        Assert.True(r.Stderr.Contains($"COM1 of VM {VmName} (\\\\.\\pipe\\{VmName}-com1) could not be opened within 2 s"),
            $"expected the COM1 error on stderr, got:\n{r.Output}");
        AssertCleanedUp(run.Calls(), run);
    }

    // A VM left over from an earlier run (same name) is turned off and removed first.
    [Fact]
    public void LeftoverVmIsRemovedBeforeTheNewOne()
    {
        using var run = StandinRun.Start(Transcripts.Passing.Value, closeAfterTranscript: true, existingVm: true);
        var r = run.RunScript("-TimeoutSeconds 120", TimeSpan.FromMinutes(2));
        r.AssertEnded(0);
        var calls = run.Calls();
        var before = calls.TakeWhile(c => c.Cmdlet != "New-VM").Select(c => c.Cmdlet).ToArray();
        Assert.True(before.SequenceEqual(new[] { "Get-VM", "Stop-VM", "Remove-VM" }),
            "expected Get-VM, Stop-VM, Remove-VM before New-VM, got: " + string.Join(", ", before));
        var stop = calls.First(c => c.Cmdlet == "Stop-VM");
        Assert.True(stop.Switch("TurnOff") && stop.Switch("Force"), "expected Stop-VM -TurnOff -Force, got " + stop.Json);
        Assert.Equal(VmName, stop.String("Name"));
    }

    // ---- assertions ---------------------------------------------------------------

    // The script run while the guest writes its whole transcript: its status, and
    // its verdict, "guest tests passed|failed: <the guest's own summary line>".
    private static Repo.Result RunToVerdict(StandinRun run, string arguments, int status, string verdict)
    {
        var r = run.RunScript(arguments, TimeSpan.FromMinutes(2)).AssertEnded(status);
        var expected = $"guest tests {verdict}: {SummaryOf(run.Transcript!)}";
        Assert.True(r.Stdout.Contains(expected), $"expected '{expected}' in the output, got:\n{r.Output}");
        return r;
    }

    private static void AssertGeneration2Boot(List<Call> calls, StandinRun run, int processors)
    {
        string Order() => string.Join(", ", calls.Select(c => c.Cmdlet));
        Call One(string cmdlet)
        {
            var found = calls.Where(c => c.Cmdlet == cmdlet).ToList();
            Assert.True(found.Count == 1, $"expected one {cmdlet} call, got {found.Count}: {Order()}");
            return found[0];
        }

        var newVm = One("New-VM");
        Assert.True(newVm.String("Name") == VmName, $"New-VM: expected -Name {VmName}, got {newVm.Json}");
        Assert.True(newVm.Long("Generation") == 2, "New-VM: expected -Generation 2, got " + newVm.Json);
        Assert.True(newVm.Long("MemoryStartupBytes") >= 256L << 20, "New-VM: expected at least 256 MiB (what qemu-run.sh gives the guest), got " + newVm.Json);
        // The disk attached is a private copy of -Vhdx, not -Vhdx itself.
        var disk = newVm.String("VHDPath");
        Assert.True(disk != null && Path.GetFullPath(disk) != Path.GetFullPath(run.Vhdx), $"New-VM: expected -VHDPath to be a copy of {run.Vhdx}, got {newVm.Json}");
        Assert.True(newVm.Extra("vhdSha256") == run.VhdxSha256, $"New-VM: expected the attached disk to hold {run.Vhdx}'s bytes (SHA-256 {run.VhdxSha256}), got {newVm.Json}");

        var cpu = One("Set-VMProcessor");
        Assert.True(cpu.String("VMName") == VmName && cpu.Long("Count") == processors, $"expected Set-VMProcessor -VMName {VmName} -Count {processors}, got {cpu.Json}");
        var firmware = One("Set-VMFirmware");
        Assert.True(firmware.String("VMName") == VmName && firmware.String("EnableSecureBoot") == "Off", $"expected Set-VMFirmware -VMName {VmName} -EnableSecureBoot Off, got {firmware.Json}");
        var com = One("Set-VMComPort");
        var pipe = $@"\\.\pipe\{VmName}-com1";
        Assert.True(com.String("VMName") == VmName && com.Long("Number") == 1 && com.String("Path") == pipe,
            $@"expected Set-VMComPort -VMName {VmName} -Number 1 -Path {pipe}, got {com.Json}");
        var start = One("Start-VM");
        Assert.True(start.String("Name") == VmName, "Start-VM: expected -Name " + VmName + ", got " + start.Json);

        // Configured after New-VM and before Start-VM.
        int Index(string cmdlet) => calls.IndexOf(calls.First(c => c.Cmdlet == cmdlet));
        foreach (var set in new[] { "Set-VMProcessor", "Set-VMFirmware", "Set-VMComPort" })
            Assert.True(Index("New-VM") < Index(set) && Index(set) < Index("Start-VM"), $"expected New-VM, then {set}, then Start-VM, got: {Order()}");
        AssertCleanedUp(calls, run);
    }

    // After Start-VM: the VM turned off and removed, the disk copy deleted, -Vhdx kept.
    private static void AssertCleanedUp(List<Call> calls, StandinRun run)
    {
        var order = string.Join(", ", calls.Select(c => c.Cmdlet));
        int started = calls.FindIndex(c => c.Cmdlet == "Start-VM");
        Assert.True(started >= 0, "expected Start-VM, got: " + order);
        var after = calls.Skip(started + 1).ToList();
        var stop = after.FirstOrDefault(c => c.Cmdlet == "Stop-VM");
        Assert.True(stop != null && stop.Switch("TurnOff") && stop.String("Name") == VmName, "expected Stop-VM -TurnOff after Start-VM, got: " + order);
        Assert.True(after.Any(c => c.Cmdlet == "Remove-VM" && c.String("Name") == VmName), "expected Remove-VM after Start-VM, got: " + order);
        var disk = calls.First(c => c.Cmdlet == "New-VM").String("VHDPath")!;
        Assert.False(File.Exists(disk), $"expected the disk copy {disk} deleted after the run, it is still there");
        Assert.True(File.Exists(run.Vhdx), $"expected {run.Vhdx} kept, it is gone");
    }

    // Every TAP line the guest wrote up to its summary is shown by the script, in order.
    private static void AssertEchoedTap(byte[] transcript, Repo.Result r)
    {
        var tap = Lines(transcript).SkipWhile(l => l != "TAP version 14").ToList();
        Assert.True(tap.Count > 2, "the transcript has no TAP stream:\n" + Encoding.UTF8.GetString(transcript));
        var shown = r.Stdout.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        int at = 0;
        foreach (var line in tap)
        {
            int found = shown.FindIndex(at, l => l == line);
            Assert.True(found >= 0, $"expected the script to show the guest's line '{line}' (in order), got:\n{r.Stdout}");
            at = found + 1;
        }
    }

    private static IEnumerable<string> Lines(byte[] transcript) =>
        Encoding.UTF8.GetString(transcript).Split('\n').Select(l => l.TrimEnd('\r'));

    private static string SummaryOf(byte[] transcript)
    {
        var summary = Lines(transcript).LastOrDefault(l => Regex.IsMatch(l, @"^\d+ passed, \d+ failed, \d+ skipped$"));
        Assert.True(summary != null, "the guest transcript has no summary line:\n" + Encoding.UTF8.GetString(transcript));
        return summary!;
    }

    // ---- PowerShell ---------------------------------------------------------------

    private static Repo.Result Pwsh(string arguments, TimeSpan timeout, IDictionary<string, string>? environment = null) =>
        Repo.Run("dotnet", "tool run pwsh -- -NonInteractive " + arguments, timeout,
            new Dictionary<string, string>(environment ?? new Dictionary<string, string>()) { ["NO_COLOR"] = "1" });

    private static (int Tokens, List<string> Errors) Parse(string file)
    {
        using var dir = new TempDir("hv-parse");
        var parse = Path.Combine(dir.Path, "parse.ps1");
        File.WriteAllText(parse, """
            param([string] $Path)
            $tokens = $null; $errors = $null
            [void][System.Management.Automation.Language.Parser]::ParseFile($Path, [ref] $tokens, [ref] $errors)
            foreach ($e in $errors) { 'parse error {0}:{1}: {2}' -f $e.Extent.StartLineNumber, $e.Extent.StartColumnNumber, $e.Message }
            'tokens {0}' -f $tokens.Count
            """);
        var r = Pwsh($"-NoProfile -File \"{parse}\" -Path \"{file}\"", TimeSpan.FromMinutes(2));
        Assert.True(r.ExitCode == 0, $"pwsh could not run the parser (is the tool restored? tools/run-tests.sh runs 'dotnet tool restore'):\n{r.Output}");
        var lines = r.Stdout.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        var count = lines.Select(l => Regex.Match(l, @"^tokens (\d+)$")).FirstOrDefault(m => m.Success);
        Assert.True(count != null, "no token count from the parser:\n" + r.Output);
        return (int.Parse(count!.Groups[1].Value), lines.Where(l => l.StartsWith("parse error ")).ToList());
    }

    // The Hyper-V cmdlets the script calls, with the parameter names and types of
    // the real ones (Hyper-V module), so a misspelt parameter fails here as on
    // Windows. Each appends {cmdlet, parameters} as one JSON line to
    // $env:HYPERV_STANDIN_LOG. New-VM also records the SHA-256 of the disk it is
    // given. Get-VM finds only $env:HYPERV_STANDIN_EXISTING_VM, and otherwise
    // writes an error, as the real one does for an unknown name.
    private const string Standins = """
        function Save-StandinCall([string] $Cmdlet, [System.Collections.IDictionary] $Bound, [System.Collections.IDictionary] $Extra) {
            $parameters = [ordered]@{}
            foreach ($key in $Bound.Keys) {
                $value = $Bound[$key]
                if ($value -is [System.Management.Automation.SwitchParameter]) { $value = $value.IsPresent }
                $parameters[$key] = $value
            }
            $entry = [ordered]@{ cmdlet = $Cmdlet; parameters = $parameters }
            if ($Extra) { foreach ($key in $Extra.Keys) { $entry[$key] = $Extra[$key] } }
            Add-Content -LiteralPath $env:HYPERV_STANDIN_LOG -Value ($entry | ConvertTo-Json -Compress -Depth 4 -EnumsAsStrings)
        }
        function Get-VM {
            [CmdletBinding()] param([Parameter(Position = 0)] [string[]] $Name)
            Save-StandinCall 'Get-VM' $PSBoundParameters
            if ($env:HYPERV_STANDIN_EXISTING_VM -and $Name -contains $env:HYPERV_STANDIN_EXISTING_VM) {
                return [pscustomobject]@{ Name = $env:HYPERV_STANDIN_EXISTING_VM; State = 'Running' }
            }
            Write-Error "stand-in Get-VM: no virtual machine named '$Name'" -Category ObjectNotFound
        }
        function New-VM {
            [CmdletBinding()] param([Parameter(Position = 0)] [string] $Name, [int16] $Generation, [long] $MemoryStartupBytes, [string] $VHDPath)
            $hash = if ($VHDPath -and (Test-Path -LiteralPath $VHDPath)) { (Get-FileHash -Algorithm SHA256 -LiteralPath $VHDPath).Hash } else { $null }
            Save-StandinCall 'New-VM' $PSBoundParameters @{ vhdSha256 = $hash }
            [pscustomobject]@{ Name = $Name; Generation = $Generation; State = 'Off' }
        }
        function Set-VMProcessor {
            [CmdletBinding()] param([Parameter(Position = 0)] [string[]] $VMName, [long] $Count)
            Save-StandinCall 'Set-VMProcessor' $PSBoundParameters
        }
        function Set-VMFirmware {
            [CmdletBinding()] param([Parameter(Position = 0)] [string[]] $VMName, [ValidateSet('On', 'Off')] [string] $EnableSecureBoot)
            Save-StandinCall 'Set-VMFirmware' $PSBoundParameters
        }
        function Set-VMComPort {
            [CmdletBinding()] param([Parameter(Position = 0)] [string[]] $VMName, [Parameter(Mandatory)] [int] $Number, [Parameter(Position = 1)] [string] $Path)
            Save-StandinCall 'Set-VMComPort' $PSBoundParameters
        }
        function Set-VM {
            [CmdletBinding()] param([Parameter(Position = 0)] [string[]] $Name, [bool] $AutomaticCheckpointsEnabled)
            Save-StandinCall 'Set-VM' $PSBoundParameters
        }
        function Start-VM {
            [CmdletBinding()] param([Parameter(Position = 0)] [string[]] $Name)
            Save-StandinCall 'Start-VM' $PSBoundParameters
        }
        function Stop-VM {
            [CmdletBinding()] param([Parameter(Position = 0)] [string[]] $Name, [switch] $TurnOff, [switch] $Force)
            Save-StandinCall 'Stop-VM' $PSBoundParameters
        }
        function Remove-VM {
            [CmdletBinding()] param([Parameter(Position = 0)] [string[]] $Name, [switch] $Force)
            Save-StandinCall 'Remove-VM' $PSBoundParameters
        }
        """;

    public sealed record Call(string Cmdlet, JsonElement Parameters, JsonElement Entry, string Json)
    {
        private JsonElement? Get(string name) => Parameters.TryGetProperty(name, out var v) ? v : null;

        public string? String(string name) => Get(name) switch
        {
            { ValueKind: JsonValueKind.String } v => v.GetString(),
            { ValueKind: JsonValueKind.Array } v when v.GetArrayLength() == 1 && v[0].ValueKind == JsonValueKind.String => v[0].GetString(),
            _ => null,
        };
        public long? Long(string name) => Get(name) is { ValueKind: JsonValueKind.Number } v ? v.GetInt64() : null;
        public bool Switch(string name) => Get(name) is { ValueKind: JsonValueKind.True };
        public string? Extra(string name) => Entry.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    }

    // One run of the script: a private TMPDIR (the script's disk copy goes there,
    // and .NET on Unix maps the pipe name "<name>-com1" to the Unix socket
    // $TMPDIR/CoreFxPipe_<name>-com1, where the COM1 stand-in listens), the
    // stand-ins as the PowerShell profile (XDG_CONFIG_HOME), a copy of the input
    // disk, and the call log. The script runs as `pwsh -File`, as a user or CI
    // would run it, so its exit status is pwsh's: a terminating error gives 1.
    private sealed class StandinRun : IDisposable
    {
        private readonly TempDir _dir;
        private readonly NamedPipeServerStream? _server;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _serving;
        private readonly bool _existingVm;
        private volatile bool _connected;

        // What the guest writes on COM1 (null: nothing).
        public byte[]? Transcript { get; }
        public string Vhdx { get; }
        public string VhdxSha256 { get; }
        public bool Connected => _connected;
        private string Log => Path.Combine(_dir.Path, "calls.jsonl");
        private string Tmp => Path.Combine(_dir.Path, "tmp");

        private StandinRun(byte[]? transcript, bool closeAfterTranscript, bool existingVm, bool comPipe)
        {
            Transcript = transcript;
            _existingVm = existingVm;
            _dir = new TempDir("hv-standin");
            Directory.CreateDirectory(Tmp);
            // The disk the script copies and attaches: the real image when built, else any bytes will do for the stand-ins.
            Vhdx = Path.Combine(_dir.Path, "gen2.vhdx");
            if (File.Exists(UefiImage.Vhdx)) File.Copy(UefiImage.Vhdx, Vhdx);
            else File.WriteAllBytes(Vhdx, RandomNumberGenerator.GetBytes(1 << 16));
            VhdxSha256 = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(Vhdx)));
            // pwsh dot-sources its current user's profile into the global scope before -File.
            Directory.CreateDirectory(Path.Combine(_dir.Path, "config", "powershell"));
            File.WriteAllText(Path.Combine(_dir.Path, "config", "powershell", "Microsoft.PowerShell_profile.ps1"), Standins);

            // What Hyper-V does for COM1 on a named pipe: it is the pipe's server, and
            // writes what the guest writes on its serial port.
            // comPipe false: no server, as when the VM's COM1 is not on that pipe.
            if (comPipe)
                _server = new NamedPipeServerStream(Path.Combine(Tmp, $"CoreFxPipe_{VmName}-com1"), PipeDirection.Out, 1,
                    PipeTransmissionMode.Byte, PipeOptions.Asynchronous);
            _serving = comPipe ? Serve(transcript, closeAfterTranscript) : Task.CompletedTask;
        }

        public static StandinRun Start(byte[]? transcript, bool closeAfterTranscript, bool existingVm = false, bool comPipe = true) =>
            new(transcript, closeAfterTranscript, existingVm, comPipe);

        private async Task Serve(byte[]? transcript, bool closeAfterTranscript)
        {
            if (_server == null) return;
            try
            {
                await _server.WaitForConnectionAsync(_stop.Token);
                _connected = true;
                if (transcript != null)
                    // In pieces that cut lines, as a serial port delivers them.
                    for (int at = 0; at < transcript.Length; at += 61)
                    {
                        await _server.WriteAsync(transcript.AsMemory(at, Math.Min(61, transcript.Length - at)), _stop.Token);
                        await _server.FlushAsync(_stop.Token);
                    }
                if (closeAfterTranscript) _server.Dispose();    // the VM powered off
                else await Task.Delay(Timeout.Infinite, _stop.Token);
            }
            catch (OperationCanceledException) { }
            catch (IOException) { }                             // the script stopped reading and closed its end
            catch (ObjectDisposedException) { }
        }

        public Repo.Result RunScript(string arguments, TimeSpan timeout)
        {
            var env = new Dictionary<string, string>
            {
                ["XDG_CONFIG_HOME"] = Path.Combine(_dir.Path, "config"),
                ["TMPDIR"] = Tmp,
                ["HYPERV_STANDIN_LOG"] = Log,
                ["HYPERV_STANDIN_EXISTING_VM"] = _existingVm ? VmName : "",
            };
            return Pwsh($"-File \"{Script}\" -Vhdx \"{Vhdx}\" -Name {VmName} {arguments}", timeout, env);
        }

        public List<Call> Calls()
        {
            Assert.True(File.Exists(Log), "the stand-ins recorded no call at all (no " + Log + ")");
            return File.ReadAllLines(Log).Where(l => l.Length > 0).Select(l =>
            {
                var entry = JsonDocument.Parse(l).RootElement.Clone();
                return new Call(entry.GetProperty("cmdlet").GetString()!, entry.GetProperty("parameters"), entry, l);
            }).ToList();
        }

        public void Dispose()
        {
            _stop.Cancel();
            try { _serving.Wait(TimeSpan.FromSeconds(10)); } catch (AggregateException) { }
            _server?.Dispose();
            _dir.Dispose();
        }
    }

    private sealed class TempDir : IDisposable
    {
        public string Path { get; }
        public TempDir(string prefix) => Path = Directory.CreateTempSubdirectory(prefix).FullName;
        public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
    }

    // Real guest output: the Gen2 image (the disk the script boots) under OVMF and
    // TCG, qemu-run.sh --uefi, its serial port's bytes exactly as written. Small
    // test selections keep each boot to a few seconds.
    private static class Transcripts
    {
        public static readonly Lazy<byte[]> Passing = new(() => Capture("--mode tcg --test=format.hex", 0));
        // The kernel's own failure injection (QemuRunScriptTests, TapTests): a real failing run.
        public static readonly Lazy<byte[]> Failing = new(() => Capture("--mode tcg --test=testmode --append inject-failure", 1));
        public static readonly Lazy<byte[]> Crashed = new(() => Capture("--mode tcg --append crash=ud", 2));

        private static byte[] Capture(string arguments, int expectedStatus)
        {
            UefiImage.EnsureBuilt();
            using var dir = new TempDir("hv-transcript");
            var file = System.IO.Path.Combine(dir.Path, "com1.bin");
            var r = Repo.Run("bash", $"-c \"./qemu-run.sh --uefi {arguments} >'{file}'\"", TimeSpan.FromMinutes(3));
            var bytes = File.ReadAllBytes(file);
            Assert.True(r.ExitCode == expectedStatus,
                $"qemu-run.sh --uefi {arguments}: expected status {expectedStatus}, got {r.ExitCode}:\n{r.Output}\n{Encoding.UTF8.GetString(bytes)}");
            return bytes;
        }
    }
}
