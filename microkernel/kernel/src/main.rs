//! The capability microkernel, at EL2 on aarch64 (docs/DESIGN.md, "Privilege split" and "Kernel
//! objects and the decode/perform rule").
//!
//! Boot: identity-map the board, configure EL2, bring up the GIC, instantiate the system the
//! boot description names, and enter the highest-priority server. From then on the kernel only
//! runs on exceptions from EL0 (`trap.rs`).
#![no_std]
#![no_main]

mod arch;
mod boot;
mod boot_alloc;
mod console;
mod guest;
mod loader;
mod log;
mod plat;
mod state;
mod timers;
mod trap;
mod vcpu;
mod vspace;

use arch::{Arch, Current};

/// Exit status of a kernel panic.
const STATUS_KERNEL_PANIC: u64 = 101;

#[unsafe(no_mangle)]
extern "C" fn kernel_main() -> ! {
    Current::init_early();
    kprintln!(
        "hvkernel {} at EL2: capability microkernel hypervisor",
        env!("CARGO_PKG_VERSION")
    );
    Current::init();
    log::init();
    let mut memory = boot_alloc::BootAllocator::new();
    let kernel = boot::instantiate(&mut memory);
    kprintln!(
        "kernel: system `{}`: {} servers, {} endpoints, {} notifications, {} KiB free",
        kernel.name,
        kernel.images.len(),
        kernel.system.endpoints.len(),
        kernel.system.notifications.len(),
        memory.free_pages() * 4
    );
    defmt::info!(
        "boot: {} servers, {} endpoints, {} free pages",
        kernel.images.len(),
        kernel.system.endpoints.len(),
        memory.free_pages()
    );
    for line in kernel.system.irqs.iter() {
        Current::unmask_irq(line.intid);
    }
    let kernel = state::KERNEL.init(kernel);
    trap::enter_first_thread(kernel)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    kprintln!("KERNEL PANIC: {info}");
    Current::system_off(STATUS_KERNEL_PANIC)
}
