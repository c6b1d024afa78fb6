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
//! such by the harness. A restarted server is a console in its reset state.
#![no_std]
#![no_main]

use bootdesc::bootinfo::DeviceKind;
use device_api::{Mmio, Request, Response};
use drv_virtio_server_core::lines::{LineBuffer, Lossy};
use drv_virtio_server_core::setup;
use static_cell::StaticCell;
use userlib::println;
use userlib::server::{Caller, Reply};
use virtio_core::{ConsoleDevice, GuestMemory, MemoryError, RamWindow};

userlib::entry!(main);

fn main() -> ! {
    userlib::server::run::<VirtioConsole>()
}

/// The device, or nothing when the boot info gives this server no device (every access is
/// then a bus error).
struct VirtioConsole {
    serving: Option<Serving>,
}

struct Serving {
    device: &'static mut ConsoleDevice,
    ram: GuestRam,
    output: LineBuffer,
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
                return Self { serving: None };
            }
        };
        println!(
            "{name}: virtio-console of vm `{}` at {:#x} (INTID {}): output only",
            setup.vm, setup.device.base, setup.device.intid
        );
        Self {
            serving: Some(Serving {
                device: DEVICE.init(ConsoleDevice::new(setup.ram)),
                ram: GuestRam { window: setup.ram },
                output: LineBuffer::new(),
            }),
        }
    }

    fn handle(&mut self, _caller: Caller, request: Request) -> Reply<Response> {
        let Some(serving) = &mut self.serving else {
            return Response::BusError.into();
        };
        let output = &mut serving.output;
        let mut sink = |bytes: &[u8]| output.push(bytes, &mut print_line);
        serving
            .device
            .handle(request, &mut serving.ram, &mut sink)
            .into()
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
        // The guest's only VCPU waits for this MMIO access, so nothing changes it meanwhile
        // (and a torn value would only be a bad value, which the device checks anyway).
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
