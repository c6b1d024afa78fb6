//! A fake of the port's guest memory: memory slots over a sparse host physical memory.
//!
//! Host memory is a map from host frame to 4 KiB of bytes, created zeroed on first write, so
//! tests can use gigabyte-sized slots. Slots may alias the same host frames, as real slot tables
//! can. Slot search is linear, so its cost grows with the number of slots as a naive port's
//! would; `searches` and `reads` count the engine's calls.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cell::Cell;

use crate::shadow::{Gfn, Gpa, GuestMemory, Hpa, MemslotGeneration, SlotMapping};

/// One memory slot of the fake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FakeSlot {
    /// First guest frame.
    pub base: Gfn,
    /// Frames.
    pub frames: u64,
    /// Host address of the first frame.
    pub host_base: Hpa,
    /// Writes fault as MMIO.
    pub readonly: bool,
}

/// Guest memory for tests and benchmarks.
#[derive(Default)]
pub struct FakeGuestMemory {
    slots: Vec<FakeSlot>,
    host: BTreeMap<u64, Box<[u8; 4096]>>,
    generation: MemslotGeneration,
    searches: Cell<u64>,
    reads: Cell<u64>,
}

impl FakeGuestMemory {
    /// No slots, generation 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a slot of `bytes` (4 KiB multiple) at `gpa`, backed from `host`. Bumps the generation
    /// like a complete slot update (begin + end).
    pub fn add_slot(&mut self, gpa: Gpa, bytes: u64, host: Hpa, readonly: bool) {
        self.begin_update();
        self.slots.push(FakeSlot {
            base: gpa.gfn(),
            frames: bytes >> 12,
            host_base: host,
            readonly,
        });
        self.end_update();
    }

    /// Remove the slot starting at `gpa`, if any.
    pub fn remove_slot(&mut self, gpa: Gpa) {
        self.begin_update();
        self.slots.retain(|s| s.base != gpa.gfn());
        self.end_update();
    }

    /// Start a slot update: the generation shows "in progress" until [`Self::end_update`].
    pub fn begin_update(&mut self) {
        self.generation.update_in_progress = true;
    }

    /// Finish a slot update: the generation grows by one.
    pub fn end_update(&mut self) {
        self.generation.update_in_progress = false;
        self.generation.value += 1;
    }

    /// Jump the generation (to test wrap-around).
    pub fn set_generation(&mut self, value: u64) {
        self.generation.value = value;
    }

    /// The slots.
    pub fn slots(&self) -> &[FakeSlot] {
        &self.slots
    }

    /// Slot searches made through [`GuestMemory::lookup_slot`].
    pub fn searches(&self) -> u64 {
        self.searches.get()
    }

    /// Reads made through [`GuestMemory::read_u64`].
    pub fn reads(&self) -> u64 {
        self.reads.get()
    }

    /// The slot holding `gfn`, without counting.
    pub fn slot_of(&self, gfn: Gfn) -> Option<FakeSlot> {
        self.slots
            .iter()
            .find(|s| gfn.0 >= s.base.0 && gfn.0 - s.base.0 < s.frames)
            .copied()
    }

    /// Host address of `gpa`, without counting.
    pub fn translate(&self, gpa: Gpa) -> Option<Hpa> {
        let s = self.slot_of(gpa.gfn())?;
        Some(Hpa(s.host_base.0
            + ((gpa.gfn().0 - s.base.0) << 12)
            + gpa.page_offset()))
    }

    /// Read 8 bytes of host memory (zero if never written).
    pub fn host_read_u64(&self, hpa: Hpa) -> u64 {
        let off = (hpa.0 & 0xff8) as usize;
        self.host.get(&hpa.frame()).map_or(0, |page| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&page[off..off + 8]);
            u64::from_le_bytes(b)
        })
    }

    /// Write 8 bytes of host memory (as a guest store through a shadow mapping does).
    pub fn host_write_u64(&mut self, hpa: Hpa, value: u64) {
        for (i, b) in value.to_le_bytes().into_iter().enumerate() {
            self.host_write_byte(Hpa(hpa.0 + i as u64), b);
        }
    }

    fn host_write_byte(&mut self, hpa: Hpa, byte: u8) {
        let page = self
            .host
            .entry(hpa.frame())
            .or_insert_with(|| Box::new([0; 4096]));
        page[(hpa.0 & 0xfff) as usize] = byte;
    }

    /// Read guest memory without counting; `None` outside all slots.
    pub fn peek_u64(&self, gpa: Gpa) -> Option<u64> {
        self.translate(Gpa(gpa.0 & !7))
            .map(|h| self.host_read_u64(h))
    }

    /// Write guest memory behind the engine's back (test set-up only; ignores read-only).
    pub fn poke_u64(&mut self, gpa: Gpa, value: u64) -> bool {
        let Some(hpa) = self.translate(Gpa(gpa.0 & !7)) else {
            return false;
        };
        self.host_write_u64(hpa, value);
        true
    }

    fn writable(&self, gpa: Gpa) -> Option<Hpa> {
        let s = self.slot_of(gpa.gfn())?;
        if s.readonly {
            None
        } else {
            self.translate(gpa)
        }
    }
}

impl GuestMemory for FakeGuestMemory {
    fn lookup_slot(&self, gfn: Gfn) -> Option<SlotMapping> {
        self.searches.set(self.searches.get() + 1);
        self.slot_of(gfn).map(|s| SlotMapping {
            base: s.base,
            frames: s.frames,
            host_base: s.host_base,
            readonly: s.readonly,
        })
    }

    fn read_u64(&self, gpa: Gpa) -> Option<u64> {
        self.reads.set(self.reads.get() + 1);
        self.peek_u64(gpa)
    }

    fn write_u64(&mut self, gpa: Gpa, value: u64) -> bool {
        self.write_bytes(Gpa(gpa.0 & !7), &value.to_le_bytes())
    }

    fn write_bytes(&mut self, gpa: Gpa, bytes: &[u8]) -> bool {
        let all_ok = (0..bytes.len() as u64).all(|i| self.writable(Gpa(gpa.0 + i)).is_some());
        if !all_ok {
            return false;
        }
        for (i, &b) in bytes.iter().enumerate() {
            if let Some(h) = self.writable(Gpa(gpa.0 + i as u64)) {
                self.host_write_byte(h, b);
            }
        }
        true
    }

    fn memslot_generation(&self) -> MemslotGeneration {
        self.generation
    }
}
