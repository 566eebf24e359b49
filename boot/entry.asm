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
%include "x86.inc"

bits 32
extern kmain
extern boot_gdt_ptr, boot_tsc_entry, boot_tsc_long_mode   ; boot/entry_data.asm

XEN_ELFNOTE_PHYS32_ENTRY equ 18

section .note.Xen note alloc noexec nowrite align=4
    dd 4                        ; namesz ("Xen\0")
    dd 8                        ; descsz: the 8-byte entry address
    dd XEN_ELFNOTE_PHYS32_ENTRY
    db "Xen", 0
    dq pvh_entry

section .boot.text progbits alloc exec nowrite align=16
global pvh_entry
pvh_entry:
    cli
    mov esi, ebx                ; keep start_info; it becomes kmain's first argument
    rdtsc                       ; boot timeline: TSC at kernel entry
    mov [boot_tsc_entry], eax
    mov [boot_tsc_entry + 4], edx

    mov edi, boot_page_tables
    IDENTITY_MAP_4GIB edi
    ENTER_LONG_MODE edi         ; paging on: we are in IA-32e compatibility mode
    lgdt [boot_gdt_ptr]
    jmp KERNEL_CODE_SELECTOR:long_mode_entry    ; far jump into the 64-bit code segment

bits 64
long_mode_entry:
    LOAD_DATA_SEGMENTS
    READ_TSC                    ; boot timeline: TSC in long mode
    mov [boot_tsc_long_mode], rax
    mov rsp, boot_stack_top     ; 16-byte aligned; the call below pushes the return address
    mov edi, esi                ; kmain(struct hvm_start_info *)
    call kmain
.halt:                          ; kmain never returns; if it does, stop this CPU for good
    cli
    hlt
    jmp .halt

; Page tables are 4 KiB-aligned: boot/linker.ld puts this section first in .bss,
; which starts on a page, and asserts the alignment. It is declared 16-byte
; aligned because an ELF segment's file offset follows the largest alignment of
; its sections, and a 4 KiB one would pad the file by up to a page before .bss.
section .bss.page_aligned nobits alloc noexec write align=16
global boot_page_tables         ; for boot/linker.ld's alignment check
boot_page_tables: resb IDENTITY_MAP_BYTES

section .bss
align 16
global boot_stack_top
boot_stack: resb 64 * 1024
boot_stack_top:
