//! A change of the VM's memory map under the stage-2 MMIO markers (docs/MMIO.md,
//! "Generations"): the page of the first virtio transport, which the guest has already
//! accessed (so stage 2 holds a marker there and its accesses take the kernel's fast path),
//! becomes RAM through HV_RAM_ALIAS (the vmm sets memory slot 1 over it; the mmu-server brackets
//! the change, which moves the VM's generation on), and the guest must see RAM there: the
//! pattern it wrote into a page of its own through its RAM address. Writes through the alias
//! land in that page. Then the alias is removed and the page is the device again (its
//! MagicValue). A bad alias (an unaligned IPA) is refused with INVALID_PARAMETER.
//!
//! The alias is mapped Device at stage 1 (the transports' block, `mmu.rs`) and the page Normal
//! write-back through the RAM map, so the data cache is cleaned and invalidated by VA around
//! each side's accesses (ARM ARM D7.4, "Cache maintenance").

use crate::checks::Outcome;
use crate::exception::{self, Expect};
use crate::hypercall::{self, HvcError};
use crate::layout::{RAM_BASE, VIRTIO_BASE};
use crate::println;

/// The page that also appears at [`VIRTIO_BASE`]: in the image's data, so in RAM.
#[repr(C, align(4096))]
struct Page([u64; 512]);

static mut PAGE: Page = Page([0; 512]);

/// "virt", the transport's MagicValue.
const MAGIC: u32 = u32::from_le_bytes(*b"virt");

/// The word at index `i` of the pattern.
const fn pattern(i: usize) -> u64 {
    0xA11A_5000_0000_0000 | i as u64
}

/// A 32-bit load at `address` that may be answered with an abort: `None` then.
fn probe(address: u64) -> Option<u32> {
    let mut value: u32 = 0;
    exception::expect(Expect::DataAbort);
    // SAFETY: `address` is in the transports' Device block (mmu.rs), so the load happens once;
    // it returns a value or takes the abort armed above, which the handler steps over. Not
    // `readonly`: the handler writes the exception module's atomics meanwhile.
    unsafe {
        core::arch::asm!("ldr {value:w}, [{address}]", address = in(reg) address,
            value = inout(reg) value, options(nostack));
    }
    match exception::take_abort() {
        Some(_) => None,
        None => Some(value),
    }
}

/// Cleans and invalidates the page's lines to the point of coherency.
fn flush(page: u64) {
    for line in (page..page + 4096).step_by(64) {
        // SAFETY: cache maintenance by VA of a page this guest maps; it changes no data.
        unsafe { core::arch::asm!("dc civac, {}", in(reg) line, options(nostack)) };
    }
    // SAFETY: a barrier.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

/// The check.
pub fn check(hypervisor: bool) -> Outcome {
    if !hypervisor {
        return Outcome::Skipped;
    }
    // Twice: the first access leaves the marker, the second takes the fast path.
    if probe(VIRTIO_BASE) != Some(MAGIC) || probe(VIRTIO_BASE) != Some(MAGIC) {
        println!("guest: no virtio device at {VIRTIO_BASE:#x}: device-to-RAM check skipped");
        return Outcome::Skipped;
    }
    let words = (&raw mut PAGE).cast::<u64>();
    let page = words as u64;
    for i in 0..512 {
        // SAFETY: word `i` of PAGE (a repr(C) array of 512), which is this check's alone; no
        // reference to it exists and nothing else runs.
        unsafe { words.wrapping_add(i).write_volatile(pattern(i)) };
    }
    flush(page);
    if let Err(error) = hypercall::ram_alias(VIRTIO_BASE, page - RAM_BASE) {
        println!("guest: HV_RAM_ALIAS failed: {error:?}");
        return Outcome::Failed("HV_RAM_ALIAS was refused");
    }
    let seen = [0usize, 1, 10, 511].map(|i| {
        // SAFETY: the alias page, mapped Device at stage 1 and now RAM at stage 2.
        unsafe { ((VIRTIO_BASE + 8 * i as u64) as *const u64).read_volatile() }
    });
    let expected = [0usize, 1, 10, 511].map(pattern);
    if seen != expected {
        println!("guest: the device page after HV_RAM_ALIAS reads {seen:x?}, not {expected:x?}");
        return Outcome::Failed("the device page did not become RAM");
    }
    // SAFETY: as above; a store into RAM of our own.
    unsafe { ((VIRTIO_BASE + 0x50) as *mut u64).write_volatile(0x5EE_D00D) };
    flush(page);
    // SAFETY: word 10 of PAGE, as above: the offset 0x50 written through the alias.
    let written = unsafe { words.wrapping_add(10).read_volatile() };
    if written != 0x5EE_D00D {
        println!("guest: a store through the alias left {written:#x} in the page");
        return Outcome::Failed("a store through the alias missed the page");
    }
    if hypercall::ram_alias(VIRTIO_BASE + 0x800, 0) != Err(HvcError::Failed(-3)) {
        return Outcome::Failed("an unaligned alias was not refused with INVALID_PARAMETER");
    }
    if let Err(error) = hypercall::ram_alias(0, 0) {
        println!("guest: removing the alias failed: {error:?}");
        return Outcome::Failed("the alias could not be removed");
    }
    match probe(VIRTIO_BASE) {
        Some(MAGIC) => {
            println!("guest: device page became RAM and a device again (HV_RAM_ALIAS)");
            Outcome::Passed
        }
        other => {
            println!("guest: after the alias went, the device page reads {other:x?}");
            Outcome::Failed("the device page did not come back")
        }
    }
}
