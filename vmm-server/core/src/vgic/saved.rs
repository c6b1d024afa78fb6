//! The model as the vmm's state page keeps it, so that a restarted vmm takes the VM over with
//! its interrupt configuration intact (docs/VMM.md, "Restart"): a fixed little-endian layout,
//! [`SAVED_BYTES`] long, version first.
//!
//! ```text
//! version u8 = 1 | GICD_CTLR u32 | ProcessorSleep u8 | nine INTID bitmaps, 8 × u32 each
//! (group1, enabled, latched, line, edge, active, in_flight, consumed_latch, awaiting_eoi)
//! | priority 256 × u8 | route 256 × u32
//! ```
//!
//! Restoring takes any bytes: what does not have the length and version is no state, and the
//! fields that have fixed values in every model (GICD_CTLR's read-only bits, SGIs edge) are
//! forced back, so a restored model is one the register interface could have produced. What
//! the model believes is in the list registers may be stale after a crash; [`Vgic::reconcile`]
//! fixes that from the kernel's answer.

use super::irqs::{Bits, Irqs};
use super::{INTIDS, MAINTENANCE_INTID, VTIMER_INTID, Vgic, distributor};

const VERSION: u8 = 1;
const BITMAPS: usize = 9;
const BITMAP_BYTES: usize = INTIDS / 8;
/// Bytes of a saved model.
pub const SAVED_BYTES: usize = 1 + 4 + 1 + BITMAPS * BITMAP_BYTES + INTIDS + INTIDS * 4;

/// Writes bytes in order into a buffer known to be long enough.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}

/// Reads bytes in order from a buffer known to be long enough.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.at..self.at + N]);
        self.at += N;
        out
    }

    fn bits(&mut self) -> Bits {
        let mut bits = Bits::none();
        for n in 0..INTIDS / 32 {
            bits.set_word(n, u32::from_le_bytes(self.take()));
        }
        bits
    }
}

impl Irqs {
    fn bitmaps(&self) -> [&Bits; BITMAPS] {
        [
            &self.group1,
            &self.enabled,
            &self.latched,
            &self.line,
            &self.edge,
            &self.active,
            &self.in_flight,
            &self.consumed_latch,
            &self.awaiting_eoi,
        ]
    }
}

impl Vgic {
    /// Writes the model into `out`; `None` (nothing written) when `out` is shorter than
    /// [`SAVED_BYTES`]. Returns the bytes used.
    pub fn save(&self, out: &mut [u8]) -> Option<usize> {
        let out = out.get_mut(..SAVED_BYTES)?;
        let mut writer = Writer { out, at: 0 };
        writer.put(&[VERSION]);
        writer.put(&self.ctlr.to_le_bytes());
        writer.put(&[u8::from(self.processor_sleep)]);
        for bits in self.irqs.bitmaps() {
            for n in 0..INTIDS / 32 {
                writer.put(&bits.word(n).to_le_bytes());
            }
        }
        writer.put(&self.irqs.priority);
        let routes = &mut writer.out[writer.at..];
        for (bytes, route) in routes.chunks_exact_mut(4).zip(self.irqs.route) {
            bytes.copy_from_slice(&route.to_le_bytes());
        }
        Some(SAVED_BYTES)
    }

    /// The model saved in `bytes` by [`Vgic::save`]; `None` unless they are exactly a saved
    /// model of this version.
    pub fn restore(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != SAVED_BYTES || bytes[0] != VERSION {
            return None;
        }
        let mut reader = Reader { bytes, at: 1 };
        let ctlr = u32::from_le_bytes(reader.take()) & distributor::CTLR_WRITABLE;
        let processor_sleep = reader.take::<1>()[0] != 0;
        let mut irqs = Irqs::new();
        irqs.group1 = reader.bits();
        irqs.enabled = reader.bits();
        irqs.latched = reader.bits();
        irqs.line = reader.bits();
        irqs.edge = reader.bits();
        irqs.active = reader.bits();
        irqs.in_flight = reader.bits();
        irqs.consumed_latch = reader.bits();
        irqs.awaiting_eoi = reader.bits();
        // SGIs are always edge-triggered (their Int_config is read-only).
        irqs.edge.set_word(0, irqs.edge.word(0) | 0xFFFF);
        irqs.priority = reader.take();
        for route in irqs.route.iter_mut() {
            *route = u32::from_le_bytes(reader.take()) & distributor::ROUTE_MASK as u32;
        }
        debug_assert_eq!(reader.at, SAVED_BYTES);
        Some(Self {
            ctlr,
            processor_sleep,
            irqs,
        })
    }

    /// Brings what the model has in flight in line with what the kernel's list registers hold
    /// (`held`: bit n % 64 of word n / 64 for INTID n, `VcpuListRegisters`). After a restart
    /// the two can differ in two ways: an interrupt the model handed out has left the list
    /// registers while no vmm heard of it (the kernel abandons a maintenance exit whose vmm
    /// died: the interrupt is complete), or the previous instance handed one out after its
    /// last save (it is in flight). The kernel's two INTIDs are not the model's to track.
    pub fn reconcile(&mut self, held: &[u64; 4]) {
        for intid in 0..INTIDS {
            if intid == usize::from(VTIMER_INTID) || intid == usize::from(MAINTENANCE_INTID) {
                continue;
            }
            let is_held = held[intid / 64] & (1 << (intid % 64)) != 0;
            let irqs = &mut self.irqs;
            match (irqs.in_flight.get(intid), is_held) {
                (true, false) => {
                    // As its maintenance exit would have ended it (`completed`).
                    if irqs.awaiting_eoi.get(intid) {
                        irqs.active.set(intid, false);
                    }
                    self.end_flight(intid);
                }
                (false, true) => {
                    let level = !irqs.edge.get(intid);
                    irqs.latched.set(intid, false);
                    irqs.consumed_latch.set(intid, false);
                    irqs.in_flight.set(intid, true);
                    irqs.awaiting_eoi.set(intid, level);
                }
                _ => {}
            }
        }
    }
}
