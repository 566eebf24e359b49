using System.Text.RegularExpressions;
using Xunit;

namespace Kernel.Tests;

// The minimal image (build/kernel.elf, BOOTX64-minimal.EFI: kernel/ and drivers/,
// no tests/guest): it boots, enlightens every VP, connects VMBus, binds its
// drivers, says "ready: ..." on serial and idles; told exit-when-ready (which
// qemu-run.sh --image minimal adds unless --idle) it unloads VMBus and leaves
// with status 0.
public class MinimalImageTests
{
    private static readonly Regex Ready = new(@"^ready: (\d+) VPs(?<hv> enlightened|, no Hyper-V), VMBus (?<vmbus>connected|not connected)\r?$", RegexOptions.Multiline);

    [Fact]
    public void TcgBootSaysReadyAndLeaves()
    {
        var r = Repo.QemuRun("--mode tcg --image minimal --smp 2").AssertEnded(0);
        var m = Ready.Match(r.Stdout);
        Assert.True(m.Success, "no ready line:\n" + r.Stdout);
        Assert.Equal("2", m.Groups[1].Value);
        Assert.Equal(", no Hyper-V", m.Groups["hv"].Value);
        Assert.DoesNotContain("test mode", r.Stdout);
    }

    [Fact]
    public void UefiBootSaysReadyAndLeaves()
    {
        UefiImage.EnsureBuilt();
        var r = Repo.QemuRun("--uefi --mode tcg --image minimal").AssertEnded(0);
        Assert.Matches(Ready, r.Stdout);
    }

    // Without exit-when-ready it idles: only the timeout ends the run.
    [Fact]
    public void IdlesUntilTheTimeoutWithoutExitWhenReady()
    {
        var r = Repo.QemuRun("--mode tcg --image minimal --idle --timeout 8").AssertEnded(3);
        Assert.Matches(Ready, r.Stdout);
    }

    [Theory]
    [InlineData("--test", "--test needs the test image")]
    [InlineData("--idle", "--idle is for --image minimal")]
    public void RefusesWhatOnlyTheTestImageHas(string option, string message)
    {
        string image = option == "--idle" ? "" : "--image minimal ";
        Repo.QemuRun($"--mode tcg {image}{option}").AssertEnded(64, message);
    }

    [Fact]
    public void RefusesAnUnknownImage() =>
        Repo.QemuRun("--mode tcg --image tiny").AssertEnded(64, "--image must be test or minimal, not 'tiny'");

    // Under KVM's Hyper-V emulation with QEMU's hv-balloon: every VP enlightened,
    // VMBus connected, the Dynamic Memory driver bound and negotiated.
    [Fact]
    public void NestedBootEnlightensEveryVpAndBindsItsDriver()
    {
        var r = Repo.QemuRun("--mode nested --smp 2 --hv-balloon --image minimal", TimeSpan.FromMinutes(15)).AssertEnded(0);
        var m = Ready.Match(r.Stdout);
        Assert.True(m.Success, "no ready line:\n" + r.Stdout);
        Assert.Equal("2", m.Groups[1].Value);
        Assert.Equal(" enlightened", m.Groups["hv"].Value);
        Assert.Equal("connected", m.Groups["vmbus"].Value);
        Assert.Matches(@"(?m)^smp: VP 1 online", r.Stdout);
        Assert.Matches(@"(?m)^dm: protocol \S+ accepted", r.Stdout);
    }
}
