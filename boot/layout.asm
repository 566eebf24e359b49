; boot/layout.asm: addresses that C# needs but cannot name (linker symbols and
; labels in boot/), handed over as one table. Its order is the field order of
; kernel/runtime/BootSymbols.cs; a guest test checks entries against each other.
bits 64
extern __image_start, __image_end, __text_start, __text_end
extern __rodata_start, __rodata_end, __data_start, __data_end, __bss_start, __bss_end
extern __modules_start, __modules_end, __ex_table_start, __ex_table_end
extern isr_stub_table, hv_hypercall_page, boot_tsc_entry, boot_tsc_long_mode
extern kernel_heap, kernel_heap_end
extern trampoline_start, trampoline_end, ap_main
extern cpu_ud2_safe.at, cpu_divide_safe.at, cpu_read_u64_safe.at, cpu_write_u8_safe.at

section .rodata
align 8
boot_symbols:
    dq __image_start, __image_end
    dq __text_start, __text_end
    dq __rodata_start, __rodata_end
    dq __data_start, __data_end
    dq __bss_start, __bss_end
    dq __modules_start, __modules_end
    dq __ex_table_start, __ex_table_end
    dq isr_stub_table
    dq hv_hypercall_page
    dq boot_tsc_entry, boot_tsc_long_mode
    dq kernel_heap, kernel_heap_end
    dq trampoline_start, trampoline_end, ap_main
    dq cpu_ud2_safe.at, cpu_divide_safe.at, cpu_read_u64_safe.at, cpu_write_u8_safe.at
    dq 0                        ; efi_take_over: only the UEFI image has it (boot/efi/layout.asm)
boot_symbols_end:

section .text
; BootSymbols *boot_symbols_table(void)
global boot_symbols_table
boot_symbols_table:
    lea rax, [rel boot_symbols]
    ret
