namespace Kernel.Tests;

// One boot of the test image, as data: qemu-run.sh's arguments, and where the
// script runs (on this host, or as a command inside the nested Linux). It boots
// once, on first use, whichever test asks first; its fixture
// (GuestBootTests.cs) and every comparison with another run read the same
// GuestRun. A boot that throws throws again for every test that asks (Lazy
// keeps the exception): there is no second boot.
public sealed class GuestBoot
{
    // qemu-run.sh's arguments.
    public string Arguments { get; }

    // Where tools/nested/run.sh --command shares a host directory writable for
    // qemu-run.sh run inside the nested Linux; null: qemu-run.sh runs on this host.
    public string? InsideNestedLinuxSharing { get; }

    private readonly IGuestHost? _host;
    private readonly Lazy<GuestRun> _run;

    // host, when given, runs beside the guest: it sees each guest line as it comes.
    public GuestBoot(string arguments, IGuestHost? host = null) : this(arguments, host, null) { }

    private GuestBoot(string arguments, IGuestHost? host, string? share)
    {
        Arguments = arguments;
        InsideNestedLinuxSharing = share;
        _host = host;
        _run = new(Boot);
    }

    // `qemu-run.sh arguments` as the command of tools/nested/run.sh --command: a
    // host whose KVM emulates Hyper-V, as a CI runner's with /dev/kvm would.
    public static GuestBoot InsideNestedLinux(string share, string arguments) => new(arguments, null, share);

    public GuestRun Run => _run.Value;

    private string[] Words => Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    private string? Option(string name)
    {
        int at = Array.IndexOf(Words, name);
        return at >= 0 && at + 1 < Words.Length ? Words[at + 1] : null;
    }

    public string Mode => Option("--mode") ?? "auto";

    // pinned (qemu-run.sh's default) or system.
    public string Qemu => Option("--qemu") ?? "pinned";

    // The OVMF boots (--uefi, and --gen2, which implies it) boot build/gen2.img.
    public bool Uefi => Words.Contains("--uefi") || Words.Contains("--gen2");

    public string? TracePath => Option("--trace");

    // How many VPs the guest has (qemu-run.sh --smp; 1 by default).
    public int Vps => int.Parse(Option("--smp") ?? "1");

    // The guest runs under the nested runner's KVM, whose outer QEMU tools/nested/run.sh names.
    public bool UnderNestedLinux => Mode == "nested" || InsideNestedLinuxSharing != null;

    // The QEMU qemu-run.sh was told to run, by its version.
    public string QemuVersion => Qemu switch
    {
        "pinned" => PinnedQemu.Upstream,
        "system" => SystemQemu.Version,
        _ => throw new InvalidOperationException($"--qemu {Qemu}: qemu-run.sh takes pinned or system"),
    };

    public override string ToString() => InsideNestedLinuxSharing == null ? $"qemu-run.sh {Arguments}" : $"qemu-run.sh {Arguments} (inside the nested Linux)";

    // A nested boot takes 1-3 minutes (the whole test mode; about 80 s of it the
    // Dynamic Memory steps); the limits leave room for a loaded machine.
    private TimeSpan Timeout => InsideNestedLinuxSharing != null ? TimeSpan.FromMinutes(20)
        : Mode == "nested" ? TimeSpan.FromMinutes(15)
        : Uefi ? TimeSpan.FromMinutes(3) : TimeSpan.FromMinutes(6);

    private GuestRun Boot()
    {
        if (Uefi) UefiImage.EnsureBuilt(); else Repo.EnsureKernelBuilt();
        if (InsideNestedLinuxSharing is string share) Directory.CreateDirectory(share);
        // A trace an earlier run left must not stand in for this run's.
        if (TracePath != null) File.Delete(TracePath);
        if (InsideNestedLinuxSharing != null)
            return new GuestRun(Repo.Run(Path.Combine(Repo.Root, "tools", "nested", "run.sh"),
                $"--timeout 900 --share {InsideNestedLinuxSharing} --command -- ./qemu-run.sh {Arguments}", Timeout));
        _host?.BeforeBoot();
        var result = Repo.Run(Path.Combine(Repo.Root, "qemu-run.sh"), Arguments, Timeout, onStdoutLine: _host == null ? null : _host.OnGuestLine);
        _host?.AfterBoot();
        return new GuestRun(result);
    }

    // The guest test names of this boot, for [MemberData]: a boot that fails
    // becomes one failing case that carries the reason.
    public IEnumerable<object[]> TestNames()
    {
        GuestRun run;
        try { run = Run; }
        catch (Exception e) { return new[] { new object[] { "(boot failed: " + e.Message.Split('\n')[0] + ")" } }; }
        if (run.Results.Count == 0) return new[] { new object[] { "(no guest results)" } };
        return run.Results.Select(r => new object[] { r.Name });
    }
}

// Something on the host that runs beside a guest and answers it while it runs
// (DynamicMemoryHost: QEMU's monitor): told before the boot starts and after it
// ends, and shown each line of the guest's output as it arrives.
public interface IGuestHost
{
    void BeforeBoot();
    void OnGuestLine(string line);
    void AfterBoot();
}

// A test class that checks one boot (GuestBootTests<TBoot>): its boot, as data.
public interface IGuestBoot
{
    static abstract GuestBoot Boot { get; }
}
