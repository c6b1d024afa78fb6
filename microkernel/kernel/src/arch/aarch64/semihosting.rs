//! Arm semihosting (Arm DUI 0003 / "Semihosting for AArch32 and AArch64"): the way the system
//! ends QEMU with its own exit status (`-semihosting-config enable=on,target=native`).

const SYS_EXIT_EXTENDED: u64 = 0x20;
/// ADP_Stopped_ApplicationExit: a normal exit with a status.
const APPLICATION_EXIT: u64 = 0x20026;

/// Ends the emulator with `status`. On a machine without semihosting the `hlt` is an undefined
/// instruction and the kernel's own exception handler stops the CPU.
pub fn exit(status: u64) -> ! {
    let block = [APPLICATION_EXIT, status];
    // SAFETY: the semihosting call reads the two-word parameter block, which lives on this
    // stack frame for the duration of the call.
    unsafe {
        core::arch::asm!("hlt #0xf000", in("x0") SYS_EXIT_EXTENDED, in("x1") block.as_ptr(), options(nostack));
    }
    loop {
        aarch64_cpu::asm::wfe();
    }
}
