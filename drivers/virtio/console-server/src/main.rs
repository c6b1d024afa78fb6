//! The virtio-console device server: one VM's virtio-mmio console (docs/VIRTIO.md, "Device
//! servers"). The vmm forwards each guest access to the device's transport window as a
//! `device_api::Request`; `virtio_core::ConsoleDevice` answers it, with the interrupt line's
//! level, reading the guest's rings and transmit buffers through [`GuestRam`].
//!
//! What the manifest gives it (the compiler adds all of it for a `devices` entry of kind
//! `virtio-console`): its endpoint, named after the server, the vmm its one client; the VM's
//! RAM, read-write, at VA = its guest-physical base; its device (window, INTID) and the VM's RAM
//! window in the boot info. The server needs `debug = ["console"]` to print.
//!
//! Output. What the guest transmits (Linux's `hvc0`) is printed on the system console as it is,
//! a line at a time (`drv_virtio_server_core::lines`, as the PL011 server prints): at each `\n`,
//! or when 256 bytes are waiting; a partial line waits for its end.
//!
//! Input is not implemented yet: the receive queue takes the driver's buffers and never fills
//! them (virtio-core's `push_input` is ready for it; the server would take console input as
//! the PL011 server does and signal the vmm through `vmm-events`).
//!
//! Every address the guest gives is checked against the RAM window before it is touched; a bad
//! chain is completed unsent and the device carries on; a malformed IPC message is answered as
//! such by the harness.
//!
//! Restart. The transport is kept in the server's state page after every change of its
//! configuration (`drv_virtio_server_core::state`); a restarted server takes the device over
//! from it, picks the queue positions up from the used rings and sends what the guest made
//! available meanwhile, so the guest's driver sees no reset (docs/VIRTIO.md, "Restart without
//! losing I/O"). Output buffered in a partial line when the server crashed is lost.
#![no_std]
#![no_main]

use abi::CPtr;
use bootdesc::bootinfo::DeviceKind;
use device_api::fast::LineReport;
use device_api::{Mmio, Request, Response};
use drv_virtio_server_core::doors::{self, Device};
use drv_virtio_server_core::lines::{LineBuffer, Lossy};
use drv_virtio_server_core::{setup, state};
use static_cell::StaticCell;
use userlib::server::{Caller, MmioAnswer, MmioMessage, Reply};
use userlib::{println, syscall};
use virtio_core::{ConsoleDevice, GuestMemory, MemoryError, RamWindow, Transport};

userlib::entry!(main);

fn main() -> ! {
    userlib::server::run::<VirtioConsole>()
}

/// The device, or nothing when the boot info gives this server no device (every access is
/// then a bus error).
struct VirtioConsole {
    serving: Option<Serving>,
    /// What the vmm knows of the interrupt line.
    report: LineReport,
    /// `vmm-events`, signalled when the line changed behind the vmm's back.
    vmm: Option<CPtr>,
}

struct Serving {
    device: &'static mut ConsoleDevice,
    ram: GuestRam,
    output: LineBuffer,
    /// The state page, where the transport is kept for the next instance.
    page: Option<&'static mut [u8]>,
}

/// A few KiB (a descriptor chain of up to 128 entries): kept out of the stack.
static DEVICE: StaticCell<ConsoleDevice> = StaticCell::new();

impl userlib::server::Server for VirtioConsole {
    type Protocol = Mmio;
    // Never a capability name (a manifest name has no `:`): the harness finds the endpoint by
    // the server's own name, as the compiler names it.
    const ENDPOINT: &'static str = "device:virtio-console";

    fn start() -> Self {
        let name = userlib::server_name();
        let setup = match setup::find(userlib::caps::bootinfo(), DeviceKind::VirtioConsole) {
            Ok(setup) => setup,
            Err(error) => {
                println!(
                    "{name}: no virtio-console device to serve: {error}; every access is a bus \
                     error"
                );
                return Self::without_device();
            }
        };
        println!(
            "{name}: virtio-console of vm `{}` at {:#x} (INTID {}): output only",
            setup.vm, setup.device.base, setup.device.intid
        );
        let mut serving = Serving {
            device: DEVICE.init(ConsoleDevice::new(setup.ram)),
            ram: GuestRam { window: setup.ram },
            output: LineBuffer::new(),
            // SAFETY: this is a device server (the boot info gave it its device just above),
            // for which the manifest compiler maps the state page.
            page: unsafe { userlib::device_state_page() },
        };
        let saved = serving.page.as_deref().and_then(state::load);
        let resumed = doors::resume(&mut serving, saved);
        let mut server = Self {
            serving: Some(serving),
            report: LineReport::new(),
            vmm: userlib::caps::try_cap("vmm-events"),
        };
        if resumed {
            server.resumed();
        }
        server
    }

    fn handle(&mut self, _caller: Caller, request: Request) -> Reply<Response> {
        let Some(serving) = &mut self.serving else {
            return Response::BusError.into();
        };
        doors::from_vmm(serving, &mut self.report, request).into()
    }

    fn mmio(&mut self, _caller: Caller, access: Option<MmioMessage>) -> MmioAnswer {
        let Some(serving) = &mut self.serving else {
            return MmioAnswer::BusError;
        };
        let (answer, signal) = doors::from_kernel(serving, &mut self.report, access);
        self.tell_vmm(signal);
        answer
    }

    /// The doorbell (the only notification bound to this server).
    fn notified(&mut self, _word: u64) {
        if let Some(serving) = &mut self.serving {
            let signal = doors::doorbell(serving, &mut self.report);
            self.tell_vmm(signal);
        }
    }
}

impl VirtioConsole {
    /// The device was taken over from the previous instance: says so, and tells the vmm of
    /// the interrupt the recovery raised.
    fn resumed(&mut self) {
        let Some(serving) = &self.serving else {
            return;
        };
        let transport = serving.device.transport();
        println!(
            "{}: took the device over from its previous instance (status {:#x})",
            userlib::server_name(),
            transport.status()
        );
        let signal = self
            .report
            .changed_behind_its_back(transport.interrupt_line());
        self.tell_vmm(signal);
    }

    /// A server with no device: every access is a bus error.
    const fn without_device() -> Self {
        Self {
            serving: None,
            report: LineReport::new(),
            vmm: None,
        }
    }

    /// Signals the vmm that the line changed, when `signal` says so and it can be told.
    fn tell_vmm(&self, signal: bool) {
        if let (true, Some(vmm)) = (signal, self.vmm) {
            syscall::signal(vmm);
        }
    }
}

impl Device for Serving {
    fn access(&mut self, request: Request) -> Response {
        let output = &mut self.output;
        let mut sink = |bytes: &[u8]| output.push(bytes, &mut print_line);
        self.device.handle(request, &mut self.ram, &mut sink)
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
        let output = &mut self.output;
        let mut sink = |bytes: &[u8]| output.push(bytes, &mut print_line);
        self.device.recover(&mut self.ram, &mut sink);
    }
}

/// Prints one line of the guest's output, exactly as transmitted.
fn print_line(line: &[u8]) {
    userlib::print!("{}", Lossy(line));
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
