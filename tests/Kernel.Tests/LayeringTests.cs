using System.Text.RegularExpressions;
using Xunit;

namespace Kernel.Tests;

// The layers of the kernel (README, "Where things are"), lowest first:
//   boot/ -> kernel/runtime -> kernel/arch -> kernel/hv -> drivers/ -> tests/guest
// Each C# file names only its own layer and those below it; the test tree is
// reached from the kernel through one call (KernelMain.EnterTestMode), which the
// minimal image compiles away. The few places where a lower layer still reaches
// up are listed below, each with why, so that the list can only shrink: a new
// upward reference fails here.
public class LayeringTests
{
    private sealed record Layer(string Directory, int Rank, string Namespace);

    private static readonly Layer[] Layers =
    {
        new("kernel/runtime", 0, "Kernel.Runtime"),
        new("kernel/arch", 1, "Kernel.Arch"),
        new("kernel/hv", 2, "Kernel.Hv"),
        new("drivers", 3, "Drivers"),
        new("tests/guest", 4, "Kernel.TestMode"),
    };

    // kernel/Kernel.cs (namespace Kernel) puts the layers together: it may name
    // every layer but the test tree, and only the boot paths call it.
    private const string Root = "kernel/Kernel.cs";

    // file -> the higher layer it names, and why.
    private static readonly Dictionary<(string File, string Namespace), string> Known = new()
    {
        [("kernel/runtime/Heap.cs", "Kernel.Arch")] = "every VP allocates, so the heap takes the arch spin lock (interrupts off while held)",
        [("kernel/runtime/Panic.cs", "Kernel.Arch")] = "a failed runtime check is reported on the console and ends the guest (GuestExit)",
        [("kernel/arch/Smp.cs", "Kernel.Hv")] = "an AP comes up through its VP record and enables its SynIC before it reports online",
        [("kernel/arch/Clock.cs", "Kernel.Hv")] = "the clock reads the partition reference counter when the hypervisor offers it",
        [("kernel/arch/Apic.cs", "Kernel.Hv")] = "EOI through HV_X64_MSR_EOI when the hypervisor grants it (TLFS 10.3.5)",
    };

    private static IEnumerable<string> SourceFiles(string dir) =>
        Directory.EnumerateFiles(Path.Combine(Repo.Root, dir), "*.cs", SearchOption.AllDirectories)
                 .Select(f => Path.GetRelativePath(Repo.Root, f).Replace('\\', '/'));

    private static Layer? LayerOf(string file) =>
        Layers.FirstOrDefault(l => file.StartsWith(l.Directory + "/", StringComparison.Ordinal));

    // The namespaces a file names: its using directives and qualified names
    // (Drivers.VmBus.X, Kernel.Hv.X), comments stripped; inside namespace
    // Kernel.*, also the names relative to Kernel (Hv.Vp is Kernel.Hv.Vp there).
    private static HashSet<string> NamespacesNamed(string file)
    {
        string text = File.ReadAllText(Path.Combine(Repo.Root, file));
        text = Regex.Replace(text, @"//[^\n]*", "");
        bool insideKernel = Regex.IsMatch(text, @"^\s*namespace\s+Kernel(\.|\s|$)", RegexOptions.Multiline);
        var named = new HashSet<string>();
        foreach (var layer in Layers)
        {
            var names = new List<string> { layer.Namespace };
            if (insideKernel && layer.Namespace.StartsWith("Kernel.")) names.Add(layer.Namespace["Kernel.".Length..]);
            if (names.Any(n => Regex.IsMatch(text, @"(?<![\w.])" + Regex.Escape(n) + @"(\.|;|\s)")))
                named.Add(layer.Namespace);
        }
        return named;
    }

    public static TheoryData<string> KernelFiles()
    {
        var data = new TheoryData<string>();
        foreach (var dir in new[] { "kernel", "drivers", "tests/guest" })
            foreach (var f in SourceFiles(dir)) data.Add(f);
        return data;
    }

    [Theory]
    [MemberData(nameof(KernelFiles))]
    public void NamesOnlyItsLayerAndThoseBelow(string file)
    {
        var layer = LayerOf(file);
        int rank = file == Root ? 3 : layer?.Rank ?? throw new Xunit.Sdk.XunitException($"{file} is in no layer: put it under one of {string.Join(", ", Layers.Select(l => l.Directory))}");
        foreach (var ns in NamespacesNamed(file))
        {
            var named = Layers.Single(l => l.Namespace == ns);
            if (named.Rank <= rank || Known.ContainsKey((file, ns))) continue;
            Assert.Fail($"{file} (layer {layer?.Directory ?? "root"}) names {ns}, a higher layer ({named.Directory})");
        }
    }

    // A listed exception that no longer exists comes off the list.
    [Fact]
    public void EveryKnownUpwardReferenceStillExists()
    {
        foreach (var ((file, ns), why) in Known)
            Assert.True(NamespacesNamed(file).Contains(ns), $"{file} no longer names {ns}: remove it from LayeringTests.Known ({why})");
    }

    // The test tree is entered through one call: no file outside it names its
    // namespace, and the kernel's side is one partial method.
    [Fact]
    public void OnlyTheTestTreeNamesTheTestNamespace()
    {
        var outside = SourceFiles("kernel").Concat(SourceFiles("drivers"))
            .Where(f => NamespacesNamed(f).Contains("Kernel.TestMode")).ToList();
        Assert.True(outside.Count == 0, "outside tests/guest, these name Kernel.TestMode: " + string.Join(", ", outside));
        string root = File.ReadAllText(Path.Combine(Repo.Root, Root));
        Assert.Matches(@"static partial void EnterTestMode\(\);", root);
    }

    // The minimal image is built without tests/guest (kernel.csproj), so none of
    // the test tree's code is in it.
    [Fact]
    public void TheMinimalImageHasNoTestCode()
    {
        Repo.EnsureKernelBuilt();
        var minimal = ElfSymbols.Load(Repo.MinimalKernelElf).CodeSymbols().Select(s => s.Name).ToHashSet();
        var test = ElfSymbols.Load(Repo.KernelElf).CodeSymbols().Select(s => s.Name).ToHashSet();
        Assert.Contains("kernel_Kernel_TestMode_TestRunner__RunSelected", test);
        Assert.Contains("kernel_Kernel_Hv_Hypercall__SignalEventDirect", minimal);
        var testCode = minimal.Where(name => name.StartsWith("kernel_Kernel_TestMode_", StringComparison.Ordinal)).ToList();
        Assert.True(testCode.Count == 0, "the minimal image holds test code: " + string.Join(", ", testCode.Take(10)));
    }

    // boot/bench.asm (the bench's floors, its probes and their data) is linked
    // into the test image only (the Makefile's TEST_ASM): none of its symbols,
    // all named bench_, is in the minimal ELF or the minimal UEFI application's
    // link map.
    [Fact]
    public void TheMinimalImageHasNoBenchAssembly()
    {
        Repo.EnsureKernelBuilt();
        Assert.Contains("bench_sint_bare", ElfSymbols.Load(Repo.KernelElf).SymbolNames());
        var elf = ElfSymbols.Load(Repo.MinimalKernelElf).SymbolNames().Where(n => n.StartsWith("bench_", StringComparison.Ordinal)).ToList();
        Assert.True(elf.Count == 0, "build/kernel.elf holds bench assembly: " + string.Join(", ", elf.Take(10)));

        UefiImage.EnsureBuilt();
        Assert.Contains(" bench_sint_bare", File.ReadAllText(UefiImage.Map));
        string minimalMap = Path.Combine(Repo.Root, "build", "BOOTX64-minimal.map");
        var efi = File.ReadLines(minimalMap).Where(l => l.Contains(" bench_", StringComparison.Ordinal)).ToList();
        Assert.True(efi.Count == 0, "build/BOOTX64-minimal.EFI holds bench assembly:\n" + string.Join("\n", efi.Take(10)));
    }
}
