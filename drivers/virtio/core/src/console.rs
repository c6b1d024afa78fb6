//! The console device (virtio 1.2 §5.3), one port, no feature beyond VIRTIO_F_VERSION_1 (no
//! VIRTIO_CONSOLE_F_SIZE, F_MULTIPORT or F_EMERG_WRITE): queue 0 receives, queue 1
//! transmits.
//!
//! Transmit: each chain's device-readable bytes go to the caller's sink, in order, and the
//! chain is completed with nothing written. A transmit chain with device-writable buffers is
//! malformed (§5.3.6: transmit buffers are device-readable) and is completed unsent.
//!
//! Receive: [`ConsoleDevice::push_input`] fills the receive buffers the driver made available,
//! one chain after another, each with as many bytes as fit, and raises the interrupt. Bytes
//! that find no buffer stay with the caller: it pushes them again once the driver adds
//! buffers, which `write` reports as [`Event::Notify`] of [`RECEIVEQ`].

use crate::memory::{GuestMemory, RamWindow};
use crate::mmio::{BusError, Event, Transport};
use crate::queue::Chain;
use device_api::{Request, Response};

/// DeviceID of a console (§5.3.1).
pub const DEVICE_ID: u32 = 3;
/// receiveq (port 0), §5.3.2.
pub const RECEIVEQ: u16 = 0;
/// transmitq (port 0).
pub const TRANSMITQ: u16 = 1;
/// The configuration structure's size (§5.3.4: cols, rows, max_nr_ports, emerg_wr). Without
/// its features the driver reads none of it; it reads as zeros.
pub const CONFIG_BYTES: usize = 12;

/// Transmitted bytes reach the sink in pieces of at most this many.
const TRANSMIT_PIECE: usize = 256;

/// One virtio console.
#[derive(Clone, Debug)]
pub struct ConsoleDevice {
    transport: Transport,
    chain: Chain,
}

impl ConsoleDevice {
    /// A console in its reset state, for a guest whose RAM is `ram`.
    pub fn new(ram: RamWindow) -> Self {
        Self {
            transport: Transport::new(DEVICE_ID, 0, 2, ram),
            chain: Chain::new(),
        }
    }

    /// One MMIO access from the vmm, answered with the interrupt line after it; transmitted
    /// bytes go to `sink`.
    pub fn handle(
        &mut self,
        request: Request,
        memory: &mut impl GuestMemory,
        sink: &mut impl FnMut(&[u8]),
    ) -> Response {
        let outcome = match request {
            Request::Read { offset, width } => self.read(offset, width).map(Some),
            Request::Write {
                offset,
                width,
                value,
            } => self
                .write(offset, width, value, memory, sink)
                .ok()
                .map(|_| None),
            // `Request::Line` asks for the line's level alone.
            Request::Line => Some(None),
            // Answered with the line, low after the reset.
            Request::Reset => {
                self.reset();
                Some(None)
            }
        };
        crate::mmio::respond(outcome, self.interrupt_line())
    }

    /// A register or configuration read; `None` is a bus error.
    pub fn read(&self, offset: u32, width: u8) -> Option<u64> {
        self.transport.read(offset, width, &[0; CONFIG_BYTES])
    }

    /// The VM's reset (`Request::Reset`): the transport and both queues go back to their reset
    /// state, as a driver's write of 0 to Status puts them; the device neither sends from nor
    /// fills the old guest's rings again. Input the server holds back is the server's.
    pub fn reset(&mut self) {
        self.transport.reset();
    }

    /// A register write; a transmit notification (or DRIVER_OK) sends at once.
    pub fn write(
        &mut self,
        offset: u32,
        width: u8,
        value: u64,
        memory: &mut impl GuestMemory,
        sink: &mut impl FnMut(&[u8]),
    ) -> Result<Option<Event>, BusError> {
        let event = self.transport.write(offset, width, value)?;
        if matches!(event, Some(Event::Notify(TRANSMITQ) | Event::DriverOk)) {
            self.transmit(memory, sink);
        }
        Ok(event)
    }

    /// Sends every available transmit chain to `sink`; returns how many were completed.
    pub fn transmit(
        &mut self,
        memory: &mut impl GuestMemory,
        sink: &mut impl FnMut(&[u8]),
    ) -> usize {
        self.transport
            .process(TRANSMITQ, memory, &mut self.chain, |memory, chain| {
                send(memory, chain, sink);
                0
            })
    }

    /// Delivers `input` into the available receive buffers; returns how many bytes were
    /// delivered (the rest found no buffer, or the driver is not running).
    pub fn push_input(&mut self, memory: &mut impl GuestMemory, input: &[u8]) -> usize {
        let limit = self
            .transport
            .queue(RECEIVEQ)
            .map_or(0, |queue| queue.size());
        let mut delivered = 0;
        // At most one pass over the ring: a driver refilling it with empty buffers
        // concurrently cannot keep the device here.
        for _ in 0..limit {
            let Some(rest) = input.get(delivered..).filter(|rest| !rest.is_empty()) else {
                break;
            };
            let mut filled = 0;
            let took =
                self.transport
                    .process_one(RECEIVEQ, memory, &mut self.chain, |memory, chain| {
                        if chain.error().is_some() || chain.readable_len() != 0 {
                            // Malformed (§5.3.6: receive buffers are device-writable): given back
                            // empty.
                            return 0;
                        }
                        let length = rest.len().min(chain.writable_len() as usize);
                        match chain.write(memory, 0, &rest[..length]) {
                            Ok(()) => {
                                filled = length;
                                length as u32
                            }
                            Err(_) => 0,
                        }
                    });
            if !took {
                break;
            }
            delivered += filled;
        }
        delivered
    }

    /// After a restart with the transport state restored ([`ConsoleDevice::transport_mut`]):
    /// recovers both queues' positions and sends what is pending (a chain taken but not
    /// completed before the crash is sent again).
    pub fn recover(&mut self, memory: &mut impl GuestMemory, sink: &mut impl FnMut(&[u8])) {
        self.transport.recover(memory);
        self.transmit(memory, sink);
    }

    /// The interrupt line's level.
    pub const fn interrupt_line(&self) -> bool {
        self.transport.interrupt_line()
    }

    /// The transport state (to save a copy).
    pub const fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The transport state (to restore a saved copy before [`ConsoleDevice::recover`]).
    pub fn transport_mut(&mut self) -> &mut Transport {
        &mut self.transport
    }
}

/// Hands a transmit chain's bytes to `sink`, unless the chain is malformed.
fn send(memory: &mut impl GuestMemory, chain: &Chain, sink: &mut impl FnMut(&[u8])) {
    if chain.error().is_some() || chain.writable_len() != 0 {
        return;
    }
    let mut piece = [0u8; TRANSMIT_PIECE];
    let total = chain.readable_len();
    let mut done = 0u32;
    while done < total {
        let length = ((total - done) as usize).min(TRANSMIT_PIECE);
        let part = &mut piece[..length];
        if chain.read(memory, done, part).is_err() {
            return;
        }
        sink(part);
        done += length as u32;
    }
}
