//! The MMIO fast path's wire format: what a device server receives when the kernel sends it a
//! guest's access straight from a stage-2 MMIO marker, how it answers, and what the MMIO
//! invocations answer (docs/MMIO.md).
//!
//! **The call.** A guest load or store to a page whose stage-2 entry holds a current MMIO
//! marker arrives at the route's endpoint as a Call from the VCPU thread: `x0` the route's badge
//! (the badge of the endpoint capability the vmm set the route with), label
//! [`crate::FaultKind::Mmio`], four words ([`MmioMessage::to_words`]):
//!
//! | word | meaning |
//! |------|---------|
//! | 0 | offset of the access from the route's base IPA |
//! | 1 | width in bytes: 1, 2, 4 or 8 |
//! | 2 | for a write, the value written (the low `width` bytes of the source register); 0 for a read |
//! | 3 | flags: bit 0 [`FLAG_WRITE`]; the other bits are 0 |
//!
//! The label is far above any postcard enum index, so a device server that also speaks its
//! `device-api` protocol with the vmm on the same endpoint tells the two apart by label alone.
//!
//! **The answer.** The device server replies (ReplyRecv) with label [`REPLY_DONE`] and, for a
//! read, the value in word 0 (the kernel keeps the low `width` bytes and extends them as the
//! load instruction asks). Any other label, or the error bit, is a bus error: the guest takes a
//! synchronous external abort at the faulting address, as the vmm's `INJECT_ABORT` does.
//! The kernel writes the loaded register and steps the guest past the instruction; the vmm is
//! not involved, so a device whose interrupt line changes with an access tells the vmm itself
//! (it signals the vmm, which asks `device-api`'s `Line`).

/// Routes one VM's MMIO route table holds (route indices `0..MAX_ROUTES`).
pub const MAX_ROUTES: usize = 16;

/// Words of a fast-path MMIO message.
pub const MMIO_MESSAGE_WORDS: usize = 4;

/// Flags bit 0: the access is a write.
pub const FLAG_WRITE: u64 = 1 << 0;

/// Reply label of a completed access (a read's value in word 0).
pub const REPLY_DONE: u64 = 0;
/// Reply label of a bus error (no register there, or a width it does not take): the guest
/// takes a synchronous external abort. Every label other than [`REPLY_DONE`] means the same.
pub const REPLY_BUS_ERROR: u64 = 1;

/// `VSpaceMmioUpdate` MR0: an update of the VM's memory map begins (markers stop matching at
/// once, and none is installed until it ends).
pub const UPDATE_BEGIN: u64 = 1;
/// `VSpaceMmioUpdate` MR0: the update ends; the VM has a fresh generation.
pub const UPDATE_END: u64 = 0;

/// One guest MMIO access as a device server receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioMessage {
    /// Offset from the route's base IPA.
    pub offset: u64,
    /// Bytes: 1, 2, 4 or 8.
    pub width: u8,
    /// A write's value (masked to `width`), 0 for a read.
    pub value: u64,
    /// A write (else a read).
    pub write: bool,
}

impl MmioMessage {
    /// The message words.
    pub const fn to_words(&self) -> [u64; MMIO_MESSAGE_WORDS] {
        [
            self.offset,
            self.width as u64,
            self.value,
            if self.write { FLAG_WRITE } else { 0 },
        ]
    }

    /// Rebuilds a message from its words; `None` for a width or flags the kernel never sends.
    pub const fn from_words(words: [u64; MMIO_MESSAGE_WORDS]) -> Option<Self> {
        if !matches!(words[1], 1 | 2 | 4 | 8) || words[3] & !FLAG_WRITE != 0 {
            return None;
        }
        Some(Self {
            offset: words[0],
            width: words[1] as u8,
            value: words[2],
            write: words[3] & FLAG_WRITE != 0,
        })
    }
}

/// A device server's answer to one [`MmioMessage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioAnswer {
    /// Completed: a read's value (ignored for a write).
    Done(u64),
    /// No register there, or a width it does not take: the guest takes an external abort.
    BusError,
}

impl MmioAnswer {
    /// The reply's label and word 0.
    pub const fn reply(&self) -> (u64, u64) {
        match *self {
            Self::Done(value) => (REPLY_DONE, value),
            Self::BusError => (REPLY_BUS_ERROR, 0),
        }
    }
}

/// What a `VSpaceMapMmio` did (reply MR0).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkerAction {
    /// The entry was empty: the marker was written.
    Installed = 0,
    /// An older marker was there: replaced by the current one.
    Replaced = 1,
    /// A valid page is mapped there: nothing written (a marker never replaces a mapping).
    Occupied = 2,
    /// A block covers the address: nothing written (markers live in level-3 entries only).
    Block = 3,
    /// The VM's markers are being zapped after its generation wrapped: this call zapped a part
    /// of them instead of installing anything. Later calls install again.
    Zapping = 4,
}

impl MarkerAction {
    /// Decodes reply MR0.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            0 => Self::Installed,
            1 => Self::Replaced,
            2 => Self::Occupied,
            3 => Self::Block,
            4 => Self::Zapping,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_odd_words_are_refused() {
        let message = MmioMessage {
            offset: 0x50,
            width: 4,
            value: 0xDEAD_BEEF,
            write: true,
        };
        assert_eq!(message.to_words(), [0x50, 4, 0xDEAD_BEEF, 1]);
        assert_eq!(MmioMessage::from_words(message.to_words()), Some(message));
        assert_eq!(MmioMessage::from_words([0, 3, 0, 0]), None);
        assert_eq!(MmioMessage::from_words([0, 4, 0, 2]), None);
        for raw in 0..5 {
            assert_eq!(MarkerAction::from_raw(raw).map(|a| a as u64), Some(raw));
        }
        assert_eq!(MarkerAction::from_raw(5), None);
        assert_eq!(MmioAnswer::Done(7).reply(), (REPLY_DONE, 7));
        assert_eq!(MmioAnswer::BusError.reply(), (REPLY_BUS_ERROR, 0));
    }
}
