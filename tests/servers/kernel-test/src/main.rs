//! Kernel behaviour that needs no protocol, one scenario per manifest name:
//!
//! - `spin-a` / `spin-b`: two CPU-bound servers at one priority. `spin-a` runs first and polls a
//!   notification without ever blocking; only timer preemption (round robin within a priority)
//!   lets `spin-b` run and signal it.
//! - `irq-test`: a device's interrupt line delivered to a notification. The server sets the
//!   match register of QEMU virt's PL031 real-time clock (mapped into it by its test manifest)
//!   one second ahead and receives the signal; checks that the line stays masked while the RTC
//!   still asserts it, until acknowledged; clears the RTC, acknowledges, sets a second match and
//!   receives it too.
#![no_std]
#![no_main]

use abi::InvocationLabel;
use userlib::{println, syscall};

userlib::entry!(main);

fn main() -> ! {
    match userlib::server_name() {
        "spin-a" => spin_a(),
        "spin-b" => spin_b(),
        "irq-test" => irq_test(),
        other => {
            println!("kernel-test: no scenario called `{other}`");
            userlib::system_off(1)
        }
    }
}

fn spin_a() -> ! {
    let ready = userlib::cap("ready");
    let mut polls = 0u64;
    loop {
        polls += 1;
        let (word, _) = syscall::poll(ready);
        if word != 0 {
            println!(
                "spin-a: got spin-b's signal {word:#x} after {polls} polls: preempted within its priority"
            );
            userlib::system_off(0);
        }
    }
}

fn spin_b() -> ! {
    println!("spin-b: running while spin-a spins");
    syscall::signal(userlib::cap("ready"));
    loop {
        syscall::yield_now();
    }
}

/// The PL031 real-time clock (ARM DDI 0224), where the manifest maps it; its line is SPI 2.
mod rtc {
    const BASE: usize = 0x4000_0000;
    /// Data register: the current count, in seconds (read-only).
    const DR: usize = 0x000;
    /// Match register: the interrupt is raised when the count reaches it.
    const MR: usize = 0x004;
    /// Interrupt mask set/clear: bit 0 set = the interrupt is enabled.
    const IMSC: usize = 0x010;
    /// Masked interrupt status: bit 0 = the line is asserted.
    const MIS: usize = 0x018;
    /// Interrupt clear: writing bit 0 clears the interrupt.
    const ICR: usize = 0x01C;

    fn read(offset: usize) -> u32 {
        // SAFETY: the manifest maps the RTC's page at BASE, device memory, for this server
        // only; every offset used is a 32-bit register inside it, and reading one has no
        // effect.
        unsafe { ((BASE + offset) as *const u32).read_volatile() }
    }

    fn write(offset: usize, value: u32) {
        // SAFETY: as in `read`; writes change only the RTC's match and interrupt state.
        unsafe { ((BASE + offset) as *mut u32).write_volatile(value) }
    }

    /// Raises the interrupt when the count next ticks: QEMU counts one second from this write
    /// (hardware, up to one). Matching the current count would fire at once.
    pub fn arm() {
        write(MR, read(DR).wrapping_add(1));
        write(IMSC, 1);
    }

    /// Whether the RTC is asserting its line.
    pub fn asserted() -> bool {
        read(MIS) & 1 != 0
    }

    /// Stops asserting the line (the device side of acknowledging it).
    pub fn clear() {
        write(ICR, 1);
    }
}

fn irq_test() -> ! {
    let events = userlib::cap("irq-events");
    let handler = userlib::cap("irq:rtc");
    rtc::arm();
    let (word, _) = syscall::wait(events);
    println!(
        "irq-test: first RTC interrupt delivered with badge {word:#x} (RTC asserting: {})",
        rtc::asserted()
    );
    // The RTC keeps its line asserted until cleared: were the line unmasked, the kernel would
    // take it again at once.
    for _ in 0..100 {
        syscall::yield_now();
    }
    let (masked, _) = syscall::poll(events);
    let still_asserted = rtc::asserted();
    println!(
        "irq-test: before acknowledging, the line stays masked (word {masked:#x}) while the RTC \
         still asserts it ({still_asserted})"
    );
    rtc::clear();
    let (info, _) = syscall::invoke(handler, InvocationLabel::IrqAck, [0; 4]);
    rtc::arm();
    let (again, _) = syscall::wait(events);
    println!(
        "irq-test: after acknowledging (error {}), the next RTC match delivered again with badge \
         {again:#x}",
        info.is_error()
    );
    rtc::clear();
    let passed = word == 0x1 && masked == 0 && still_asserted && !info.is_error() && again == 0x1;
    userlib::system_off(if passed { 0 } else { 1 })
}
