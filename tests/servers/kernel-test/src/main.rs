//! Kernel behaviour that needs no protocol, one scenario per manifest name:
//!
//! - `spin-a` / `spin-b`: two CPU-bound servers at one priority. `spin-a` runs first and polls a
//!   notification without ever blocking; only timer preemption (round robin within a priority)
//!   lets `spin-b` run and signal it.
//! - `irq-test`: an interrupt line delivered to a notification. The server makes the line
//!   pending through the GIC distributor (mapped into it by its test manifest), receives the
//!   signal, checks that the line stays masked until acknowledged, acknowledges, and receives
//!   it again.
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

/// Where the manifest maps the GIC distributor, and the line it gives this server.
const GICD: usize = 0x4000_0000;
const GICD_ISPENDR: usize = 0x200;
const LINE: u32 = 40;

fn make_pending() {
    let register = (GICD + GICD_ISPENDR + (LINE as usize / 32) * 4) as *mut u32;
    // SAFETY: the manifest maps the distributor's 64 KiB at GICD for this server only;
    // ISPENDR1 is inside it, and setting a pending bit has no memory effect.
    unsafe { register.write_volatile(1 << (LINE % 32)) };
}

fn irq_test() -> ! {
    let events = userlib::cap("irq-events");
    let handler = userlib::cap("irq:test-line");
    make_pending();
    let (word, _) = syscall::wait(events);
    println!("irq-test: first interrupt delivered with badge {word:#x}");
    make_pending();
    for _ in 0..100 {
        syscall::yield_now();
    }
    let (masked, _) = syscall::poll(events);
    println!("irq-test: before acknowledging, the line stays masked (word {masked:#x})");
    let (info, _) = syscall::invoke(handler, InvocationLabel::IrqAck, [0; 4]);
    let (word, _) = syscall::wait(events);
    println!(
        "irq-test: after acknowledging (error {}), delivered again with badge {word:#x}",
        info.is_error()
    );
    userlib::system_off(if masked == 0 && word == 0x1 && !info.is_error() {
        0
    } else {
        1
    })
}
