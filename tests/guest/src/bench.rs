//! Exit round trips seen from the guest, measured in nanoseconds of virtual time from the
//! generic timer's virtual counter (under `cargo xtask bench`'s `-icount shift=0` one virtual
//! nanosecond is one instruction, EL2's included; otherwise they are only ticks, and printed as
//! such): a PL011 flag read and a PL011 ILPR write (stage-2 abort → kernel → vmm → mmu-server "not memory" → PL011 server → back), a PSCI
//! call (hvc → kernel → vmm → back), and the first touch of a 2 MiB block of RAM (stage-2 abort
//! → vmm → mmu-server → memory-backing server, which populates the chunk and answers Retry, then
//! lends the frame → mapped as a block → back). Printed after the checks; the figures mean
//! something only under `-icount`, and no verdict depends on them.

use crate::hypercall;
use crate::uart::Pl011;

/// Rounds per figure: enough that the counter's 16 ns step (62.5 MHz) is below one tick of the
/// average.
const ROUNDS: u64 = 256;

/// Nanoseconds of virtual time since an arbitrary origin. The virtual counter, not the PMU's
/// cycle counter: a guest's PMU accesses trap to the hypervisor, the generic timer's counter
/// does not.
fn cycles() -> u64 {
    let (count, frequency): (u64, u64);
    // SAFETY: reading the virtual counter and its frequency has no side effect; both are
    // readable at EL1 whatever CNTHCTL_EL2 says about the physical timer.
    unsafe {
        core::arch::asm!("isb", "mrs {}, cntvct_el0", "mrs {}, cntfrq_el0",
            out(reg) count, out(reg) frequency, options(nostack));
    }
    // 128-bit product: no overflow for centuries of counting.
    (u128::from(count) * 1_000_000_000 / u128::from(frequency.max(1))) as u64
}

/// Measures and prints both round trips when a hypervisor is there.
pub fn run(hypervisor: bool) {
    if !hypervisor {
        return;
    }
    let uart = Pl011::console();
    for _ in 0..8 {
        uart.flags();
        let _ = hypercall::psci_version();
    }
    let start = cycles();
    for _ in 0..ROUNDS {
        uart.flags();
    }
    let mmio = (cycles() - start) / ROUNDS;
    let start = cycles();
    for round in 0..ROUNDS {
        uart.write_low_power_counter(round as u32 & 0xff);
    }
    let mmio_write = (cycles() - start) / ROUNDS;
    let start = cycles();
    for _ in 0..ROUNDS {
        let _ = hypercall::psci_version();
    }
    let hvc = (cycles() - start) / ROUNDS;
    let start = cycles();
    for block in crate::layout::BENCH_BLOCKS {
        let address = crate::layout::RAM_BASE + block * crate::layout::BLOCK_SIZE;
        // SAFETY: `address` is inside the guest's RAM, mapped by its stage 1 (mmu.rs), in a
        // block no check uses (layout.rs); a read changes nothing.
        unsafe { core::ptr::read_volatile(address as *const u64) };
    }
    let first_touch = (cycles() - start) / crate::layout::BENCH_BLOCKS.len() as u64;
    crate::println!("guest mmio read round trip: {mmio} ticks");
    crate::println!("guest mmio write round trip: {mmio_write} ticks");
    crate::println!("guest hvc round trip: {hvc} ticks");
    crate::println!("guest stage-2 fault, first touch of a 2 MiB block: {first_touch} ticks");
}
