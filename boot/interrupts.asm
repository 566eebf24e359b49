; boot/interrupts.asm: the 256 interrupt entry stubs and their two common paths
; into kernel/arch/Interrupts.cs.
;
; Exceptions (vectors 0-31) can come from any instruction, and are rare: their
; stub makes the frame uniform (a zero error code where the CPU pushes none,
; then the vector) and exception_common saves every general register and the
; whole x87/SSE state (FXSAVE) before calling C#.
;
; External interrupts (32-255) are the hot path (every SINT, timer and IPI):
; their stub pushes the vector, and the common path saves only what the call
; into C# may clobber, SAVE_VOLATILE (boot/abi.inc: the caller-saved general
; registers and the XMM registers ilc's code uses, proven by
; tests/Kernel.Tests/InterruptSaveTests.cs). The rest the C# code keeps itself,
; as the ABI requires of any callee. The sixteen SINT vectors (TLFS 11.8.4;
; every event flag and VMBus packet arrives on one) go straight to the SynIC's
; receive path, kernel/hv/Synic.cs; the others through the handler table of
; kernel/arch/Interrupts.cs.

%include "abi.inc"

bits 64
extern interrupt_dispatch, exception_dispatch, synic_interrupt

SINT_VECTOR_BASE equ 0x50       ; kernel/hv/Synic.cs VectorBase: SINT x on vector 0x50 + x

section .text
%assign vector 0
%rep 256
isr_stub_ %+ vector:
  %if vector < 32
    %if !(vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30)
    push 0                      ; the CPU pushed no error code for this vector
    %endif
    push vector
    jmp exception_common
  %elif vector >= SINT_VECTOR_BASE && vector < SINT_VECTOR_BASE + 16
    push vector
    jmp sint_common
  %else
    push vector
    jmp interrupt_common
  %endif
  %assign vector vector + 1
%endrep

; Stack on entry: vector, RIP, CS, RFLAGS, RSP, SS; the CPU aligned RSP to 16
; before it pushed (SDM Vol 3A 7.14.2), so the six qwords and the nine of
; SAVE_VOLATILE leave it 8 off: the slot below them (InterruptFrame.Cpu)
; realigns it for movaps and the call. The C# entry gets the frame and the
; running processor's record (GS:0, kernel/arch/PerCpu.cs), which costs C# a
; call to read; the SINTs' entry takes it as the VP's record (kernel/hv/Vp.cs),
; which begins with it: the same address.
%macro INTERRUPT_COMMON 1
    SAVE_VOLATILE 8
    cld                         ; the ABI requires DF clear at calls
    lea ARG0, [rsp + VOLATILE_XMM_BYTES]    ; InterruptFrame *: the Cpu slot
    mov ARG1, [gs:0]            ; PerCpu * (Vp * for the SINTs: the same address)
    CALL_C %1
    RESTORE_VOLATILE 8
    add rsp, 8                  ; the vector
    iretq
%endmacro

interrupt_common:
    INTERRUPT_COMMON interrupt_dispatch
sint_common:
    INTERRUPT_COMMON synic_interrupt

; Stack on entry: vector, error code, RIP, CS, RFLAGS, RSP, SS. The caller-saved
; registers go first, in SAVE_VOLATILE's order, so that ExceptionFrame has the
; layout of InterruptFrame; then the callee-saved ones and the FXSAVE image
; below it. 7 + 15 qwords keep RSP 16-byte aligned.
exception_common:
    PUSH_CALLER_SAVED
    PUSH_CALLEE_SAVED
    cld
    sub rsp, 512
    fxsave [rsp]
    lea ARG0, [rsp + 512 + 6 * 8]           ; ExceptionFrame *: the saved r11
    CALL_C exception_dispatch
    fxrstor [rsp]
    add rsp, 512
    POP_CALLEE_SAVED
    POP_CALLER_SAVED
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
