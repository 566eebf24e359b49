using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;

namespace Kernel.TestMode
{
    // The synthetic interrupt controller's registers and pages on the boot VP
    // (TLFS 11.8), after the kernel's set-up: kvm-unit-tests' hyperv_synic.
    public static unsafe class SynicTests
    {
        public static void Register()
        {
            TestRunner.Add("synic.sversion"u8, &Sversion);
            TestRunner.Add("synic.eom_reads_zero"u8, &EomReadsZero);
            TestRunner.Add("synic.scontrol_enabled"u8, &ScontrolEnabled);
            TestRunner.Add("synic.simp_siefp_read_back"u8, &SimpSiefpReadBack);
            TestRunner.Add("synic.pages_zero_after_enable"u8, &PagesZeroAfterEnable);
            TestRunner.Add("synic.simp_move_hides_stale_guest_data"u8, &SimpMoveHidesStaleData);
            TestRunner.Add("synic.sints_configured"u8, &SintsConfigured);
            TestRunner.Add("synic.sint_vector_below_16_faults"u8, &SintVectorBelow16Faults);
            TestRunner.Add("synic.apic_enabled"u8, &ApicEnabled);
        }

        private static void Sversion()
        {
            if (!Need.Synic()) return;
            Expect.Equal(1ul, Cpu.ReadMsr(HvMsr.Sversion));    // SVERSION
        }

        private static void EomReadsZero()
        {
            if (!Need.Synic()) return;
            Expect.Equal(0ul, Cpu.ReadMsr(HvMsr.Eom));    // EOM
        }

        private static void ScontrolEnabled()
        {
            if (!Need.Synic()) return;
            HvSynicScontrol s;
            s.Value = Cpu.ReadMsr(HvMsr.Scontrol);
            Expect.True(s.Enable);    // SCONTROL enable bit
        }

        private static void SimpSiefpReadBack()
        {
            if (!Need.Synic()) return;
            Vp* vp = Vp.Current;
            Expect.Equal((ulong)vp->Sim | 1, Cpu.ReadMsr(HvMsr.Simp));    // SIMP = page | enable
            Expect.Equal((ulong)vp->Sief | 1, Cpu.ReadMsr(HvMsr.Siefp));    // SIEFP = page | enable
        }

        // Read on every VP right after its SIMP/SIEFP enable, before any traffic.
        private static void PagesZeroAfterEnable()
        {
            if (!Need.Synic()) return;
            for (int i = 0; i < Vp.Count; i++)
                Expect.True(Vp.Get(i)->PagesZeroAtEnable);    // SIM and SIEF pages all zero right after enable
        }

        // Point SIMP and SIEFP at pages full of 0xFF: the guest's stale bytes must
        // not show through. KVM zeroes the new page; QEMU (whose userspace SynIC
        // backs hyperv-testdev and VMBus) instead moves its own message/event page
        // overlay, contents and all, to the new address. Either is correct.
        private static void SimpMoveHidesStaleData()
        {
            if (!Need.Synic()) return;
            Cpu.DisableInterrupts();
            byte* sim = (byte*)PageAllocator.Allocate();
            byte* sief = (byte*)PageAllocator.Allocate();
            byte* oldSim = stackalloc byte[4096];
            byte* oldSief = stackalloc byte[4096];
            Memory.Copy(oldSim, Vp.Current->Sim, 4096);
            Memory.Copy(oldSief, Vp.Current->Sief, 4096);
            Memory.Fill(sim, 0xFF, 4096);
            Memory.Fill(sief, 0xFF, 4096);
            ulong oldSimp = Cpu.ReadMsr(HvMsr.Simp), oldSiefp = Cpu.ReadMsr(HvMsr.Siefp);
            Cpu.WriteMsr(HvMsr.Simp, (ulong)sim | 1);
            Cpu.WriteMsr(HvMsr.Siefp, (ulong)sief | 1);
            bool simOk = Memory.IsZero(sim, 4096) || Memory.Equal(sim, oldSim, 4096);
            bool siefOk = Memory.IsZero(sief, 4096) || Memory.Equal(sief, oldSief, 4096);
            Cpu.WriteMsr(HvMsr.Simp, oldSimp);
            Cpu.WriteMsr(HvMsr.Siefp, oldSiefp);
            Cpu.EnableInterrupts();
            PageAllocator.Free(sim);
            PageAllocator.Free(sief);
            Expect.True(simOk);    // new SIM page: zeroed, or the hypervisor's page moved there
            Expect.True(siefOk);    // new SIEF page: zeroed, or the hypervisor's page moved there
        }

        private static void SintsConfigured()
        {
            if (!Need.Synic()) return;
            for (int sint = 0; sint < Synic.SintCount; sint++)
            {
                HvSynicSint value;
                value.Value = Cpu.ReadMsr(HvMsr.Sint(sint));
                if (!Expect.Equal((ulong)(Synic.VectorBase + sint), value.Vector)) return;    // SINT vector
                if (!Expect.False(value.Masked)) return;    // SINT masked
                if (!Expect.Equal((Vp.Current->AutoEoiMask & (1u << sint)) != 0, value.AutoEoi)) return;    // SINT auto-EOI as configured
            }
        }

        private static void SintVectorBelow16Faults()
        {
            if (!Need.Synic()) return;
            const int sint = 15;
            ulong before = Cpu.ReadMsr(HvMsr.Sint(sint));
            ulong faults = Interrupts.LastFault.Count;
            Expect.False(Cpu.TryWriteMsr(HvMsr.Sint(sint), 15));    // unmasked SINT with vector 15 accepted
            Expect.Equal(faults + 1, Interrupts.LastFault.Count);    // faults caught
            Expect.Equal(before, Cpu.ReadMsr(HvMsr.Sint(sint)));    // SINT15 unchanged
        }

        // The APIC carries SynIC interrupts; it is enabled, and its EOI goes
        // through HV_X64_MSR_EOI exactly when CPUID grants it (hv-vapic), under any flag set.
        private static void ApicEnabled()
        {
            if (!Need.HvInterface()) return;
            Expect.True(Apic.SoftwareEnabled);    // local APIC software-enabled (SVR bit 8)
            Expect.Equal(HyperV.Has(HvPartitionPrivilege.AccessIntrCtrlRegs), Apic.UseHvEoiMsr);    // EOI through HV_X64_MSR_EOI exactly when offered
        }
    }
}
