//! Console input waiting for the guest's receive buffers (the virtio-console server,
//! docs/VIRTIO.md "Device servers"): bytes the kernel handed over (`DebugInputRead`) stay here,
//! in order, until the driver has made buffers available; what does not fit is dropped and
//! counted, never blocking the kernel's input path.

/// Bytes kept at most.
pub const CAPACITY: usize = 1024;

/// Pending console input, oldest first.
#[derive(Clone, Debug)]
pub struct InputQueue {
    bytes: [u8; CAPACITY],
    len: usize,
    dropped: u64,
}

impl Default for InputQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl InputQueue {
    /// Empty.
    pub const fn new() -> Self {
        Self {
            bytes: [0; CAPACITY],
            len: 0,
            dropped: 0,
        }
    }

    /// Whether nothing waits.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes dropped because the queue was full.
    pub const fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Appends `input`; what does not fit is dropped (and counted).
    pub fn push(&mut self, input: &[u8]) {
        let room = CAPACITY - self.len;
        let taken = input.len().min(room);
        self.bytes[self.len..self.len + taken].copy_from_slice(&input[..taken]);
        self.len += taken;
        self.dropped += (input.len() - taken) as u64;
    }

    /// Offers the waiting bytes to `deliver`, which answers how many it took (from the
    /// front); those leave the queue. Returns how many were delivered.
    pub fn feed(&mut self, deliver: impl FnOnce(&[u8]) -> usize) -> usize {
        if self.len == 0 {
            return 0;
        }
        let taken = deliver(&self.bytes[..self.len]).min(self.len);
        self.bytes.copy_within(taken..self.len, 0);
        self.len -= taken;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_waits_in_order_until_taken_and_overflow_is_counted() {
        let mut queue = InputQueue::new();
        assert_eq!(queue.feed(|_| panic!("nothing to offer")), 0);
        queue.push(b"echo hi\n");
        assert_eq!(
            queue.feed(|bytes| {
                assert_eq!(bytes, b"echo hi\n");
                5
            }),
            5
        );
        queue.push(b"ls\n");
        let mut seen = [0u8; 6];
        assert_eq!(
            queue.feed(|bytes| {
                seen.copy_from_slice(bytes);
                bytes.len()
            }),
            6
        );
        assert_eq!(&seen, b"hi\nls\n");
        assert!(queue.is_empty());
        queue.push(&[b'x'; CAPACITY + 10]);
        assert_eq!(queue.dropped(), 10);
        assert_eq!(
            queue.feed(|bytes| bytes.len() + 99),
            CAPACITY,
            "never more than it holds"
        );
    }
}
