; boot/stubs.asm: CPU intrinsics, each a few instructions, each declared once
; in C# (kernel/arch/Cpu.cs). tests/ disassembles every one with Iced and pins
; its exact instruction sequence.

%include "abi.inc"

bits 64
section .text

; The end of a fault probe, a *_safe stub whose instruction at its `.at` label
; may fault: it returns 0, and its fix-up, where kernel/arch/Interrupts.cs
; resumes a fault at `.at` (EXTABLE, boot/abi.inc), returns 1.
%macro PROBE_RETURNS 1
    xor eax, eax
    ret
.fixup:
    mov eax, 1
    ret
EXTABLE %1.at, %1.fixup
%endmacro

; void cpu_cpuid(uint leaf, uint subleaf, CpuidResult *out)  (out: eax, ebx, ecx, edx)
global cpu_cpuid
cpu_cpuid:
    mov r8, ARG2
    push rbx                    ; rbx is callee-saved in both ABIs
    mov eax, ARG0d
    mov ecx, ARG1d
    cpuid
    mov [r8], eax
    mov [r8 + 4], ebx
    mov [r8 + 8], ecx
    mov [r8 + 12], edx
    pop rbx
    ret

; ulong cpu_rdmsr(uint msr)
global cpu_rdmsr
cpu_rdmsr:
    mov ecx, ARG0d
    rdmsr
    shl rdx, 32
    or rax, rdx
    ret

; void cpu_wrmsr(uint msr, ulong value)
global cpu_wrmsr
cpu_wrmsr:
    mov rax, ARG1
    mov ecx, ARG0d
    mov rdx, rax
    shr rdx, 32
    wrmsr
    ret

; int cpu_rdmsr_safe(uint msr, ulong *value): 0, or 1 if rdmsr faulted (#GP)
global cpu_rdmsr_safe
cpu_rdmsr_safe:
    mov r8, ARG1
    mov ecx, ARG0d
.at: rdmsr
    shl rdx, 32
    or rax, rdx
    mov [r8], rax
    PROBE_RETURNS cpu_rdmsr_safe

; int cpu_wrmsr_safe(uint msr, ulong value): 0, or 1 if wrmsr faulted (#GP)
global cpu_wrmsr_safe
cpu_wrmsr_safe:
    mov rax, ARG1
    mov ecx, ARG0d
    mov rdx, rax
    shr rdx, 32
.at: wrmsr
    PROBE_RETURNS cpu_wrmsr_safe

; int cpu_read_u64_safe(ulong address, ulong *value): 0, or 1 if the load faulted
global cpu_read_u64_safe
global cpu_read_u64_safe.at
cpu_read_u64_safe:
.at: mov rax, [ARG0]
    mov [ARG1], rax
    PROBE_RETURNS cpu_read_u64_safe

; int cpu_write_u8_safe(ulong address, byte value): 0, or 1 if the store faulted
global cpu_write_u8_safe
global cpu_write_u8_safe.at
cpu_write_u8_safe:
.at: mov [ARG0], ARG1b
    PROBE_RETURNS cpu_write_u8_safe

; int cpu_ud2_safe(void): raises #UD; 1 once the handler resumed it
global cpu_ud2_safe
global cpu_ud2_safe.at
cpu_ud2_safe:
.at: ud2
    PROBE_RETURNS cpu_ud2_safe

; int cpu_divide_safe(ulong dividend, ulong divisor, ulong *quotient): 1 if div faulted (#DE)
global cpu_divide_safe
global cpu_divide_safe.at
cpu_divide_safe:
    mov r8, ARG2
    mov rax, ARG0
    mov rcx, ARG1
    xor edx, edx
.at: div rcx
    mov [r8], rax
    PROBE_RETURNS cpu_divide_safe

; Port I/O.
global cpu_inb, cpu_outb, cpu_ind, cpu_outd
cpu_inb:
    mov edx, ARG0d
    xor eax, eax
    in al, dx
    ret
cpu_outb:
    mov eax, ARG1d
    mov edx, ARG0d
    out dx, al
    ret
cpu_ind:
    mov edx, ARG0d
    in eax, dx
    ret
cpu_outd:
    mov eax, ARG1d
    mov edx, ARG0d
    out dx, eax
    ret

; ulong cpu_rdtsc(void)
global cpu_rdtsc
cpu_rdtsc:
    rdtsc
    shl rdx, 32
    or rax, rdx
    ret

global cpu_cli, cpu_sti, cpu_hlt, cpu_sti_hlt, cpu_pause
cpu_cli:
    cli
    ret
cpu_sti:
    sti
    ret
cpu_hlt:
    hlt
    ret
; sti takes effect after the next instruction, so an interrupt that is already
; pending wakes this hlt instead of slipping in between (no lost wake-up).
cpu_sti_hlt:
    sti
    hlt
    ret
cpu_pause:
    pause
    ret

; void cpu_int_with_interrupts_off(void): a software interrupt on vector 0xF0
; while IF is clear, so its frame shows IF=0: what the interrupt guard must
; catch (kernel/arch/InterruptGuard.cs) when an emulator redelivers a vector.
global cpu_int_with_interrupts_off
cpu_int_with_interrupts_off:
    pushfq
    cli
    int 0xF0
    popfq
    ret

; ulong cpu_read_rflags(void)
global cpu_read_rflags
cpu_read_rflags:
    pushfq
    pop rax
    ret

; void cpu_lidt(DescriptorTablePointer *)
global cpu_lidt
cpu_lidt:
    lidt [ARG0]
    ret

; void cpu_lgdt(DescriptorTablePointer *, ushort codeSelector, ushort dataSelector)
; Loads the GDT, reloads the data segments and reloads CS with a far return.
global cpu_lgdt, cpu_sgdt
cpu_lgdt:
    lgdt [ARG0]
    mov eax, ARG2d
    mov ds, ax
    mov es, ax
    mov ss, ax
    movzx eax, ARG1w
    lea rdx, [rel .reloaded]
    push rax
    push rdx
    retfq
.reloaded:
    ret
cpu_sgdt:
    sgdt [ARG0]
    ret

; void cpu_ltr(ushort selector); ushort cpu_str(void)
global cpu_ltr, cpu_str
cpu_ltr:
    ltr ARG0w
    ret
cpu_str:
    xor eax, eax
    str ax
    ret

; void cpu_invlpg(ulong address)
global cpu_invlpg
cpu_invlpg:
    invlpg [ARG0]
    ret

; Control registers.
global cpu_read_cr0, cpu_write_cr0, cpu_read_cr2
global cpu_read_cr3, cpu_write_cr3, cpu_read_cr4
cpu_read_cr0:
    mov rax, cr0
    ret
cpu_write_cr0:
    mov cr0, ARG0
    ret
cpu_read_cr2:
    mov rax, cr2
    ret
cpu_read_cr3:
    mov rax, cr3
    ret
cpu_write_cr3:
    mov cr3, ARG0
    ret
cpu_read_cr4:
    mov rax, cr4
    ret

; Crash on purpose with a stack that cannot hold an exception frame: the #PF
; cannot be delivered, the CPU raises #DF, and only the IST stack saves us.
global cpu_crash_stack_overflow
cpu_crash_stack_overflow:
    mov rsp, ARG0
    push rax
    ret

; void cpu_crash_ud(void): ud2 with no fix-up entry
global cpu_crash_ud
cpu_crash_ud:
    ud2

; ulong cpu_crash_divide(ulong dividend, ulong divisor): div with no fix-up entry
global cpu_crash_divide
cpu_crash_divide:
    mov rax, ARG0
    mov rcx, ARG1
    xor edx, edx
    div rcx
    ret

; void cpu_copy_forward(void *destination, void *source, ulong count): rep movsb,
; lowest byte first, so the regions may overlap when destination is below source
; (SDM Vol 2B MOVS: DF is clear, as both ABIs require at a call). One
; instruction however long the copy, where a loop runs four a byte.
global cpu_copy_forward
cpu_copy_forward:
%ifdef ABI_WIN64
    push rdi                    ; rdi and rsi are callee-saved in the Microsoft ABI
    push rsi
    mov rdi, rcx
    mov rsi, rdx
    mov rcx, r8
    rep movsb
    pop rsi
    pop rdi
%else
    mov rcx, rdx
    rep movsb
%endif
    ret

; ulong cpu_atomic_swap64(ulong *address, ulong value): the old value (xchg is locked)
global cpu_atomic_swap64
cpu_atomic_swap64:
    mov rax, ARG1
    xchg [ARG0], rax
    ret

; void cpu_atomic_or32(uint *address, uint bits): *address |= bits, locked (the
; other side of a shared page, the host, may set bits in the same word at once)
global cpu_atomic_or32
cpu_atomic_or32:
    lock or [ARG0], ARG1d
    ret

; PerCpu *cpu_this_cpu(void): the per-CPU pointer kept at GS:0 (IA32_GS_BASE
; points at this CPU's PerCpu record, kernel/arch/PerCpu.cs, whose first field
; points at itself; under Hyper-V it begins the VP's record, kernel/hv/Vp.cs).
global cpu_this_cpu
cpu_this_cpu:
    mov rax, [gs:0]
    ret

; ulong cpu_rdtsc_ordered(void): lfence; rdtsc (the read waits for earlier instructions)
global cpu_rdtsc_ordered
cpu_rdtsc_ordered:
    lfence
    rdtsc
    shl rdx, 32
    or rax, rdx
    ret
