# shellcheck shell=bash
# The KVM tracepoints a --trace run records, for every script that traces
# (sourced by qemu-run.sh for kvm mode and by tools/nested/run.sh, whose
# outer Linux enables them for nested mode): kvm_msr shows the guest OS ID
# and hypercall MSR writes; the kvm_hv_* events the SynIC's MSRs and
# interrupts, the hypercalls and their results. Comma-separated, as
# tools/nested/run.sh --trace-events takes a list.
KVM_TRACE_EVENTS=kvm_msr,kvm_hv_hypercall,kvm_hv_hypercall_done,kvm_hv_synic_set_msr,kvm_hv_synic_set_irq,kvm_hv_notify_acked_sint
