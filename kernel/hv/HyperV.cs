using System;
using Kernel.Arch;
using Kernel.Runtime;

namespace Kernel.Hv
{
    public enum Hypervisor { None, Kvm, MicrosoftHv, OtherHv }

    // Detection and the first two steps of enlightenment: reporting the guest
    // OS identity and enabling the hypercall page (TLFS 2.4, 2.6, 3.13).
    public static unsafe class HyperV
    {
        // First of the statics: ilc addresses a class's first static field
        // RIP-relative in one instruction, the others through a base register,
        // and every typed hypercall tests this one.
        public static bool HypercallPageEnabled;
        public static bool Present;                 // CPUID 0x40000001 EAX == "Hv#1"
        public static Hypervisor Kind;
        public static uint MaxLeaf, BuildNumber, VersionMajorMinor;
        public static ulong Privileges;             // CPUID 0x40000003 EBX:EAX
        public static uint Features;                // CPUID 0x40000003 EDX
        public static uint Recommendations;         // CPUID 0x40000004 EAX
        public static uint MaxVirtualProcessors;    // CPUID 0x40000005 EAX
        public static ulong HypercallPageAddress;
        public static Text AbsentReason => "no Hyper-V interface (CPUID 0x40000001 is not \"Hv#1\")"u8;

        // This kernel's identity, TLFS 2.6 open-source encoding. OS type 0x7F
        // ("other open source") is not taken by Linux (1), FreeBSD (2), Xen (3)
        // or illumos (4); OS id 0xC5 marks this project; version 0.1, build 3.
        public const byte OsTypeThisKernel = 0x7F;
        public const byte OsIdThisKernel = 0xC5;
        public static HvGuestOsId GuestOsId => HvGuestOsId.OpenSource(OsTypeThisKernel, OsIdThisKernel, 0x00000100, 3);

        public static bool Has(ulong privilege) => (Privileges & privilege) != 0;
        public static bool HasFeature(uint feature) => (Features & feature) != 0;

        // Reads CPUID only. Under a hypervisor without the TLFS interface (TCG,
        // plain KVM) the synthetic MSRs may read 0 without faulting, so probing
        // them would prove nothing: CPUID 0x40000001 decides.
        public static void Detect()
        {
            Present = false;
            Kind = Hypervisor.None;
            if ((Cpu.Cpuid(1).Ecx & HvCpuid.HypervisorPresentBit) == 0) return;
            CpuidResult vendor = Cpu.Cpuid(HvCpuid.VendorAndMaxFunction);
            MaxLeaf = vendor.Eax;
            bool microsoftVendor = vendor.Ebx == 0x7263694D && vendor.Ecx == 0x666F736F && vendor.Edx == 0x76482074;   // "Microsoft Hv"
            if (Cpu.Cpuid(HvCpuid.Interface).Eax != HvCpuid.InterfaceSignatureHv1 || MaxLeaf < HvCpuid.Limits) return;
            Present = true;
            CpuidResult version = Cpu.Cpuid(HvCpuid.Version);
            BuildNumber = version.Eax;
            VersionMajorMinor = version.Ebx;
            CpuidResult features = Cpu.Cpuid(HvCpuid.Features);
            Privileges = features.Eax | ((ulong)features.Ebx << 32);
            Features = features.Edx;
            Recommendations = Cpu.Cpuid(HvCpuid.Recommendations).Eax;
            MaxVirtualProcessors = Cpu.Cpuid(HvCpuid.Limits).Eax;
            CpuidResult kvm = Cpu.Cpuid(HvCpuid.KvmSignature);
            bool isKvm = kvm.Ebx == 0x4B4D564B && kvm.Ecx == 0x564B4D56 && kvm.Edx == 0x4D;                     // "KVMKVMKVM\0\0\0"
            Kind = isKvm ? Hypervisor.Kvm : microsoftVendor ? Hypervisor.MicrosoftHv : Hypervisor.OtherHv;
        }

        public static void PrintSummary()
        {
            if (!Present)
            {
                Console.Print("hv: %s\n"u8, AbsentReason);
                return;
            }
            Console.Print("hv: \"Hv#1\" interface from %s, max leaf 0x%x, version %u.%u build %u\n"u8,
                Kind == Hypervisor.Kvm ? "KVM"u8 : Kind == Hypervisor.MicrosoftHv ? "Microsoft Hyper-V"u8 : "an unknown hypervisor"u8,
                MaxLeaf, VersionMajorMinor >> 16, VersionMajorMinor & 0xFFFF, BuildNumber);
            Console.Print("hv: privileges 0x%016x features 0x%08x recommendations 0x%08x max VPs %u\n"u8,
                Privileges, Features, Recommendations, MaxVirtualProcessors);
            Console.Write("hv: offers"u8);
            if (Has(HvPartitionPrivilege.AccessHypercallMsrs)) Console.Write(" hypercalls"u8);
            if (Has(HvPartitionPrivilege.AccessVpIndex)) Console.Write(" vp-index"u8);
            if (Has(HvPartitionPrivilege.AccessSynicRegs)) Console.Write(" synic"u8);
            if (Has(HvPartitionPrivilege.AccessSyntheticTimerRegs)) Console.Write(" stimer"u8);
            if (Has(HvPartitionPrivilege.AccessIntrCtrlRegs)) Console.Write(" apic-msrs"u8);
            if (Has(HvPartitionPrivilege.AccessPartitionReferenceCounter)) Console.Write(" ref-counter"u8);
            if (Has(HvPartitionPrivilege.AccessPartitionReferenceTsc)) Console.Write(" ref-tsc"u8);
            if (Has(HvPartitionPrivilege.AccessFrequencyRegs)) Console.Write(" frequencies"u8);
            if (Has(HvPartitionPrivilege.PostMessages)) Console.Write(" post-messages"u8);
            if (Has(HvPartitionPrivilege.SignalEvents)) Console.Write(" signal-events"u8);
            if (HasFeature(HvFeature.GuestCrashMsrs)) Console.Write(" crash-msrs"u8);
            if (HasFeature(HvFeature.XmmHypercallInput)) Console.Write(" xmm-input"u8);
            if (HasFeature(HvFeature.XmmHypercallOutput)) Console.Write(" xmm-output"u8);
            if (HasFeature(HvFeature.DirectSyntheticTimers)) Console.Write(" direct-stimers"u8);
            if ((Recommendations & HvRecommendation.DeprecateAutoEoi) != 0) Console.Write(" (auto-EOI deprecated)"u8);
            Console.WriteLine();
        }

        // The image carries no bytes of the hypercall page (boot/hypercall.asm):
        // int3 in every byte until the hypervisor writes its calling sequence
        // (TLFS 3.13), so a call that comes too early stops with an explained #BP.
        private const byte Int3 = 0xCC;

        public static void PoisonHypercallPage()
            => Paging.FillReadOnly((byte*)BootSymbols.Get()->HypercallPage, Int3, 4096);

        // TLFS 3.13: the guest OS ID must be non-zero before the hypercall page can
        // be enabled (KVM ignores the HYPERCALL write while it is 0), then the
        // guest names a page and the hypervisor fills it with the call sequence.
        public static bool EnableHypercallPage()
        {
            if (!Present || !Has(HvPartitionPrivilege.AccessHypercallMsrs)) return false;
            Cpu.WriteMsr(HvMsr.GuestOsId, GuestOsId.Value);

            HypercallPageAddress = BootSymbols.Get()->HypercallPage;
            HvHypercallMsr msr;
            msr.Value = Cpu.ReadMsr(HvMsr.Hypercall);       // keep the reserved bits as read
            msr.GpaPageNumber = HypercallPageAddress >> 12;
            msr.Enable = true;
            Cpu.WriteMsr(HvMsr.Hypercall, msr.Value);

            // Re-read: a hypervisor that refused the page leaves the enable bit clear.
            HvHypercallMsr readBack;
            readBack.Value = Cpu.ReadMsr(HvMsr.Hypercall);
            HypercallPageEnabled = readBack.Enable && readBack.GpaPageNumber == HypercallPageAddress >> 12;
            Console.Print("hv: guest OS ID 0x%016x, hypercall page at 0x%x%s\n"u8, GuestOsId.Value, HypercallPageAddress,
                HypercallPageEnabled ? " enabled"u8 : " NOT enabled (the MSR did not keep it)"u8);
            return HypercallPageEnabled;
        }
    }
}
