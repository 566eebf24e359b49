; boot/bench.asm: the floor for hypercall cost. A bare loop that loads RCX,
; RDX and R8 and calls the hypercall page directly, timing each call with
; RDTSC: nothing cheaper can issue the same hypercall. kernel/bench compares
; the C# API against it.
%include "abi.inc"

bits 64
extern hv_hypercall_page

; void bench_hypercall_floor(BenchFloorArgs *args)
;   args: +0 control, +8 rdx, +16 r8, +24 count, +32 ulong *samples
section .text
global bench_hypercall_floor
bench_hypercall_floor:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    mov r12, [ARG0]
    mov r13, [ARG0 + 8]
    mov r14, [ARG0 + 16]
    mov r15, [ARG0 + 24]
    mov rbx, [ARG0 + 32]
.loop:
    lfence                      ; earlier work finishes before the first TSC read
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov rbp, rax
    mov rcx, r12
    mov rdx, r13
    mov r8, r14
    call hv_hypercall_page
    lfence                      ; the call finishes before the second TSC read
    rdtsc
    shl rdx, 32
    or rax, rdx
    sub rax, rbp
    mov [rbx], rax
    add rbx, 8
    dec r15
    jnz .loop
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret

; SINT latency: an interrupt entry placed in front of the normal stub of the
; bench SINT's vector. Its first instructions read the TSC, so the time from
; the signalling hypercall to here is the delivery latency.
section .bss
align 8
global bench_entry_tsc, bench_continue, bench_flag_word, bench_flag_tsc
bench_entry_tsc: resq 1          ; TSC at the handler's first instruction
bench_continue:  resq 1          ; the normal stub to continue into
bench_flag_word: resq 1          ; bare handler: the SIEF word to take
bench_flag_tsc:  resq 1          ; bare handler: TSC once it holds the flag

section .text
global bench_sint_entry
bench_sint_entry:
    push rax
    push rdx
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov [rel bench_entry_tsc], rax
    pop rdx
    pop rax
    jmp [rel bench_continue]

; The floor for dispatch: a bare handler that does only what any SINT handler
; must before it can call a per-flag callback: take the SIEF word atomically
; and find the flag. It stamps the TSC at entry and at that point, then
; returns (the SINT is auto-EOI).
global bench_sint_bare
bench_sint_bare:
    push rax
    push rdx
    push rcx
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov [rel bench_entry_tsc], rax
    mov rcx, [rel bench_flag_word]
    xor eax, eax
    xchg [rcx], rax
    bsf rax, rax
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov [rel bench_flag_tsc], rax
    pop rcx
    pop rdx
    pop rax
    iretq
