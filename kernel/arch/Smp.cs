using System.Runtime.InteropServices;
using Kernel.Hv;
using Kernel.Runtime;

namespace Kernel.Arch
{
    // Bringing up the application processors (APs), and handing them work.
    //
    // The processors come from the ACPI MADT. Each AP is started alone with
    // INIT-SIPI-SIPI (Intel SDM Vol. 3A, 10.4.4 "MP Initialization Example")
    // through the trampoline in boot/trampoline.asm, then runs ApMain: its own
    // GDT, TSS and IST stack, the shared IDT, its local APIC, and, under
    // Hyper-V, its VP index and its own SynIC. Then it idles until its mailbox
    // holds work; RunOn posts work and wakes it with an IPI.
    public static unsafe class Smp
    {
        public const ulong TrampolineBase = 0x8000;       // boot/trampoline.asm TRAMPOLINE_BASE; SIPI vector 0x08
        public const byte WakeVector = 0x40;
        private const ulong ApStackPages = 16;

        public static void StartApplicationProcessors()
        {
            Interrupts.SetHandler(WakeVector, &OnWake);
            if (Acpi.CpuCount == 0)                                 // Acpi.ReadMadt ran in KernelMain.Continue
            {
                Console.Write("smp: only the boot VP: "u8);
                Console.WriteLine(Acpi.Error);
                return;
            }
            if (Acpi.CpuCount == 1) return;
            BootSymbols* symbols = BootSymbols.Get();
            ulong size = symbols->TrampolineEnd - symbols->TrampolineStart;
            Memory.Copy((void*)TrampolineBase, (void*)symbols->TrampolineStart, size);
            Paging.MakeExecutable(TrampolineBase);
            ulong* data = (ulong*)(TrampolineBase + size - 32);    // CR3, stack, entry, argument

            for (int i = 0; i < Acpi.CpuCount; i++)
            {
                uint apicId = Acpi.ApicIds[i];
                if (apicId == Vp.Current->ApicId) continue;
                Vp* vp = Vp.Add(apicId);
                data[0] = Cpu.ReadCr3();
                data[1] = PageAllocator.AllocateContiguous(ApStackPages, zero: true) + ApStackPages * PageAllocator.PageSize;
                data[2] = symbols->ApEntry;
                data[3] = (ulong)vp;
                Apic.SendIpi(apicId, Apic.IcrInit);
                Clock.Delay(10);
                for (int sipi = 0; sipi < 2 && vp->Online == 0; sipi++)
                {
                    Apic.SendIpi(apicId, Apic.IcrStartup | (uint)(TrampolineBase >> 12));
                    Clock.WaitForValue(&vp->Online, ~0ul, 1, sipi == 0 ? 200ul : 1000ul);
                }
                if (vp->Online == 0)
                {
                    Console.Write("smp: APIC id "u8);
                    Console.WriteDecimal((ulong)apicId);
                    Console.WriteLine(" did not start"u8);
                }
            }
        }

        [UnmanagedCallersOnly(EntryPoint = "ap_main")]
        private static void ApMain(Vp* vp)
        {
            Vp.MakeCurrent(vp);
            Gdt.Install();
            Interrupts.LoadOnThisCpu();
            Apic.InitializeThisCpu();
            if (HyperV.Present)
            {
                if (HyperV.Has(HvPartitionPrivilege.AccessVpIndex)) vp->Index = (uint)Cpu.ReadMsr(HvMsr.VpIndex);
                Synic.EnableOnThisVp();
            }
            Console.Write("smp: VP "u8);
            Console.WriteDecimal((ulong)vp->Number);
            Console.Write(" online, APIC id "u8);
            Console.WriteDecimal((ulong)vp->ApicId);
            Console.Write(", VP index "u8);
            Console.WriteDecimal((ulong)vp->Index);
            Console.WriteLine();
            vp->Online = 1;
            Idle(vp);
        }

        // Interrupts stay off while the mailbox is checked; sti;hlt then sleeps with
        // no window for a wake-up IPI to be lost.
        private static void Idle(Vp* vp)
        {
            while (true)
            {
                Cpu.DisableInterrupts();
                if (vp->WorkPosted != vp->WorkDone)
                {
                    Cpu.EnableInterrupts();
                    vp->Work(vp->WorkArgument);
                    Cpu.AtomicSwap(&vp->WorkDone, vp->WorkPosted);
                    continue;
                }
                Cpu.EnableInterruptsAndHalt();
            }
        }

        private static void OnWake(InterruptFrame* frame)
        {
            frame->Vp->WakeInterrupts++;
            Apic.EndOfInterrupt();
        }

        // Posts `work` to another VP and returns at once; Wait collects it.
        public static bool Post(Vp* vp, delegate*<void*, void> work, void* argument)
        {
            if (vp == Vp.Current || vp->Online == 0 || vp->WorkPosted != vp->WorkDone) return false;
            vp->Work = work;
            vp->WorkArgument = argument;
            Cpu.AtomicSwap(&vp->WorkPosted, vp->WorkPosted + 1);
            Apic.SendIpi(vp->ApicId, Apic.IcrFixed | WakeVector);
            return true;
        }

        public static bool Wait(Vp* vp, ulong timeoutMs) => Clock.WaitForValue(&vp->WorkDone, ~0ul, vp->WorkPosted, timeoutMs);

        // Runs `work(argument)` on `vp` and waits for it; false if it did not finish in time.
        public static bool RunOn(Vp* vp, delegate*<void*, void> work, void* argument, ulong timeoutMs = 5000)
            => Post(vp, work, argument) && Wait(vp, timeoutMs);

        public static int OnlineCount()
        {
            int n = 0;
            for (int i = 0; i < Vp.Count; i++) if (Vp.Get(i)->Online != 0) n++;
            return n;
        }
    }
}
