//! Boot entry, exception vectors, and the user-context save/restore: all of the kernel's
//! assembly.
//!
//! While a user thread runs, SP_EL2 points at that thread's saved [`UserContext`] (the first
//! field of its TCB), so an exception from EL0 stores the user registers straight into the TCB
//! and then switches to the kernel stack (seL4's arm64 scheme). Leaving the kernel loads a
//! context and leaves SP_EL2 pointing at it for the next entry. TPIDR_EL0 is part of the
//! context: EL0 can write it, so it must never pass from one thread to the next.
//!
//! [`UserContext`]: kernel_core::tcb::UserContext

use core::arch::global_asm;

/// Exception kinds passed from the vectors to the Rust handler (first argument).
pub const KIND_SYNC: u64 = 0;
/// An IRQ taken from EL0.
pub const KIND_IRQ: u64 = 1;
/// An FIQ from EL0 or EL1 (this platform routes no interrupt as FIQ: a spurious one is
/// ignored, never blamed on the thread that ran).
pub const KIND_FIQ: u64 = 2;
/// An SError from EL0 or EL1: a guest's is a typed exit for its vmm; a server's is its fault.
pub const KIND_SERROR: u64 = 3;

// Boot: QEMU enters here at EL2, MMU off, on the boot CPU.
global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    msr     daifset, #0xf
    mrs     x19, CurrentEL
    lsr     x19, x19, #2
    cmp     x19, #2
    b.ne    9f
    adrp    x0, __stack_top
    add     x0, x0, :lo12:__stack_top
    mov     sp, x0
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
1:  cmp     x0, x1
    b.hs    2f
    str     xzr, [x0], #8
    b       1b
2:  bl      kernel_main
9:  wfe
    b       9b
"#
);

// The vector table (ARM ARM D1.10.2, Table D1-7: offsets from VBAR_EL2). Each entry is 0x80
// bytes. Entries from EL0 (AArch64) save x0/x1, load the kind and share one save routine.
global_asm!(
    r#"
    .macro kernel_vector
    .balign 0x80
    b       kernel_exception_entry
    .endm

    .macro lower_vector kind
    .balign 0x80
    stp     x0, x1, [sp, #16 * 0]
    mov     x0, #\kind
    b       lower_exception_entry
    .endm

    .section .text.vectors, "ax"
    .balign 2048
    .global exception_vectors
exception_vectors:
    /* Current EL with SP_EL0: never used by the kernel. */
    kernel_vector
    kernel_vector
    kernel_vector
    kernel_vector
    /* Current EL with SP_ELx: a kernel bug (the kernel runs with interrupts masked). */
    kernel_vector
    kernel_vector
    kernel_vector
    kernel_vector
    /* Lower EL, AArch64: system calls, faults, interrupts from servers. */
    lower_vector 0
    lower_vector 1
    lower_vector 2
    lower_vector 3
    /* Lower EL, AArch32: not supported (HCR_EL2.RW = 1 and servers are AArch64). */
    kernel_vector
    kernel_vector
    kernel_vector
    kernel_vector

lower_exception_entry:
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
    mrs     x9, sp_el0
    stp     x30, x9, [sp, #16 * 15]
    mrs     x9, elr_el2
    mrs     x10, spsr_el2
    stp     x9, x10, [sp, #16 * 16]
    mrs     x9, tpidr_el0
    str     x9, [sp, #16 * 17]
    mov     x1, sp
    adrp    x9, __stack_top
    add     x9, x9, :lo12:__stack_top
    mov     sp, x9
    bl      handle_lower_exception
    /* fall through: x0 = the context to resume */

    .global restore_user_context
restore_user_context:
    mov     sp, x0
    ldp     x9, x10, [sp, #16 * 16]
    msr     elr_el2, x9
    msr     spsr_el2, x10
    ldr     x9, [sp, #16 * 17]
    msr     tpidr_el0, x9
    ldp     x30, x9, [sp, #16 * 15]
    msr     sp_el0, x9
    ldp     x0, x1, [sp, #16 * 0]
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x19, [sp, #16 * 9]
    ldp     x20, x21, [sp, #16 * 10]
    ldp     x22, x23, [sp, #16 * 11]
    ldp     x24, x25, [sp, #16 * 12]
    ldp     x26, x27, [sp, #16 * 13]
    ldp     x28, x29, [sp, #16 * 14]
    eret

kernel_exception_entry:
    adrp    x9, __stack_top
    add     x9, x9, :lo12:__stack_top
    mov     sp, x9
    bl      handle_kernel_exception
1:  wfe
    b       1b
"#
);

unsafe extern "C" {
    /// Loads `context` into the user registers and returns to EL0 through it.
    ///
    /// # Safety
    /// 1. `context` points at the `UserContext` of a thread whose VSpace is installed.
    /// 2. Nothing on the kernel stack is live: the stack is abandoned.
    pub fn restore_user_context(context: *mut kernel_core::tcb::UserContext) -> !;
    /// The vector table, installed in VBAR_EL2.
    pub static exception_vectors: u8;
}
