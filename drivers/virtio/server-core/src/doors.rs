//! The three ways an access reaches a virtio device server, and what each owes the vmm
//! (docs/MMIO.md, docs/VIRTIO.md "Device servers"):
//!
//! - from the vmm (`device_api::Request`, the slow path): the answer carries the interrupt
//!   line's level, so the vmm knows it;
//! - from the kernel's MMIO fast path (`abi::mmio::MmioMessage`): the kernel takes only the
//!   value, so a line that changed is reported to the vmm by a signal;
//! - the doorbell (the route's QueueNotify, signalled to the server's bound notification with
//!   the value dropped): every queue is looked at, as a QueueNotify of each would, and a
//!   changed line is reported the same way.
//!
//! A server implements [`Device`] over its model, RAM and backend, and the functions here do
//! the rest; `true` from them means "signal the vmm" (`vmm-events`).

use abi::mmio::{MmioAnswer, MmioMessage};
use device_api::fast::{LineReport, answer_of, request_of};
use device_api::{Request, Response};
use virtio_core::Transport;
use virtio_core::mmio::{MAX_QUEUES, register};

/// A device model behind its server: one `device_api` access in, its answer out.
pub trait Device {
    /// Performs `request` on the device (reading and writing guest RAM as it must).
    fn access(&mut self, request: Request) -> Response;
    /// The transport's state.
    fn transport(&self) -> &Transport;
    /// Keeps the transport's state where the server's next instance finds it (the state page,
    /// [`crate::state`]); called after every access that changed it.
    fn keep(&mut self);
    /// Takes over `saved`, a state of this same device its previous instance kept: restores
    /// it, recovers the queue positions from guest memory and serves what is pending
    /// (`BlockDevice::recover`, `ConsoleDevice::recover`).
    fn take_over(&mut self, saved: Transport);
}

/// At start: takes the device over from the previous instance when it kept a state of this
/// same device (`saved`, from [`crate::state::load`]; `Transport::same_device`); whether it
/// did. No good record, or one of another device, leaves the device in its reset state.
pub fn resume(device: &mut impl Device, saved: Option<Transport>) -> bool {
    match saved {
        Some(saved) if device.transport().same_device(&saved) => {
            device.take_over(saved);
            true
        }
        _ => false,
    }
}

/// A virtio device server around its device: the device (none when the boot info gave the
/// server nothing to serve: every access is then a bus error) and what the vmm knows of its
/// line. The server's `userlib::server::Server` methods delegate here and signal the vmm when
/// an answer says so.
pub struct Front<D> {
    device: Option<D>,
    report: LineReport,
}

impl<D: Device> Front<D> {
    /// A server with nothing to serve.
    pub const fn without_device() -> Self {
        Self {
            device: None,
            report: LineReport::new(),
        }
    }

    /// A server of `device`, taken over from the previous instance when `saved` is a state of
    /// the same device ([`resume`]). The second value says whether it was, and then whether
    /// to signal the vmm (the recovery raised the line).
    pub fn start(mut device: D, saved: Option<Transport>) -> (Self, Option<bool>) {
        let resumed = resume(&mut device, saved);
        let mut front = Self {
            device: Some(device),
            report: LineReport::new(),
        };
        let signal = resumed.then(|| {
            let line = front.transport().is_some_and(Transport::interrupt_line);
            front.report.changed_behind_its_back(line)
        });
        (front, signal)
    }

    /// The device's transport, if there is a device.
    pub fn transport(&self) -> Option<&Transport> {
        self.device.as_ref().map(Device::transport)
    }

    /// [`from_vmm`], or a bus error without a device.
    pub fn from_vmm(&mut self, request: Request) -> Response {
        match &mut self.device {
            Some(device) => from_vmm(device, &mut self.report, request),
            None => Response::BusError,
        }
    }

    /// [`from_kernel`], or a bus error without a device.
    pub fn from_kernel(&mut self, access: Option<MmioMessage>) -> (MmioAnswer, bool) {
        match &mut self.device {
            Some(device) => from_kernel(device, &mut self.report, access),
            None => (MmioAnswer::BusError, false),
        }
    }

    /// Runs `act` on the device (console input arriving, say) and answers whether the vmm
    /// must be told that the line changed.
    pub fn act(&mut self, act: impl FnOnce(&mut D)) -> bool {
        let Some(device) = &mut self.device else {
            return false;
        };
        act(device);
        let line = device.transport().interrupt_line();
        self.report.changed_behind_its_back(line)
    }

    /// [`doorbell`], or nothing without a device.
    pub fn doorbell(&mut self) -> bool {
        self.device
            .as_mut()
            .is_some_and(|device| doorbell(device, &mut self.report))
    }
}

/// Whether `request` may change what a restarted server must take over: any register write
/// but the two the device's running makes routine (QueueNotify, InterruptACK: queue positions
/// come back from guest memory and the interrupt is raised again on recovery, `state`), and a
/// reset.
pub fn changes_configuration(request: &Request) -> bool {
    match *request {
        Request::Write { offset, .. } => {
            offset != register::QUEUE_NOTIFY && offset != register::INTERRUPT_ACK
        }
        Request::Reset => true,
        Request::Read { .. } | Request::Line => false,
    }
}

/// Performs `request`, keeping the state when it changed the configuration or the status (a
/// queue the device stopped sets DEVICE_NEEDS_RESET, whatever the request was).
fn access_kept(device: &mut impl Device, request: Request) -> Response {
    let status = device.transport().status();
    let response = device.access(request);
    if changes_configuration(&request) || device.transport().status() != status {
        device.keep();
    }
    response
}

/// An access from the vmm: answered with the line, which the vmm then knows.
pub fn from_vmm(device: &mut impl Device, report: &mut LineReport, request: Request) -> Response {
    let response = access_kept(device, request);
    report.told(&response);
    response
}

/// An access from the kernel's fast path: the kernel's answer, and whether to signal the vmm.
pub fn from_kernel(
    device: &mut impl Device,
    report: &mut LineReport,
    access: Option<MmioMessage>,
) -> (MmioAnswer, bool) {
    let Some(request) = access.as_ref().and_then(request_of) else {
        return (MmioAnswer::BusError, false);
    };
    let response = access_kept(device, request);
    (answer_of(response), behind_its_back(report, &response))
}

/// The doorbell rang: every queue is notified; whether to signal the vmm (the line's level
/// after the last one is what counts).
pub fn doorbell(device: &mut impl Device, report: &mut LineReport) -> bool {
    let mut last = Response::BusError;
    for queue in 0..MAX_QUEUES as u64 {
        let notify = Request::Write {
            offset: register::QUEUE_NOTIFY,
            width: 4,
            value: queue,
        };
        let response = access_kept(device, notify);
        if response.line().is_some() {
            last = response;
        }
    }
    behind_its_back(report, &last)
}

/// Whether `response`'s line level is news to the vmm.
fn behind_its_back(report: &mut LineReport, response: &Response) -> bool {
    response
        .line()
        .is_some_and(|level| report.changed_behind_its_back(level))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Raises its line on a notify of queue 1, leaves it on a notify of queue 0, lowers it on
    /// any other write; reads answer their offset.
    struct Fake {
        seen: Vec<Request>,
        line: bool,
        transport: Transport,
        kept: usize,
    }

    impl Default for Fake {
        fn default() -> Self {
            let ram = virtio_core::RamWindow::new(0x4000_0000, 0x10_0000).unwrap();
            Self {
                seen: Vec::new(),
                line: false,
                transport: Transport::new(3, 0, 2, ram),
                kept: 0,
            }
        }
    }

    impl Device for Fake {
        fn transport(&self) -> &Transport {
            &self.transport
        }
        fn keep(&mut self) {
            self.kept += 1;
        }
        fn take_over(&mut self, saved: Transport) {
            self.transport = saved;
            self.line = true;
        }
        fn access(&mut self, request: Request) -> Response {
            self.seen.push(request);
            match request {
                Request::Read { offset, .. } => Response::ValueLine {
                    value: u64::from(offset),
                    line: self.line,
                },
                Request::Write {
                    offset: register::QUEUE_NOTIFY,
                    value: 1,
                    ..
                } => {
                    self.line = true;
                    Response::DoneLine { line: true }
                }
                Request::Write {
                    offset: register::QUEUE_NOTIFY,
                    ..
                } => Response::DoneLine { line: self.line },
                Request::Write { offset: 0x999, .. } => Response::BusError,
                Request::Write { .. } | Request::Line | Request::Reset => {
                    self.line = false;
                    Response::DoneLine { line: false }
                }
            }
        }
    }

    fn access(offset: u64, write: bool) -> Option<MmioMessage> {
        Some(MmioMessage {
            offset,
            width: 4,
            value: 0,
            write,
        })
    }

    #[test]
    fn the_doorbell_notifies_every_queue_and_a_raised_line_is_signalled_once() {
        let (mut device, mut report) = (Fake::default(), LineReport::default());
        assert!(
            doorbell(&mut device, &mut report),
            "queue 1 raised the line"
        );
        let notified: Vec<_> = device
            .seen
            .iter()
            .map(|r| match *r {
                Request::Write { offset, value, .. } => (offset, value),
                _ => panic!("only writes"),
            })
            .collect();
        assert_eq!(notified, [(0x50, 0), (0x50, 1)]);
        assert!(!doorbell(&mut device, &mut report), "the vmm knows already");
    }

    #[test]
    fn fast_path_accesses_answer_the_kernel_and_report_line_changes() {
        let (mut device, mut report) = (Fake::default(), LineReport::default());
        assert_eq!(
            from_kernel(&mut device, &mut report, access(0x34, false)),
            (MmioAnswer::Done(0x34), false)
        );
        device.line = true;
        assert_eq!(
            from_kernel(&mut device, &mut report, access(0x60, false)),
            (MmioAnswer::Done(0x60), true),
            "the line went up behind the vmm's back"
        );
        assert_eq!(
            from_kernel(&mut device, &mut report, access(0x64, true)),
            (MmioAnswer::Done(0), true),
            "and down again"
        );
        assert_eq!(
            from_kernel(&mut device, &mut report, access(0x999, true)),
            (MmioAnswer::BusError, false)
        );
        assert_eq!(
            from_kernel(&mut device, &mut report, None),
            (MmioAnswer::BusError, false)
        );
        assert_eq!(
            from_kernel(&mut device, &mut report, access(1 << 32, false)),
            (MmioAnswer::BusError, false),
            "no window reaches that offset"
        );
        assert_eq!(
            device.seen.len(),
            4,
            "the last two never reached the device"
        );
    }

    #[test]
    fn what_the_vmm_was_answered_it_knows() {
        let (mut device, mut report) = (Fake::default(), LineReport::default());
        let notify = Request::Write {
            offset: register::QUEUE_NOTIFY,
            width: 4,
            value: 1,
        };
        assert_eq!(
            from_vmm(&mut device, &mut report, notify),
            Response::DoneLine { line: true }
        );
        assert!(
            !doorbell(&mut device, &mut report),
            "queue 1 raised it again: no news"
        );
    }

    #[test]
    fn a_restarted_server_takes_over_only_a_state_of_the_same_device() {
        let mut page = std::vec![0u8; crate::state::PAGE_BYTES];
        let mut device = Fake::default();
        let load = |page: &[u8]| crate::state::load(page);
        assert!(!resume(&mut device, load(&page)), "nothing kept yet");
        let mut running = Fake::default();
        running.transport.write(register::STATUS, 4, 1).unwrap();
        crate::state::save(&mut page, &running.transport).unwrap();
        assert!(resume(&mut device, load(&page)));
        assert_eq!(device.transport, running.transport);
        assert!(device.line, "take_over ran");
        let ram = virtio_core::RamWindow::new(0x4000_0000, 0x10_0000).unwrap();
        let mut other = Fake {
            transport: Transport::new(2, 0, 1, ram),
            ..Fake::default()
        };
        assert!(
            !resume(&mut other, load(&page)),
            "a block device is not this console"
        );
        assert!(!other.line);
    }

    #[test]
    fn configuration_changes_are_kept_and_routine_accesses_are_not() {
        let (mut device, mut report) = (Fake::default(), LineReport::default());
        let write = |offset| Request::Write {
            offset,
            width: 4,
            value: 1,
        };
        from_vmm(&mut device, &mut report, write(register::STATUS));
        from_kernel(
            &mut device,
            &mut report,
            access(u64::from(register::QUEUE_READY), true),
        );
        from_vmm(&mut device, &mut report, Request::Reset);
        assert_eq!(device.kept, 3, "status, queue setup, reset");
        from_vmm(&mut device, &mut report, write(register::QUEUE_NOTIFY));
        from_kernel(
            &mut device,
            &mut report,
            access(u64::from(register::INTERRUPT_ACK), true),
        );
        from_kernel(
            &mut device,
            &mut report,
            access(u64::from(register::STATUS), false),
        );
        from_vmm(&mut device, &mut report, Request::Line);
        doorbell(&mut device, &mut report);
        assert_eq!(
            device.kept, 3,
            "kicks, acknowledgements, reads and queries keep nothing"
        );
    }

    #[test]
    fn a_status_the_device_changed_by_itself_is_kept_whatever_the_access() {
        /// Stops a queue (DEVICE_NEEDS_RESET) on its first access, as a broken ring would.
        struct Stopping(Fake);
        impl Device for Stopping {
            fn access(&mut self, request: Request) -> Response {
                self.0.transport.set_needs_reset();
                self.0.access(request)
            }
            fn transport(&self) -> &Transport {
                &self.0.transport
            }
            fn keep(&mut self) {
                self.0.keep();
            }
            fn take_over(&mut self, saved: Transport) {
                self.0.take_over(saved);
            }
        }
        let mut device = Stopping(Fake::default());
        doorbell(&mut device, &mut LineReport::default());
        assert_eq!(device.0.kept, 1, "kept once, when the status changed");
    }

    #[test]
    fn a_front_without_a_device_answers_bus_errors_and_one_resumed_signals_its_line() {
        let mut empty: Front<Fake> = Front::without_device();
        assert_eq!(empty.from_vmm(Request::Line), Response::BusError);
        assert_eq!(
            empty.from_kernel(access(0, false)),
            (MmioAnswer::BusError, false)
        );
        assert!(!empty.doorbell());
        assert!(empty.transport().is_none());
        let (_, fresh) = Front::start(Fake::default(), None);
        assert_eq!(fresh, None, "nothing to take over");
        let mut running = Fake::default();
        running.transport.write(register::STATUS, 4, 1).unwrap();
        running.transport.set_needs_reset();
        let saved = Some(running.transport.clone());
        let (front, resumed) = Front::start(Fake::default(), saved);
        assert_eq!(front.transport(), Some(&running.transport));
        assert_eq!(
            resumed,
            Some(false),
            "taken over; its line is low (no DRIVER_OK), so nothing to tell the vmm"
        );
    }

    #[test]
    fn an_action_that_raises_the_line_tells_the_vmm_once() {
        let mut running = Fake::default();
        running
            .transport
            .write(register::DRIVER_FEATURES_SEL, 4, 1)
            .unwrap();
        running
            .transport
            .write(register::DRIVER_FEATURES, 4, 1)
            .unwrap();
        for status in [1, 3, 11, 15] {
            running
                .transport
                .write(register::STATUS, 4, status)
                .unwrap();
        }
        assert_eq!(running.transport.status() & 4, 4, "DRIVER_OK");
        let (mut front, _) = Front::start(Fake::default(), None);
        assert!(!front.act(|_| {}), "nothing changed");
        // A running device that raises its configuration-change interrupt.
        assert!(front.act(|device| {
            device.transport = running.transport.clone();
            device.transport.set_needs_reset();
        }));
        assert!(!front.act(|_| {}), "the vmm was told already");
        let mut empty: Front<Fake> = Front::without_device();
        assert!(!empty.act(|_| panic!("no device")));
    }
}
