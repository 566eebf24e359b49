using Xunit;

namespace Kernel.Tests;

// `make run`, a newcomer's first command, shows the enlightened guest at work:
// it picks the best mode this host has and the boot log walks through the
// Hyper-V set-up in order, then the guest exits cleanly.
public class MakeRunTests
{
    private static readonly Lazy<Repo.Result> s_run = new(() => Repo.Run("make", "run", TimeSpan.FromMinutes(15)));

    [Fact]
    public void PicksAModeWithHyperV()
    {
        var r = s_run.Value;
        var mode = r.Stderr.Split('\n').FirstOrDefault(l => l.StartsWith("qemu-run.sh: mode "));
        Assert.True(mode != null, "no 'qemu-run.sh: mode' line:\n" + r.Output);
        // This machine's KVM has no Hyper-V; make test has the nested runner, so auto must not fall back to tcg.
        Assert.True(mode!.StartsWith("qemu-run.sh: mode kvm:") || mode.StartsWith("qemu-run.sh: mode nested:"), mode);
    }

    [Fact]
    public void BootLogShowsTheEnlightenmentSequenceInOrder()
    {
        var r = s_run.Value;
        Assert.True(r.ExitCode == 0, "make run failed:\n" + r.Output);
        string[] steps =
        {
            "hv: \"Hv#1\" interface from KVM",                  // detection: CPUID 0x40000000/1
            "hv: guest OS ID 0x",                               // HV_X64_MSR_GUEST_OS_ID, then the hypercall page
            "hv-hypercall-page: ",                              // the bytes the hypervisor wrote
            "hv: HvCallSignalEventDirect and HvCallPostMessageDirect: ", // the Direct call and its answer
            "hv: SynIC enabled on VP 0: ",
            "hv: SynIC enabled on VP 1: ",
            "vmbus: connected: protocol ",
            "vmbus: offers: ",
            "boot complete",
        };
        var lines = r.Stdout.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        int at = -1;
        foreach (var step in steps)
        {
            int next = lines.FindIndex(at + 1, l => l.StartsWith(step));
            Assert.True(next > at, $"expected '{step}' after line {at} of the boot log, got none:\n{r.Stdout}");
            at = next;
        }
    }
}
