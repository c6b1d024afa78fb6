//! Exit round trips seen from the guest, measured with the cycle counter (which counts
//! instructions, EL2's included, under `cargo xtask bench`'s `-icount shift=0`): a PL011 flag
//! read (stage-2 abort → kernel → vmm → mmu-server "not memory" → PL011 server → back), a PSCI
//! call (hvc → kernel → vmm → back), and the first touch of a 2 MiB block of RAM (stage-2 abort
//! → vmm → mmu-server → memory-backing server, which populates the chunk and answers Retry, then
//! lends the frame → mapped as a block → back). Printed after the checks; the figures mean
//! something only under `-icount`, and no verdict depends on them.

use crate::hypercall;
use crate::uart::Pl011;

const ROUNDS: u64 = 64;

fn cycles() -> u64 {
    let value: u64;
    // SAFETY: reading PMCCNTR_EL0 has no side effect; the hypervisor leaves the PMU
    // accessible (MDCR_EL2.TPM clear) and counting.
    unsafe { core::arch::asm!("isb", "mrs {}, pmccntr_el0", out(reg) value, options(nostack)) };
    value
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
    crate::println!("guest mmio read round trip: {mmio} instructions");
    crate::println!("guest hvc round trip: {hvc} instructions");
    crate::println!(
        "guest stage-2 fault, first touch of a 2 MiB block: {first_touch} instructions"
    );
}
