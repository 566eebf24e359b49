using System.Text.Json;
using Iced.Intel;
using Xunit;

namespace Kernel.Tests;

// The hot paths' exact instruction counts, from tools/count-instructions.py:
// the kernel's count mode (tests/guest/bench/CountMode.cs) under TCG, with QEMU
// logging every executed instruction (qemu-run.sh --exec-trace). A count does
// not depend on the machine's speed, so a path that grows fails here, every
// time, on any machine: each C# path has a budget, set from the measurement
// with about 10% headroom. The speed goals themselves (the C# against its
// bare-assembly floor) are make bench's business (bench/RESULTS.md).
public class InstructionCountTests
{
    private static readonly Lazy<JsonElement> s_pinned = new(() => Count("pinned"));
    private static readonly Lazy<JsonElement> s_system = new(() => Count("system"));

    private static JsonElement Count(string qemu)
    {
        Repo.EnsureKernelBuilt();
        string json = Path.Combine(Path.GetTempPath(), $"instruction-counts-{qemu}-{Environment.ProcessId}.json");
        var r = Repo.Run("python3", $"tools/count-instructions.py --qemu {qemu} --json {json}", TimeSpan.FromMinutes(10));
        Assert.True(r.ExitCode == 0, $"count-instructions.py --qemu {qemu} failed:\n{r.Output}");
        try { return JsonDocument.Parse(File.ReadAllText(json)).RootElement.Clone(); }
        finally { File.Delete(json); }
    }

    // Instructions to the hypercall page (or the callback) and back, at most.
    // Measured when set (to/from): signal_event_direct 33/8, post_message_direct
    // 60/0, signal_event_fast 19/0, post_message 38/0 (the last three jump to the
    // hypercall page, whose ret returns to their caller); dispatch of a flag
    // 57/195, of a message 259/37. About 10% headroom (at least one instruction),
    // except where it would let a met target slip: the flag's way to its
    // callback is held to 2 x its floor's 29, and fast SignalEvent's 21 + 1 is
    // its floor's 7 + 15.
    private static readonly Dictionary<string, (int To, int From)> s_budgets = new()
    {
        ["signal_event_direct"] = (36, 9),
        ["post_message_direct"] = (66, 1),
        ["signal_event_fast"] = (21, 1),
        ["post_message"] = (42, 1),
        ["sint_dispatch.event"] = (58, 215),
        ["sint_dispatch.message"] = (285, 41),
    };

    // Boot phases under TCG (no Hyper-V, one VP, 256 MiB), measured 10278 (most
    // of it the identity map, boot/x86.inc IDENTITY_MAP_4GIB, 5 instructions a
    // 2 MiB page), 2913, 8560573 (almost all of it the page allocator's first
    // pass over memory), 45 and 29521 instructions.
    private static readonly Dictionary<string, long> s_bootBudgets = new()
    {
        ["long_mode"] = 11_300,
        ["runtime_started"] = 3_300,
        ["hv_ready"] = 9_400_000,
        ["all_vps_ready"] = 60,
        ["test_ready"] = 33_000,
    };

    public static IEnumerable<object[]> Paths() => s_budgets.Keys.Select(k => new object[] { k });
    public static IEnumerable<object[]> Phases() => s_bootBudgets.Keys.Select(k => new object[] { k });

    private static void Log(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    private static (int To, int From) Side(JsonElement counts, string path, string side)
    {
        var s = counts.GetProperty("paths").GetProperty(path).GetProperty(side);
        return (s.GetProperty("to").GetInt32(), s.GetProperty("from").GetInt32());
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void CSharpPathStaysWithinItsBudget(string path)
    {
        var (to, from) = Side(s_pinned.Value, path, "csharp");
        var (floorTo, floorFrom) = Side(s_pinned.Value, path, "floor");
        var budget = s_budgets[path];
        Log($"{path}: C# {to} to, {from} from (budget {budget.To}, {budget.From}); floor {floorTo}, {floorFrom}");
        Assert.True(to <= budget.To, $"{path}: {to} instructions on the way there, budget {budget.To} (floor {floorTo})");
        Assert.True(from <= budget.From, $"{path}: {from} instructions on the way back, budget {budget.From} (floor {floorFrom})");
    }

    [Theory]
    [MemberData(nameof(Phases))]
    public void BootPhaseStaysWithinItsBudget(string phase)
    {
        long measured = s_pinned.Value.GetProperty("boot").GetProperty(phase).GetInt64();
        Log($"boot phase {phase}: {measured} instructions, budget {s_bootBudgets[phase]}");
        Assert.True(measured <= s_bootBudgets[phase], $"boot phase {phase}: {measured} instructions, budget {s_bootBudgets[phase]}");
    }

    // The count depends on the guest's code, not on the emulator: QEMU 10.0.2
    // (one-insn-per-tb) and 7.2 (-singlestep) count every path alike.
    [Fact]
    public void BothQemusCountTheSame()
    {
        string pinned = s_pinned.Value.GetProperty("paths").GetRawText(), system = s_system.Value.GetProperty("paths").GetRawText();
        Log($"pinned: {pinned}\nsystem: {system}");
        Assert.Equal(pinned, system);
    }

    // The method itself: each floor is straight-line code, so its count is the
    // number of instructions Iced decodes in build/kernel-test.elf from its entry to
    // its call or jump to the hypercall page ("to"), and after that call to its
    // ret ("from"; none after a jump: the page returns to the caller). A rep
    // movsb counts once however many bytes it moves.
    [Theory]
    [InlineData("signal_event_direct", "bench_floor_signal_event_direct")]
    [InlineData("post_message_direct", "bench_floor_post_message_direct")]
    [InlineData("signal_event_fast", "bench_floor_signal_event")]
    [InlineData("post_message", "bench_floor_post_message")]
    public void FloorCountIsItsDecodedLength(string path, string floor)
    {
        var elf = ElfSymbols.Load(Repo.KernelElf);
        ulong page = elf.Address("hv_hypercall_page");
        var (address, bytes) = elf.BytesFrom(floor, 256);
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(bytes), address);
        int to = 0, from = 0;
        bool past = false;
        while (true)
        {
            var instr = decoder.Decode();
            if (past) from++; else to++;
            bool intoPage = instr.Op0Kind == OpKind.NearBranch64 && instr.NearBranchTarget == page;
            if (intoPage && instr.FlowControl == FlowControl.UnconditionalBranch) break;
            if (intoPage && instr.FlowControl == FlowControl.Call) past = true;
            if (instr.FlowControl == FlowControl.Return) break;
        }
        var measured = Side(s_pinned.Value, path, "floor");
        Log($"{floor}: decoded {to} to, {from} from; counted {measured.To}, {measured.From}");
        Assert.Equal((to, from), measured);
    }
}
