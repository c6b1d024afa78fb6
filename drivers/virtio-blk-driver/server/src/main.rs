//! The physical virtio-blk driver: drives the virtio block device QEMU gives the hypervisor
//! (`-device virtio-blk-device`, backed by a host file) and serves `block_api::Block` to other
//! servers (docs/VIRTIO.md, "Physical virtio-blk driver").
//!
//! The device side is rcore-os' `virtio-drivers` crate: its `MmioTransport` over the transport
//! this driver finds, its `VirtIOBlk` for feature negotiation, the virtqueue and the requests,
//! and this file's [`KernelHal`] for the memory the device reaches. `drv-virtio-blk-core` holds
//! everything that can be decided without hardware (request validation, DMA addresses, the
//! transport choice) and is host-tested.
//!
//! What the manifest gives it (the server's own name is `<s>`, e.g. `blk`;
//! `tests/manifests/virtio-blk.toml`):
//!
//! | what | manifest | here |
//! |---|---|---|
//! | the 32 virtio-mmio transports | device region `0x0A00_0000`, size `0x4000`, mapped `rw` | at [`MMIO_VA`] |
//! | the DMA pool (virtqueue, bounce page), private | RAM region `<s>-dma`, mapped `rw`, `frames = ["<s>"]` | at [`POOL_VA`], `frames:<s>-dma` |
//! | the window shared with the client | RAM region `<s>-data`, mapped `rw` here and in the client, `frames = ["<s>"]` | at [`WINDOW_VA`], `frames:<s>-data` |
//! | its endpoint | `[endpoints.blk]` or one named after the server | `blk` or `<s>` |
//!
//! The two RAM regions' physical addresses come from `FrameGetAddress` on their frame
//! capabilities; the mappings' addresses are this file's constants, which the manifest must
//! use. The pool is at most 1 MiB (it ends where the window starts).
//!
//! Completion is polled: after notifying the device, virtio-drivers spins on the used ring
//! (`VirtQueue::add_notify_wait_pop`), so a request occupies the CPU until QEMU completes it
//! (other servers of the same or higher priority still run when the timeslice ends). The
//! device's interrupt (SPI 16 + n) is not used: the manifest routes it nowhere (no `[irqs]`
//! entry, so the kernel never enables it), and the driver also suppresses it in the ring where
//! the negotiated features allow (`VIRTQ_AVAIL_F_NO_INTERRUPT` without `VIRTIO_F_EVENT_IDX`,
//! virtio 1.1 §2.6.7). One request is in flight at a time.
//!
//! Hostile input. Every request is checked by `drv_virtio_blk_core::request::check` before the
//! device sees it: the sectors exist, the bytes lie in the window, a write goes to a writable
//! disk; anything else is a typed `BlockError`, and the device only ever gets addresses inside
//! the two regions. No IPC input reaches a panic.
//!
//! Restart. The kernel reloads the server's memory; the regions keep their contents. Starting
//! again resets the device (status 0), which drops the old virtqueue, and allocates a new one
//! from the start of the pool: a request in flight when the server died is answered
//! `Restarted` to its client, whose `ipc::call` sends it again (block_api marks every request
//! idempotent).

#![no_std]
#![no_main]

use abi::{CPtr, InvocationLabel};
use block_api::{Block, BlockError, Reply, Request, Response};
use core::cell::UnsafeCell;
use core::ptr::NonNull;
use drv_virtio_blk_core::dma::{DmaState, Shared, Window};
use drv_virtio_blk_core::probe::{self, Header};
use drv_virtio_blk_core::request::{self, Checked, Direction, Geometry};
use userlib::println;
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

userlib::entry!(main);

/// Where the manifest maps the 32 virtio-mmio transports (`probe::WINDOW_BYTES`).
pub const MMIO_VA: u64 = 0x4000_0000;
/// Where the manifest maps the DMA pool `<server>-dma`.
pub const POOL_VA: u64 = 0x4010_0000;
/// Where the manifest maps the window `<server>-data` shared with the client.
pub const WINDOW_VA: u64 = 0x4020_0000;

type Device = VirtIOBlk<KernelHal, MmioTransport<'static>>;

fn main() -> ! {
    let name = userlib::server_name();
    let Some(endpoint) = userlib::caps::try_cap("blk").or_else(|| userlib::caps::try_cap(name))
    else {
        panic!("no `blk` or `{name}` endpoint capability");
    };
    let mut disk = Disk::start(name);
    ipc::serve::<Block>(&mut userlib::Kernel, endpoint, |_badge, request| {
        disk.handle(&request)
    })
}

/// The device and what requests are checked against, or none.
#[expect(
    clippy::large_enum_variant,
    reason = "one value for the server's whole life, on main's stack; there is no heap to box it"
)]
enum Disk {
    Ready { device: Device, geometry: Geometry },
    Absent,
}

impl Disk {
    /// Finds the memory and the device and brings it up; every failure is printed and leaves
    /// the server answering `NoDevice`.
    fn start(name: &str) -> Self {
        match start(name) {
            Ok(disk) => disk,
            Err(reason) => {
                println!("{name}: no block device: {reason}; answering NoDevice");
                Self::Absent
            }
        }
    }

    fn handle(&mut self, request: &Request) -> Response {
        let Self::Ready { device, geometry } = self else {
            return Err(BlockError::NoDevice);
        };
        let transfer = match request::check(request, geometry)? {
            Checked::Capacity => {
                return Ok(Reply::Capacity {
                    sectors: geometry.capacity,
                    read_only: geometry.read_only,
                    window_bytes: geometry.window_bytes.unwrap_or(0),
                });
            }
            Checked::Flush => {
                return device
                    .flush()
                    .map(|()| Reply::Done)
                    .map_err(|_| BlockError::DeviceError);
            }
            Checked::Transfer(transfer) => transfer,
        };
        let window = with_dma(|dma| dma.window())
            .flatten()
            .ok_or(BlockError::NoWindow)?;
        let part = window
            .part(transfer.offset, transfer.bytes)
            .ok_or(BlockError::BadOffset {
                window_bytes: window.size,
            })?;
        let sector = usize::try_from(transfer.sector).map_err(|_| BlockError::OutOfRange {
            capacity: geometry.capacity,
        })?;
        // Checked against the window, which is far below usize::MAX.
        let bytes = part.size as usize;
        let done = match transfer.direction {
            Direction::Read => {
                // SAFETY: `part` lies inside the window, which the manifest maps read-write at
                // WINDOW_VA for the server's whole life and which no Rust object of this server
                // owns; the client that shares it is blocked in its call until this reply, so
                // for this request the device and this slice are its only users.
                let buffer = unsafe { core::slice::from_raw_parts_mut(part.va as *mut u8, bytes) };
                device.read_blocks(sector, buffer)
            }
            Direction::Write => {
                // SAFETY: as for the read; the device only reads this slice.
                let buffer = unsafe { core::slice::from_raw_parts(part.va as *const u8, bytes) };
                device.write_blocks(sector, buffer)
            }
        };
        done.map(|()| Reply::Done).map_err(|error| {
            defmt::warn!(
                "virtio-blk: device failed sector {=u64}: {=str}",
                transfer.sector,
                describe(&error)
            );
            BlockError::DeviceError
        })
    }
}

fn describe(error: &virtio_drivers::Error) -> &'static str {
    match error {
        virtio_drivers::Error::IoError => "I/O error",
        virtio_drivers::Error::Unsupported => "unsupported",
        virtio_drivers::Error::NotReady => "not ready",
        virtio_drivers::Error::QueueFull => "queue full",
        _ => "other error",
    }
}

/// The physical address and size of the RAM region whose frame capability is `frames:<name>`.
fn region(server: &str, suffix: &str) -> Result<(u64, u64), &'static str> {
    let mut bytes = [0u8; 64];
    let parts = ["frames:", server, suffix];
    let mut len = 0;
    for part in parts {
        let end = len + part.len();
        bytes
            .get_mut(len..end)
            .ok_or("region name too long")?
            .copy_from_slice(part.as_bytes());
        len = end;
    }
    let name = core::str::from_utf8(&bytes[..len]).map_err(|_| "region name not UTF-8")?;
    let cap: CPtr = userlib::caps::try_cap(name).ok_or("no frame capability for a region")?;
    let (info, words) =
        userlib::syscall::invoke(cap, InvocationLabel::FrameGetAddress, [0, 0, 0, 0]);
    if info.is_error() {
        return Err("FrameGetAddress refused");
    }
    Ok((words[0], words[1]))
}

fn start(name: &str) -> Result<Disk, &'static str> {
    let (pool_pa, pool_size) = region(name, "-dma")?;
    if pool_size > WINDOW_VA - POOL_VA {
        return Err("the DMA pool is larger than 1 MiB");
    }
    let window = match region(name, "-data") {
        Ok((pa, size)) => Some(Window {
            va: WINDOW_VA,
            pa,
            size,
        }),
        Err(reason) => {
            println!("{name}: no window ({reason}): transfers answer NoWindow");
            None
        }
    };
    let pool = Window {
        va: POOL_VA,
        pa: pool_pa,
        size: pool_size,
    };
    let dma = DmaState::new(pool, window).map_err(|_| "unusable DMA regions")?;
    // SAFETY: see `with_dma`; nothing else holds the state yet.
    unsafe { *DMA.0.get() = Some(dma) };

    let headers = (0..probe::TRANSPORTS).map(|index| (index, read_header(index)));
    let index = probe::choose(headers).ok_or("no virtio-mmio transport holds a block device")?;
    let va = MMIO_VA + probe::offset_of(index);
    let header = NonNull::new(va as *mut VirtIOHeader).ok_or("null transport")?;
    // SAFETY: `va` is transport `index` inside the virtio-mmio window, which the manifest maps
    // read-write as device memory at MMIO_VA for the server's whole life; its 0x200 bytes are
    // the header and configuration space, and nothing else in this server touches them.
    let transport = unsafe { MmioTransport::new(header, probe::TRANSPORT_STRIDE as usize) }
        .map_err(|_| "the transport is not a virtio-mmio device")?;
    let version = match transport.version() {
        virtio_drivers::transport::mmio::MmioVersion::Legacy => "legacy",
        virtio_drivers::transport::mmio::MmioVersion::Modern => "modern",
    };
    let mut device = Device::new(transport).map_err(|_| "the device did not initialise")?;
    device.disable_interrupts();
    let geometry = Geometry::new(
        device.capacity(),
        device.readonly(),
        window.map(|window| window.size),
    );
    println!(
        "{name}: virtio-blk at transport {index} ({version}, INTID {}): {} sectors{}, \
         window {} KiB, polled",
        probe::FIRST_INTID + index as u32,
        geometry.capacity,
        if geometry.read_only {
            ", read-only"
        } else {
            ""
        },
        geometry.window_bytes.unwrap_or(0) / 1024,
    );
    Ok(Disk::Ready { device, geometry })
}

/// Transport `index`'s identification registers.
fn read_header(index: usize) -> Header {
    let base = MMIO_VA + probe::offset_of(index);
    let read = |offset: u64| {
        // SAFETY: a 4-byte aligned register inside the virtio-mmio window the manifest maps
        // read-write as device memory at MMIO_VA; reading identification registers has no
        // side effect (virtio 1.1 §4.2.2).
        unsafe { ((base + offset) as *const u32).read_volatile() }
    };
    Header {
        magic: read(probe::MAGIC_OFFSET),
        version: read(probe::VERSION_OFFSET),
        device_id: read(probe::DEVICE_ID_OFFSET),
    }
}

/// The DMA state behind [`KernelHal`], whose functions take no `self`.
struct DmaCell(UnsafeCell<Option<DmaState>>);

// SAFETY: the server has one thread and nothing interrupts it with code of its own (the kernel
// delivers no signals), so the cell is never reached from two places at once.
unsafe impl Sync for DmaCell {}

static DMA: DmaCell = DmaCell(UnsafeCell::new(None));

/// Runs `f` on the DMA state, `None` before `start` set it.
fn with_dma<R>(f: impl FnOnce(&mut DmaState) -> R) -> Option<R> {
    // SAFETY: one thread (see `DmaCell`), and no caller of `with_dma` runs inside `f`: every
    // `f` is a `DmaState` method, so this is the only reference while it lives.
    let state = unsafe { &mut *DMA.0.get() };
    state.as_mut().map(f)
}

/// virtio-drivers' view of this server's memory: virtqueue pages from the pool, buffers given
/// to the device by their physical address (window and pool) or through the bounce page.
struct KernelHal;

// SAFETY: `dma_alloc` returns fresh, zeroed, page-aligned pages of the pool that no other
// allocation overlaps (a bump allocator that never frees); `share` returns an address at which
// the device reaches exactly the buffer's bytes (or a copy that `unshare` copies back).
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Some(block) = with_dma(|dma| dma.alloc(pages as u64)).flatten() else {
            // virtio-drivers turns a zero address into `Error::DmaError`.
            return (0, NonNull::dangling());
        };
        // SAFETY: `block` is a fresh part of the pool, mapped read-write at POOL_VA, that no
        // other allocation or reference overlaps.
        unsafe { core::ptr::write_bytes(block.va as *mut u8, 0, block.size as usize) };
        match NonNull::new(block.va as *mut u8) {
            Some(va) => (block.pa, va),
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        // The bump allocator never frees: the only allocation is the virtqueue, which lives as
        // long as the server. 0 is success.
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // Only the PCI transport asks (for its BARs); virtio-mmio never does.
        panic!("virtio-blk: no MMIO translation for {paddr:#x} (PCI is not supported)");
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        let va = buffer.cast::<u8>().as_ptr() as u64;
        let len = buffer.len();
        match with_dma(|dma| dma.share(va, len as u64)).flatten() {
            Some(Shared::Direct { pa }) => pa,
            Some(Shared::Bounced { pa, va: copy }) => {
                // SAFETY: the caller promises `buffer` is valid and unused for the call; the
                // copy is a part of the bounce page reserved for it alone until `unshare`.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        buffer.cast::<u8>().as_ptr(),
                        copy as *mut u8,
                        len,
                    )
                };
                pa
            }
            // Only request headers and status bytes bounce (a few bytes each, three per
            // request, one request at a time): reaching this is a bug, not input.
            None => panic!("virtio-blk: no DMA address for {len} bytes at {va:#x}"),
        }
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let len = buffer.len();
        let Some(Some(copy)) = with_dma(|dma| dma.unshare(paddr, len as u64)) else {
            return;
        };
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: `copy` is the bounce copy `share` made of this buffer, which the device
            // has finished with (virtio-drivers unshares after popping the used ring); the
            // caller promises `buffer` is valid and unused for the call.
            unsafe {
                core::ptr::copy_nonoverlapping(copy as *const u8, buffer.cast::<u8>().as_ptr(), len)
            };
        }
    }
}
