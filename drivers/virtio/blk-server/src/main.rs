//! The virtio-blk device server: one VM's virtio-mmio block device (docs/VIRTIO.md, "Device
//! servers"). The vmm forwards each guest access to the device's transport window as a
//! `device_api::Request`; `virtio_core::BlockDevice` answers it, with the interrupt line's level,
//! reading and writing the guest's rings and buffers through [`GuestRam`], and storing sectors
//! through the physical driver (`block_api::Block` on the `blk` endpoint, or `blk-<vm>`), whose
//! data travels through the RAM window the two servers share.
//!
//! What the manifest gives it (the compiler adds the first three for a `devices` entry of kind
//! `virtio-blk`; `tests/manifests/linux-virtio.toml`):
//!
//! | what | where |
//! |---|---|
//! | its endpoint, named after the server (the vmm its one client) | found by `userlib::server` |
//! | the VM's RAM, read-write, at VA = its guest-physical base | [`GuestRam`] |
//! | its device (window, INTID) and the VM (RAM base and size) | the boot info |
//! | a client capability of the physical driver's endpoint | `blk` |
//! | the driver's window (`[regions.blk-data]`), mapped read-write | at [`WINDOW_VA`] |
//!
//! Every address the guest gives is checked against the RAM window before it is touched
//! (`virtio_core::RamWindow::offset_of`); a bad descriptor fails its request (IOERR) and the
//! device carries on; a malformed IPC message is answered as such by the harness. Requests are
//! served in order when the driver notifies the queue: inside its QueueNotify write when that
//! comes through the vmm (the answer carries the raised line), or right after the doorbell on
//! the kernel's fast path (`drv_virtio_server_core::doors`; the server then signals the vmm's
//! `vmm-events` when its line changed). Notifications before DRIVER_OK are ignored.
//!
//! Restart. The transport is kept in the server's state page after every change of its
//! configuration (`drv_virtio_server_core::state`); a restarted server takes the device over
//! from it: the queue position comes back from the used ring in guest memory (a request taken
//! but not completed when the server crashed is served again, one completed is never completed
//! twice), the used-buffer interrupt is raised again, and what the guest made available
//! meanwhile is served (docs/VIRTIO.md, "Restart without losing I/O"). The guest's driver sees
//! no reset and no error.
#![no_std]
#![no_main]

use abi::CPtr;
use block_api::{BlockError, Reply};
use bootdesc::bootinfo::DeviceKind;
use device_api::{Mmio, Request, Response};
use drv_virtio_server_core::doors::{Device, Front};
use drv_virtio_server_core::remote::{self, BlockClient, Disk, Remote};
use drv_virtio_server_core::{setup, state};
use static_cell::StaticCell;
use userlib::server::{Caller, MmioAnswer, MmioMessage, Reply as ServerReply};
use userlib::{println, syscall};
use virtio_core::{
    BackendError, BlockConfig, BlockDevice, GuestMemory, MemoryError, RamWindow, Transport,
};

userlib::entry!(main);

/// Where the manifest maps the physical driver's window `blk-data` in this server: above any
/// guest RAM of the default layout (the RAM is mapped at its own guest-physical address).
pub const WINDOW_VA: u64 = 0x40_0000_0000;

/// What GET_ID answers (VIRTIO_BLK_ID_BYTES, NUL-padded).
const SERIAL: &[u8] = b"hvkv-virtio-blk";

fn main() -> ! {
    userlib::server::run::<VirtioBlk>()
}

/// The device behind its front (none when the boot info gives this server no device: every
/// access is then a bus error), and the vmm's `vmm-events`, signalled when the line changed
/// behind the vmm's back.
struct VirtioBlk {
    front: Front<Serving>,
    vmm: Option<CPtr>,
}

struct Serving {
    device: &'static mut BlockDevice,
    ram: GuestRam,
    backend: Remote<Driver>,
    /// The state page, where the transport is kept for the next instance.
    page: Option<&'static mut [u8]>,
}

/// About 6.5 KiB: kept out of the stack.
static DEVICE: StaticCell<BlockDevice> = StaticCell::new();

impl userlib::server::Server for VirtioBlk {
    type Protocol = Mmio;
    // Never a capability name (a manifest name has no `:`): the harness finds the endpoint by
    // the server's own name, as the compiler names it.
    const ENDPOINT: &'static str = "device:virtio-blk";

    fn start() -> Self {
        let name = userlib::server_name();
        let found = setup::find(userlib::caps::bootinfo(), DeviceKind::VirtioBlk);
        let setup = match found {
            Ok(setup) => setup,
            Err(error) => {
                println!(
                    "{name}: no virtio-blk device to serve: {error}; every access is a bus error"
                );
                return Self::without_device();
            }
        };
        let mut driver = Driver::find(setup.vm);
        let disk = remote::query(&mut driver).unwrap_or_else(|failure| {
            let why = match failure {
                Some(error) => describe(error),
                None if driver.endpoint.is_none() => "no `blk` capability",
                None => "the driver did not answer",
            };
            println!("{name}: no disk ({why}): the device has 0 sectors");
            Disk {
                sectors: 0,
                read_only: true,
                piece_bytes: 0,
            }
        });
        let mut serial = [0u8; virtio_core::blk::ID_BYTES];
        serial[..SERIAL.len()].copy_from_slice(SERIAL);
        let config = BlockConfig {
            capacity_sectors: disk.sectors,
            block_size: None,
            read_only: disk.read_only,
            serial,
        };
        let Ok(device) = BlockDevice::new(config, setup.ram) else {
            // Only a configured block size can be refused, and none is.
            println!("{name}: the block configuration was refused; every access is a bus error");
            return Self::without_device();
        };
        println!(
            "{name}: virtio-blk of vm `{}` at {:#x} (INTID {}): {} sectors{}, through `blk`",
            setup.vm,
            setup.device.base,
            setup.device.intid,
            disk.sectors,
            if disk.read_only { ", read-only" } else { "" }
        );
        let serving = Serving {
            device: DEVICE.init(device),
            ram: GuestRam { window: setup.ram },
            backend: Remote::new(driver, disk),
            // SAFETY: this is a device server (the boot info gave it its device above), for
            // which the manifest compiler maps the state page.
            page: unsafe { userlib::state_page() },
        };
        let saved = serving.page.as_deref().and_then(state::load);
        let (front, resumed) = Front::start(serving, saved);
        let vmm = userlib::caps::try_cap("vmm-events");
        if let Some(signal) = resumed {
            let transport = front.transport();
            let status = transport.map_or(0, Transport::status);
            let next = transport
                .and_then(|transport| transport.queue(0))
                .map_or(0, |queue| queue.next_avail());
            println!(
                "{name}: took the device over from its previous instance (status {status:#x}, \
                 requests served up to {next})"
            );
            syscall::signal_if(vmm, signal);
        }
        Self { front, vmm }
    }

    fn handle(&mut self, _caller: Caller, request: Request) -> ServerReply<Response> {
        self.front.from_vmm(request).into()
    }

    fn mmio(&mut self, _caller: Caller, access: Option<MmioMessage>) -> MmioAnswer {
        let (answer, signal) = self.front.from_kernel(access);
        syscall::signal_if(self.vmm, signal);
        answer
    }

    /// The doorbell (the only notification bound to this server).
    fn notified(&mut self, _word: u64) {
        let signal = self.front.doorbell();
        syscall::signal_if(self.vmm, signal);
    }
}

impl VirtioBlk {
    /// A server with no device: every access is a bus error.
    fn without_device() -> Self {
        Self {
            front: Front::without_device(),
            vmm: userlib::caps::try_cap("vmm-events"),
        }
    }
}

impl Device for Serving {
    fn access(&mut self, request: Request) -> Response {
        self.device
            .handle(request, &mut self.ram, &mut self.backend)
    }

    fn transport(&self) -> &Transport {
        self.device.transport()
    }

    fn keep(&mut self) {
        if let Some(page) = self.page.as_deref_mut() {
            // A transport always fits half a page; a failure would only lose the copy.
            let _ = state::save(page, self.device.transport());
        }
    }

    fn take_over(&mut self, saved: Transport) {
        *self.device.transport_mut() = saved;
        self.device.recover(&mut self.ram, &mut self.backend);
    }
}

fn describe(error: BlockError) -> &'static str {
    match error {
        BlockError::NoDevice => "the driver has no device",
        BlockError::NoWindow => "the driver has no window for this server",
        _ => "the driver refused the capacity request",
    }
}

/// The physical driver: its endpoint and the window shared with it.
struct Driver {
    endpoint: Option<CPtr>,
    /// The window's size (the driver's `window_bytes`, learnt at the first call).
    window_bytes: u64,
}

impl Driver {
    /// `blk`, or `blk-<vm>` in a system with one physical driver per VM.
    fn find(vm: &str) -> Self {
        Self {
            endpoint: userlib::caps::try_vm_cap("blk", vm),
            window_bytes: 0,
        }
    }

    /// `[WINDOW_VA + offset, + len)` when it lies inside the window.
    fn window_part(&self, offset: u64, len: usize) -> Result<u64, BackendError> {
        let end = offset.checked_add(len as u64).ok_or(BackendError)?;
        if end > self.window_bytes {
            return Err(BackendError);
        }
        Ok(WINDOW_VA + offset)
    }
}

impl BlockClient for Driver {
    fn call(&mut self, request: &block_api::Request) -> Option<Result<Reply, BlockError>> {
        let answer =
            ipc::call::<block_api::Block>(&mut userlib::Kernel, self.endpoint?, request).ok()?;
        if let Ok(Reply::Capacity { window_bytes, .. }) = answer {
            self.window_bytes = window_bytes;
        }
        Some(answer)
    }

    fn copy_into_window(&mut self, offset: u64, bytes: &[u8]) -> Result<(), BackendError> {
        let at = self.window_part(offset, bytes.len())?;
        // SAFETY: `[at, at + len)` lies inside the window, which the manifest maps read-write at
        // WINDOW_VA for the server's whole life and which no Rust object of this server owns;
        // the driver and its device use it only during our calls, and this runs between them.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, bytes.len()) };
        Ok(())
    }

    fn copy_out_of_window(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), BackendError> {
        let at = self.window_part(offset, buffer.len())?;
        // SAFETY: as for `copy_into_window`. The device wrote the window during the call that just
        // returned; the system call is an `asm!` block the compiler assumes reads and writes
        // any memory, so this copy is not reordered before it.
        unsafe {
            core::ptr::copy_nonoverlapping(at as *const u8, buffer.as_mut_ptr(), buffer.len())
        };
        Ok(())
    }
}

/// The guest's RAM, which the manifest maps read-write into this server at VA = its
/// guest-physical base: every access is checked against the window, then copied.
struct GuestRam {
    window: RamWindow,
}

impl GuestMemory for GuestRam {
    fn window(&self) -> RamWindow {
        self.window
    }

    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), MemoryError> {
        self.window.offset_of(address, buffer.len() as u64)?;
        // SAFETY: `[address, address + len)` is guest RAM (checked just above), which the
        // manifest maps read-write at VA = its guest-physical address for the server's whole
        // life; no Rust reference to it exists, so the guest's writes alias nothing of ours.
        // The guest may run meanwhile (after a doorbell it does not wait for us), so the bytes
        // may change under the copy: a torn value is only a bad value, which the device
        // checks like any other (it reads each ring field once, then validates it).
        unsafe {
            core::ptr::copy_nonoverlapping(address as *const u8, buffer.as_mut_ptr(), buffer.len())
        };
        Ok(())
    }

    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), MemoryError> {
        self.window.offset_of(address, bytes.len() as u64)?;
        // SAFETY: as for `read`: inside guest RAM, mapped read-write here, referenced by no
        // Rust object.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), address as *mut u8, bytes.len()) };
        Ok(())
    }
}
