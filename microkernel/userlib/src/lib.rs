//! The runtime every server links: its entry point, system-call stubs, IPC-buffer access,
//! capability lookup by manifest name, console output, the serve loop ([`server`]), and a panic
//! handler that turns a panic into a fault the supervisor sees.
//!
//! A server is `#![no_std] #![no_main]` and names its main function with [`entry!`]; a server
//! that answers a protocol runs [`server::run`] from it.
#![no_std]

pub mod caps;
pub mod console;
pub mod ipc_buffer;
mod log;
pub mod server;
pub mod syscall;
pub mod transport;

pub use caps::{cap, server_name};
pub use transport::Kernel;

core::arch::global_asm!(
    r#"
    .section .text.start, "ax"
    .global _start
_start:
    /* The kernel set SP to the top of the stack; bss and the stack are zero. */
    mov     x29, xzr
    mov     x30, xzr
    bl      __userlib_start
1:  brk     #2
    b       1b
"#
);

unsafe extern "Rust" {
    /// The server's main function, defined by [`entry!`].
    safe fn __server_main() -> !;
}

#[unsafe(no_mangle)]
extern "C" fn __userlib_start() -> ! {
    __server_main()
}

/// Names the server's main function: `userlib::entry!(main);` with `fn main() -> !`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        fn __server_main() -> ! {
            $main()
        }
    };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("PANIC in {}: {}", server_name(), info);
    // A breakpoint is a fault the kernel reports to the supervisor as `Panic`.
    loop {
        // SAFETY: `brk` only raises a debug exception, which the kernel turns into a fault
        // message; it touches no memory.
        unsafe { core::arch::asm!("brk #1") };
    }
}

/// Deliberately touches an address outside the server's VSpace (fault-injection tests).
pub fn crash_with_bad_access() -> ! {
    loop {
        // SAFETY: none is claimed: the access is meant to fault. The address is in the unmapped
        // guard range below the boot-info page, so no memory of this server is touched.
        unsafe { core::ptr::read_volatile(0x0000_8000 as *const u64) };
    }
}

/// The server's state page (`state:<server>`, which the manifest compiler maps read-write at
/// `abi::layout::STATE_PAGE_VA` into every device server and every vmm, and which outlives the
/// server's restarts: docs/ARCHITECTURE.md, "Restart-safe state"; its record format is
/// `ipc::state`). The first call gets it; later calls get `None`, so there is never more than
/// one reference to it.
///
/// # Safety
///
/// Only a server the compiler gives a state page may call this: a device server (the boot
/// info lists a device for it, `bootdesc::bootinfo::for_each_device`) or a vmm (it holds an
/// `exits:<vm>` capability); elsewhere the address is unmapped and the first access faults.
pub unsafe fn state_page() -> Option<&'static mut [u8]> {
    use core::sync::atomic::{AtomicBool, Ordering};
    static TAKEN: AtomicBool = AtomicBool::new(false);
    if TAKEN.swap(true, Ordering::Relaxed) {
        return None;
    }
    // SAFETY: the page is mapped read-write at STATE_PAGE_VA for the server's whole life
    // (the caller's contract), only this server maps it, and TAKEN makes this the only
    // reference to it.
    Some(unsafe {
        core::slice::from_raw_parts_mut(
            abi::layout::STATE_PAGE_VA as *mut u8,
            abi::layout::PAGE_SIZE as usize,
        )
    })
}

/// Stops the whole system with `status` (needs the manifest's `system_control`).
pub fn system_off(status: u64) -> ! {
    let system = cap("system");
    let (info, _) = syscall::invoke(system, abi::InvocationLabel::SystemOff, [status, 0, 0, 0]);
    panic!("the kernel refused SystemOff (error {})", info.label());
}
