//! Guest input is hostile: every offset of both windows (and past them) with every width, and
//! random sequences of accesses and vmm calls.

use super::*;
use proptest::prelude::*;

/// Decoded `(width, count)` over `0..end` of `window`, checking that a read and a write agree
/// on whether each access decodes and that nothing panics.
fn sweep(window: GicWindow, end: u64) -> [usize; 4] {
    let mut vgic = enabled_distributor();
    let mut counts = [0; 4];
    for offset in 0..end {
        for width in [0, 1, 2, 3, 4, 5, 8, 16, 255] {
            let read = vgic.read(window, offset, width);
            let write = vgic.write(window, offset, width, u64::MAX);
            assert_eq!(
                read.is_some(),
                write.is_some(),
                "{window:?} {offset:#x} width {width}"
            );
            let _ = vgic.write(window, offset, width, 0);
            if let Some(slot) = [1, 2, 4, 8].iter().position(|&w| w == width) {
                counts[slot] += usize::from(read.is_some());
            } else {
                assert!(read.is_none(), "{window:?} {offset:#x} width {width}");
            }
        }
    }
    counts
}

#[test]
fn every_distributor_offset_and_width_answers_without_panic() {
    // Bytes: IPRIORITYR and ITARGETSR (1020 each), C/SPENDSGIR (32). Words: CTLR, TYPER, IIDR,
    // TYPER2, STATUSR (5), the seven bit arrays (7 x 32), IPRIORITYR and ITARGETSR (255
    // each), ICFGR (64), IGRPMODR (32), NSACR (64), SGIR (1), C/SPENDSGIR (8), IROUTER halves
    // (2 x 988), ID registers (12). Doublewords: IROUTER32..1019 (988).
    let words = 5 + 7 * 32 + 255 + 255 + 64 + 32 + 64 + 1 + 8 + 2 * 988 + 12;
    assert_eq!(sweep(DIST, 0x1_0100), [2072, 0, words, 988]);
}

#[test]
fn every_redistributor_offset_and_width_answers_without_panic() {
    // RD frame words: CTLR, IIDR, TYPER halves, STATUSR, WAKER, PROPBASER and PENDBASER
    // halves, ID registers; SGI frame words: the seven bit registers, IPRIORITYR0..7, ICFGR0/1,
    // IGRPMODR0, NSACR. Bytes: the 32 priorities. Doublewords: TYPER, PROPBASER, PENDBASER.
    let words = (1 + 1 + 2 + 1 + 1 + 2 + 2 + 12) + (7 + 8 + 2 + 1 + 1);
    assert_eq!(sweep(REDIST, 0x2_0100), [32, 0, words, 3]);
}

#[test]
fn huge_offsets_do_not_decode() {
    let mut vgic = Vgic::new();
    for offset in [0x1_0000, 0x2_0000, 1 << 32, u64::MAX - 3, u64::MAX] {
        for window in [DIST, REDIST] {
            assert_eq!(vgic.read(window, offset, 4), None, "{offset:#x}");
            assert_eq!(vgic.write(window, offset, 4, 1), None, "{offset:#x}");
        }
    }
    assert_eq!(vgic, Vgic::new());
}

#[derive(Clone, Debug)]
enum Op {
    Read(GicWindow, u64, u8),
    Write(GicWindow, u64, u8, u64),
    Line(u32, bool),
    Sgi(u64),
    Inject { fail_from: usize },
    Complete(u32),
}

fn window() -> impl Strategy<Value = GicWindow> {
    prop_oneof![Just(DIST), Just(REDIST)]
}

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..0x1000,
        0x6000u64..0x8000,
        0xFF00u64..0x1_0100,
        0x1_0000u64..0x1_1000,
        any::<u64>(),
    ]
}

fn width() -> impl Strategy<Value = u8> {
    prop_oneof![Just(1u8), Just(4), Just(8), Just(2), any::<u8>()]
}

fn intid() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..256, any::<u32>()]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (window(), offset(), width()).prop_map(|(w, o, s)| Op::Read(w, o, s)),
        4 => (window(), offset(), width(), any::<u64>())
            .prop_map(|(w, o, s, v)| Op::Write(w, o, s, v)),
        1 => (intid(), any::<bool>()).prop_map(|(i, l)| Op::Line(i, l)),
        1 => any::<u64>().prop_map(|v| Op::Sgi(v & 0x00FF_1FFF_0FFF_FFFF)),
        1 => (0usize..5).prop_map(|fail_from| Op::Inject { fail_from }),
        1 => intid().prop_map(Op::Complete),
    ]
}

proptest! {
    /// Random accesses and calls never panic, reads never change anything, a write reports a
    /// vtimer change exactly when there was one, and every decision is well formed: at most four,
    /// distinct, never INTID 27, sorted by priority, each then in flight and pending in ISPENDR.
    #[test]
    fn random_sequences_keep_the_model_coherent(ops in proptest::collection::vec(op(), 1..60)) {
        let mut vgic = Vgic::new();
        for op in ops {
            match op {
                Op::Read(window, offset, width) => {
                    let before = vgic.clone();
                    let _ = vgic.read(window, offset, width);
                    prop_assert_eq!(&vgic, &before);
                }
                Op::Write(window, offset, width, value) => {
                    let vtimer = vgic.vtimer();
                    if let Some(outcome) = vgic.write(window, offset, width, value) {
                        prop_assert_eq!(outcome.vtimer_changed, vgic.vtimer() != vtimer);
                    }
                    prop_assert_eq!(read32(&vgic, DIST, 4), u64::from(GICD_TYPER));
                    prop_assert_eq!(vgic.read(REDIST, 8, 8), Some(GICR_TYPER));
                }
                Op::Line(intid, high) => {
                    let spi = (32..256).contains(&intid);
                    prop_assert_eq!(vgic.set_line(intid, high).is_ok(), spi);
                }
                Op::Sgi(value) => {
                    let _ = vgic.send_sgi(value);
                }
                Op::Inject { fail_from } => {
                    let mut out = heapless::Vec::new();
                    vgic.next_injections(&mut out);
                    for (i, injection) in out.iter().enumerate() {
                        prop_assert_ne!(injection.intid, VTIMER_INTID);
                        prop_assert!(out[..i].iter().all(|other| other.intid != injection.intid));
                        if i > 0 {
                            prop_assert!(out[i - 1].priority <= injection.priority);
                        }
                        let intid = u64::from(injection.intid);
                        let (window, bank) = if intid < 32 { (REDIST, SGI) } else { (DIST, 0) };
                        let pending = read32(&vgic, window, bank + 0x200 + intid / 32 * 4);
                        prop_assert_ne!(pending & (1 << (intid % 32)), 0);
                        if i >= fail_from {
                            prop_assert_eq!(vgic.injection_failed(intid as u32), Ok(()));
                        }
                    }
                }
                Op::Complete(intid) => {
                    let _ = vgic.completed(intid);
                }
            }
            // Every state the interface can reach survives the vmm's state page unchanged.
            let mut bytes = [0u8; SAVED_BYTES];
            prop_assert_eq!(vgic.save(&mut bytes), Some(SAVED_BYTES));
            prop_assert_eq!(Vgic::restore(&bytes), Some(vgic.clone()));
        }
    }
}
