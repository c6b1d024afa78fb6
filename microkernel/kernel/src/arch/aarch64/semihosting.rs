//! Arm semihosting (Arm DUI 0003 / "Semihosting for AArch32 and AArch64"): the way the system
//! ends QEMU with its own exit status (`-semihosting-config enable=on,target=native`).

const SYS_OPEN: u64 = 0x01;
const SYS_WRITE: u64 = 0x05;
const SYS_EXIT_EXTENDED: u64 = 0x20;
/// SYS_OPEN mode 5: "wb".
const MODE_WRITE_BINARY: u64 = 5;

/// Issues one semihosting call with the parameter block `block`.
fn call(operation: u64, block: &[u64]) -> u64 {
    let result: u64;
    // SAFETY: the semihosting call reads the parameter block (and the memory it points at),
    // all of which outlives the call; it writes only x0.
    unsafe {
        core::arch::asm!("hlt #0xf000", inout("x0") operation => result, in("x1") block.as_ptr(), options(nostack));
    }
    result
}

/// Opens (truncating) a host file for writing; `None` when the host refuses.
pub fn open_for_writing(path: &core::ffi::CStr) -> Option<u64> {
    let bytes = path.to_bytes();
    let handle = call(
        SYS_OPEN,
        &[bytes.as_ptr() as u64, MODE_WRITE_BINARY, bytes.len() as u64],
    );
    (handle as i64 >= 0).then_some(handle)
}

/// Writes bytes to an open host file; returns whether all were written.
pub fn write(handle: u64, bytes: &[u8]) -> bool {
    call(
        SYS_WRITE,
        &[handle, bytes.as_ptr() as u64, bytes.len() as u64],
    ) == 0
}
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
