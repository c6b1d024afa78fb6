//! Exit round trips seen from the guest, measured in nanoseconds of virtual time from the
//! generic timer's virtual counter (under `cargo xtask bench`'s `-icount shift=0` one virtual
//! nanosecond is one instruction, EL2's included; otherwise they are only ticks, and printed as
//! such): a PL011 flag read and a PL011 ILPR write (stage-2 abort → kernel → vmm → mmu-server "not memory" → PL011 server → back, or
//! the kernel's MMIO fast path once the first access left a marker), a virtio QueueNotify kick
//! (a doorbell on the fast path, when the manifest gives a virtio device), a PSCI
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

/// Kicks the first virtio transport's QueueNotify `ROUNDS` times, when a virtio device is
/// there (its MagicValue reads "virt"): on the fast path a doorbell, which signals the device
/// server and lets the guest run on. The console is not driven (no DRIVER_OK), so the device
/// ignores each kick (virtio 1.2 section 3.1.1); what is measured is the guest's cost of one,
/// and the device server's wake-up to ignore it, which runs before the guest does.
fn doorbell_round_trip() -> Option<u64> {
    use crate::exception::{self, Expect};
    use crate::layout::{VIRTIO_BASE, VIRTIO_QUEUE_NOTIFY};
    let mut magic: u32 = 0;
    // With no device there the hypervisor answers the read with an abort: armed, recorded and
    // stepped over (exception.rs), and then there is nothing to measure.
    exception::expect(Expect::DataAbort);
    // SAFETY: MagicValue of the first transport, mapped Device by mmu.rs, so the load is done
    // exactly once; it returns a value or takes the abort armed above, which the handler steps
    // over. Not `readonly`: the handler writes the exception module's atomics meanwhile.
    unsafe {
        core::arch::asm!(
            "ldr {magic:w}, [{address}]",
            address = in(reg) VIRTIO_BASE,
            magic = inout(reg) magic,
            options(nostack),
        );
    }
    if exception::take_abort().is_some() || magic != u32::from_le_bytes(*b"virt") {
        return None;
    }
    let notify = (VIRTIO_BASE + VIRTIO_QUEUE_NOTIFY) as *mut u32;
    for _ in 0..8 {
        // SAFETY: QueueNotify of the device found above; before DRIVER_OK it is ignored.
        unsafe { core::ptr::write_volatile(notify, 1) };
    }
    let start = cycles();
    for _ in 0..ROUNDS {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(notify, 1) };
    }
    Some((cycles() - start) / ROUNDS)
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
    let doorbell = doorbell_round_trip();
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
    if let Some(doorbell) = doorbell {
        crate::println!("guest mmio doorbell write: {doorbell} ticks");
    }
    crate::println!("guest hvc round trip: {hvc} ticks");
    crate::println!("guest stage-2 fault, first touch of a 2 MiB block: {first_touch} ticks");
}
