using System;
using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;

namespace Kernel.TestMode
{
    // Finding the hypervisor and setting up the hypercall interface (TLFS 2, 3):
    // the CPUID leaves, the guest OS ID, the hypercall page and the VP index.
    // Without "Hv#1" every test here skips with the reason, except
    // hv.absent_is_reported_cleanly, which checks that skip; with only some
    // enlightenments, each test skips naming the one it lacks (Need.cs).
    public static unsafe class DetectionTests
    {
        public static void Register()
        {
            TestRunner.Add("hv.absent_is_reported_cleanly"u8, &AbsenceIsConsistent);
            TestRunner.Add("hv.cpuid_vendor"u8, &CpuidVendor);
            TestRunner.Add("hv.cpuid_interface"u8, &CpuidInterface);
            TestRunner.Add("hv.cpuid_max_leaf"u8, &CpuidMaxLeaf);
            TestRunner.Add("hv.privileges_for_synic"u8, &PrivilegesForSynic);
            TestRunner.Add("hv.guest_os_id_reads_back"u8, &GuestOsIdReadsBack);
            TestRunner.Add("hv.hypercall_page_enabled"u8, &HypercallPageEnabled);
            TestRunner.Add("hv.hypercall_page_code"u8, &HypercallPageCode);
            TestRunner.Add("hv.vp_index_boot_vp"u8, &VpIndexOfBootVp);
            TestRunner.Add("hv.vp_index_read_only"u8, &VpIndexIsReadOnly);
            TestRunner.Add("hv.unknown_call_code"u8, &UnknownCallCode);
        }
        // The twelve bytes of a CPUID vendor signature, in register order, in `buffer`.
        private static ReadOnlySpan<byte> Text(uint a, uint b, uint c, byte* buffer)
        {
            for (int i = 0; i < 4; i++)
            {
                buffer[i] = (byte)(a >> (8 * i));
                buffer[4 + i] = (byte)(b >> (8 * i));
                buffer[8 + i] = (byte)(c >> (8 * i));
            }
            return new ReadOnlySpan<byte>(buffer, 12);
        }

        private static void AbsenceIsConsistent()
        {
            bool hv1 = Cpu.Cpuid(HvCpuid.Interface).Eax == HvCpuid.InterfaceSignatureHv1
                       && (Cpu.Cpuid(1).Ecx & HvCpuid.HypervisorPresentBit) != 0;
            Expect.Equal(hv1, HyperV.Present);    // detection agrees with CPUID 0x40000001
            if (HyperV.Present) return;
            ulong issued = Hypercall.Issued;
            HvCallResult r = Hypercall.SignalEventDirect(HvConstants.HV_PARTITION_ID_SELF, 0, 0, 1, 1);
            Expect.Equal(HvOutcome.Refused, r.Outcome);    // SignalEventDirect without Hyper-V is refused
            Expect.Equal(HyperV.AbsentReason, r.RefusalReason);
            Expect.Equal(issued, Hypercall.Issued);    // hypercalls issued
        }

        private static void CpuidVendor()
        {
            if (!Need.HvInterface()) return;
            CpuidResult r = Cpu.Cpuid(HvCpuid.VendorAndMaxFunction);
            byte* vendor = stackalloc byte[12];
            Expect.Equal("Microsoft Hv"u8, Text(r.Ebx, r.Ecx, r.Edx, vendor));    // CPUID 0x40000000 EBX:ECX:EDX
        }

        private static void CpuidInterface()
        {
            if (!Need.HvInterface()) return;
            Expect.Equal((ulong)HvCpuid.InterfaceSignatureHv1, Cpu.Cpuid(HvCpuid.Interface).Eax);    // CPUID 0x40000001 EAX ("Hv#1")
        }

        private static void CpuidMaxLeaf()
        {
            if (!Need.HvInterface()) return;
            Expect.InRange(HvCpuid.Limits, 0x400000FF, Cpu.Cpuid(HvCpuid.VendorAndMaxFunction).Eax);    // CPUID 0x40000000 EAX (max leaf)
        }

        // With the SynIC granted, so is everything the kernel's SynIC set-up uses.
        private static void PrivilegesForSynic()
        {
            if (!Need.Synic()) return;
            ulong needed = HvPartitionPrivilege.AccessHypercallMsrs | HvPartitionPrivilege.AccessVpIndex | HvPartitionPrivilege.AccessSynicRegs;
            Expect.Equal(needed, HyperV.Privileges & needed);    // CPUID 0x40000003 EAX: hypercall MSRs, VP index, SynIC
        }

        private static void GuestOsIdReadsBack()
        {
            if (!Need.HypercallMsrs()) return;
            HvGuestOsId id;
            id.Value = Cpu.ReadMsr(HvMsr.GuestOsId);
            Expect.Equal(HyperV.GuestOsId.Value, id.Value);    // HV_X64_MSR_GUEST_OS_ID
            Expect.True(id.IsOpenSource);    // open-source bit 63
            Expect.Equal((ulong)HyperV.OsIdThisKernel, id.OsId);    // OS id field 55:48
        }

        private static void HypercallPageEnabled()
        {
            if (!Need.HypercallMsrs()) return;
            HvHypercallMsr msr;
            msr.Value = Cpu.ReadMsr(HvMsr.Hypercall);
            Expect.True(msr.Enable);    // HV_X64_MSR_HYPERCALL enable bit
            Expect.Equal(BootSymbols.Get()->HypercallPage >> 12, msr.GpaPageNumber);    // hypercall page frame
        }

        // The hypervisor wrote its calling sequence: vmcall (0F 01 C1) or vmmcall (0F 01 D9), then ret.
        // tests/ decodes the same bytes with Iced from the hv-hypercall-page line.
        private static void HypercallPageCode()
        {
            if (!Need.HypercallMsrs()) return;
            byte* page = (byte*)BootSymbols.Get()->HypercallPage;
            bool vmcall = page[0] == 0x0F && page[1] == 0x01 && (page[2] == 0xC1 || page[2] == 0xD9);
            Expect.True(vmcall);    // the page starts with vmcall or vmmcall
            Expect.Equal(0xC3ul, page[3]);    // ret after it
        }

        private static void VpIndexOfBootVp()
        {
            if (!Need.VpIndex()) return;
            Expect.Equal(0ul, Cpu.ReadMsr(HvMsr.VpIndex));    // HV_X64_MSR_VP_INDEX of the boot VP
        }

        private static void VpIndexIsReadOnly()
        {
            if (!Need.VpIndex()) return;
            ulong before = Interrupts.LastFault.Count;
            Expect.False(Cpu.TryWriteMsr(HvMsr.VpIndex, 5));    // wrmsr VP_INDEX is accepted
            Expect.Equal(before + 1, Interrupts.LastFault.Count);    // faults caught
            Expect.Equal(13ul, Interrupts.LastFault.Vector);    // vector (#GP)
            Expect.Equal(0ul, Cpu.ReadMsr(HvMsr.VpIndex));    // VP_INDEX unchanged
        }

        private static void UnknownCallCode()
        {
            if (!Need.HypercallPage()) return;
            HvHypercallControl control = default;
            control.CallCode = 0x7FFF;
            HvHypercallResult r = Hypercall.Slow(control, Hypercall.InputPage, Hypercall.OutputPage);
            Expect.Equal(HvStatus.InvalidHypercallCode, r.Status);    // status of call code 0x7fff
        }
    }
}
