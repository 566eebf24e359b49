; boot/efi/layout.asm: boot/layout.asm for the PE (UEFI) image. The BootSymbols
; table (kernel/runtime/BootSymbols.cs) in the same order, but without a linker
; script: lld-link sorts `$`-suffixed input sections of one name into a single
; output section in suffix order, so the `$A`/`$Z` labels bracket what ilc
; (`.modules$I`) and EXTABLE (`.ex_table$M`) put in between. The image and
; section bounds are not link-time constants here (the firmware loads the image
; wherever it likes, UEFI 2.10 7.2 LoadImage), so the table lives in .data and
; kernel/arch/EfiBoot.cs fills them in from the PE headers at __ImageBase.
bits 64
extern __ImageBase
extern isr_stub_table, hv_hypercall_page, boot_tsc_entry, boot_tsc_long_mode
extern kernel_heap, kernel_heap_end
extern trampoline_start, trampoline_end, ap_main
extern cpu_ud2_safe.at, cpu_divide_safe.at, cpu_read_u64_safe.at, cpu_write_u8_safe.at
extern efi_take_over

section .modules$A rdata align=8
__modules_start:
section .modules$Z rdata align=8
__modules_end:
section .ex_table$A rdata align=8
__ex_table_start:
section .ex_table$Z rdata align=8
__ex_table_end:

section .data
align 8
boot_symbols:
    dq __ImageBase, 0           ; image start, end: filled from the PE optional header
    dq 0, 0                     ; text, rodata, data, bss: filled from the section table
    dq 0, 0
    dq 0, 0
    dq 0, 0
    dq __modules_start, __modules_end
    dq __ex_table_start, __ex_table_end
    dq isr_stub_table
    dq hv_hypercall_page
    dq boot_tsc_entry, boot_tsc_long_mode
    dq kernel_heap, kernel_heap_end
    dq trampoline_start, trampoline_end, ap_main
    dq cpu_ud2_safe.at, cpu_divide_safe.at, cpu_read_u64_safe.at, cpu_write_u8_safe.at
    dq efi_take_over
boot_symbols_end:

section .text
; BootSymbols *boot_symbols_table(void)
global boot_symbols_table
boot_symbols_table:
    lea rax, [rel boot_symbols]
    ret
