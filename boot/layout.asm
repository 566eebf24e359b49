; boot/layout.asm: addresses that C# needs but cannot name (linker symbols and
; labels in boot/), handed over as one table, BootSymbols
; (kernel/runtime/BootSymbols.cs): one line below per field pair or field, in
; its field order; a guest test checks entries against each other. Both images
; assemble this file; each line says what kind of address it is, and the kind
; says where each image finds it:
;
; ELF (boot/linker.ld): every bound is a linker-script symbol, a link-time
; constant, so the table is read-only.
;
; PE (UEFI): there is no linker script. lld-link sorts `$`-suffixed input
; sections of one name into a single output section in suffix order, so the
; `$A`/`$Z` labels of TABLE_BOUNDS bracket what ilc (`.modules$I`) and EXTABLE
; (`.ex_table$M`, boot/abi.inc) put in between. The image and section bounds
; are not link-time constants (the firmware loads the image wherever it likes,
; UEFI 2.10 7.2 LoadImage), so the table lives in .data and
; kernel/arch/efi/PeImage.cs fills them in from the PE headers at __ImageBase.
%include "abi.inc"

bits 64

; ADDRESS symbol...: labels in boot/ (and, in the ELF, linker symbols), one qword each.
%macro ADDRESS 1-*
  %rep %0
    extern %1
    dq %1
    %rotate 1
  %endrep
%endmacro

%ifdef ABI_WIN64
  extern __ImageBase
  %macro IMAGE_BOUNDS 2
    dq __ImageBase, 0           ; the end: from the optional header's SizeOfImage
  %endmacro
  %macro SECTION_BOUNDS 2
    dq 0, 0                     ; from the section table
  %endmacro
  ; TABLE_BOUNDS name: the bounds of the table that fills section .name.
  %macro TABLE_BOUNDS 1
    [section .%{1}$A rdata align=8]
    __%{1}_start:
    [section .%{1}$Z rdata align=8]
    __%{1}_end:
    __SECT__
    dq __%{1}_start, __%{1}_end
  %endmacro
  %macro UEFI_ADDRESS 1
    ADDRESS %1
  %endmacro
  section .data
%else
  %macro IMAGE_BOUNDS 2
    ADDRESS %1, %2
  %endmacro
  %macro SECTION_BOUNDS 2
    ADDRESS %1, %2
  %endmacro
  %macro TABLE_BOUNDS 1
    ADDRESS __%{1}_start, __%{1}_end
  %endmacro
  %macro UEFI_ADDRESS 1
    dq 0                        ; only the UEFI image has it
  %endmacro
  section .rodata
%endif

align 8
boot_symbols:
    IMAGE_BOUNDS __image_start, __image_end
    SECTION_BOUNDS __text_start, __text_end
    SECTION_BOUNDS __rodata_start, __rodata_end
    SECTION_BOUNDS __data_start, __data_end
    SECTION_BOUNDS __bss_start, __bss_end
    TABLE_BOUNDS modules        ; ilc's module table
    TABLE_BOUNDS ex_table       ; the exception fix-ups, EXTABLE
    ADDRESS interrupt_entries   ; vector v enters at interrupt_entries + ENTRY_STRIDE * v
    ADDRESS hv_hypercall_page
    ADDRESS boot_tsc_entry, boot_tsc_long_mode
    ADDRESS kernel_heap, kernel_heap_end
    ADDRESS trampoline_start, trampoline_end, ap_main
    ADDRESS cpu_ud2_safe.at, cpu_divide_safe.at, cpu_read_u64_safe.at, cpu_write_u8_safe.at
    UEFI_ADDRESS efi_take_over  ; boot/efi/entry.asm

section .text
; BootSymbols *boot_symbols_table(void)
global boot_symbols_table
boot_symbols_table:
    lea rax, [rel boot_symbols]
    ret
