; boot/efi/entry.asm: the UEFI entry of build/BOOTX64.EFI (the PE image's
; AddressOfEntryPoint; assembled only for the UEFI build, nasm -f win64).
;
; Contract (UEFI 2.10, 2.3.4 "x64 Platforms" and 4.1 "UEFI Image Entry Point"):
; long mode, paging on with an identity map, SSE on, interrupts enabled for the
; firmware's timer; RCX = EFI_HANDLE of this image, RDX = EFI_SYSTEM_TABLE *,
; Microsoft x64 calling convention. We stay on the firmware's GDT, IDT and
; page tables until ExitBootServices (kernel/arch/EfiBoot.cs), but move to a
; stack inside the image at once: after ExitBootServices the firmware's stack
; is boot-services memory, which the kernel's page allocator hands out.

%include "abi.inc"

bits 64
extern efi_main

section .text
global EfiMain
EfiMain:
    mov r8, rdx                 ; keep SystemTable across RDTSC (which clobbers RDX)
    rdtsc                       ; boot timeline: the firmware already runs in long mode,
    shl rdx, 32                 ; so kernel entry and "long mode" are the same instant
    or rax, rdx
    mov [rel boot_tsc_entry], rax
    mov [rel boot_tsc_long_mode], rax
    mov rdx, r8
    lea rsp, [rel efi_stack_top]
    sub rsp, 32                 ; Win64 shadow space for the callee; RSP stays 16-byte aligned at the call
    call efi_main               ; efi_main(ImageHandle, SystemTable) never returns
.halt:
    cli
    hlt
    jmp .halt

; void efi_take_over(void): leave the firmware's environment after
; ExitBootServices. Interrupts off (the firmware's IDT and timer handlers are
; gone, UEFI 2.10 7.4 ExitBootServices), a coarse identity map of the first
; 4 GiB in 2 MiB pages (as boot/entry.asm builds for PVH) and the kernel's boot
; GDT, all inside the image: the firmware's page tables and GDT sit in
; boot-services memory, which is free RAM from now on. kernel/arch/Paging.cs
; replaces this map with precise permissions.
global efi_take_over
efi_take_over:
    cli
    ; UEFI 2.10 2.3.4 promises long mode and SSE, not the rest of what the kernel
    ; relies on: EFER.NXE (our tables set no-execute bits, reserved without it),
    ; CR0.WP (read-only text), and no stale global TLB entries from the firmware.
    mov ecx, 0xC0000080         ; EFER
    rdmsr
    or eax, 1 << 11             ; NXE
    wrmsr
    mov rax, cr0
    and rax, ~(1 << 2)          ; EM off
    or rax, (1 << 16) | (1 << 1) ; WP, MP
    mov cr0, rax
    mov rax, cr4
    or rax, (1 << 9) | (1 << 10) ; OSFXSR, OSXMMEXCPT
    mov rcx, rax
    and rax, ~(1 << 7)          ; toggling PGE flushes global TLB entries
    mov cr4, rax
    mov cr4, rcx
    lea rax, [rel efi_pdpt]
    or rax, 3                   ; present | writable
    mov [rel efi_pml4], rax
    lea r8, [rel efi_pdpt]
    lea r9, [rel efi_pd]
    xor ecx, ecx
.pdpt:
    mov rax, rcx
    shl rax, 12
    add rax, r9
    or rax, 3
    mov [r8 + rcx * 8], rax
    inc ecx
    cmp ecx, 4
    jb .pdpt
    xor ecx, ecx                ; 2048 PDEs, each a 2 MiB page
.pd:
    mov rax, rcx
    shl rax, 21
    or rax, 0x83                ; present | writable | page size
    mov [r9 + rcx * 8], rax
    inc ecx
    cmp ecx, 2048
    jb .pd
    lea rax, [rel efi_pml4]
    mov cr3, rax
    lgdt [rel efi_gdt_ptr]
    ; Reload CS with a far return: RIP on top, the selector below it.
    pop rax                     ; our return address
    push qword 0x08
    push rax
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    o64 retf

section .data
align 16
efi_gdt:
    dq 0
    dq 0x00AF9A000000FFFF       ; 0x08: 64-bit code, DPL 0
    dq 0x00CF92000000FFFF       ; 0x10: data, DPL 0
efi_gdt_ptr:
    dw efi_gdt_ptr - efi_gdt - 1
    dq efi_gdt                  ; an absolute address: the PE base relocation fixes it up

align 8
global boot_tsc_entry, boot_tsc_long_mode
boot_tsc_entry:     dq 0
boot_tsc_long_mode: dq 0

section .bss
align 4096
efi_pml4: resb 4096
efi_pdpt: resb 4096
efi_pd:   resb 4 * 4096
efi_stack: resb 128 * 1024
efi_stack_top:
