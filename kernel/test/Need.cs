using Kernel.Hv;

namespace Kernel.TestMode
{
    // Prerequisites of guest tests. Each returns true when the test can run, or
    // marks it skipped with the one reason that names what is missing.
    public static class Need
    {
        public static bool HvInterface()
        {
            if (HyperV.Present) return true;
            Expect.Skip(HyperV.AbsentReason);
            return false;
        }

        public static bool SynicAccess()
        {
            if (!HvInterface()) return false;
            if (!Synic.Available) { Expect.Skip("the hypervisor grants no SynIC access (CPUID 0x40000003 EAX bit 2; QEMU hv-synic)"); return false; }
            if (!HyperV.HypercallPageEnabled) { Expect.Skip("no hypercall page (CPUID 0x40000003 EAX bit 5)"); return false; }
            return true;
        }

        // The successful path of HvCallSignalEventDirect and HvCallPostMessageDirect.
        public static bool DirectCallsImplemented()
        {
            if (!SynicAccess()) return false;
            if (DirectCalls.Implemented) return true;
            Expect.Skip(DirectCalls.AbsentReason);
            return false;
        }

        // What a hypervisor without the Direct calls must do: refuse them, change nothing.
        public static bool DirectCallsAbsent()
        {
            if (!SynicAccess()) return false;
            if (!DirectCalls.Implemented) return true;
            Expect.Skip("this hypervisor implements the Direct calls; the direct.absent_* tests check one that does not");
            return false;
        }
    }
}
