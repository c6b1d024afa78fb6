//! The transmit side's output buffer: characters the guest transmitted, collected per line so
//! the real console is written a line at a time rather than a byte at a time.
//!
//! The guest sees every write to UARTDR complete at once (PL011 TRM, Arm DDI 0183, §3.3.3:
//! UARTFR.TXFE set, TXFF and BUSY clear), so this buffer is invisible to it: it is the wire
//! between the UART and the console, not the PL011's transmit FIFO. It is flushed on `\n` and
//! when [`LINE_CAPACITY`] bytes are waiting. Bytes still here when the server restarts are lost
//! (the buffer lives in the server's memory, which a restart reloads).

/// Bytes buffered before a flush is forced, newline or not.
pub const LINE_CAPACITY: usize = 256;

/// Collects transmitted bytes and hands whole lines to a sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineBuffer {
    bytes: [u8; LINE_CAPACITY],
    len: usize,
}

impl LineBuffer {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            bytes: [0; LINE_CAPACITY],
            len: 0,
        }
    }

    /// The bytes waiting for a newline.
    pub fn pending(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// Appends `byte`; on `\n`, or when the buffer is full, hands everything buffered (the
    /// newline included) to `sink` in one call.
    pub fn push(&mut self, byte: u8, sink: &mut impl FnMut(&[u8])) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
        if byte == b'\n' || self.len == LINE_CAPACITY {
            self.flush(sink);
        }
    }

    /// Hands whatever is buffered to `sink` (nothing when empty).
    pub fn flush(&mut self, sink: &mut impl FnMut(&[u8])) {
        if self.len > 0 {
            sink(self.pending());
            self.len = 0;
        }
    }
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn collect(buffer: &mut LineBuffer, bytes: &[u8], out: &mut Vec<Vec<u8>>) {
        for &byte in bytes {
            buffer.push(byte, &mut |line: &[u8]| out.push(line.to_vec()));
        }
    }

    #[test]
    fn a_line_is_handed_over_whole_at_its_newline() {
        let (mut buffer, mut out) = (LineBuffer::new(), Vec::new());
        collect(&mut buffer, b"guest: hello", &mut out);
        assert!(out.is_empty());
        assert_eq!(buffer.pending(), b"guest: hello");
        collect(&mut buffer, b"\r\nnext", &mut out);
        assert_eq!(out, [b"guest: hello\r\n".to_vec()]);
        assert_eq!(buffer.pending(), b"next");
    }

    #[test]
    fn a_full_buffer_is_flushed_without_a_newline() {
        let (mut buffer, mut out) = (LineBuffer::new(), Vec::new());
        collect(&mut buffer, &[b'x'; LINE_CAPACITY + 3], &mut out);
        assert_eq!(out, [[b'x'; LINE_CAPACITY].to_vec()]);
        assert_eq!(buffer.pending(), b"xxx");
    }

    #[test]
    fn flush_hands_over_a_partial_line_once() {
        let (mut buffer, mut out) = (LineBuffer::new(), Vec::new());
        collect(&mut buffer, b"login: ", &mut out);
        buffer.flush(&mut |line: &[u8]| out.push(line.to_vec()));
        buffer.flush(&mut |line: &[u8]| out.push(line.to_vec()));
        assert_eq!(out, [b"login: ".to_vec()]);
        assert!(buffer.pending().is_empty());
    }

    #[test]
    fn an_empty_line_is_just_its_newline() {
        let (mut buffer, mut out) = (LineBuffer::new(), Vec::new());
        collect(&mut buffer, b"\n\n", &mut out);
        assert_eq!(out, [b"\n".to_vec(), b"\n".to_vec()]);
    }
}
