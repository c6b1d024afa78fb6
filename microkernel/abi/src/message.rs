//! The message-info word that travels in `x1` with every IPC and invocation.
//!
//! ```text
//!  63                               12 11 10  9  8  7  6            0
//! +-----------------------------------+-----+--+-----+---------------+
//! | label                             | 0 0 |E | caps| length (words)|
//! +-----------------------------------+-----+--+-----+---------------+
//! ```
//! `E` set means the kernel answered instead of the peer: the label is a
//! [`KernelError`](crate::KernelError) code and the message registers carry its details.

/// Most message words one message can carry: 4 in registers, the rest in the IPC buffer.
pub const MAX_MESSAGE_WORDS: usize = 64;
/// Message words that travel in registers (x2..x5).
pub const REGISTER_MESSAGE_WORDS: usize = 4;
/// Most capabilities one message can transfer.
pub const MAX_EXTRA_CAPS: usize = 1;
/// The label of what a receive on an endpoint returns when the receiver's bound notification
/// was signalled instead (seL4's bound notifications): `x0` is the signal word, no message words.
/// No protocol uses it: postcard labels are small enum indices.
pub const BOUND_NOTIFICATION_LABEL: u64 = 0xF_FFFF;
/// The badge the kernel signals a `DebugInputBind` notification with.
pub const CONSOLE_INPUT_BADGE: u64 = 1 << 63;
/// Console input bytes one `DebugInputRead` returns at most (three message registers).
pub const CONSOLE_INPUT_CHUNK: usize = 24;
/// IPC-buffer word holding the slot of the capability a sender transfers.
pub const IPC_BUFFER_SEND_CAP: usize = MAX_MESSAGE_WORDS;
/// IPC-buffer word holding the empty slot where a receiver accepts a capability (0 = none).
pub const IPC_BUFFER_RECEIVE_SLOT: usize = MAX_MESSAGE_WORDS + 1;
/// Words of the IPC buffer the kernel reads or writes.
pub const IPC_BUFFER_WORDS: usize = MAX_MESSAGE_WORDS + 2;

const LENGTH_BITS: u64 = 7;
const LENGTH_MASK: u64 = (1 << LENGTH_BITS) - 1;
const CAPS_SHIFT: u64 = 7;
const CAPS_MASK: u64 = 0b11;
const ERROR_BIT: u64 = 1 << 9;
const LABEL_SHIFT: u64 = 12;

/// The message-info word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MessageInfo(u64);

impl MessageInfo {
    /// A message with a label, `length` words and `extra_caps` capabilities.
    /// Out-of-range lengths are the caller's bug; the kernel re-validates every word it receives.
    pub const fn new(label: u64, extra_caps: u64, length: u64) -> Self {
        Self(
            (label << LABEL_SHIFT)
                | ((extra_caps & CAPS_MASK) << CAPS_SHIFT)
                | (length & LENGTH_MASK),
        )
    }

    /// The kernel's answer for a failed call: error code in the label, details in `length` words.
    pub const fn error(code: u64, length: u64) -> Self {
        Self((code << LABEL_SHIFT) | ERROR_BIT | (length & LENGTH_MASK))
    }

    /// Wraps a raw register value.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw register value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The label (an error code when [`Self::is_error`]).
    pub const fn label(self) -> u64 {
        self.0 >> LABEL_SHIFT
    }

    /// Number of message words.
    pub const fn length(self) -> usize {
        (self.0 & LENGTH_MASK) as usize
    }

    /// Number of capabilities transferred.
    pub const fn extra_caps(self) -> usize {
        ((self.0 >> CAPS_SHIFT) & CAPS_MASK) as usize
    }

    /// Whether the kernel, not the peer, answered.
    pub const fn is_error(self) -> bool {
        self.0 & ERROR_BIT != 0
    }

    /// The same message with `length` replaced.
    pub const fn with_length(self, length: u64) -> Self {
        Self((self.0 & !LENGTH_MASK) | (length & LENGTH_MASK))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let info = MessageInfo::new(0xABCDE, 1, 17);
        assert_eq!(info.label(), 0xABCDE);
        assert_eq!(info.extra_caps(), 1);
        assert_eq!(info.length(), 17);
        assert!(!info.is_error());
        let err = MessageInfo::error(7, 2);
        assert!(err.is_error());
        assert_eq!(err.label(), 7);
        assert_eq!(err.length(), 2);
    }

    #[test]
    fn length_is_masked_not_carried_into_other_fields() {
        let info = MessageInfo::new(1, 0, 0x1FF);
        assert_eq!(info.length(), 0x7F);
        assert_eq!(info.extra_caps(), 0);
        assert_eq!(info.label(), 1);
    }
}
