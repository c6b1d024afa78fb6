//! After the attack: every server of the system must still answer a request of its own kind.
//!
//! | server | request | answer |
//! |---|---|---|
//! | pl011 | UARTFR read, then this file's lines printed | TXFE set, TXFF and BUSY clear |
//! | vmm | PSCI_VERSION, HV_BOOT_COUNT | 1.1; 0 resets (the attack never reset the VM) |
//! | mmu and memory | first touch of a page in each of [`FRESH_BLOCKS`](super::FRESH_BLOCKS) (stage-2 faults resolved, frames lent), HV_STAGE2_FAULTS | each page reads 0, keeps a pattern, and the fault counters grew |
//! | vblk (virtio-blk) | MagicValue, Version, DeviceID; a GET_ID request and a read of sector 0 through a fresh queue | "virt", 2, 2; the serial `hvkv-virtio-blk` and status OK for both |
//! | vcons (virtio-console) | MagicValue, Version, DeviceID; a line transmitted | "virt", 2, 3; the line appears on the console |
//!
//! Each failure is printed and the first is returned.

use super::virtio::{self, DESC, DMA, HEADERS, NEXT, Transport, WRITE, reg};
use super::{FRESH_BLOCKS, registers};
use crate::hypercall;
use crate::layout::{BLOCK_SIZE, PAGE_SIZE, RAM_BASE};
use crate::println;
use crate::uart::Pl011;

/// The line the console must transmit.
const CONSOLE_LINE: &[u8] = b"\nhostile: virtio-console transmits after the attack\n";
/// Polls of a used ring before a request counts as unanswered; each is a WFE, which lets the
/// device server run (docs/GUEST-ABI.md, "WFI and WFE").
const POLLS: u32 = 10_000;
/// UARTFR bits (PL011 TRM §3.3.3).
const FR_TXFE: u32 = 1 << 7;
const FR_TXFF: u32 = 1 << 5;
const FR_BUSY: u32 = 1 << 3;

/// Runs every check; the first failure.
pub fn check() -> Result<(), &'static str> {
    let checks: [fn() -> Result<(), &'static str>; 5] = [pl011, vmm, memory, block, console];
    let mut first = Ok(());
    for check in checks {
        registers::pl011_sane();
        if let Err(what) = check() {
            println!("hostile: server check failed: {what}");
            first = first.and(Err(what));
        }
    }
    first
}

fn pl011() -> Result<(), &'static str> {
    let flags = Pl011::console().flags();
    if flags & FR_TXFE == 0 || flags & (FR_TXFF | FR_BUSY) != 0 {
        println!("hostile: UARTFR reads {flags:#x}");
        return Err("the PL011 flag register answered wrong");
    }
    println!("hostile: pl011 answers (UARTFR {flags:#x})");
    Ok(())
}

fn vmm() -> Result<(), &'static str> {
    if hypercall::psci_version() != Ok((1, 1)) {
        return Err("PSCI_VERSION did not answer 1.1");
    }
    if hypercall::boot_count() != Ok(0) {
        return Err("HV_BOOT_COUNT is not 0: the VM was reset");
    }
    println!("hostile: vmm answers (PSCI 1.1, boot count 0)");
    Ok(())
}

fn memory() -> Result<(), &'static str> {
    let before = hypercall::stage2_faults().map_err(|_| "HV_STAGE2_FAULTS failed")?;
    for block in FRESH_BLOCKS {
        for page in [0, 255, 511] {
            let word = (RAM_BASE + block * BLOCK_SIZE + page * PAGE_SIZE) as *mut u64;
            // SAFETY: a word of a RAM block no part of the guest uses (hostile mode runs no
            // check that touches it), mapped read-write by the identity map.
            let first = unsafe { word.read_volatile() };
            let pattern = 0x6873_7469_6c65_0000 | block << 8 | page;
            // SAFETY: as above.
            unsafe { word.write_volatile(pattern) };
            // SAFETY: as above.
            let kept = unsafe { word.read_volatile() };
            if first != 0 || kept != pattern {
                println!("hostile: block {block} page {page}: read {first:#x}, then {kept:#x}");
                return Err("fresh RAM did not read 0 or did not keep a pattern");
            }
        }
    }
    let after = hypercall::stage2_faults().map_err(|_| "HV_STAGE2_FAULTS failed")?;
    if after.pages + after.blocks <= before.pages + before.blocks {
        return Err("the first touches were not stage-2 faults the mmu-server resolved");
    }
    println!(
        "hostile: mmu and memory answer ({} fresh blocks touched, stage-2 faults {} -> {})",
        FRESH_BLOCKS.len(),
        before.pages + before.blocks,
        after.pages + after.blocks
    );
    Ok(())
}

/// MagicValue, Version and DeviceID of transport `n`.
fn identity(n: u64, device_id: u32) -> Result<Transport, &'static str> {
    let device = Transport::nth(n);
    let (magic, version, id) = (
        device.read(reg::MAGIC),
        device.read(reg::VERSION),
        device.read(reg::DEVICE_ID),
    );
    if magic != u32::from_le_bytes(*b"virt") || version != 2 || id != device_id {
        println!("hostile: transport {n}: magic {magic:#x}, version {version}, device {id}");
        return Err("a virtio transport answered wrong");
    }
    Ok(device)
}

/// Makes descriptor chain 0 available on queue `queue` (made ready by [`ready`]), notifies,
/// and waits for it to be used.
fn request(device: Transport, queue: u32) -> Result<(), &'static str> {
    virtio::poke::<u16>(virtio::AVAIL + 4, 0);
    virtio::barrier();
    virtio::poke::<u16>(virtio::AVAIL + 2, 1);
    virtio::barrier();
    device.write(reg::QUEUE_NOTIFY, queue);
    for _ in 0..POLLS {
        virtio::barrier();
        if virtio::peek::<u16>(virtio::USED + 2) == 1 {
            device.acknowledge();
            return Ok(());
        }
        aarch64_cpu::asm::wfe();
    }
    Err("a virtio request was never used")
}

/// Sets the device up with one ready queue `queue` of 8 entries, its rings empty (DRIVER_OK
/// makes the device look at the available ring: it must not see the attack's last one).
fn ready(device: Transport, queue: u32) -> Result<(), &'static str> {
    virtio::poke::<u64>(virtio::USED, 0);
    virtio::poke::<u32>(virtio::AVAIL, 0);
    virtio::barrier();
    device.negotiate();
    if !device.queue(queue, 8, DESC, virtio::AVAIL, virtio::USED) {
        return Err("a well-formed virtio queue was refused");
    }
    device.driver_ok();
    Ok(())
}

/// A block request of `kind` for sector 0 into `len` bytes at DMA: its status byte.
fn block_request(device: Transport, kind: u32, len: u32) -> Result<u8, &'static str> {
    ready(device, 0)?;
    virtio::poke::<u32>(HEADERS, kind);
    virtio::poke::<u32>(HEADERS + 4, 0);
    virtio::poke::<u64>(HEADERS + 8, 0);
    let status = DMA + 0x1000;
    virtio::poke::<u8>(status, 0xFF);
    virtio::descriptor(DESC, 0, HEADERS, 16, NEXT, 1);
    virtio::descriptor(DESC, 1, DMA, len, WRITE | NEXT, 2);
    virtio::descriptor(DESC, 2, status, 1, WRITE, 0);
    let answered = request(device, 0);
    device.write(reg::STATUS, 0);
    answered.map(|()| virtio::peek::<u8>(status))
}

fn block() -> Result<(), &'static str> {
    let device = identity(0, 2)?;
    // GET_ID (type 8): the serial, NUL-padded to 20 bytes.
    if block_request(device, 8, 20)? != 0 {
        return Err("virtio-blk GET_ID did not answer OK");
    }
    let mut serial = [0u8; 20];
    for (i, byte) in serial.iter_mut().enumerate() {
        *byte = virtio::peek::<u8>(DMA + i as u64);
    }
    let serial = core::str::from_utf8(&serial)
        .unwrap_or("?")
        .trim_end_matches('\0');
    // IN (type 0) of sector 0.
    let status = block_request(device, 0, 512)?;
    if status != 0 {
        println!("hostile: virtio-blk read of sector 0: status {status}");
        return Err("virtio-blk did not read sector 0");
    }
    println!("hostile: virtio-blk answers (serial {serial:?}, sector 0 read)");
    Ok(())
}

fn console() -> Result<(), &'static str> {
    let device = identity(1, 3)?;
    ready(device, 1)?;
    for (i, &byte) in CONSOLE_LINE.iter().enumerate() {
        virtio::poke::<u8>(DMA + i as u64, byte);
    }
    virtio::descriptor(DESC, 0, DMA, CONSOLE_LINE.len() as u32, 0, 0);
    let answered = request(device, 1);
    device.write(reg::STATUS, 0);
    answered?;
    println!("hostile: virtio-console answers (a line transmitted)");
    Ok(())
}
