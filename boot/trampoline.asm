; boot/trampoline.asm: where an application processor (AP) starts. INIT-SIPI-
; SIPI starts an AP in 16-bit real mode at the page the SIPI vector names, so
; this code is copied to TRAMPOLINE_BASE (below 1 MiB) and run there: real mode,
; then protected mode, then long mode with the kernel's own page tables, then a
; call into C# (kernel/arch/Smp.cs). The BSP fills the four qwords at the end
; (CR3, stack top, entry, argument) before each SIPI and starts one AP at a time.
%include "abi.inc"
%include "x86.inc"

TRAMPOLINE_BASE equ 0x8000
%define REL(label) (TRAMPOLINE_BASE + (label) - trampoline_start)

section .rodata
align 16
global trampoline_start, trampoline_end
trampoline_start:
bits 16
    cli
    cld
    xor ax, ax
    mov ds, ax
    lgdt [REL(tramp_gdt_ptr)]
    mov eax, cr0
    or eax, CR0_PE                      ; protection on
    mov cr0, eax
    jmp dword CODE32_SELECTOR:REL(tramp_protected)

bits 32
tramp_protected:
    LOAD_DATA_SEGMENTS
    ENTER_LONG_MODE [REL(tramp_cr3)]    ; the kernel's own page tables, as the BSP runs on them
    jmp KERNEL_CODE_SELECTOR:REL(tramp_long)

bits 64
tramp_long:
    LOAD_DATA_SEGMENTS
    mov rsp, [REL(tramp_stack)]
    mov ARG0, [REL(tramp_argument)]
    mov rax, [REL(tramp_entry)]
    call rax                            ; never returns
.halt:
    cli
    hlt
    jmp .halt

align 8
tramp_gdt:
    BOOT_GDT                            ; a copy of its own: the AP loads it before paging, from below 1 MiB
tramp_gdt_ptr:
    dw BOOT_GDT_BYTES - 1
    dd REL(tramp_gdt)
align 8
; Filled in by the BSP (kernel/arch/Smp.cs, ApTrampolineData), in this order.
tramp_cr3:      dq 0
tramp_stack:    dq 0
tramp_entry:    dq 0
tramp_argument: dq 0
trampoline_end:
