using Kernel.Arch;

namespace Kernel.TestMode
{
    // One guest test: a name and a body that checks real values with Expect.
    public unsafe struct TestCase
    {
        public string Name;
        public delegate*<void> Body;

        public TestCase(string name, delegate*<void> body) { Name = name; Body = body; }
    }

    // Runs the guest tests selected on the command line (`test` or `test=PREFIX`)
    // and reports one TAP-like line per test, then a summary:
    //   ok N - name
    //   not ok N - name: expected X, got Y
    //   skip N - name: reason
    //   N passed, N failed, N skipped
    public static unsafe class TestRunner
    {
        private static int s_number, s_passed, s_failed, s_skipped;

        public static bool RunSelected()
        {
            byte* filter = null;
            int filterLength = 0;
            BootInfo.TryGetOption("test", out filter, out filterLength);
            Console.WriteLine("test mode");
            if (BootInfo.TryGetOption("pingpong", out byte* rounds, out int roundsLength)) SmpTests.PingPongRounds = (int)ParseDecimal(rounds, roundsLength);
            RunSuite(FoundationTests.All(), filter, filterLength);
            RunSuite(HvTests.All(), filter, filterLength);
            RunSuite(DirectTests.All(), filter, filterLength);
            RunSuite(Drivers.VmBus.VmbusTests.All(), filter, filterLength);
            RunSuite(TimeTests.All(), filter, filterLength);
            RunSuite(SmpTests.All(), filter, filterLength);
            RunSuite(GuardTests.All(), filter, filterLength);
            // inject-failure proves the failure path end to end (qemu-run.sh's status, the host's parsing).
            if (BootInfo.HasOption("inject-failure")) RunSuite(InjectedFailure, filter, filterLength);
            if (s_number > 0) Run(GuardTests.Closing);         // every run ends with the interrupt guard's verdict
            Console.WriteDecimal((long)s_passed);
            Console.Write(" passed, ");
            Console.WriteDecimal((long)s_failed);
            Console.Write(" failed, ");
            Console.WriteDecimal((long)s_skipped);
            Console.WriteLine(" skipped");
            if (s_number == 0) Console.WriteLine("no test matches the test= prefix");
            return s_failed == 0 && s_number > 0;
        }

        private static TestCase[] InjectedFailure => new TestCase[] { new TestCase("testmode.injected_failure", &FailOnPurpose) };

        private static void FailOnPurpose() => Expect.Equal(1ul, 2ul, "the deliberately wrong expectation of inject-failure");

        private static void RunSuite(TestCase[] suite, byte* filter, int filterLength)
        {
            for (int i = 0; i < suite.Length; i++)
                if (StartsWith(suite[i].Name, filter, filterLength)) Run(suite[i]);
        }

        public static ulong ParseDecimal(byte* text, int length)
        {
            ulong value = 0;
            for (int i = 0; i < length && text[i] >= '0' && text[i] <= '9'; i++) value = value * 10 + (ulong)(text[i] - '0');
            return value;
        }

        private static bool StartsWith(string name, byte* prefix, int length)
        {
            if (length <= 0) return true;
            if (length > name.Length) return false;
            for (int i = 0; i < length; i++) if (name[i] != prefix[i]) return false;
            return true;
        }

        private static void Run(TestCase test)
        {
            s_number++;
            Expect.Reset();
            test.Body();
            if ((object)Expect.SkipReason != null)
            {
                s_skipped++;
                Console.Write("skip ");
                WriteHead(test.Name);
                Console.Write(": ");
                Console.WriteLine(Expect.SkipReason);
            }
            else if (Expect.Failed)
            {
                s_failed++;
                Console.Write("not ok ");
                WriteHead(test.Name);
                Console.Write(": ");
                Expect.WriteFailure();
                Console.WriteLine();
            }
            else
            {
                s_passed++;
                Console.Write("ok ");
                WriteHead(test.Name);
                Console.WriteLine();
            }
        }

        private static void WriteHead(string name)
        {
            Console.WriteDecimal((long)s_number);
            Console.Write(" - ");
            Console.Write(name);
        }
    }
}
