//! The kernel's own address space: an EL2 stage-1 identity map of exactly what exists.
//!
//! ```text
//! 0x0800_0000 ┐ 2 MiB Device-nGnRE, XN: GIC distributor and redistributor
//! 0x0900_0000 ┘ 2 MiB Device-nGnRE, XN: the kernel's PL011
//! 0x4000_0000   RAM below the kernel            RW, XN
//! 0x4010_0000   .text                           R, executable   (the only executable range)
//!               .rodata (the boot payload too)  R, XN           (pristine server images)
//!               .data, .bss                     RW, XN
//!               stack guard page                unmapped        (an overflow faults)
//!               stack, then free RAM to the end RW, XN          (kernel objects, frames)
//! 0x8000_0000   end of RAM: nothing mapped above
//! ```
//!
//! SCTLR_EL2.WXN is set, so no writable page is ever executable (ARM ARM D8.4.2 "Execute-never
//! controls"). The kernel reaches every physical page of RAM through this map, like seL4's
//! kernel window; servers never see it. Ranges are mapped with 2 MiB blocks where aligned and
//! 4 KiB pages at the edges (ARM ARM D8.3, the VMSAv8-64 4 KiB granule). [`verify`] checks the
//! result with the address-translation instructions at boot.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::*;

use crate::plat::layout::{GICD_BASE, RAM_BASE, RAM_END, UART_BASE};

/// One translation table.
#[repr(C, align(4096))]
struct Table([u64; 512]);

/// Level-3 tables for the edges of the ranges: two per range boundary is the most a layout of
/// six ranges needs, with room to spare.
const LEVEL3_TABLES: usize = 16;

/// Every table of the map: level 1, one level 2 per mapped GiB (devices, RAM), level 3 pool.
#[repr(C, align(4096))]
struct Tables {
    level1: Table,
    devices: Table,
    ram: Table,
    level3: [Table; LEVEL3_TABLES],
    level3_used: usize,
}

struct TablesCell(core::cell::UnsafeCell<Tables>);

// SAFETY: written only by `init` on the boot CPU before the MMU is on; afterwards only the
// hardware walker reads it.
unsafe impl Sync for TablesCell {}

static TABLES: TablesCell = TablesCell(core::cell::UnsafeCell::new(Tables {
    level1: Table([0; 512]),
    devices: Table([0; 512]),
    ram: Table([0; 512]),
    level3: [const { Table([0; 512]) }; LEVEL3_TABLES],
    level3_used: 0,
}));

unsafe extern "C" {
    static __text_start: u8;
    static __rodata_start: u8;
    static __data_start: u8;
    static __stack_guard: u8;
    static __stack_bottom: u8;
}

const TABLE: u64 = 0b11;
const BLOCK: u64 = 0b01;
const PAGE: u64 = 0b11;
const ATTR_DEVICE: u64 = 0 << 2; // MAIR index 0
const ATTR_NORMAL: u64 = 1 << 2; // MAIR index 1
const AP_READ_ONLY: u64 = 1 << 7; // AP[2]: EL2 has one privilege level
const SH_INNER: u64 = 0b11 << 8;
const AF: u64 = 1 << 10;
const XN: u64 = 1 << 54; // EL2 stage 1: XN at bit 54
/// MAIR: index 0 = Device-nGnRE (0x04), index 1 = Normal, inner/outer write-back RW-allocate.
const MAIR: u64 = 0x04 | (0xFF << 8);
/// TCR_EL2: T0SZ = 25 (39-bit VA, walk starts at level 1), write-back walks, inner shareable,
/// 4 KiB granule, PS = 40 bits, RES1 bits 31 and 23.
const TCR: u64 = 25 | (1 << 8) | (1 << 10) | (0b11 << 12) | (0b010 << 16) | (1 << 23) | (1 << 31);
/// SCTLR_EL2: M (MMU), C (data cache), SA (stack alignment check), I (instruction cache), WXN
/// (bit 19: writable implies execute-never), plus the RES1 bits of the non-VHE layout.
const SCTLR: u64 = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12) | (1 << 19) | 0x30C5_0830;

const PAGE_SIZE: u64 = 4096;
const BLOCK_SIZE: u64 = 2 << 20;

/// How a range is mapped.
#[derive(Clone, Copy)]
enum Access {
    /// Normal memory, read and execute (kernel text).
    Text,
    /// Normal memory, read only, execute-never.
    ReadOnly,
    /// Normal memory, read-write, execute-never.
    ReadWrite,
    /// Device-nGnRE, read-write, execute-never.
    Device,
}

impl Access {
    fn attributes(self) -> u64 {
        match self {
            Access::Text => ATTR_NORMAL | SH_INNER | AF | AP_READ_ONLY,
            Access::ReadOnly => ATTR_NORMAL | SH_INNER | AF | AP_READ_ONLY | XN,
            Access::ReadWrite => ATTR_NORMAL | SH_INNER | AF | XN,
            Access::Device => ATTR_DEVICE | AF | XN,
        }
    }
}

fn symbol(address: &u8) -> u64 {
    address as *const u8 as u64
}

/// Builds the map and turns the MMU and caches on.
pub fn init() {
    // SAFETY: runs once, on the boot CPU, before anything else touches TABLES; the MMU is off
    // so nothing walks the tables while they are written.
    let tables = unsafe { &mut *TABLES.0.get() };
    // SAFETY: the linker script defines these symbols; only their addresses are taken.
    let (text, rodata, data, guard, stack) = unsafe {
        (
            symbol(&__text_start),
            symbol(&__rodata_start),
            symbol(&__data_start),
            symbol(&__stack_guard),
            symbol(&__stack_bottom),
        )
    };
    let ranges = [
        (
            GICD_BASE as u64,
            GICD_BASE as u64 + BLOCK_SIZE,
            Access::Device,
        ),
        (
            UART_BASE as u64,
            UART_BASE as u64 + BLOCK_SIZE,
            Access::Device,
        ),
        (RAM_BASE, text, Access::ReadWrite),
        (text, rodata, Access::Text),
        (rodata, data, Access::ReadOnly),
        (data, guard, Access::ReadWrite),
        // [guard, stack) stays unmapped.
        (stack, RAM_END, Access::ReadWrite),
    ];
    for (start, end, access) in ranges {
        map_range(tables, start, end, access);
    }
    let devices = tables.devices.0.as_ptr() as u64;
    let ram = tables.ram.0.as_ptr() as u64;
    tables.level1.0[(GICD_BASE as u64 >> 30) as usize] = devices | TABLE;
    tables.level1.0[(RAM_BASE >> 30) as usize] = ram | TABLE;

    MAIR_EL2.set(MAIR);
    TCR_EL2.set(TCR);
    TTBR0_EL2.set(tables.level1.0.as_ptr() as u64);
    barrier::dsb(barrier::ISH);
    // SAFETY: invalidating EL2 TLB entries has no memory-safety effect.
    unsafe { core::arch::asm!("tlbi alle2", "dsb ish") };
    barrier::isb(barrier::SY);
    SCTLR_EL2.set(SCTLR);
    barrier::isb(barrier::SY);
}

/// Maps `[start, end)` (4 KiB aligned, inside one GiB) with `access`.
fn map_range(tables: &mut Tables, start: u64, end: u64, access: Access) {
    assert!(
        start.is_multiple_of(PAGE_SIZE) && end.is_multiple_of(PAGE_SIZE) && start <= end,
        "EL2 map: range {start:#x}..{end:#x} is not page aligned"
    );
    let mut address = start;
    while address < end {
        let index = ((address >> 21) & 511) as usize;
        if address.is_multiple_of(BLOCK_SIZE) && end - address >= BLOCK_SIZE {
            let level2 = level2_for(tables, address);
            level2[index] = address | BLOCK | access.attributes();
            address += BLOCK_SIZE;
            continue;
        }
        let level3 = level3_for(tables, address);
        level3[((address >> 12) & 511) as usize] = address | PAGE | access.attributes();
        address += PAGE_SIZE;
    }
}

fn level2_for(tables: &mut Tables, address: u64) -> &mut [u64; 512] {
    if address >> 30 == RAM_BASE >> 30 {
        &mut tables.ram.0
    } else {
        assert!(
            address >> 30 == GICD_BASE as u64 >> 30,
            "EL2 map: {address:#x} is in no mapped GiB"
        );
        &mut tables.devices.0
    }
}

/// The level-3 table under the 2 MiB slot of `address`, taken from the pool on first use.
fn level3_for(tables: &mut Tables, address: u64) -> &mut [u64; 512] {
    let index = ((address >> 21) & 511) as usize;
    let entry = level2_for(tables, address)[index];
    let slot = if entry & 0b11 == TABLE {
        tables
            .level3
            .iter()
            .position(|table| table.0.as_ptr() as u64 == entry & !0xFFF)
            .unwrap_or_else(|| panic!("EL2 map: foreign table at {entry:#x}"))
    } else {
        assert!(
            entry == 0,
            "EL2 map: {address:#x} is both in a block and a page"
        );
        let slot = tables.level3_used;
        assert!(
            slot < LEVEL3_TABLES,
            "EL2 map: more than {LEVEL3_TABLES} level-3 tables"
        );
        tables.level3_used += 1;
        let table = tables.level3[slot].0.as_ptr() as u64;
        level2_for(tables, address)[index] = table | TABLE;
        slot
    };
    &mut tables.level3[slot].0
}

/// What the MMU says about one address (PAR_EL1 after an `AT` instruction).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Probe {
    /// The access would succeed.
    Allowed,
    /// The access would fault.
    Faults,
}

fn translate_for_write(address: u64) -> Probe {
    let par: u64;
    // SAFETY: AT S1E2W only computes a translation into PAR_EL1; nothing is accessed.
    unsafe {
        core::arch::asm!("at s1e2w, {a}", "isb", "mrs {p}, par_el1", a = in(reg) address, p = out(reg) par)
    };
    if par & 1 == 0 {
        Probe::Allowed
    } else {
        Probe::Faults
    }
}

fn translate_for_read(address: u64) -> Probe {
    let par: u64;
    // SAFETY: AT S1E2R only computes a translation into PAR_EL1; nothing is accessed.
    unsafe {
        core::arch::asm!("at s1e2r, {a}", "isb", "mrs {p}, par_el1", a = in(reg) address, p = out(reg) par)
    };
    if par & 1 == 0 {
        Probe::Allowed
    } else {
        Probe::Faults
    }
}

/// Checks the map with the MMU itself: text and rodata refuse writes, data takes them, the stack
/// guard and everything past RAM refuse even reads. A layout that breaks one of these stops the
/// boot loudly; the QEMU tests see the line [`init`]'s caller prints.
pub fn verify() -> Result<(), &'static str> {
    // SAFETY: the linker script defines these symbols; only their addresses are taken.
    let (text, rodata, data, guard) = unsafe {
        (
            symbol(&__text_start),
            symbol(&__rodata_start),
            symbol(&__data_start),
            symbol(&__stack_guard),
        )
    };
    let checks = [
        (
            translate_for_write(text),
            Probe::Faults,
            "kernel text is writable",
        ),
        (
            translate_for_read(text),
            Probe::Allowed,
            "kernel text is unreadable",
        ),
        (
            translate_for_write(rodata),
            Probe::Faults,
            "kernel rodata is writable",
        ),
        (
            translate_for_write(data),
            Probe::Allowed,
            "kernel data is not writable",
        ),
        (
            translate_for_read(guard),
            Probe::Faults,
            "the stack guard page is mapped",
        ),
        (
            translate_for_read(RAM_END),
            Probe::Faults,
            "memory past RAM is mapped",
        ),
        (translate_for_read(0), Probe::Faults, "address 0 is mapped"),
    ];
    for (found, expected, problem) in checks {
        if found != expected {
            return Err(problem);
        }
    }
    Ok(())
}
