; boot/entry_data.asm: the data the two boot entries share, boot/entry.asm
; (PVH) and boot/efi/entry.asm (UEFI); each image links one of them and this.
%include "abi.inc"
%include "x86.inc"

section .data

; The boot GDT, which the entries load before the kernel's per-CPU one
; (kernel/arch/Gdt.cs). In .data: loading a segment register sets the accessed
; bit of its descriptor (SDM Vol 3A 3.4.5.1), a write to this table.
align 16
global boot_gdt, boot_gdt_ptr
boot_gdt:
    BOOT_GDT
boot_gdt_ptr:
    dw BOOT_GDT_BYTES - 1
    dq boot_gdt                 ; an absolute address: in the PE image, a base relocation fixes it up

; The boot timeline's first two readings (BootSymbols.TscAtEntry, TscAtLongMode).
align 8
global boot_tsc_entry, boot_tsc_long_mode
boot_tsc_entry:     dq 0
boot_tsc_long_mode: dq 0
