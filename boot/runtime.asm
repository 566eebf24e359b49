; boot/runtime.asm: the few runtime symbols that ilc's generated code calls
; and that must be assembly because of their register contracts.

%include "abi.inc"

bits 64
section .text

; There is no garbage collector, so write barriers are plain stores.
; void RhpAssignRef(object *dst, object value)
global RhpAssignRef, RhpCheckedAssignRef
RhpAssignRef:
RhpCheckedAssignRef:
    mov [ARG0], ARG1
    ret

; RhpByRefAssignRef has a fixed contract on every ABI: copy [rsi] to [rdi]
; and advance both by 8 (it is called from struct copies that rely on that).
global RhpByRefAssignRef
RhpByRefAssignRef:
    mov rcx, [rsi]
    mov [rdi], rcx
    add rdi, 8
    add rsi, 8
    ret

; Generated code polls here when RhpTrapThreads is non-zero; with no GC it never is.
global RhpGcPoll
RhpGcPoll:
    ret

section .data
align 8
global RhpTrapThreads, __security_cookie
RhpTrapThreads: dd 0, 0
; Stack-protector canary for stackalloc frames. A fixed value is weaker than a
; random one, but still catches a linear overrun.
__security_cookie: dq 0x2B992DDFA232C0DE

; The object heap: `new` bump-allocates here (kernel/runtime/Heap.cs). Nothing
; is ever freed, which suits a kernel that allocates its objects at boot.
section .bss
align 16
global kernel_heap, kernel_heap_end
kernel_heap: resb 1024 * 1024
kernel_heap_end:
