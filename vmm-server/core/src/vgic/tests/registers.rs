//! Every register of the two tables in distributor.rs and redistributor.rs: offset, accepted
//! widths, reset value and what a write does.

use super::*;

/// How a register answers writes.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Writes ignored, reads the reset value.
    ReadOnly,
    /// Reads 0, writes ignored.
    RazWi,
    /// These bits take what is written; the others keep their reset value.
    Writable(u64),
}
use Kind::{RazWi, ReadOnly, Writable};

struct Register {
    name: &'static str,
    window: GicWindow,
    offset: u64,
    widths: &'static [u8],
    reset: u64,
    kind: Kind,
}

const fn reg(
    name: &'static str,
    window: GicWindow,
    offset: u64,
    widths: &'static [u8],
    reset: u64,
    kind: Kind,
) -> Register {
    Register {
        name,
        window,
        offset,
        widths,
        reset,
        kind,
    }
}

const W: &[u8] = &[4];
const BW: &[u8] = &[1, 4];
const QW: &[u8] = &[4, 8];
const ONES: u64 = 0xFFFF_FFFF;
const CONFIG_BITS: u64 = 0xAAAA_AAAA;

const TABLE: &[Register] = &[
    reg("GICD_CTLR", DIST, 0x0000, W, 0x50, Writable(0b11)),
    reg("GICD_TYPER", DIST, 0x0004, W, 0x0248_0007, ReadOnly),
    reg("GICD_IIDR", DIST, 0x0008, W, 0, ReadOnly),
    reg("GICD_TYPER2", DIST, 0x000C, W, 0, ReadOnly),
    reg("GICD_STATUSR", DIST, 0x0010, W, 0, RazWi),
    reg("GICD_IGROUPR0 (ARE)", DIST, 0x0080, W, 0, RazWi),
    reg("GICD_IGROUPR1", DIST, 0x0084, W, ONES, Writable(ONES)),
    reg("GICD_IGROUPR7", DIST, 0x009C, W, ONES, Writable(ONES)),
    reg("GICD_IGROUPR8 (INTIDs 256..)", DIST, 0x00A0, W, 0, RazWi),
    reg("GICD_IGROUPR31", DIST, 0x00FC, W, 0, RazWi),
    reg("GICD_ISENABLER0 (ARE)", DIST, 0x0100, W, 0, RazWi),
    reg("GICD_ICACTIVER0 (ARE)", DIST, 0x0380, W, 0, RazWi),
    reg("GICD_ISPENDR8", DIST, 0x0220, W, 0, RazWi),
    reg("GICD_IPRIORITYR0 (ARE)", DIST, 0x0400, BW, 0, RazWi),
    reg("GICD_IPRIORITYR7 (ARE)", DIST, 0x041C, BW, 0, RazWi),
    reg("GICD_IPRIORITYR8", DIST, 0x0420, BW, 0, Writable(ONES)),
    reg("GICD_IPRIORITYR63", DIST, 0x04FC, BW, 0, Writable(ONES)),
    reg("GICD_IPRIORITYR64", DIST, 0x0500, BW, 0, RazWi),
    reg("GICD_IPRIORITYR254", DIST, 0x07F8, BW, 0, RazWi),
    reg("GICD_ITARGETSR0", DIST, 0x0800, BW, 0, RazWi),
    reg("GICD_ITARGETSR8", DIST, 0x0820, BW, 0, RazWi),
    reg("GICD_ITARGETSR254", DIST, 0x0BF8, BW, 0, RazWi),
    reg("GICD_ICFGR0 (ARE)", DIST, 0x0C00, W, 0, RazWi),
    reg("GICD_ICFGR1 (ARE)", DIST, 0x0C04, W, 0, RazWi),
    reg("GICD_ICFGR2", DIST, 0x0C08, W, 0, Writable(CONFIG_BITS)),
    reg("GICD_ICFGR15", DIST, 0x0C3C, W, 0, Writable(CONFIG_BITS)),
    reg("GICD_ICFGR16", DIST, 0x0C40, W, 0, RazWi),
    reg("GICD_IGRPMODR1", DIST, 0x0D04, W, 0, RazWi),
    reg("GICD_NSACR2", DIST, 0x0E08, W, 0, RazWi),
    reg("GICD_SGIR (WO)", DIST, 0x0F00, W, 0, RazWi),
    reg("GICD_CPENDSGIR0", DIST, 0x0F10, BW, 0, RazWi),
    reg("GICD_SPENDSGIR3", DIST, 0x0F2C, BW, 0, RazWi),
    reg("GICD_IROUTER32", DIST, 0x6100, QW, 0, Writable(0xFF_FFFF)),
    reg("GICD_IROUTER255", DIST, 0x67F8, QW, 0, Writable(0xFF_FFFF)),
    reg("GICD_IROUTER256", DIST, 0x6800, QW, 0, RazWi),
    reg("GICD_IROUTER1019", DIST, 0x7FD8, QW, 0, RazWi),
    reg("GICD_PIDR4", DIST, 0xFFD0, W, 0, ReadOnly),
    reg("GICD_PIDR0", DIST, 0xFFE0, W, 0, ReadOnly),
    reg("GICD_PIDR2", DIST, 0xFFE8, W, 0x30, ReadOnly),
    reg("GICD_CIDR3", DIST, 0xFFFC, W, 0, ReadOnly),
    reg("GICR_CTLR", REDIST, 0x0000, W, 0, RazWi),
    reg("GICR_IIDR", REDIST, 0x0004, W, 0, ReadOnly),
    reg("GICR_TYPER", REDIST, 0x0008, QW, 0x10, ReadOnly),
    reg("GICR_STATUSR", REDIST, 0x0010, W, 0, RazWi),
    reg("GICR_WAKER", REDIST, 0x0014, W, 0b110, Writable(0b110)),
    reg("GICR_PROPBASER", REDIST, 0x0070, QW, 0, RazWi),
    reg("GICR_PENDBASER", REDIST, 0x0078, QW, 0, RazWi),
    reg("GICR_PIDR2", REDIST, 0xFFE8, W, 0x30, ReadOnly),
    reg("GICR_CIDR0", REDIST, 0xFFF0, W, 0, ReadOnly),
    reg(
        "GICR_IGROUPR0",
        REDIST,
        SGI + 0x0080,
        W,
        ONES,
        Writable(ONES),
    ),
    reg(
        "GICR_IPRIORITYR0",
        REDIST,
        SGI + 0x0400,
        BW,
        0,
        Writable(ONES),
    ),
    reg(
        "GICR_IPRIORITYR7",
        REDIST,
        SGI + 0x041C,
        BW,
        0,
        Writable(ONES),
    ),
    reg(
        "GICR_ICFGR0 (SGIs)",
        REDIST,
        SGI + 0x0C00,
        W,
        CONFIG_BITS,
        ReadOnly,
    ),
    reg(
        "GICR_ICFGR1 (PPIs)",
        REDIST,
        SGI + 0x0C04,
        W,
        0,
        Writable(CONFIG_BITS),
    ),
    reg("GICR_IGRPMODR0", REDIST, SGI + 0x0D00, W, 0, RazWi),
    reg("GICR_NSACR", REDIST, SGI + 0x0E00, W, 0, RazWi),
];

/// The value a read of the whole register (its widest access) returns.
fn read_whole(vgic: &Vgic, register: &Register) -> u64 {
    let width = *register.widths.iter().max().unwrap();
    if width == 1 {
        unreachable!("every register is at least 32 bits wide");
    }
    vgic.read(register.window, register.offset, width).unwrap()
}

/// Writes the whole register with the widest access.
fn write_whole(vgic: &mut Vgic, register: &Register, value: u64) {
    let width = *register.widths.iter().max().unwrap();
    let _ = vgic
        .write(register.window, register.offset, width, value)
        .unwrap();
}

#[test]
fn each_register_takes_exactly_its_widths() {
    for register in TABLE {
        let vgic = Vgic::new();
        for width in [1, 2, 4, 8, 3, 16] {
            let decodes = register.widths.contains(&width);
            let name = register.name;
            assert_eq!(
                vgic.read(register.window, register.offset, width).is_some(),
                decodes,
                "read {name} width {width}"
            );
            assert_eq!(
                Vgic::new()
                    .write(register.window, register.offset, width, 0)
                    .is_some(),
                decodes,
                "write {name} width {width}"
            );
        }
        // The upper half of a 64-bit register is its own 32-bit access; a byte register's
        // bytes are each accessible; a word at an odd offset never is.
        if register.widths.contains(&8) {
            assert!(vgic.read(register.window, register.offset + 4, 4).is_some());
            assert!(vgic.read(register.window, register.offset + 4, 8).is_none());
        }
        if register.widths.contains(&1) {
            assert!(vgic.read(register.window, register.offset + 3, 1).is_some());
        }
        assert!(vgic.read(register.window, register.offset + 2, 4).is_none());
    }
}

#[test]
fn each_register_resets_and_answers_writes_as_specified() {
    for register in TABLE {
        let name = register.name;
        let mut vgic = Vgic::new();
        assert_eq!(read_whole(&vgic, register), register.reset, "{name} reset");
        let (after_zeros, after_ones) = match register.kind {
            ReadOnly => (register.reset, register.reset),
            RazWi => (0, 0),
            Writable(bits) => (register.reset & !bits, (register.reset & !bits) | bits),
        };
        write_whole(&mut vgic, register, 0);
        assert_eq!(read_whole(&vgic, register), after_zeros, "{name} after 0");
        write_whole(&mut vgic, register, u64::MAX);
        assert_eq!(read_whole(&vgic, register), after_ones, "{name} after ones");
        if register.widths.contains(&8) {
            assert_eq!(
                vgic.read(register.window, register.offset + 4, 4),
                Some(after_ones >> 32),
                "{name} upper half"
            );
        }
    }
}

#[test]
fn set_and_clear_pairs_share_one_state() {
    // (set register, clear register) in the distributor (INTIDs 32..63) and SGI frame (0..31).
    let pairs = [
        ("ENABLER", DIST, 0x104, 0x184),
        ("PENDR", DIST, 0x204, 0x284),
        ("ACTIVER", DIST, 0x304, 0x384),
        ("ENABLER0", REDIST, SGI + 0x100, SGI + 0x180),
        ("PENDR0", REDIST, SGI + 0x200, SGI + 0x280),
        ("ACTIVER0", REDIST, SGI + 0x300, SGI + 0x380),
    ];
    for (name, window, set, clear) in pairs {
        let mut vgic = Vgic::new();
        let state = |vgic: &Vgic| (read32(vgic, window, set), read32(vgic, window, clear));
        assert_eq!(state(&vgic), (0, 0), "{name}");
        let _ = write32(&mut vgic, window, set, 0b1010);
        assert_eq!(state(&vgic), (0b1010, 0b1010), "{name}: set");
        let _ = write32(&mut vgic, window, set, 0b0101);
        assert_eq!(
            state(&vgic),
            (0b1111, 0b1111),
            "{name}: set adds, zeros do nothing"
        );
        let _ = write32(&mut vgic, window, clear, 0b0011);
        assert_eq!(state(&vgic), (0b1100, 0b1100), "{name}: clear removes");
        let _ = write32(&mut vgic, window, clear, 0);
        assert_eq!(state(&vgic), (0b1100, 0b1100), "{name}: zeros do nothing");
        let _ = write32(&mut vgic, window, set, 1 << 31);
        assert_eq!(
            read32(&vgic, window, set),
            (1 << 31) | 0b1100,
            "{name}: bit 31"
        );
    }
}

#[test]
fn the_distributor_and_sgi_frame_banks_are_separate_intids() {
    let mut vgic = Vgic::new();
    // Enabling INTID 32 in the distributor leaves INTID 0 alone, and the distributor's bank 0
    // stays RAZ under ARE even when the redistributor's holds state.
    let _ = write32(&mut vgic, DIST, 0x104, 1);
    let _ = write32(&mut vgic, REDIST, SGI + 0x100, 1 << 5);
    assert_eq!(read32(&vgic, REDIST, SGI + 0x100), 1 << 5);
    assert_eq!(read32(&vgic, DIST, 0x104), 1);
    assert_eq!(read32(&vgic, DIST, 0x100), 0);
}

#[test]
fn priorities_take_bytes_and_words() {
    let mut vgic = Vgic::new();
    // Linux's writeb of one priority, then a word of four.
    let _ = vgic.write(DIST, 0x421, 1, 0x1_80).unwrap();
    assert_eq!(
        read32(&vgic, DIST, 0x420),
        0x8000,
        "only the byte, masked to its width"
    );
    let _ = write32(&mut vgic, DIST, 0x424, 0x4030_2010);
    assert_eq!(vgic.read(DIST, 0x426, 1), Some(0x30));
    let _ = vgic.write(REDIST, SGI + 0x41B, 1, 0xA0).unwrap();
    assert_eq!(read32(&vgic, REDIST, SGI + 0x418), 0xA000_0000);
    assert_eq!(vgic.vtimer(), (false, 0xA0), "INTID 27's priority");
}

#[test]
fn configuration_keeps_sgis_edge_and_only_int_config_1() {
    let mut vgic = Vgic::new();
    let _ = write32(&mut vgic, REDIST, SGI + 0xC00, 0);
    assert_eq!(read32(&vgic, REDIST, SGI + 0xC00), CONFIG_BITS);
    // PPI 27 edge (bit 2 * 11 + 1), and Int_config[0] bits are RES0.
    let _ = write32(&mut vgic, REDIST, SGI + 0xC04, (1 << 23) | 0x5555_5555);
    assert_eq!(read32(&vgic, REDIST, SGI + 0xC04), 1 << 23);
    // SPI 33 edge in ICFGR2.
    let _ = write32(&mut vgic, DIST, 0xC08, 1 << 3);
    assert_eq!(read32(&vgic, DIST, 0xC08), 1 << 3);
}

#[test]
fn irouter_keeps_only_aff2_aff1_aff0() {
    let mut vgic = Vgic::new();
    let _ = vgic.write(DIST, 0x6108, 8, 0xFF_8012_3456).unwrap();
    assert_eq!(
        vgic.read(DIST, 0x6108, 8),
        Some(0x12_3456),
        "Aff3 and IRM are RAZ/WI"
    );
    // Linux's halves: low then high, each keeping the other.
    let _ = write32(&mut vgic, DIST, 0x610C, 0x7);
    let _ = write32(&mut vgic, DIST, 0x6108, 0x0000_0102);
    assert_eq!(vgic.read(DIST, 0x6108, 8), Some(0x102));
    assert_eq!(
        vgic.read(DIST, 0x6100, 8),
        Some(0),
        "the neighbour untouched"
    );
}

#[test]
fn waker_children_asleep_follows_processor_sleep() {
    let mut vgic = Vgic::new();
    let _ = write32(&mut vgic, REDIST, 0x14, 0b100);
    assert_eq!(
        read32(&vgic, REDIST, 0x14),
        0,
        "ChildrenAsleep is read-only"
    );
    let _ = write32(&mut vgic, REDIST, 0x14, 0b010);
    assert_eq!(read32(&vgic, REDIST, 0x14), 0b110);
}

#[test]
fn reads_have_no_side_effects() {
    let mut vgic = enabled_distributor();
    enable(&mut vgic, 33, 0x10);
    vgic.set_line(33, true).unwrap();
    let before = vgic.clone();
    for offset in (0..0x1_0000).step_by(4) {
        let _ = vgic.read(DIST, offset, 4);
    }
    for offset in (0..0x2_0000).step_by(4) {
        let _ = vgic.read(REDIST, offset, 4);
    }
    assert_eq!(vgic, before);
}
