//! The console's output, printed a line at a time as the PL011 server prints its guest's
//! (drivers/pl011/server): bytes gather until a `\n` (which ends the line it belongs to) or
//! until [`LINE_BYTES`] are waiting; a partial line stays until its end arrives.

/// The longest piece printed at once.
pub const LINE_BYTES: usize = 256;

/// Bytes waiting for the end of their line.
#[derive(Clone, Debug)]
pub struct LineBuffer {
    bytes: [u8; LINE_BYTES],
    len: usize,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuffer {
    /// Empty.
    pub const fn new() -> Self {
        Self {
            bytes: [0; LINE_BYTES],
            len: 0,
        }
    }

    /// Adds `input`; hands every completed line (with its `\n`) or full buffer to `emit`.
    pub fn push(&mut self, input: &[u8], emit: &mut impl FnMut(&[u8])) {
        for &byte in input {
            self.bytes[self.len] = byte;
            self.len += 1;
            if byte == b'\n' || self.len == LINE_BYTES {
                emit(&self.bytes[..self.len]);
                self.len = 0;
            }
        }
    }

    /// Hands over what is waiting, if anything.
    pub fn flush(&mut self, emit: &mut impl FnMut(&[u8])) {
        if self.len > 0 {
            emit(&self.bytes[..self.len]);
            self.len = 0;
        }
    }
}

/// Bytes as text: valid UTF-8 as it is, each invalid sequence as U+FFFD.
pub struct Lossy<'a>(pub &'a [u8]);

impl core::fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    fn emitted(buffer: &mut LineBuffer, inputs: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        for input in inputs {
            buffer.push(input, &mut |line: &[u8]| lines.push(line.to_vec()));
        }
        lines
    }

    #[test]
    fn lines_are_handed_over_whole_however_they_arrive() {
        let mut buffer = LineBuffer::new();
        let lines = emitted(&mut buffer, &[b"hel", b"lo\nwor", b"ld\n", b"$ "]);
        assert_eq!(lines, [b"hello\n".to_vec(), b"world\n".to_vec()]);
        // The prompt waits for its line's end, or a flush.
        let mut rest = Vec::new();
        buffer.flush(&mut |line: &[u8]| rest.push(line.to_vec()));
        assert_eq!(rest, [b"$ ".to_vec()]);
        buffer.flush(&mut |_: &[u8]| panic!("nothing left"));
    }

    #[test]
    fn a_long_line_goes_in_full_pieces() {
        let mut buffer = LineBuffer::new();
        let long = [b'x'; LINE_BYTES + 10];
        let lines = emitted(&mut buffer, &[&long, b"\n"]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), LINE_BYTES);
        assert_eq!(lines[1], [[b'x'; 10].as_slice(), b"\n"].concat());
    }

    #[test]
    fn invalid_utf8_prints_as_replacement_characters() {
        let text: String = Lossy(b"ok \xff\xfe end\n").to_string();
        assert_eq!(text, "ok \u{FFFD}\u{FFFD} end\n");
    }
}
