using System;
using System.Runtime.CompilerServices;
using Kernel.Runtime;
using Kernel.Arch;

namespace Kernel.TestMode
{
    // One guest test: a name, a body that checks real values with Expect, and
    // its suite's source file (where its failed checks' lines are).
    public unsafe struct TestCase
    {
        public Text Name;
        public delegate*<void> Body;
        public Text File;

        public TestCase(Text name, delegate*<void> body, Text file) { Name = name; Body = body; File = file; }
    }

    // Runs the guest tests selected on the command line (`test` or `test=PREFIX`)
    // and reports them as TAP version 14 (testanything.org), then a summary:
    //   TAP version 14
    //   1..N
    //   ok 1 - name
    //   not ok 2 - name
    //     ---
    //     message: 'expected X, got Y'
    //     at: 'tests/guest/File.cs:LINE'
    //     ...
    // (`at` names the failed check's line; the host test quotes it.)
    //   ok 3 - name # SKIP reason
    //   N passed, N failed, N skipped
    // The stream starts at the "TAP version 14" line; the boot log before it and
    // the tests' own log lines within it are not TAP, which TAP consumers ignore.
    public static unsafe class TestRunner
    {
        private static int s_number, s_passed, s_failed, s_skipped;

        // Every test of the run, in the order they run: each suite's Register
        // adds its own (TestRunner.Add, one call a test). Past Capacity the
        // array's bounds check stops the kernel.
        private const int Capacity = 256;
        private static TestCase[] s_tests;
        private static int s_count;
        private static TestCase s_closing;          // the test that ends every run (AddClosing)
        private static Text s_suiteFile;            // the file of the suite being registered

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Add(Text name, delegate*<void> body)
        {
            s_tests[s_count++] = new TestCase(name, body, s_suiteFile);
        }

        // The last test of every run, whatever the test= filter.
        public static void AddClosing(Text name, delegate*<void> body) => s_closing = new TestCase(name, body, s_suiteFile);

        // A suite: its source file, then its Register, which adds its tests.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void Suite(Text file, delegate*<void> register)
        {
            s_suiteFile = file;
            register();
        }

        // The suites in the order they run, each with its file: a failed check's
        // line is in its suite's file (tests/Kernel.Tests/GuestCheckLocationTests.cs
        // checks that each file below declares the suite beside it).
        private static void RegisterAll()
        {
            s_tests = new TestCase[Capacity];
            Suite("tests/guest/FoundationTests.cs"u8, &FoundationTests.Register);
            Suite("tests/guest/DetectionTests.cs"u8, &DetectionTests.Register);
            Suite("tests/guest/SynicTests.cs"u8, &SynicTests.Register);
            Suite("tests/guest/ConnectionTests.cs"u8, &ConnectionTests.Register);
            Suite("tests/guest/DirectTests.cs"u8, &DirectTests.Register);
            Suite("tests/guest/TimeTests.cs"u8, &TimeTests.Register);
            Suite("tests/guest/SmpTests.cs"u8, &SmpTests.Register);
            // The Dynamic Memory tests wait for hv-balloon, which starts acting 50 s after
            // the channel opened at boot: late in the run, the wait is mostly over.
            Suite("tests/guest/DynamicMemoryTests.cs"u8, &DynamicMemoryTests.Register);
            Suite("tests/guest/VmbusTests.cs"u8, &VmbusTests.Register);      // ends with UNLOAD
            Suite("tests/guest/GuardTests.cs"u8, &GuardTests.Register);
            // inject-failure proves the failure path end to end (qemu-run.sh's status, the host's parsing).
            if (BootInfo.HasOption("inject-failure"u8)) Suite("tests/guest/TestRunner.cs"u8, &TestRunner.RegisterInjectedFailure);
        }

        private static void RegisterInjectedFailure() => Add("testmode.injected_failure"u8, &FailOnPurpose);

        public static bool RunSelected()
        {
            byte* filter = null;
            int filterLength = 0;
            BootInfo.TryGetOption("test"u8, out filter, out filterLength);
            Console.WriteLine("test mode"u8);
            if (BootInfo.TryGetOption("pingpong"u8, out byte* rounds, out int roundsLength)) SmpTests.PingPongRounds = (int)Format.ParseNumber(rounds, roundsLength);
            RegisterAll();
            int selected = 0;
            for (int i = 0; i < s_count; i++)
                if (StartsWith(s_tests[i].Name, filter, filterLength)) selected++;

            Console.WriteLine("TAP version 14"u8);
            if (selected == 0) Console.WriteLine("1..0 # SKIP no test matches the test= prefix"u8);
            else
            {
                Console.Print("1..%d\n"u8, selected + 1);      // + the interrupt guard's verdict
                for (int i = 0; i < s_count; i++)
                    if (StartsWith(s_tests[i].Name, filter, filterLength)) Run(s_tests[i]);
                Run(s_closing);                                    // every run ends with the interrupt guard's verdict
            }
            Console.Print("%d passed, %d failed, %d skipped\n"u8, s_passed, s_failed, s_skipped);
            if (s_number == 0) Console.WriteLine("no test matches the test= prefix"u8);
            return s_failed == 0 && s_number > 0;
        }

        private static void FailOnPurpose() => Expect.Equal(1ul, 2ul);    // the deliberately wrong expectation of inject-failure

        private static bool StartsWith(Text name, byte* prefix, int length)
        {
            if (length <= 0) return true;
            return name.Span.StartsWith(new ReadOnlySpan<byte>(prefix, length));
        }

        private static void Run(TestCase test)
        {
            s_number++;
            Expect.Reset();
            test.Body();
            if (Expect.Skipped)
            {
                s_skipped++;
                Console.Print("ok %d - %s # SKIP %s\n"u8, s_number, test.Name, Expect.SkipReason);
            }
            else if (Expect.Failed)
            {
                s_failed++;
                Console.Print("not ok %d - %s\n"u8, s_number, test.Name);
                // TAP 14 diagnostics: a YAML block (what TAP::Parser's YAMLish reads: a single-quoted scalar).
                Console.WriteLine("  ---"u8);
                Console.Write("  message: '"u8);
                Expect.WriteFailure(yamlSingleQuoted: true);
                Console.WriteLine("'"u8);
                if (Expect.FailedLine != 0) Console.Print("  at: '%s:%d'\n"u8, test.File, Expect.FailedLine);
                Console.WriteLine("  ..."u8);
            }
            else
            {
                s_passed++;
                Console.Print("ok %d - %s\n"u8, s_number, test.Name);
            }
        }
    }
}
