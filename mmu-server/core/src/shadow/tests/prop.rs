//! Property tests: random guest tables over random memory slots, random event sequences.
//!
//! A world is a few memory slots (with MMIO holes, host-misaligned and aliasing slots) over the
//! low 8 MiB of guest-physical space, plus a 1 GiB slot, and eight candidate table frames whose
//! entries at indexes {0, 1, 2, 511} are random: pointers to each other (so self-maps and tables
//! used at several levels are common), 4 KiB / 2 MiB / 1 GiB leaves over the tables, reserved
//! bits, frames outside all slots. Events are guest accesses (every kind, user or supervisor,
//! with or without EFLAGS.AC), emulated writes of every shape to the tables, root and mode
//! switches, INVLPG, full flushes and slot-generation bumps.
//!
//! After every event, for sampled addresses (and all 256 at the end), whatever the shadow lets
//! the CPU do, the guest tables allow, to the same host frame, with A/D bits set as hardware
//! would. Every access completes with at most one `Fixed` fault and, when the guest denies it,
//! with the reference walker's error code. The pool's per-table counters equal a recount of the
//! tables after every event.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::helpers::*;
use crate::shadow::pte::{A, D, P, PS, RW, US, XD};
use crate::shadow::{Config, CpuMode, Gpa, GuestCpu, Gva, Hpa, MemAccess, PageSize, SlotChange};
use crate::testing::{FakeGuestMemory, Machine};

const INDEXES: [u64; 4] = [0, 1, 2, 511];
const CHUNK: u64 = 256 << 10;
const HOST: u64 = 0x40_0000_0000;

#[derive(Clone, Copy, Debug)]
struct PteSpec {
    kind: u8,
    target: u8,
    flags: u8,
}

#[derive(Clone, Debug)]
struct World {
    holes: u32,
    host_skew: Vec<u8>,
    big_slot: bool,
    tables: [u16; 8],
    entries: Vec<PteSpec>,
    cpu: GuestCpu,
    host_max: u8,
    mmio_cache: bool,
    mode_bits: u8,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Access {
        va: u8,
        access: u8,
        data: PteSpec,
    },
    Write {
        table: u8,
        entry: u8,
        shape: u8,
        value: PteSpec,
    },
    SetRoot {
        table: u8,
        mode_bits: u8,
    },
    Invlpg {
        va: u8,
    },
    Flush,
    SlotBump,
}

fn pte_spec() -> impl Strategy<Value = PteSpec> {
    let kind = prop_oneof![3 => Just(0u8), 70 => 1u8..5, 10 => Just(5u8), 10 => Just(6u8), 3 => Just(7u8), 4 => Just(8u8)];
    (kind, any::<u8>(), any::<u8>()).prop_map(|(kind, target, flags)| PteSpec {
        kind,
        target,
        flags,
    })
}

/// A guest frame in the low 8 MiB, usually one that the test addresses reach through large
/// pages (offsets 0, 1, 2 and 511 pages into the first four 2 MiB regions), so that large guest
/// pages often cover tables and guest writes often land on them.
fn frame() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => (0u16..4, 0usize..4).prop_map(|(region, k)| region * 512 + [0u16, 1, 2, 511][k]),
        1 => 0u16..2048,
    ]
}

fn world() -> impl Strategy<Value = World> {
    (
        any::<u32>(),
        proptest::collection::vec(0u8..4, 32),
        any::<bool>(),
        proptest::array::uniform8(frame()),
        proptest::collection::vec(pte_spec(), 32),
        (
            prop_oneof![Just(36u8), Just(40), Just(46), Just(52)],
            any::<bool>(),
        ),
        0u8..3,
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(
            |(
                holes,
                host_skew,
                big_slot,
                tables,
                entries,
                (maxphyaddr, gbpages),
                host_max,
                mmio_cache,
                mode_bits,
            )| World {
                // About one chunk in sixteen is a hole.
                holes: holes & holes.rotate_left(7) & holes.rotate_left(13) & holes.rotate_left(22),
                host_skew,
                big_slot,
                tables,
                entries,
                cpu: GuestCpu {
                    maxphyaddr,
                    gbpages,
                },
                host_max,
                mmio_cache,
                mode_bits,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop_oneof![0u8..16, any::<u8>()], 0u8..8, pte_spec()).prop_map(|(va, access, data)| Op::Access { va, access, data }),
        3 => (0u8..8, 0u8..4, 0u8..4, pte_spec()).prop_map(|(table, entry, shape, value)| Op::Write { table, entry, shape, value }),
        1 => (0u8..8, any::<u8>()).prop_map(|(table, mode_bits)| Op::SetRoot { table, mode_bits }),
        1 => any::<u8>().prop_map(|va| Op::Invlpg { va }),
        1 => Just(Op::Flush),
        1 => Just(Op::SlotBump),
    ]
}

impl World {
    fn table_gpa(&self, sel: u8) -> u64 {
        u64::from(self.tables[sel as usize % 8]) << 12
    }

    fn pte(&self, s: PteSpec) -> u64 {
        let f = s.flags;
        let mut flags = 0;
        // Mostly permissive (so that walks get far), sometimes each bit random.
        for (bit, val) in [(0, RW), (1, US), (2, A), (3, D)] {
            if f & (1 << bit) != 0 || f & 0x80 != 0 {
                flags |= val;
            }
        }
        if f & 0x70 == 0x70 {
            flags |= XD;
        }
        match s.kind {
            0 => u64::from(f) & !P,
            1..=4 => self.table_gpa(s.target) | flags | P,
            5 => {
                let k = u64::from(s.target);
                let frame = if k & 1 == 0 {
                    (k >> 1) % 2048
                } else {
                    ((k >> 1) % 4) * 512 + [0, 1, 2, 511][(k as usize >> 3) % 4]
                };
                frame << 12 | flags | P
            }
            6 => {
                // 0, 1 GiB, or a 2 MiB multiple (a reserved-bit error if used as a 1 GiB leaf).
                let base = match s.target % 4 {
                    0 => 0,
                    1 => 1 << 30,
                    n => u64::from(n) << 21,
                };
                base | flags | P | PS
            }
            7 => MMIO_GPA | flags | P,
            _ => {
                // Reserved bits: an address bit above MAXPHYADDR, or PS+misalignment.
                let bit = 36 + u64::from(s.target % 16);
                (1 << bit)
                    | self.table_gpa(s.target)
                    | flags
                    | P
                    | if f & 0x40 != 0 { PS | 0x2000 } else { 0 }
            }
        }
    }

    fn mode(bits: u8) -> CpuMode {
        let mut m = CpuMode::long_mode();
        m.cr0_wp = bits & 1 == 0;
        m.cr4_smep = bits & 2 != 0;
        m.cr4_smap = bits & 4 != 0;
        m.efer_nxe = bits & 0x48 != 0x48;
        m.cr0_pg = (bits >> 4) & 7 != 0;
        m
    }

    fn memory(&self) -> FakeGuestMemory {
        let mut mem = FakeGuestMemory::new();
        let mut chunk = 0u64;
        while chunk < 32 {
            if self.holes & (1 << chunk) != 0 {
                chunk += 1;
                continue;
            }
            let start = chunk;
            while chunk < 32 && self.holes & (1 << chunk) == 0 {
                chunk += 1;
            }
            let gpa = start * CHUNK;
            let host = match self.host_skew[start as usize] {
                0 | 1 => HOST + gpa,                  // host-aligned like the guest
                2 => HOST + (1 << 30) + gpa + 0x1000, // 4 KiB-aligned only
                _ => HOST,                            // aliases the memory behind GPA 0
            };
            mem.add_slot(Gpa(gpa), (chunk - start) * CHUNK, Hpa(host), false);
        }
        if self.big_slot {
            mem.add_slot(Gpa(1 << 30), 1 << 30, Hpa(HOST + (2 << 30)), false);
        }
        for (t, &table) in self.tables.iter().enumerate() {
            for (i, &idx) in INDEXES.iter().enumerate() {
                let spec = self.entries[t * 4 + i];
                mem.poke_u64(Gpa((u64::from(table) << 12) + idx * 8), self.pte(spec));
            }
        }
        mem
    }

    fn config(&self) -> Config {
        Config {
            guest: self.cpu,
            host_max_page: [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G]
                [self.host_max as usize],
            mmio_cache: self.mmio_cache,
        }
    }
}

/// The test addresses: every combination of the interesting indexes, canonical.
fn va_of(sel: u8) -> u64 {
    let s = u64::from(sel);
    let i = |k: u64| INDEXES[((s >> (2 * k)) & 3) as usize];
    let va = (i(3) << 39) | (i(2) << 30) | (i(1) << 21) | (i(0) << 12) | 0x18;
    if va & (1 << 47) != 0 {
        va | 0xffff_0000_0000_0000
    } else {
        va
    }
}

/// The `sel`-th (modulo) test address the guest tables map for some access, or `va_of(sel)`.
fn mapped_va<const N: usize, const P: usize>(m: &Machine<N, P>, sel: u8) -> u64 {
    let mapped: Vec<u64> = (0..=255u8)
        .map(va_of)
        .filter(|&va| m.ref_translate(va, ALL_ACCESSES[6]).is_ok())
        .collect();
    if mapped.is_empty() {
        va_of(sel)
    } else {
        mapped[sel as usize % mapped.len()]
    }
}

fn access_of(sel: u8) -> MemAccess {
    ALL_ACCESSES[sel as usize % ALL_ACCESSES.len()]
}

fn run<const N: usize, const P: usize>(w: &World, ops: &[Op]) -> Result<(), TestCaseError> {
    let mem = w.memory();
    let mut m: Machine<N, P> =
        match Machine::new(w.config(), mem, w.table_gpa(0), World::mode(w.mode_bits)) {
            Ok(m) => m,
            Err(e) => return Err(TestCaseError::fail(alloc::format!("{e:?}"))),
        };
    for (step, &op) in ops.iter().enumerate() {
        match op {
            Op::Access { va, access, data } => {
                // Half the time, aim at an address the guest tables currently map.
                let va = if va & 0x80 != 0 {
                    mapped_va(&m, va)
                } else {
                    va_of(va)
                };
                run_checked(&mut m, va, access_of(access), w.pte(data));
            }
            Op::Write {
                table,
                entry,
                shape,
                value,
            } => {
                let at = w.table_gpa(table) + INDEXES[entry as usize] * 8;
                let v = w.pte(value).to_le_bytes();
                let (gpa, bytes): (u64, &[u8]) = match shape {
                    0 => (at, &v),
                    1 => (at, &v[..4]),
                    2 => (at, &v[..1]),
                    _ => (at + 4, &v),
                };
                m.mmu.guest_write(&mut m.mem, &mut m.store, Gpa(gpa), bytes);
            }
            Op::SetRoot { table, mode_bits } => {
                let _ = m.set_root(w.table_gpa(table), World::mode(mode_bits));
            }
            Op::Invlpg { va } => {
                m.mmu.invlpg(&mut m.store, Gva(va_of(va)));
            }
            Op::Flush => {
                m.mmu.flush_all(&mut m.store);
            }
            Op::SlotBump => {
                m.mem.begin_update();
                m.mem.end_update();
                m.mmu
                    .memslots_changed(&mut m.mem, &mut m.store, SlotChange::Created);
            }
        }
        for sel in 0..=255u8 {
            check_va(&m, va_of(sel))
                .map_err(|e| TestCaseError::fail(alloc::format!("step {step} {op:?}: {e}")))?;
        }
        prop_assert!(m.mmu.pages_in_use() <= N);
        check_pool_counters(&m)
            .map_err(|e| TestCaseError::fail(alloc::format!("step {step} {op:?}: {e}")))?;
    }
    for sel in 0..=255u8 {
        check_va(&m, va_of(sel)).map_err(TestCaseError::fail)?;
    }
    // Every shadow entry is accounted for: a full flush leaves the pool clean.
    m.mmu.flush_all(&mut m.store);
    prop_assert_eq!(m.store.nonzero_entries(), 0);
    prop_assert_eq!(m.mmu.pages_in_use(), 1);
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(192)
}

proptest! {
    // 192 cases keep `cargo test` quick; PROPTEST_CASES=20000 for a long soak.
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 4000, ..ProptestConfig::default() })]

    #[test]
    fn shadow_never_exceeds_guest_and_faults_are_bounded(w in world(), ops in proptest::collection::vec(op(), 1..60)) {
        run::<64, 4>(&w, &ops)?;
    }

    #[test]
    fn same_under_pool_and_parent_pressure(w in world(), ops in proptest::collection::vec(op(), 1..60)) {
        run::<8, 1>(&w, &ops)?;
    }
}
