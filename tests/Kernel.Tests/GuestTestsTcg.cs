namespace Kernel.Tests;

// The test mode under TCG, the default QEMU and one VP: the fixture's checks
// alone (GuestBootTests.cs). Under TCG there is no Hyper-V, so its tests skip
// naming what is missing; the nested boots (GuestTestsNested.cs) run them.
public sealed class GuestTestsTcg : GuestBootTests<GuestTestsTcg>, IGuestBoot
{
    public static GuestBoot Boot { get; } = new("--mode tcg --test");
}
