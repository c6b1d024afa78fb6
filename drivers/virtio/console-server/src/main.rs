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
//! Input. With `debug = ["input"]` (and the PL011 server without it: console input has one
//! reader) the server has the kernel signal console input to its own doorbell notification
//! (`DebugInputBind`, badge `CONSOLE_INPUT_BADGE`), takes it (`DebugInputRead`) into an
//! `InputQueue` and delivers it into the receive buffers the driver made available, raising
//! the used-buffer interrupt (and telling the vmm); input with no buffer waits (1 KiB) until
//! the driver adds some.
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
use abi::message::CONSOLE_INPUT_BADGE;
use bootdesc::bootinfo::DeviceKind;
use device_api::{Mmio, Request, Response};
use drv_virtio_server_core::doors::{Device, Front};
use drv_virtio_server_core::input::InputQueue;
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

/// The device behind its front (none when the boot info gives this server no device: every
/// access is then a bus error), and the vmm's `vmm-events`, signalled when the line changed
/// behind the vmm's back.
struct VirtioConsole {
    front: Front<Serving>,
    vmm: Option<CPtr>,
    /// `debug:input`, when console input is this server's (`bind_input`).
    input: Option<CPtr>,
}

struct Serving {
    device: &'static mut ConsoleDevice,
    ram: GuestRam,
    output: LineBuffer,
    /// The state page, where the transport is kept for the next instance.
    page: Option<&'static mut [u8]>,
    /// Console input waiting for receive buffers.
    input: InputQueue,
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
        let vmm = userlib::caps::try_cap("vmm-events");
        let setup = match setup::find(userlib::caps::bootinfo(), DeviceKind::VirtioConsole) {
            Ok(setup) => setup,
            Err(error) => {
                println!(
                    "{name}: no virtio-console device to serve: {error}; every access is a bus \
                     error"
                );
                let front = Front::without_device();
                return Self {
                    front,
                    vmm,
                    input: None,
                };
            }
        };
        let input = bind_input(name);
        println!(
            "{name}: virtio-console of vm `{}` at {:#x} (INTID {}): {}",
            setup.vm,
            setup.device.base,
            setup.device.intid,
            if input.is_some() {
                "output, and console input"
            } else {
                "output only"
            }
        );
        let serving = Serving {
            device: DEVICE.init(ConsoleDevice::new(setup.ram)),
            ram: GuestRam { window: setup.ram },
            output: LineBuffer::new(),
            // SAFETY: this is a device server (the boot info gave it its device just above),
            // for which the manifest compiler maps the state page.
            page: unsafe { userlib::state_page() },
            input: InputQueue::new(),
        };
        let saved = serving.page.as_deref().and_then(state::load);
        let (front, resumed) = Front::start(serving, saved);
        if let Some(signal) = resumed {
            let status = front.transport().map_or(0, Transport::status);
            println!(
                "{name}: took the device over from its previous instance (status {status:#x})"
            );
            syscall::signal_if(vmm, signal);
        }
        Self { front, vmm, input }
    }

    fn handle(&mut self, _caller: Caller, request: Request) -> Reply<Response> {
        self.front.from_vmm(request).into()
    }

    fn mmio(&mut self, _caller: Caller, access: Option<MmioMessage>) -> MmioAnswer {
        let (answer, signal) = self.front.from_kernel(access);
        syscall::signal_if(self.vmm, signal);
        answer
    }

    /// The doorbell, or console input (the kernel signals the same notification with
    /// `CONSOLE_INPUT_BADGE`).
    fn notified(&mut self, word: u64) {
        if word & CONSOLE_INPUT_BADGE != 0
            && let Some(console) = self.input
        {
            let signal = self.front.act(|serving| {
                let queue = &mut serving.input;
                userlib::console::read_input(console, |bytes| queue.push(bytes));
                serving.feed_input();
            });
            syscall::signal_if(self.vmm, signal);
        }
        if word & !CONSOLE_INPUT_BADGE != 0 {
            let signal = self.front.doorbell();
            syscall::signal_if(self.vmm, signal);
        }
    }
}

/// Has the kernel's console input signalled to this server's doorbell notification, when the
/// manifest gives it `debug:input` (instead of the PL011 server): Linux's `hvc0` then takes
/// what is typed. Returns the capability to read it with.
fn bind_input(name: &str) -> Option<CPtr> {
    let console = userlib::caps::try_cap("debug:input")?;
    let Some(doorbell) = userlib::caps::try_cap_named("doorbell:", name) else {
        println!("{name}: `debug:input` but no doorbell of its own to bind it to: no input");
        return None;
    };
    let (info, _) = syscall::invoke(
        console,
        abi::InvocationLabel::DebugInputBind,
        [doorbell, 0, 0, 0],
    );
    if info.is_error() {
        println!(
            "{name}: console input refused (kernel error {})",
            info.label()
        );
        return None;
    }
    Some(console)
}

impl Serving {
    /// Delivers waiting input into the receive buffers the driver has made available.
    fn feed_input(&mut self) {
        let (device, ram) = (&mut *self.device, &mut self.ram);
        self.input.feed(|bytes| device.push_input(ram, bytes));
    }
}

impl Device for Serving {
    fn access(&mut self, request: Request) -> Response {
        let output = &mut self.output;
        let mut sink = |bytes: &[u8]| output.push(bytes, &mut print_line);
        let response = self.device.handle(request, &mut self.ram, &mut sink);
        if self.input.is_empty() {
            return response;
        }
        // The access may have made receive buffers available (a receiveq notify, DRIVER_OK):
        // input that waited for them goes in now, with the line as it then is.
        self.feed_input();
        match response {
            Response::DoneLine { .. } => Response::DoneLine {
                line: self.device.interrupt_line(),
            },
            Response::ValueLine { value, .. } => Response::ValueLine {
                value,
                line: self.device.interrupt_line(),
            },
            other => other,
        }
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
