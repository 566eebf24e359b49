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

; The memory-form typed calls of kernel/hv/Hypercall.cs reach their C# body
; through these: each typed call, its arguments checked, tail-calls its
; trampoline with the arguments in place and a last one left empty, which the
; trampoline fills with the running VP's record (GS:0: the PerCpu record,
; kernel/arch/PerCpu.cs, that begins the VP's, kernel/hv/Vp.cs) before it jumps
; to the body. C# can read GS only by calling a stub, and a call
; costs the saving of every argument that must survive it; a jump costs
; nothing of that. %1: the trampoline, %2: the C# body ([RuntimeExport]),
; %3: the position (from 0) of the record's argument in the declaration.
; System V: arguments 0-5 in rdi, rsi, rdx, rcx, r8, r9, the rest on the
; stack from [rsp + 8]; Microsoft x64: 0-3 in rcx, rdx, r8, r9, and argument i
; at [rsp + 8 + 8 * i] (above the return address, the home area of the first
; four). A body with more arguments than the typed call has stack slots is
; called, not jumped to (RyuJIT), so the slot is its own.
%macro ON_THIS_VP 3
global %1
extern %2
%1:
%ifdef ABI_WIN64
  %if %3 == 3
    mov r9, [gs:0]
  %elif %3 >= 4
    mov rax, [gs:0]
    mov [rsp + 8 + 8 * %3], rax
  %else
    %error "ON_THIS_VP: an argument register the typed call uses"
  %endif
%else
  %if %3 == 4
    mov r8, [gs:0]
  %elif %3 == 5
    mov r9, [gs:0]
  %elif %3 >= 6
    mov rax, [gs:0]
    mov [rsp + 8 + 8 * (%3 - 6)], rax
  %else
    %error "ON_THIS_VP: an argument register the typed call uses"
  %endif
%endif
    jmp %2
%endmacro

ON_THIS_VP hv_signal_event_direct_on_this_vp, hv_issue_signal_event_direct, 5
ON_THIS_VP hv_post_message_direct_on_this_vp, hv_issue_post_message_direct, 5
ON_THIS_VP hv_post_message_on_this_vp, hv_issue_post_message, 4
