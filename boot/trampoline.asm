; boot/trampoline.asm: where an application processor (AP) starts. INIT-SIPI-
; SIPI starts an AP in 16-bit real mode at the page the SIPI vector names, so
; this code is copied to TRAMPOLINE_BASE (below 1 MiB) and run there: real mode,
; then protected mode, then long mode with the kernel's own page tables, then a
; call into C# (kernel/arch/Smp.cs). The BSP fills the four qwords at the end
; (CR3, stack top, entry, argument) before each SIPI and starts one AP at a time.
%include "abi.inc"

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
    or eax, 1                           ; protection on
    mov cr0, eax
    jmp dword 0x08:REL(tramp_protected)

bits 32
tramp_protected:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, cr4
    or eax, (1 << 5) | (1 << 9) | (1 << 10)   ; PAE, OSFXSR, OSXMMEXCPT (SSE on)
    mov cr4, eax
    mov eax, [REL(tramp_cr3)]
    mov cr3, eax
    mov ecx, 0xC0000080                 ; EFER: long mode, no-execute
    rdmsr
    or eax, (1 << 8) | (1 << 11)
    wrmsr
    mov eax, cr0
    and eax, ~(1 << 2)                  ; EM off
    or eax, (1 << 31) | (1 << 16) | (1 << 1)  ; PG, WP, MP
    mov cr0, eax
    jmp 0x18:REL(tramp_long)

bits 64
tramp_long:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
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
    dq 0
    dq 0x00CF9A000000FFFF               ; 0x08: 32-bit code
    dq 0x00CF92000000FFFF               ; 0x10: data
    dq 0x00AF9A000000FFFF               ; 0x18: 64-bit code
tramp_gdt_ptr:
    dw 4 * 8 - 1
    dd REL(tramp_gdt)
align 8
; Filled in by the BSP (kernel/arch/Smp.cs, ApTrampolineData), in this order.
tramp_cr3:      dq 0
tramp_stack:    dq 0
tramp_entry:    dq 0
tramp_argument: dq 0
trampoline_end:
