//! The receive side: a FIFO of received characters, its trigger level, and the receive,
//! receive-timeout and overrun interrupt conditions it drives.
//!
//! PL011 TRM (Arm DDI 0183, r1p5) chapter 2 (the FIFOs) and §3.4 (interrupts). The r1p5
//! receive FIFO is 32 entries of 12 bits (8 data bits and the FE, PE, BE, OE flags); with UARTLCR_H.FEN clear
//! it behaves as a one-entry holding register. Nothing external is wired to the receiver yet,
//! so the FIFO stays empty unless input is injected ([`crate::Pl011::receive`]) or loopback
//! (UARTCR.LBE) feeds it from the transmitter.
//!
//! Interrupt conditions (§3.4):
//! - receive (RXRIS): set when a character brings the fill level up to the trigger level
//!   (UARTIFLS.RXIFLSEL: 1/8, 1/4, 1/2, 3/4 or 7/8 of the depth; 1 with the FIFO disabled);
//!   cleared when reads bring the level below it, or by UARTICR;
//! - receive timeout (RTRIS): in hardware, data sits in the FIFO for 32 bit periods with none
//!   arriving. The model has no time, so a burst of input counts as followed by an idle line:
//!   RTRIS is set at the end of a burst that leaves data in the FIFO, and only then (data left
//!   behind after a UARTICR clear does not time out again until the next burst). It is cleared
//!   when the FIFO empties, or by UARTICR;
//! - overrun (OERIS, UARTRSR.OE): a character arrives while the FIFO is full; it is lost, and
//!   the next character that does enter the FIFO carries the OE flag in its UARTDR bits.

use crate::registers::int;

/// Receive FIFO depth of the r1p5 PL011 (TRM chapter 1, features: a 32 x 12 receive FIFO).
pub const RX_FIFO_DEPTH: usize = 32;

/// DR's overrun flag (bit 11 of a read of UARTDR, §3.3.1).
const DR_OE: u16 = 1 << 11;

/// The receive FIFO: a ring of 12-bit entries (data in 7..0, error flags in 11..8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiveFifo {
    entries: [u16; RX_FIFO_DEPTH],
    head: usize,
    len: usize,
    /// An overrun happened and no character has entered the FIFO since.
    overrun_pending: bool,
}

/// What one character's arrival did to the interrupt state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Stored; the fill level is now this.
    Stored { level: usize },
    /// Lost: the FIFO was full (an overrun).
    Overrun,
}

impl ReceiveFifo {
    /// An empty FIFO.
    pub const fn new() -> Self {
        Self {
            entries: [0; RX_FIFO_DEPTH],
            head: 0,
            len: 0,
            overrun_pending: false,
        }
    }

    /// Characters waiting.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no character waits (UARTFR.RXFE).
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the FIFO (or the holding register) is full (UARTFR.RXFF).
    pub const fn is_full(&self, fifo_enabled: bool) -> bool {
        self.len >= depth(fifo_enabled)
    }

    /// Stores one received character, or records an overrun when full.
    pub fn push(&mut self, byte: u8, fifo_enabled: bool) -> Arrival {
        if self.is_full(fifo_enabled) {
            self.overrun_pending = true;
            return Arrival::Overrun;
        }
        let mut entry = u16::from(byte);
        if core::mem::take(&mut self.overrun_pending) {
            entry |= DR_OE;
        }
        let tail = (self.head + self.len) % RX_FIFO_DEPTH;
        if let Some(slot) = self.entries.get_mut(tail) {
            *slot = entry;
        }
        self.len += 1;
        Arrival::Stored { level: self.len }
    }

    /// Takes the oldest entry (data and error flags, as UARTDR reads it), if any.
    pub fn pop(&mut self) -> Option<u16> {
        if self.len == 0 {
            return None;
        }
        let entry = self.entries.get(self.head).copied().unwrap_or(0);
        self.head = (self.head + 1) % RX_FIFO_DEPTH;
        self.len -= 1;
        Some(entry)
    }

    /// Empties the FIFO (a change of UARTLCR_H.FEN, as QEMU does, or a reset).
    pub fn clear(&mut self) {
        *self = Self::new();
    }
}

impl Default for ReceiveFifo {
    fn default() -> Self {
        Self::new()
    }
}

/// The FIFO's depth: 32, or 1 in character mode (UARTLCR_H.FEN clear, §3.3.7).
pub const fn depth(fifo_enabled: bool) -> usize {
    if fifo_enabled { RX_FIFO_DEPTH } else { 1 }
}

/// The receive trigger level for UARTIFLS (§3.3.9, RXIFLSEL in bits 5..3): the fill level at
/// which RXRIS is set. The reserved encodings 0b101..0b111 act as the reset value (1/2).
pub const fn trigger_level(ifls: u32, fifo_enabled: bool) -> usize {
    if !fifo_enabled {
        return 1;
    }
    let eighths = match (ifls >> 3) & 0b111 {
        0b000 => 1,
        0b001 => 2,
        0b011 => 6,
        0b100 => 7,
        _ => 4,
    };
    RX_FIFO_DEPTH * eighths / 8
}

/// The raw interrupt bits one arrival sets (§3.4): RX when the level reaches the trigger
/// exactly (an edge, as in hardware), OE on an overrun.
pub const fn raised_by(arrival: Arrival, trigger: usize) -> u32 {
    match arrival {
        Arrival::Stored { level } if level == trigger => int::RX,
        Arrival::Stored { .. } => 0,
        Arrival::Overrun => int::OE,
    }
}

/// The raw interrupt bits that stop holding after a read left `level` characters (§3.4): RX
/// below the trigger, RT once empty.
pub const fn lowered_by_read(level: usize, trigger: usize) -> u32 {
    let mut lowered = 0;
    if level < trigger {
        lowered |= int::RX;
    }
    if level == 0 {
        lowered |= int::RT;
    }
    lowered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_levels_follow_ifls() {
        assert_eq!(trigger_level(0b000 << 3, true), 4);
        assert_eq!(trigger_level(0b001 << 3, true), 8);
        assert_eq!(trigger_level(0x12, true), 16);
        assert_eq!(trigger_level(0b011 << 3, true), 24);
        assert_eq!(trigger_level(0b100 << 3, true), 28);
        assert_eq!(trigger_level(0b111 << 3, true), 16);
        assert_eq!(trigger_level(0x12, false), 1);
    }

    #[test]
    fn fifo_is_first_in_first_out_and_wraps() {
        let mut fifo = ReceiveFifo::new();
        for round in 0..3u8 {
            for byte in 0..20u8 {
                fifo.push(round * 20 + byte, true);
            }
            for byte in 0..20u8 {
                assert_eq!(fifo.pop(), Some(u16::from(round * 20 + byte)));
            }
        }
        assert_eq!(fifo.pop(), None);
    }

    #[test]
    fn overrun_marks_the_next_stored_character() {
        let mut fifo = ReceiveFifo::new();
        assert_eq!(fifo.push(b'a', false), Arrival::Stored { level: 1 });
        assert_eq!(fifo.push(b'b', false), Arrival::Overrun);
        assert_eq!(fifo.pop(), Some(u16::from(b'a')));
        fifo.push(b'c', false);
        assert_eq!(fifo.pop(), Some(u16::from(b'c') | DR_OE));
    }
}
