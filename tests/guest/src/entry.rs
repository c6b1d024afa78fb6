//! Boot entry and the EL1 exception vectors: all of the guest's assembly.
//!
//! The hypervisor (or QEMU) enters `_start` at EL1h with the MMU and caches off and DAIF masked
//! (docs/GUEST-ABI.md, "Boot state"). `_start` records that state for the boot check before
//! changing any of it, then sets the stack, VBAR_EL1 and CPACR_EL1.FPEN (before any Rust code:
//! this is the hard-float target and the compiler uses SIMD registers freely), zeroes `.bss`
//! and calls `guest_main`.
//!
//! Every vector saves the complete interrupted state into an [`ExceptionFrame`] on the stack:
//! `x0..x30`, ELR/SPSR, FPCR/FPSR and `q0..q31`. The FP/SIMD part matters because exceptions
//! are taken in the middle of compiled code (an `hvc` that turns out to be undefined, the hole
//! access) whose live vector registers the Rust handler would otherwise clobber. The handler
//! may edit the frame (skip an instruction, set `x0`) before it is restored.

use core::arch::global_asm;

/// The state saved by a vector, in the order the assembly below stores it.
#[repr(C)]
pub struct ExceptionFrame {
    /// `x0..x30` of the interrupted code.
    pub x: [u64; 31],
    /// ELR_EL1: where `eret` returns to.
    pub elr: u64,
    /// SPSR_EL1: the interrupted PSTATE.
    pub spsr: u64,
    /// FPCR of the interrupted code.
    pub fpcr: u64,
    /// FPSR of the interrupted code.
    pub fpsr: u64,
    _pad: u64,
    /// `q0..q31` of the interrupted code.
    pub q: [u128; 32],
}

// The offsets the assembly uses; the frame keeps the stack 16-byte aligned.
const _: () = assert!(core::mem::offset_of!(ExceptionFrame, elr) == 248);
const _: () = assert!(core::mem::offset_of!(ExceptionFrame, spsr) == 256);
const _: () = assert!(core::mem::offset_of!(ExceptionFrame, fpcr) == 264);
const _: () = assert!(core::mem::offset_of!(ExceptionFrame, q) == 288);
const _: () = assert!(core::mem::size_of::<ExceptionFrame>() == 800);

// Boot. Hands guest_main(x0 at entry, CurrentEL, DAIF, SCTLR_EL1) -- all read before this code
// changes anything, so the boot check sees what the hypervisor set up.
global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    mrs     x1, CurrentEL
    mrs     x2, daif
    mrs     x3, sctlr_el1
    msr     daifset, #0xf

    adrp    x4, __stack_top
    add     x4, x4, :lo12:__stack_top
    mov     sp, x4

    adrp    x4, guest_vectors
    add     x4, x4, :lo12:guest_vectors
    msr     vbar_el1, x4

    /* CPACR_EL1.FPEN = 0b11: no FP/SIMD traps at EL1 or EL0 (ARM ARM, CPACR_EL1). */
    mov     x4, #(3 << 20)
    msr     cpacr_el1, x4
    isb

    adrp    x4, __bss_start
    add     x4, x4, :lo12:__bss_start
    adrp    x5, __bss_end
    add     x5, x5, :lo12:__bss_end
1:  cmp     x4, x5
    b.hs    2f
    stp     xzr, xzr, [x4], #16
    b       1b
2:  bl      guest_main
3:  wfe
    b       3b
"#
);

// The vector table (ARM ARM D1.10.2, Table D1-7 "Vector offsets from vector table base
// address"): four groups of four 0x80-byte entries -- current EL with SP_EL0, current EL with
// SP_ELx, lower EL using AArch64, lower EL using AArch32 -- each group Synchronous, IRQ, FIQ,
// SError. One macro per entry; its kind (group * 4 + type) goes to the handler in x1. The
// guest runs at EL1h, so only group 1 is expected at all.
global_asm!(
    r#"
    .equ    FRAME_SIZE, 800

    .macro guest_vector kind
    .balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #16 * 0]
    mov     x1, #\kind
    b       guest_exception_entry
    .endm

    .section .text.vectors, "ax"
    .balign 2048
    .global guest_vectors
guest_vectors:
    /* Current EL with SP_EL0. */
    guest_vector 0
    guest_vector 1
    guest_vector 2
    guest_vector 3
    /* Current EL with SP_ELx: the guest's own exceptions. */
    guest_vector 4
    guest_vector 5
    guest_vector 6
    guest_vector 7
    /* Lower EL using AArch64: the guest has no EL0 code. */
    guest_vector 8
    guest_vector 9
    guest_vector 10
    guest_vector 11
    /* Lower EL using AArch32. */
    guest_vector 12
    guest_vector 13
    guest_vector 14
    guest_vector 15

    .text
    .balign 4
guest_exception_entry:
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
    mrs     x2, elr_el1
    stp     x30, x2, [sp, #16 * 15]
    mrs     x2, spsr_el1
    mrs     x3, fpcr
    stp     x2, x3, [sp, #256]
    mrs     x2, fpsr
    str     x2, [sp, #272]
    add     x2, sp, #288
    stp     q0, q1, [x2, #32 * 0]
    stp     q2, q3, [x2, #32 * 1]
    stp     q4, q5, [x2, #32 * 2]
    stp     q6, q7, [x2, #32 * 3]
    stp     q8, q9, [x2, #32 * 4]
    stp     q10, q11, [x2, #32 * 5]
    stp     q12, q13, [x2, #32 * 6]
    stp     q14, q15, [x2, #32 * 7]
    stp     q16, q17, [x2, #32 * 8]
    stp     q18, q19, [x2, #32 * 9]
    stp     q20, q21, [x2, #32 * 10]
    stp     q22, q23, [x2, #32 * 11]
    stp     q24, q25, [x2, #32 * 12]
    stp     q26, q27, [x2, #32 * 13]
    stp     q28, q29, [x2, #32 * 14]
    stp     q30, q31, [x2, #32 * 15]

    mov     x0, sp
    bl      guest_handle_exception

    add     x2, sp, #288
    ldp     q0, q1, [x2, #32 * 0]
    ldp     q2, q3, [x2, #32 * 1]
    ldp     q4, q5, [x2, #32 * 2]
    ldp     q6, q7, [x2, #32 * 3]
    ldp     q8, q9, [x2, #32 * 4]
    ldp     q10, q11, [x2, #32 * 5]
    ldp     q12, q13, [x2, #32 * 6]
    ldp     q14, q15, [x2, #32 * 7]
    ldp     q16, q17, [x2, #32 * 8]
    ldp     q18, q19, [x2, #32 * 9]
    ldp     q20, q21, [x2, #32 * 10]
    ldp     q22, q23, [x2, #32 * 11]
    ldp     q24, q25, [x2, #32 * 12]
    ldp     q26, q27, [x2, #32 * 13]
    ldp     q28, q29, [x2, #32 * 14]
    ldp     q30, q31, [x2, #32 * 15]
    ldr     x2, [sp, #272]
    msr     fpsr, x2
    ldp     x2, x3, [sp, #256]
    msr     spsr_el1, x2
    msr     fpcr, x3
    ldp     x30, x2, [sp, #16 * 15]
    msr     elr_el1, x2
    ldp     x28, x29, [sp, #16 * 14]
    ldp     x26, x27, [sp, #16 * 13]
    ldp     x24, x25, [sp, #16 * 12]
    ldp     x22, x23, [sp, #16 * 11]
    ldp     x20, x21, [sp, #16 * 10]
    ldp     x18, x19, [sp, #16 * 9]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x0, x1, [sp, #16 * 0]
    add     sp, sp, #FRAME_SIZE
    eret
"#
);
