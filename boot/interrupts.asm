; boot/interrupts.asm: the IDT's 256 entries and the common paths behind them
; into kernel/arch/Interrupts.cs.
;
; The entries sit at a fixed stride, as Linux's external-interrupt entries do
; (irq_entries_start, arch/x86/include/asm/idtentry.h, IDT_ALIGN 8 without
; IBT's endbr64): vector v enters at interrupt_entries + ENTRY_STRIDE * v, so
; kernel/arch/Interrupts.cs computes every gate from one address
; (BootSymbols.InterruptEntries) and the image carries no table of 256
; addresses (2 KiB, and in the PE image 256 base relocations). Each entry,
; vectors 0-255 alike:
;
;     push imm8       6A ib   2 bytes  the vector, sign-extended to a qword
;     jmp rel32       E9 cd   5 bytes  to its common path
;     int3            CC      1 byte   padding to ENTRY_STRIDE, never executed
;
; push imm8 sign-extends (SDM Vol 2B PUSH), so vectors 0x80-0xFF arrive as
; 0xFFFF_FFFF_FFFF_FF80-FF: readers of the slot take its low byte
; (InterruptFrame.Vector; Linux's DEFINE_IDTENTRY_IRQ does `(u8)error_code`).
; Exceptions are 0-31, which sign-extend to themselves. Every entry is padded
; with `times`, which nasm refuses with a negative count: an entry longer
; than the stride does not assemble (Linux: `.fill 0b + IDT_ALIGN - ., 1, 0xcc`).
; isr_stub_N names each entry for gdb and the host tests.
;
; Exceptions (vectors 0-31) can come from any instruction, and are rare: the
; common path makes the frame uniform and saves every general register and
; the whole x87/SSE state (FXSAVE) before calling C#. The CPU pushes an error
; code for some exceptions only (SDM Vol 3A 7.13 and Table 7-1; #VC and #SX:
; AMD APM Vol 2 8.2): those entries go straight to exception_common, the
; others to exception_no_error_code, which slips a zero in under the vector.
; Pushing the zero in the entry, as Linux's exception entries do (idtentry,
; arch/x86/entry/entry_64.S), would make it 9 bytes: a stride of 16, and 256
; bytes more for the 32 entries.
;
; External interrupts (32-255) are the hot path (every SINT, timer and IPI):
; the common path saves only what the call into C# may clobber, SAVE_VOLATILE
; (boot/abi.inc: the caller-saved general registers and the XMM registers
; ilc's code uses, proven by tests/Kernel.Tests/InterruptSaveTests.cs). The
; rest the C# code keeps itself, as the ABI requires of any callee. The sixteen
; SINT vectors (TLFS 11.8.4; every event flag and VMBus packet arrives on one)
; go straight to the SynIC's receive path, kernel/hv/Synic.cs; the others
; through the handler table of kernel/arch/Interrupts.cs.

%include "abi.inc"

bits 64
extern interrupt_dispatch, exception_dispatch, synic_interrupt

SINT_VECTOR_BASE equ 0x50       ; kernel/hv/Synic.cs VectorBase: SINT x on vector 0x50 + x
ENTRY_STRIDE equ 8              ; kernel/arch/Interrupts.cs EntryStride

section .text
global interrupt_entries
interrupt_entries:
%assign vector 0
%rep 256
isr_stub_ %+ vector:
    push strict byte (vector ^ 0x80) - 0x80     ; the vector as a signed byte: 0x80-0xFF as -128..-1
  %if vector < 32
    %if vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30
    jmp near exception_common   ; the CPU pushed an error code
    %else
    jmp near exception_no_error_code
    %endif
  %elif vector >= SINT_VECTOR_BASE && vector < SINT_VECTOR_BASE + 16
    jmp near sint_common
  %else
    jmp near interrupt_common
  %endif
    times ENTRY_STRIDE - ($ - isr_stub_ %+ vector) int3     ; negative, and refused, if the entry outgrew the stride
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

; Stack on entry: vector, RIP, CS, RFLAGS, RSP, SS. The vector goes one slot
; down (PUSH computes a memory operand's address before it decrements RSP:
; SDM Vol 2B PUSH) and a zero takes its place, as the error code the CPU did
; not push; then on into exception_common.
exception_no_error_code:
    push qword [rsp]
    mov qword [rsp + 8], 0
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
