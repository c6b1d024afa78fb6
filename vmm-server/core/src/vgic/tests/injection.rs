//! What `next_injections` hands the kernel, and how in-flight interrupts end.

use super::*;

#[test]
fn highest_priority_first_four_at_a_time() {
    let mut vgic = enabled_distributor();
    // (INTID, priority): an SGI, a PPI and SPIs, two of them tied.
    for (intid, priority) in [
        (40, 0x80),
        (33, 0x20),
        (3, 0x40),
        (20, 0x20),
        (50, 0x10),
        (60, 0xF0),
    ] {
        enable(&mut vgic, intid, priority);
        set_pending(&mut vgic, intid);
    }
    assert_eq!(
        offered(&mut vgic),
        [
            (50, 0x10, true),
            (20, 0x20, true),
            (33, 0x20, true),
            (3, 0x40, false)
        ],
        "lowest priority value first, lower INTID first among equals; SGIs edge"
    );
    // The edge SGI is forgotten at this decision; the level ones wait for their maintenance
    // exit, so only the two left are offered.
    assert_eq!(offered(&mut vgic), [(40, 0x80, true), (60, 0xF0, true)]);
    vgic.completed(50).unwrap();
    assert_eq!(
        offered(&mut vgic),
        [],
        "ISPENDR's latch went into the list register"
    );
    assert_eq!(
        read32(&vgic, DIST, 0x204) & (1 << 18),
        0,
        "50 no longer pending"
    );
}

#[test]
fn only_the_free_capacity_is_filled() {
    let mut vgic = enabled_distributor();
    for intid in 32..40 {
        enable(&mut vgic, intid, 0x80);
        vgic.set_line(u32::from(intid), true).unwrap();
    }
    let mut out = heapless::Vec::new();
    for intid in 0..3 {
        out.push(Injection {
            intid,
            priority: 0,
            level: false,
        })
        .unwrap();
    }
    vgic.next_injections(&mut out);
    assert_eq!(out.len(), 4);
    assert_eq!(out[3].intid, 32);
    vgic.next_injections(&mut out);
    assert_eq!(out.len(), 4, "full: nothing more, nothing marked");
    assert_eq!(offered(&mut vgic).len(), 4, "33..36 were still queued");
}

#[test]
fn masking_keeps_interrupts_queued() {
    let pending_spi = || {
        let mut vgic = enabled_distributor();
        enable(&mut vgic, 40, 0x80);
        vgic.set_line(40, true).unwrap();
        vgic
    };
    type Mask = fn(&mut Vgic);
    let cases: [(&str, Mask); 6] = [
        ("Group 1 disabled", |v| {
            let _ = write32(v, DIST, 0, 1);
        }),
        ("distributor disabled", |v| {
            let _ = write32(v, DIST, 0, 0);
        }),
        ("disabled", |v| {
            let _ = write32(v, DIST, 0x184, 1 << 8);
        }),
        ("Group 0, even with EnableGrp0", |v| {
            let _ = write32(v, DIST, 0x84, 0);
        }),
        ("active", |v| {
            let _ = write32(v, DIST, 0x304, 1 << 8);
        }),
        ("routed to Aff0 = 1", |v| {
            let _ = v.write(DIST, 0x6140, 8, 1);
        }),
    ];
    for (name, mask) in cases {
        let mut vgic = pending_spi();
        mask(&mut vgic);
        assert_eq!(offered(&mut vgic), [], "{name}");
        assert_ne!(
            read32(&vgic, DIST, 0x204) & (1 << 8),
            0,
            "{name}: still pending"
        );
    }
    // Undoing each offers it.
    let mut vgic = pending_spi();
    let _ = write32(&mut vgic, DIST, 0, 1);
    let _ = write32(&mut vgic, DIST, 0x304, 1 << 8);
    assert_eq!(offered(&mut vgic), []);
    let _ = write32(&mut vgic, DIST, 0, 0b11);
    let _ = write32(&mut vgic, DIST, 0x384, 1 << 8);
    assert_eq!(offered(&mut vgic), [(40, 0x80, true)]);
}

#[test]
fn a_level_interrupt_pends_again_while_its_line_is_high() {
    let mut vgic = enabled_distributor();
    enable(&mut vgic, 33, 0x80);
    vgic.set_line(33, true).unwrap();
    assert_eq!(offered(&mut vgic), [(33, 0x80, true)]);
    assert_eq!(
        offered(&mut vgic),
        [],
        "in flight until the maintenance exit"
    );
    vgic.completed(33).unwrap();
    assert_eq!(offered(&mut vgic), [(33, 0x80, true)], "line still high");
    vgic.set_line(33, false).unwrap();
    vgic.completed(33).unwrap();
    assert_eq!(offered(&mut vgic), []);
    assert_eq!(vgic.completed(33), Err(VgicError::NotInFlight));
    // ICPENDR cannot clear what the line holds.
    vgic.set_line(33, true).unwrap();
    let _ = write32(&mut vgic, DIST, 0x284, 1 << 1);
    assert_eq!(read32(&vgic, DIST, 0x204), 1 << 1);
}

#[test]
fn an_edge_latches_once_per_rising_edge() {
    let mut vgic = enabled_distributor();
    enable(&mut vgic, 40, 0x80);
    make_edge(&mut vgic, 40);
    vgic.set_line(40, true).unwrap();
    vgic.set_line(40, true).unwrap();
    assert_eq!(offered(&mut vgic), [(40, 0x80, false)]);
    assert_eq!(offered(&mut vgic), [], "a high line is no new edge");
    // A new edge while the first may still sit in a list register is offered at the next
    // decision, not at once.
    vgic.set_line(40, false).unwrap();
    vgic.set_line(40, true).unwrap();
    assert_eq!(read32(&vgic, DIST, 0x204), 1 << 8);
    assert_eq!(offered(&mut vgic), [(40, 0x80, false)]);
    // ICPENDR clears a latched edge before it is offered.
    vgic.set_line(40, false).unwrap();
    vgic.set_line(40, true).unwrap();
    let _ = write32(&mut vgic, DIST, 0x284, 1 << 8);
    assert_eq!(offered(&mut vgic), []);
}

#[test]
fn a_failed_injection_is_offered_again_as_it_was() {
    let mut vgic = enabled_distributor();
    enable(&mut vgic, 40, 0x80);
    make_edge(&mut vgic, 40);
    enable(&mut vgic, 41, 0x80);
    set_pending(&mut vgic, 41); // level, latched by ISPENDR, line low
    enable(&mut vgic, 42, 0x80);
    vgic.set_line(42, true).unwrap(); // level, line high
    vgic.set_line(40, true).unwrap();
    let first = offered(&mut vgic);
    assert_eq!(first.len(), 3);
    for intid in [40, 41, 42] {
        vgic.injection_failed(intid).unwrap();
    }
    assert_eq!(offered(&mut vgic), first, "no latch lost");
    assert_eq!(vgic.injection_failed(43), Err(VgicError::NotInFlight));
    assert_eq!(vgic.injection_failed(1020), Err(VgicError::OutOfRange));
    assert_eq!(vgic.completed(u32::MAX), Err(VgicError::OutOfRange));
}

#[test]
fn in_flight_shows_as_pending_not_active() {
    let mut vgic = enabled_distributor();
    enable(&mut vgic, 33, 0x80);
    vgic.set_line(33, true).unwrap();
    let _ = offered(&mut vgic);
    vgic.set_line(33, false).unwrap();
    assert_eq!(read32(&vgic, DIST, 0x204), 1 << 1, "ISPENDR");
    assert_eq!(
        read32(&vgic, DIST, 0x304),
        0,
        "ISACTIVER: synchronize_irq must not wait"
    );
    // Completion clears guest-set active state too.
    let _ = write32(&mut vgic, DIST, 0x304, 1 << 1);
    vgic.completed(33).unwrap();
    assert_eq!(
        (read32(&vgic, DIST, 0x204), read32(&vgic, DIST, 0x304)),
        (0, 0)
    );
}

#[test]
fn sgis_are_latched_only_when_they_target_us() {
    let sgi = |intid: u64| intid << 24;
    let cases = [
        ("self, TargetList bit 0", sgi(3) | 1, true),
        ("TargetList bits 0 and 1", sgi(3) | 0b11, true),
        (
            "RES0 bits ignored",
            sgi(3) | 1 | (1 << 28) | (1 << 63),
            true,
        ),
        ("empty TargetList", sgi(3), false),
        ("another Aff0", sgi(3) | 0b10, false),
        ("Aff1 = 1", sgi(3) | 1 | (1 << 16), false),
        ("Aff2 = 1", sgi(3) | 1 | (1 << 32), false),
        ("Aff3 = 1", sgi(3) | 1 | (1 << 48), false),
        ("RS = 1 (Aff0 16..31)", sgi(3) | 1 | (1 << 44), false),
        ("IRM: all but self", sgi(3) | 1 | (1 << 40), false),
    ];
    for (name, value, targeted) in cases {
        let mut vgic = enabled_distributor();
        assert_eq!(vgic.send_sgi(value), targeted, "{name}");
        let expected = if targeted { 1 << 3 } else { 0 };
        assert_eq!(read32(&vgic, REDIST, SGI + 0x200), expected, "{name}");
    }
    let request = SgiRequest::decode(0x00AB_1C00_0F12_FFFF);
    assert_eq!(
        request,
        SgiRequest {
            intid: 0xF,
            target_list: 0xFFFF,
            aff1: 0x12,
            aff2: 0x00,
            aff3: 0xAB,
            range_selector: 1,
            all_but_self: false,
        }
    );
    assert!(SgiRequest::decode(1 << 40).all_but_self);
    // Latched while disabled, offered once enabled.
    let mut vgic = enabled_distributor();
    assert!(vgic.send_sgi(sgi(15) | 1));
    assert_eq!(offered(&mut vgic), []);
    enable(&mut vgic, 15, 0x30);
    assert_eq!(offered(&mut vgic), [(15, 0x30, false)]);
}

#[test]
fn set_line_takes_only_spis() {
    let mut vgic = Vgic::new();
    for intid in [0, 27, 31, 256, 1020, u32::MAX] {
        assert_eq!(
            vgic.set_line(intid, true),
            Err(VgicError::NotAnSpi),
            "{intid}"
        );
    }
    assert_eq!(vgic, Vgic::new());
    for intid in [32, 255] {
        vgic.set_line(intid, true).unwrap();
    }
}
