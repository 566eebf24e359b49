; boot/bench.asm: the bench's bare-assembly floors and probes, linked into the
; test image only (the Makefile's TEST_ASM): tests/guest/bench reaches them
; through the table at the end, bench_symbols_table, and its own RuntimeImports.
;
; The floor for hypercall cost: a bare loop that loads RCX, RDX and R8 and calls
; the hypercall page directly, timing each call with RDTSC: nothing cheaper can
; issue the same hypercall. tests/guest/bench/Bench.cs compares the C# API
; against it.
%include "abi.inc"
%include "x86.inc"

bits 64
extern hv_hypercall_page

; void bench_hypercall_floor(BenchFloorArgs *args)
;   args: +0 control, +8 rdx, +16 r8, +24 count, +32 ulong *samples
section .text
global bench_hypercall_floor
bench_hypercall_floor:
    PUSH_CALLEE_SAVED
    mov r12, [ARG0]
    mov r13, [ARG0 + 8]
    mov r14, [ARG0 + 16]
    mov r15, [ARG0 + 24]
    mov rbx, [ARG0 + 32]
.loop:
    lfence                      ; earlier work finishes before the first TSC read
    READ_TSC
    mov rbp, rax
    mov rcx, r12
    mov rdx, r13
    mov r8, r14
    call hv_hypercall_page
    lfence                      ; the call finishes before the second TSC read
    READ_TSC
    sub rax, rbp
    mov [rbx], rax
    add rbx, 8
    dec r15
    jnz .loop
    POP_CALLEE_SAVED
    ret

; SINT latency: an interrupt entry placed in front of the normal stub of the
; bench SINT's vector. Its first instructions read the TSC, so the time from
; the signalling hypercall to here is the delivery latency.
section .bss
align 8
global bench_entry_tsc, bench_continue, bench_exit_tsc, bench_return_rip
bench_entry_tsc: resq 1          ; TSC at the handler's first instruction
bench_continue:  resq 1          ; the stub to continue into (the normal one, or bench_sint_bare)
bench_exit_tsc:  resq 1          ; bench_sint_entry_exit: TSC right after the handler's iretq
bench_return_rip: resq 1         ; ... and where the interrupted code resumes

; [%1] = the TSC, with RAX and RDX pushed first so that the stub keeps every
; register: it pops them (rdx, then rax) when it is done with them.
%macro PUSH_AND_STAMP_TSC 1
    push rax
    push rdx
    READ_TSC
    mov %1, rax
%endmacro

section .text
global bench_sint_entry
bench_sint_entry:
    PUSH_AND_STAMP_TSC [rel bench_entry_tsc]
    pop rdx
    pop rax
    jmp [rel bench_continue]

; The same, and the handler's whole run: it also points the interrupt frame's
; RIP at bench_sint_exit, so that the handler's iretq lands there, in the
; interrupted code's context (the pushes go below its RSP, where any interrupt
; writes too), which reads the TSC and resumes the interrupted code. For the
; dispatch bench only: one interrupt at a time, on one VP.
global bench_sint_entry_exit
bench_sint_entry_exit:
    PUSH_AND_STAMP_TSC [rel bench_entry_tsc]
    mov rax, [rsp + 16]         ; the interrupted RIP, above our two pushes
    mov [rel bench_return_rip], rax
    lea rax, [rel bench_sint_exit]
    mov [rsp + 16], rax
    pop rdx
    pop rax
    jmp [rel bench_continue]

bench_sint_exit:
    pushfq                      ; the interrupted code's flags, which shl and or change
    PUSH_AND_STAMP_TSC [rel bench_exit_tsc]
    pop rdx
    pop rax
    popfq
    jmp [rel bench_return_rip]

; ---- the floor for SINT dispatch ---------------------------------------------
; A bare-assembly SINT handler that does the job of the C# receive path
; (kernel/hv/Synic.cs) for the bench SINT: save what a call into C# may clobber
; (SAVE_VOLATILE, boot/abi.inc: the same set as the interrupt entries), take
; each non-zero word of the SINT's 256-byte SIEF area with xchg and hand each
; set flag to the per-flag callback, then copy a message out of the SINT's SIM
; slot, free the slot, write EOM if the hypervisor marked another pending
; (TLFS 11.10.3) and hand the copy to the per-message callback; restore, iretq.
; The SINT is auto-EOI (TLFS 11.8.3), so no EOI. What the C# path looks up in
; the running VP's record it finds in bench_sint_floor, set by tests/guest/bench.
; tests/guest/bench/Bench.cs times it against the C# path (TSC, nested) and
; tests/guest/bench/CountMode.cs counts both (instructions, TCG).
BENCH_SINT equ 12               ; tests/guest/bench: BenchSint
SINT_VECTOR_BASE equ 0x50       ; kernel/hv/Synic.cs: VectorBase
HV_X64_MSR_EOM equ 0x40000084   ; TLFS 11.8.5
SIEF_AREA_WORDS equ 256 / 8

section .bss
align 8
global bench_sint_floor
bench_sint_floor:               ; tests/guest/bench/BenchSymbols.cs: SintFloor
.area:       resq 1             ; the SINT's SIEF area
.slot:       resq 1             ; the SINT's SIM slot (an HV_MESSAGE)
.copy:       resq 1             ; 256 bytes the message is copied to
.on_flag:    resq 1             ; void (int sint, int flag)
.on_message: resq 1             ; void (int sint, HvMessage *copy)

section .text
global bench_sint_bare
bench_sint_bare:
    SAVE_VOLATILE 0             ; the CPU's five qwords and the nine pushes keep RSP aligned
    push rbx                    ; callee-saved, kept across the callbacks
    push r12
    push r13
    push r14                    ; (and the fourth keeps RSP 16-byte aligned)
    mov rbx, [rel bench_sint_floor.area]
    mov r12, -SIEF_AREA_WORDS   ; word index - 32, counting up to 0
.word:
    cmp qword [rbx + r12 * 8 + 256], 0
    jne .take
.next:
    inc r12
    jnz .word
    mov r14, [rel bench_sint_floor.slot]
    cmp dword [r14], 0          ; HvMessageTypeNone: no message
    je .done
    mov rsi, r14
    mov rdi, [rel bench_sint_floor.copy]
    mov ecx, 256 / 8
    rep movsq
    movzx r13d, byte [r14 + 5]  ; MessageFlags, read before the slot is freed
    mov dword [r14], 0          ; free the slot: the hypervisor delivers only into a free one
    test r13d, 1                ; MessagePending
    jz .call_message
    mov ecx, HV_X64_MSR_EOM
    xor eax, eax
    xor edx, edx
    wrmsr
.call_message:
    mov ARG0d, BENCH_SINT
    mov ARG1, [rel bench_sint_floor.copy]
    CALL_C [rel bench_sint_floor.on_message]
.done:
    pop r14
    pop r13
    pop r12
    pop rbx
    RESTORE_VOLATILE 0
    iretq
.take:
    xor r13d, r13d
    xchg [rbx + r12 * 8 + 256], r13 ; take the word (xchg with memory is locked: SDM Vol 2B)
.flag:
    bsf r14, r13                ; the lowest flag left in it
    btr r13, r14
    lea eax, [r12 + SIEF_AREA_WORDS]
    shl eax, 6
    lea ARG1d, [rax + r14]      ; flag number = word * 64 + bit
    mov ARG0d, BENCH_SINT
    CALL_C [rel bench_sint_floor.on_flag]
    test r13, r13
    jnz .flag
    jmp .next

; ---- count mode (tests/guest/bench/CountMode.cs, tools/count-instructions.py) ----
; tools/count-instructions.py counts, in QEMU's exec trace, the instructions
; executed between a call of bench_count_begin and the next call of
; bench_count_end: each is a ret at its own address, a marker and nothing else.
global bench_count_begin, bench_count_end
bench_count_begin:
    ret
bench_count_end:
    ret

; void bench_count_raise_sint(void): the bench SINT's vector as a software
; interrupt. Through an interrupt gate `int n` enters like an external
; interrupt: RFLAGS saved as it was, then IF cleared (SDM Vol 3A 7.12.1.3).
; Called with IF set, as kernel/arch/InterruptGuard.cs requires of a delivery.
global bench_count_raise_sint
bench_count_raise_sint:
    int SINT_VECTOR_BASE + BENCH_SINT
    ret

; The floors of the typed hypercalls: what bare assembly must do to issue
; the same call from the same typed arguments as kernel/hv/Hypercall.cs
; (System V: rdi, rsi, rdx, rcx, r8, r9, then the stack): write the same
; input block (reserved fields zero) into the same input page, load RCX, RDX
; and R8 (TLFS 3.7) and enter the hypercall page, returning what the page
; returns. No argument checks and no bookkeeping: that is what the C# adds.
; The input and output pages come from bench_hypercall_pages (the C# reads
; the running VP's record). Count mode runs on the ELF kernel only; the PE
; build (Win64 arguments) gets a ud2 in their place.
section .bss
align 8
global bench_hypercall_pages
bench_hypercall_pages:
.input:  resq 1
.output: resq 1

section .text
global bench_floor_signal_event_direct, bench_floor_post_message_direct
global bench_floor_signal_event, bench_floor_post_message
%ifdef ABI_WIN64
bench_floor_signal_event_direct:
bench_floor_post_message_direct:
bench_floor_signal_event:
bench_floor_post_message:
    ud2
%else
; (HvStatus, bool NewlySignaled in rdx) (ulong partition, uint vp, byte vtl, byte sint, ushort flag)
bench_floor_signal_event_direct:
    mov rax, [rel bench_hypercall_pages.input]
    mov [rax], rdi              ; HV_SIGNAL_EVENT_DIRECT_INPUT: TargetPartition
    mov [rax + 8], esi          ; TargetVp
    mov [rax + 12], dl          ; TargetVtl
    mov [rax + 13], cl          ; TargetSint
    mov [rax + 14], r8w         ; FlagNumber
    mov rdx, rax                ; input GPA (identity-mapped)
    mov r8, [rel bench_hypercall_pages.output]
    mov ecx, 0xC0               ; HvCallSignalEventDirect, memory form
    call hv_hypercall_page
    movzx edx, byte [r8]        ; NewlySignaled (TLFS: the hypercall preserves R8)
    ret

; HvStatus (ulong partition, uint vp, byte vtl, byte sint, uint type, byte *payload, uint size)
bench_floor_post_message_direct:
    mov rax, [rel bench_hypercall_pages.input]
    mov [rax], rdi              ; HV_POST_MESSAGE_DIRECT_INPUT: PartitionId
    mov [rax + 8], esi          ; VpIndex
    movzx edx, dl
    mov [rax + 12], edx         ; Vtl and three zero bytes of padding
    movzx ecx, cl
    mov [rax + 16], ecx         ; Sint
    mov [rax + 20], r8d         ; Message.Header.MessageType
    mov ecx, [rsp + 8]          ; the seventh argument: the payload size
    mov [rax + 24], ecx         ; PayloadSize, and MessageFlags and the reserved bytes zero
    mov qword [rax + 28], 0     ; Sender
    mov dword [rax + 276], 0    ; the padding after the message
    lea rdi, [rax + 36]         ; Message.Payload
    mov rsi, r9
    rep movsb
    mov rdx, rax
    xor r8d, r8d                ; no output
    mov ecx, 0xC1               ; HvCallPostMessageDirect, memory form
    jmp hv_hypercall_page       ; the page's ret returns to our caller

; HvStatus (uint connection, ushort flag): register form, RDX = ConnectionId | FlagNumber << 32
bench_floor_signal_event:
    movzx edx, si
    shl rdx, 32
    mov eax, edi
    or rdx, rax
    xor r8d, r8d
    mov ecx, 0x1005D            ; HvCallSignalEvent, fast (bit 16)
    jmp hv_hypercall_page

; HvStatus (uint connection, uint type, byte *payload, uint size)
bench_floor_post_message:
    mov rax, [rel bench_hypercall_pages.input]
    mov [rax], edi              ; HV_POST_MESSAGE_INPUT: ConnectionId
    mov dword [rax + 4], 0      ; reserved
    mov [rax + 8], esi          ; MessageType
    mov [rax + 12], ecx         ; PayloadSize
    lea rdi, [rax + 16]         ; Payload
    mov rsi, rdx
    rep movsb
    mov rdx, rax
    xor r8d, r8d
    mov ecx, 0x5C               ; HvCallPostMessage, memory form
    jmp hv_hypercall_page
%endif

; ---- what tests/guest/bench/BenchSymbols.cs reads, in its field order ------
section .rodata
align 8
bench_symbols:
    dq bench_sint_entry, bench_sint_entry_exit, bench_sint_bare
    dq bench_continue, bench_entry_tsc, bench_exit_tsc
    dq bench_sint_floor, bench_hypercall_pages

section .text
; BenchSymbols *bench_symbols_table(void)
global bench_symbols_table
bench_symbols_table:
    lea rax, [rel bench_symbols]
    ret
