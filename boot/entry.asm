; boot/entry.asm: from the boot loader's 32-bit protected mode to the C# entry.
;
; Why PVH and not multiboot1: QEMU boots a 64-bit ELF with a PVH note directly
; (no a.out kludge, no load-address fix-ups), hands us a versioned start_info
; with the command line and an E820-style memory map, and the same image boots
; unchanged on other PVH loaders (Firecracker, cloud-hypervisor, Xen PVH).
;
; Contract at pvh_entry (Xen "HVM direct boot ABI"): 32-bit protected mode,
; paging off, flat CS/DS, EBX = physical address of struct hvm_start_info.

%include "abi.inc"

bits 32
extern kmain

XEN_ELFNOTE_PHYS32_ENTRY equ 18

section .note.Xen note alloc noexec nowrite align=4
    dd 4                        ; namesz ("Xen\0")
    dd 8                        ; descsz: the 8-byte entry address
    dd XEN_ELFNOTE_PHYS32_ENTRY
    db "Xen", 0
    dq pvh_entry

CR0_MP   equ 1 << 1             ; monitor coprocessor: SSE with FWAIT semantics
CR0_EM   equ 1 << 2             ; must be clear, or SSE instructions raise #UD
CR0_WP   equ 1 << 16            ; supervisor writes honour read-only pages
CR0_PG   equ 1 << 31
CR4_PAE  equ 1 << 5
CR4_OSFXSR     equ 1 << 9       ; SSE and FXSAVE/FXRSTOR enabled
CR4_OSXMMEXCPT equ 1 << 10      ; SIMD FP exceptions raise #XM, not #UD
EFER_MSR equ 0xC0000080
EFER_LME equ 1 << 8
EFER_NXE equ 1 << 11            ; the kernel's page tables mark data no-execute

section .boot.text progbits alloc exec nowrite align=16
global pvh_entry
pvh_entry:
    cli
    mov esi, ebx                ; keep start_info; it becomes kmain's first argument
    rdtsc                       ; boot timeline: TSC at kernel entry
    mov [boot_tsc_entry], eax
    mov [boot_tsc_entry + 4], edx

    ; Identity-map the first 4 GiB with 2 MiB pages: enough to reach long mode
    ; and the local APIC. kernel/arch/Paging.cs replaces these tables with
    ; precise per-section permissions once C# runs.
    mov eax, boot_pdpt
    or eax, 3                   ; present | writable
    mov [boot_pml4], eax
    xor ecx, ecx
.pdpt:
    mov eax, ecx
    shl eax, 12
    add eax, boot_pd
    or eax, 3
    mov [boot_pdpt + ecx * 8], eax
    inc ecx
    cmp ecx, 4
    jb .pdpt
    xor ecx, ecx                ; 2048 PDEs, each a 2 MiB page
.pd:
    mov eax, ecx
    shl eax, 21
    or eax, 0x83                ; present | writable | page size
    mov [boot_pd + ecx * 8], eax
    inc ecx
    cmp ecx, 2048
    jb .pd

    mov eax, cr4
    or eax, CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT
    mov cr4, eax
    mov eax, boot_pml4
    mov cr3, eax
    mov ecx, EFER_MSR
    rdmsr
    or eax, EFER_LME | EFER_NXE
    wrmsr
    mov eax, cr0
    and eax, ~CR0_EM
    or eax, CR0_PG | CR0_WP | CR0_MP
    mov cr0, eax                ; paging on: we are in IA-32e compatibility mode
    lgdt [boot_gdt_ptr]
    jmp 0x08:long_mode_entry    ; far jump into a 64-bit code segment

bits 64
long_mode_entry:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    rdtsc                       ; boot timeline: TSC in long mode
    shl rdx, 32
    or rax, rdx
    mov [boot_tsc_long_mode], rax
    mov rsp, boot_stack_top     ; 16-byte aligned; the call below pushes the return address
    mov edi, esi                ; kmain(struct hvm_start_info *)
    call kmain
.halt:                          ; kmain never returns; if it does, stop this CPU for good
    cli
    hlt
    jmp .halt

section .rodata
align 16
boot_gdt:
    dq 0
    dq 0x00AF9A000000FFFF       ; 0x08: 64-bit code, DPL 0
    dq 0x00CF92000000FFFF       ; 0x10: data, DPL 0
boot_gdt_ptr:
    dw boot_gdt_ptr - boot_gdt - 1
    dq boot_gdt

section .data
align 8
global boot_tsc_entry, boot_tsc_long_mode
boot_tsc_entry:     dq 0
boot_tsc_long_mode: dq 0

section .bss
align 4096
boot_pml4: resb 4096
boot_pdpt: resb 4096
boot_pd:   resb 4 * 4096
global boot_stack_top
boot_stack: resb 64 * 1024
boot_stack_top:
