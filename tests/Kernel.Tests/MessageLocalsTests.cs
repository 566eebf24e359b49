using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Xunit;

namespace Kernel.Tests;

// The kernel's stack frames are not zeroed (kernel/runtime/SkipLocalsInit.cs),
// and C# lets code take a local's address before every field of it is
// assigned: a message or hypercall input declared on the stack without an
// initializer could then go to the hypervisor or the host with stack bytes in
// its reserved fields (TLFS 3.7 wants them zero). So a local of a layout the
// kernel sends, declared without `= default`, must be written in full by the
// code itself before its address goes anywhere: either handed first to a
// builder that writes every byte, or every field assigned by name, in a layout
// whose fields cover every byte.
public class MessageLocalsTests
{
    // What the kernel sends to the hypervisor or the host.
    private static readonly string[] LayoutFiles = { "kernel/hv/HvDef.cs", "drivers/vmbus/VmbusProtocol.cs", "drivers/dynmem/DynamicMemoryProtocol.cs" };

    // Builders that write every byte of the message they are handed
    // (VmbusProtocolTests.GpadlBuildersWriteEveryByte shows it).
    private static readonly string[] WholeMessageBuilders = { "VmbusGpadlMessages.BuildHeader", "VmbusGpadlMessages.BuildBody" };

    private static readonly Dictionary<string, Type> Layouts = FindLayouts();

    private static Dictionary<string, Type> FindLayouts()
    {
        var assembly = typeof(Kernel.Hv.HvMessage).Assembly;
        var layouts = new Dictionary<string, Type>();
        foreach (var file in LayoutFiles)
        {
            string text = string.Join("\n", File.ReadAllLines(Path.Combine(Repo.Root, file)).Select(Code));
            string ns = Regex.Match(text, @"^namespace\s+([\w.]+)", RegexOptions.Multiline).Groups[1].Value;
            foreach (Match m in Regex.Matches(text, @"\bstruct\s+(\w+)"))
                layouts[m.Groups[1].Value] = assembly.GetType(ns + "." + m.Groups[1].Value)
                    ?? throw new InvalidOperationException($"{file}: struct {m.Groups[1].Value} is not {ns}.{m.Groups[1].Value} in the test assembly");
        }
        return layouts;
    }

    // True when setting every field of the layout by name sets every byte of it:
    // no gap, no reserved byte without a field, no fixed buffer (C# does not
    // count its elements as assigned).
    private static bool FieldsCoverEveryByte(Type layout)
    {
        var bytesOf = typeof(MessageLocalsTests).GetMethod(nameof(BytesOf), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(layout);
        var bytes = (byte[])bytesOf.Invoke(null, new[] { LayoutAssert.AllOnes(layout) })!;
        return Array.IndexOf(bytes, (byte)0) < 0;
    }

    private static byte[] BytesOf<T>(object boxed) where T : unmanaged
    {
        T value = (T)boxed;
        return MemoryMarshal.AsBytes(new ReadOnlySpan<T>(ref value)).ToArray();
    }

    private static string Code(string line) => Regex.Replace(Regex.Replace(line, @"//.*", ""), "\"(\\\\.|[^\"\\\\])*\"", "\"\"");

    public static TheoryData<string> KernelFiles() => LayeringTests.KernelFiles();

    [Theory]
    [MemberData(nameof(KernelFiles))]
    public void SentLayoutsOnTheStackAreWrittenInFull(string file)
    {
        var lines = File.ReadAllLines(Path.Combine(Repo.Root, file)).Select(Code).ToArray();
        var wrong = new List<string>();
        for (int i = 0; i < lines.Length; i++)
        {
            var declaration = Regex.Match(lines[i], @"^\s*(\w+)\s+(\w+)\s*;\s*$");
            if (!declaration.Success || !Layouts.TryGetValue(declaration.Groups[1].Value, out var layout)) continue;
            string name = declaration.Groups[2].Value;
            var uses = new List<string>();          // the declaring block's lines after the declaration
            for (int j = i + 1, depth = 0; j < lines.Length && depth >= 0; j++)
            {
                uses.Add(lines[j]);
                depth += lines[j].Count(c => c == '{') - lines[j].Count(c => c == '}');
            }
            var address = new Regex(@"(?<!&)&\s*" + name + @"\b");
            int firstUse = uses.FindIndex(l => Regex.IsMatch(l, @"\b" + name + @"\b"));
            int firstAddress = uses.FindIndex(address.IsMatch);
            bool covered = FieldsCoverEveryByte(layout);
            if (firstUse >= 0 && WholeMessageBuilders.Any(b => Regex.IsMatch(uses[firstUse], Regex.Escape(b) + @"\(\s*&\s*" + name + @"\b"))) continue;
            if (firstAddress < 0 && covered) continue;      // C# has every field, so every byte, assigned before any use
            var assigned = uses.Take(firstAddress < 0 ? uses.Count : firstAddress)
                               .SelectMany(l => Regex.Matches(l, @"\b" + name + @"\.(\w+)\s*=(?!=)").Select(m => m.Groups[1].Value)).ToHashSet();
            var fields = layout.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance).Select(f => f.Name).ToArray();
            var missing = fields.Where(f => !assigned.Contains(f)).ToArray();
            if (covered && missing.Length == 0) continue;
            wrong.Add($"{file}:{i + 1}: {layout.Name} {name}; " + (!covered
                ? "has bytes no field covers (reserved, padding or a fixed buffer)"
                : $"leaves {string.Join(", ", missing)} unassigned before its address is taken")
                + ": declare it `= default` (or hand it first to a builder that writes every byte)");
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }
}
