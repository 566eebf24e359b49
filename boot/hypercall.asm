; boot/hypercall.asm: the hypercall page and the stubs that call it.
;
; TLFS 3.13 "Establishing the Hypercall Interface": the guest names a page in
; HV_X64_MSR_HYPERCALL and the hypervisor fills it with its calling sequence
; (vmcall or vmmcall, then ret). The page lives in the kernel image so that it
; is mapped read-only and executable like any other code (kernel/arch/Paging.cs).
; Neither image carries bytes of it (no file space, like .bss): until the
; hypervisor overwrites it, it holds the int3 that kernel/hv/HyperV.cs
; (PoisonHypercallPage) puts there at boot, so a call made too early stops with
; an explained #BP instead of running off into zeroes.
;
; TLFS 3.7 "Hypercall Interface" (x64): RCX = control, RDX = input GPA (fast:
; input bytes 0-7), R8 = output GPA (fast: input bytes 8-15); RAX = result.

%include "abi.inc"

bits 64

%ifdef ABI_WIN64
; The PE image: lld-link merges the section into .text (Makefile EFI_MERGE),
; after .managedcode because it orders merged sections by name, and a trailing
; chunk without data takes no file space (the section's raw size ends before it).
section .text_hypercall_page bss align=4096
%else
; The ELF image: boot/linker.ld gives it a page of its own in the text range
; (and asserts it is one). Declared 16-byte aligned: an ELF segment's file
; offset follows the largest alignment of its sections, and a 4 KiB one would
; pad the file by up to a page for a section that has no bytes in it.
section .text_hypercall_page nobits alloc exec nowrite align=16
%endif
global hv_hypercall_page
hv_hypercall_page:
    resb 4096

section .text

; ulong hv_hypercall(ulong control, ulong rdx, ulong r8): RCX = control, and
; RDX and R8 as given: the input and output GPAs (memory form), or the input
; itself (register form, control bit 16 set: kernel/hv/Hypercall.cs sets it).
global hv_hypercall
hv_hypercall:
%ifdef ABI_WIN64
    jmp hv_hypercall_page       ; rcx, rdx, r8 already hold them
%else
    mov rcx, rdi
    mov r8, rdx
    mov rdx, rsi
    jmp hv_hypercall_page       ; the page's ret returns to our caller
%endif
