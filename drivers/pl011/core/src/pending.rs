//! Console input taken from the kernel but not yet in the model's receive FIFO: fed in as the
//! guest reads, so a paste faster than the guest's 16-entry FIFO does not overrun it (a real
//! line would; the kernel's buffer and this one stand in for flow control). Bounded: past
//! [`PENDING_CAPACITY`] bytes, while the guest reads nothing, new input is dropped (docs/
//! TESTING.md, "Resource exhaustion"), and the server keeps serving.

use crate::{Pl011, RX_FIFO_DEPTH};

/// Bytes of input held back at most.
pub const PENDING_CAPACITY: usize = 1024;

/// Held-back input, oldest first.
#[derive(Clone, Debug, Default)]
pub struct PendingInput {
    bytes: heapless::Deque<u8, PENDING_CAPACITY>,
}

impl PendingInput {
    /// Nothing held.
    pub const fn new() -> Self {
        Self {
            bytes: heapless::Deque::new(),
        }
    }

    /// Bytes held now.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Holds `bytes`, in order; returns how many were dropped because it was full.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        bytes
            .iter()
            .filter(|&&byte| self.bytes.push_back(byte).is_err())
            .count()
    }

    /// Moves as much as the receive FIFO has room for into it.
    pub fn feed(&mut self, uart: &mut Pl011) {
        // On every guest access of the UART: nothing to do, at once.
        if self.bytes.is_empty() {
            return;
        }
        let mut chunk = [0u8; RX_FIFO_DEPTH];
        let mut count = 0;
        for slot in chunk.iter_mut().take(uart.receive_room()) {
            let Some(byte) = self.bytes.pop_front() else {
                break;
            };
            *slot = byte;
            count += 1;
        }
        if count > 0 {
            uart.receive(&chunk[..count]);
        }
    }
}
