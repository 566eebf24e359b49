; boot/interrupts.asm: the 256 interrupt entry stubs and their common path.
; Each stub makes the frame uniform (a zero error code where the CPU pushes
; none, then the vector) and jumps to isr_common, which saves every general
; register and the SSE state (C# code uses XMM registers, and an interrupt may
; land in the middle of it), then calls kernel/arch/Interrupts.cs.

%include "abi.inc"

bits 64
extern interrupt_dispatch

section .text
%assign vector 0
%rep 256
isr_stub_ %+ vector:
  %if !(vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30)
    push 0                      ; the CPU pushed no error code for this vector
  %endif
    push vector
    jmp isr_common
  %assign vector vector + 1
%endrep

; Stack on entry: vector, error code, RIP, CS, RFLAGS, RSP, SS. The CPU
; aligned RSP to 16 before pushing, and 7 + 15 qwords keep that alignment.
isr_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    cld                         ; the ABI requires DF clear at calls
    sub rsp, 512
    fxsave [rsp]
    lea ARG0, [rsp + 512]       ; InterruptFrame *
    sub rsp, 32                 ; Win64 shadow space; harmless under System V
    call interrupt_dispatch
    add rsp, 32
    fxrstor [rsp]
    add rsp, 512
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16                 ; vector and error code
    iretq

section .rodata
align 8
global isr_stub_table
isr_stub_table:
%assign vector 0
%rep 256
    dq isr_stub_ %+ vector
  %assign vector vector + 1
%endrep
