; boot/efi/entry.asm: the UEFI entry of build/BOOTX64.EFI (the PE image's
; AddressOfEntryPoint; assembled only for the UEFI build, nasm -f win64).
;
; Contract (UEFI 2.10, 2.3.4 "x64 Platforms" and 4.1 "UEFI Image Entry Point"):
; long mode, paging on with an identity map, SSE on, interrupts enabled for the
; firmware's timer; RCX = EFI_HANDLE of this image, RDX = EFI_SYSTEM_TABLE *,
; Microsoft x64 calling convention. We stay on the firmware's GDT, IDT and
; page tables until ExitBootServices (kernel/arch/efi/EfiEntry.cs), but move to a
; stack inside the image at once: after ExitBootServices the firmware's stack
; is boot-services memory, which the kernel's page allocator hands out.

%include "abi.inc"
%include "x86.inc"

bits 64
extern efi_main
extern boot_gdt_ptr, boot_tsc_entry, boot_tsc_long_mode   ; boot/entry_data.asm

section .text
global EfiMain
EfiMain:
    mov r8, rdx                 ; keep SystemTable across READ_TSC (which clobbers RDX)
    READ_TSC                    ; boot timeline: the firmware already runs in long mode,
                                ; so kernel entry and "long mode" are the same instant
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
; gone, UEFI 2.10 7.4 ExitBootServices), the coarse identity map of the first
; 4 GiB that the PVH entry builds too (IDENTITY_MAP_4GIB, boot/x86.inc) and its
; boot GDT (boot/entry_data.asm), all inside the image: the firmware's page
; tables and GDT sit in boot-services memory, which is free RAM from now on.
; kernel/arch/Paging.cs replaces this map with precise permissions.
global efi_take_over
efi_take_over:
    cli
    ; UEFI 2.10 2.3.4 promises long mode and SSE, not the rest of what the kernel
    ; relies on: EFER.NXE (our tables set no-execute bits, reserved without it),
    ; CR0.WP (read-only text), and no stale global TLB entries from the firmware.
    mov ecx, IA32_EFER
    rdmsr
    or eax, IA32_EFER_NXE
    wrmsr
    mov rax, cr0
    and rax, ~CR0_EM
    or rax, CR0_WP | CR0_MP
    mov cr0, rax
    mov rax, cr4
    or rax, CR4_OSFXSR | CR4_OSXMMEXCPT
    mov rcx, rax
    and rax, ~CR4_PGE           ; toggling PGE flushes global TLB entries
    mov cr4, rax
    mov cr4, rcx
    lea r8, [rel efi_page_tables]
    IDENTITY_MAP_4GIB r8
    mov cr3, r8
    lgdt [rel boot_gdt_ptr]
    ; Reload CS with a far return: RIP on top, the selector below it.
    pop rax                     ; our return address
    push qword KERNEL_CODE_SELECTOR
    push rax
    LOAD_DATA_SEGMENTS
    o64 retf

section .bss
align 4096
efi_page_tables: resb IDENTITY_MAP_BYTES
efi_stack: resb 128 * 1024
efi_stack_top:
