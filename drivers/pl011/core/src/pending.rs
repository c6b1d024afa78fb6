//! Console input taken from the kernel but not yet in the model's receive FIFO: fed in as the
//! guest reads, so a paste faster than the guest's 16-entry FIFO does not overrun it (a real
//! line would; the kernel's buffer and this one stand in for flow control). Bounded: past
//! [`PENDING_CAPACITY`] bytes, while the guest reads nothing, new input is dropped (docs/
//! TESTING.md, "Resource exhaustion"), and the server keeps serving.

use crate::{Pl011, RX_FIFO_DEPTH};

/// Bytes of input held back at most.
pub const PENDING_CAPACITY: usize = 1024;

/// A ring of held-back input.
#[derive(Clone, Debug)]
pub struct PendingInput {
    bytes: [u8; PENDING_CAPACITY],
    start: usize,
    len: usize,
}

impl Default for PendingInput {
    fn default() -> Self {
        Self::new()
    }
}

impl PendingInput {
    /// Nothing held.
    pub const fn new() -> Self {
        Self {
            bytes: [0; PENDING_CAPACITY],
            start: 0,
            len: 0,
        }
    }

    /// Bytes held now.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is held.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Holds `bytes`, in order; returns how many were dropped because the ring was full.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let room = PENDING_CAPACITY - self.len;
        let taken = bytes.len().min(room);
        for &byte in &bytes[..taken] {
            self.bytes[(self.start + self.len) % PENDING_CAPACITY] = byte;
            self.len += 1;
        }
        bytes.len() - taken
    }

    /// Moves as much as the receive FIFO has room for into it.
    pub fn feed(&mut self, uart: &mut Pl011) {
        let count = uart.receive_room().min(self.len);
        if count == 0 {
            return;
        }
        let mut chunk = [0u8; RX_FIFO_DEPTH];
        for slot in chunk.iter_mut().take(count) {
            *slot = self.bytes[self.start];
            self.start = (self.start + 1) % PENDING_CAPACITY;
        }
        self.len -= count;
        uart.receive(&chunk[..count]);
    }
}
