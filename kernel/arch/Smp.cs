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
    // (PerCpu) holds work; RunOn posts work and wakes it with an IPI. Each
    // processor's record is its VP's (kernel/hv/Vp.cs), which begins with its
    // PerCpu: the AP starts with it, so that it can enable its SynIC.
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
                Console.Print("smp: only the boot VP: %s\n"u8, Acpi.Error);
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
                if (apicId == PerCpu.Current->ApicId) continue;
                PerCpu* cpu = &Vp.Add(apicId)->Cpu;
                data[0] = Cpu.ReadCr3();
                data[1] = PageAllocator.AllocateContiguous(ApStackPages, zero: true) + ApStackPages * PageAllocator.PageSize;
                data[2] = symbols->ApEntry;
                data[3] = (ulong)cpu;
                Apic.SendIpi(apicId, Apic.IcrInit);
                Clock.Delay(10);
                for (int sipi = 0; sipi < 2 && cpu->Online == 0; sipi++)
                {
                    Apic.SendIpi(apicId, Apic.IcrStartup | (uint)(TrampolineBase >> 12));
                    Clock.WaitForValue(&cpu->Online, ~0ul, 1, sipi == 0 ? 200ul : 1000ul);
                }
                if (cpu->Online == 0)
                {
                    Console.Print("smp: APIC id %u did not start\n"u8, apicId);
                }
            }
        }

        [UnmanagedCallersOnly(EntryPoint = "ap_main")]
        private static void ApMain(PerCpu* cpu)
        {
            PerCpu.MakeCurrent(cpu);
            Gdt.Install();
            Interrupts.LoadOnThisCpu();
            Apic.InitializeThisCpu();
            Vp* vp = Vp.Current;
            if (HyperV.Present)
            {
                if (HyperV.Has(HvPartitionPrivilege.AccessVpIndex)) vp->Index = (uint)Cpu.ReadMsr(HvMsr.VpIndex);
                Synic.EnableOnThisVp();
            }
            Console.Print("smp: VP %u online, APIC id %u, VP index %u\n"u8, cpu->Number, cpu->ApicId, vp->Index);
            cpu->Online = 1;
            Idle(cpu);
        }

        // Interrupts stay off while the mailbox is checked; sti;hlt then sleeps with
        // no window for a wake-up IPI to be lost.
        private static void Idle(PerCpu* cpu)
        {
            while (true)
            {
                Cpu.DisableInterrupts();
                if (cpu->WorkPosted != cpu->WorkDone)
                {
                    Cpu.EnableInterrupts();
                    cpu->Work(cpu->WorkArgument);
                    Cpu.AtomicSwap(&cpu->WorkDone, cpu->WorkPosted);
                    continue;
                }
                Cpu.EnableInterruptsAndHalt();
            }
        }

        private static void OnWake(InterruptFrame* frame)
        {
            frame->Cpu->WakeInterrupts++;
            Apic.EndOfInterrupt();
        }

        // Posts `work` to another processor and returns at once; Wait collects it.
        public static bool Post(PerCpu* cpu, delegate*<void*, void> work, void* argument)
        {
            if (cpu == PerCpu.Current || cpu->Online == 0 || cpu->WorkPosted != cpu->WorkDone) return false;
            cpu->Work = work;
            cpu->WorkArgument = argument;
            Cpu.AtomicSwap(&cpu->WorkPosted, cpu->WorkPosted + 1);
            Apic.SendIpi(cpu->ApicId, Apic.IcrFixed | WakeVector);
            return true;
        }

        public static bool Wait(PerCpu* cpu, ulong timeoutMs) => Clock.WaitForValue(&cpu->WorkDone, ~0ul, cpu->WorkPosted, timeoutMs);

        // Runs `work(argument)` on `cpu` and waits for it; false if it did not finish in time.
        public static bool RunOn(PerCpu* cpu, delegate*<void*, void> work, void* argument, ulong timeoutMs = 5000)
            => Post(cpu, work, argument) && Wait(cpu, timeoutMs);

        public static int OnlineCount()
        {
            int n = 0;
            for (int i = 0; i < PerCpu.Count; i++) if (PerCpu.Get(i)->Online != 0) n++;
            return n;
        }
    }
}
