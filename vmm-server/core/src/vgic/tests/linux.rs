//! Linux 6.1's drivers/irqchip/irq-gic-v3.c (and irq-gic-common.c) against the model, access
//! by access: gic_init_bases, gic_dist_init, gic_cpu_init, then the arch timer's and the
//! PL011's interrupts being requested.

use super::*;

const GICD_CTLR_RWP: u64 = 1 << 31;
const GICR_CTLR_RWP: u64 = 1 << 3;
const GICD_INT_DEF_PRI_X4: u64 = 0xA0A0_A0A0;

/// gic_dist_wait_for_rwp / gic_redist_wait_for_rwp: poll until RWP clears (Linux gives up
/// after a second; the model must answer on the first read).
fn wait_for_rwp(vgic: &Vgic, window: GicWindow) {
    let rwp = if window == DIST {
        GICD_CTLR_RWP
    } else {
        GICR_CTLR_RWP
    };
    assert_eq!(read32(vgic, window, 0) & rwp, 0, "{window:?} RWP");
}

/// Linux's boot of the GIC up to the end of gic_cpu_init (with gic_cpu_config).
fn linux_probe() -> Vgic {
    let mut vgic = Vgic::new();
    let mut vtimer_changes = 0;
    let mut write = |vgic: &mut Vgic, window, offset, width, value| {
        let outcome = vgic.write(window, offset, width, value).unwrap();
        vtimer_changes += usize::from(outcome.vtimer_changed);
    };

    // gic_validate_dist_version: GICD_PIDR2.ArchRev.
    assert_eq!(read32(&vgic, DIST, 0xFFE8) & 0xF0, 0x30);
    // gic_init_bases: GICD_TYPER, TYPER2, IIDR.
    let typer = read32(&vgic, DIST, 0x0004);
    assert_eq!(((typer & 0x1F) + 1) * 32, 256, "GIC_LINE_NR");
    assert_eq!(((typer >> 19) & 0x1F) + 1, 10, "GICD_TYPER_ID_BITS");
    assert_eq!(typer & (1 << 17), 0, "no LPIs");
    assert_eq!(typer & (1 << 8), 0, "no extended SPIs");
    assert_eq!(read32(&vgic, DIST, 0x000C), 0, "no vPE ID, no nASSGIcap");
    let _iidr = read32(&vgic, DIST, 0x0008);
    // gic_dist_security_disabled.
    assert_ne!(read32(&vgic, DIST, 0) & (1 << 6), 0, "DS");

    // gic_iterate_rdists: PIDR2, then readq GICR_TYPER; the one at offset 0 is ours
    // (__gic_populate_rdist compares TYPER[63:32] with MPIDR affinity 0) and the last.
    assert_eq!(read32(&vgic, REDIST, 0xFFE8) & 0xF0, 0x30);
    let gicr_typer = vgic.read(REDIST, 0x0008, 8).unwrap();
    assert_eq!(gicr_typer >> 32, 0, "affinity");
    assert_ne!(gicr_typer & (1 << 4), 0, "Last");
    assert_eq!(gicr_typer & 0b11, 0, "no PLPIS, no VLPIS: 128 KiB stride");
    assert_eq!((gicr_typer >> 27) & 0x1F, 0, "16 PPIs");
    let _ctlr = read32(&vgic, REDIST, 0x0000);

    // gic_dist_init: disable, all SPIs Group 1, gic_dist_config, enable, route.
    write(&mut vgic, DIST, 0, 4, 0);
    wait_for_rwp(&vgic, DIST);
    for i in (32..256).step_by(32) {
        write(&mut vgic, DIST, 0x080 + i / 8, 4, 0xFFFF_FFFF);
    }
    for i in (32..256).step_by(16) {
        write(&mut vgic, DIST, 0xC00 + i / 4, 4, 0);
    }
    for i in (32..256).step_by(4) {
        write(&mut vgic, DIST, 0x400 + i, 4, GICD_INT_DEF_PRI_X4);
    }
    for i in (32..256).step_by(32) {
        write(&mut vgic, DIST, 0x380 + i / 8, 4, 0xFFFF_FFFF);
        write(&mut vgic, DIST, 0x180 + i / 8, 4, 0xFFFF_FFFF);
    }
    wait_for_rwp(&vgic, DIST);
    // GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_G1A | GICD_CTLR_ENABLE_G1.
    write(&mut vgic, DIST, 0, 4, (1 << 4) | (1 << 1) | 1);
    wait_for_rwp(&vgic, DIST);
    for i in 32..256 {
        write(&mut vgic, DIST, 0x6000 + i * 8, 8, 0);
    }

    // gic_cpu_init → gic_enable_redist(true): clear ProcessorSleep, poll ChildrenAsleep.
    let waker = read32(&vgic, REDIST, 0x0014);
    write(&mut vgic, REDIST, 0x0014, 4, waker & !0b10);
    assert_eq!(read32(&vgic, REDIST, 0x0014) & 0b100, 0, "awake at once");
    // SGIs and PPIs Group 1, then gic_cpu_config: deactivate, disable, priorities.
    write(&mut vgic, REDIST, SGI + 0x080, 4, 0xFFFF_FFFF);
    write(&mut vgic, REDIST, SGI + 0x380, 4, 0xFFFF_FFFF);
    write(&mut vgic, REDIST, SGI + 0x180, 4, 0xFFFF_FFFF);
    for i in (0..32).step_by(4) {
        write(&mut vgic, REDIST, SGI + 0x400 + i, 4, GICD_INT_DEF_PRI_X4);
    }
    wait_for_rwp(&vgic, REDIST);
    // Only IPRIORITYR6 (INTIDs 24..27) changed what the kernel holds for the vtimer: its
    // priority, while it is still disabled.
    assert_eq!(vtimer_changes, 1);
    assert_eq!(vgic.vtimer(), (false, 0xA0));
    vgic
}

#[test]
fn linux_probes_and_initialises_the_gic() {
    let mut vgic = linux_probe();
    assert_eq!(read32(&vgic, DIST, 0), 0x53);
    assert_eq!(read32(&vgic, DIST, 0x104), 0, "every SPI disabled");
    assert_eq!(
        read32(&vgic, REDIST, SGI + 0x100),
        0,
        "every SGI and PPI disabled"
    );
    assert_eq!(
        vgic.read(DIST, 0x6108, 8),
        Some(0),
        "SPI 33 routed to CPU 0"
    );
    assert_eq!(offered(&mut vgic), [], "nothing pending");
}

/// gic_configure_irq: read-modify-write of the INTID's ICFGR field, then the read-back check
/// ("GIC: PPI%d is secure or misconfigured").
fn configure(vgic: &mut Vgic, window: GicWindow, offset: u64, intid: u64, edge: bool) {
    let mask = 2 << ((intid % 16) * 2);
    let old = read32(vgic, window, offset);
    let new = if edge { old | mask } else { old & !mask };
    if new != old {
        let _ = write32(vgic, window, offset, new);
    }
    assert_eq!(read32(vgic, window, offset) & mask, new & mask);
}

#[test]
fn the_arch_timer_enabling_ppi_27_reaches_the_kernel() {
    let mut vgic = linux_probe();
    // The device tree's timer interrupts are level-triggered (IRQ_TYPE_LEVEL_HIGH).
    configure(&mut vgic, REDIST, SGI + 0xC04, 27, false);
    // enable_percpu_irq → gic_unmask_irq → gic_poke_irq(GICR_ISENABLER0), then RWP.
    let outcome = write32(&mut vgic, REDIST, SGI + 0x100, 1 << 27);
    wait_for_rwp(&vgic, REDIST);
    assert!(outcome.vtimer_changed);
    assert_eq!(vgic.vtimer(), (true, 0xA0));
    // Enabling it again changes nothing; disabling (gic_mask_irq) does.
    assert!(!write32(&mut vgic, REDIST, SGI + 0x100, 1 << 27).vtimer_changed);
    assert!(!write32(&mut vgic, REDIST, SGI + 0x100, 1 << 26).vtimer_changed);
    assert!(write32(&mut vgic, REDIST, SGI + 0x180, 1 << 27).vtimer_changed);
    assert_eq!(vgic.vtimer(), (false, 0xA0));
    // The distributor's Group 1 enable gates it too.
    let _ = write32(&mut vgic, REDIST, SGI + 0x100, 1 << 27);
    assert!(write32(&mut vgic, DIST, 0, 1 << 4).vtimer_changed);
    assert_eq!(vgic.vtimer(), (false, 0xA0));
    // Never offered through the list-register path, even set pending by hand.
    let _ = write32(&mut vgic, DIST, 0, 0b11);
    set_pending(&mut vgic, VTIMER_INTID);
    assert_eq!(offered(&mut vgic), []);
}

#[test]
fn the_pl011_interrupt_flows_from_line_to_list_register_and_back() {
    let mut vgic = linux_probe();
    // request_irq of SPI 1 (level, from the device tree) → gic_set_type, then gic_unmask_irq.
    configure(&mut vgic, DIST, 0xC08, 33, false);
    assert!(!write32(&mut vgic, DIST, 0x104, 1 << 1).vtimer_changed);
    wait_for_rwp(&vgic, DIST);
    vgic.set_line(crate::layout::PL011_INTID, true).unwrap();
    assert_eq!(offered(&mut vgic), [(33, 0xA0, true)]);
    assert_eq!(
        read32(&vgic, DIST, 0x204),
        1 << 1,
        "pending while in flight"
    );
    assert_eq!(offered(&mut vgic), [], "in flight: not offered twice");
    // The handler drains the UART (line low), the guest EOIs: the maintenance exit.
    vgic.set_line(33, false).unwrap();
    vgic.completed(33).unwrap();
    assert_eq!(read32(&vgic, DIST, 0x204), 0);
    assert_eq!(offered(&mut vgic), []);
}

#[test]
fn linux_self_ipis_reach_the_model_through_the_sysreg_trap() {
    use crate::sysreg::{Action, action};
    let mut vgic = linux_probe();
    // set_smp_ipi_range → enable_percpu_irq of IPIs 0..7, one ISENABLER0 write each.
    for sgi in 0..8 {
        let _ = write32(&mut vgic, REDIST, SGI + 0x100, 1 << sgi);
    }
    // gic_ipi_send_mask(IPI_IRQ_WORK = 5, cpu 0): ICC_SGI1R_EL1 = INTID 5, TargetList 1,
    // written with `msr icc_sgi1r_el1, x1`.
    let esr = (0x18 << 26) | (1 << 25) | (3 << 20) | (5 << 17) | (12 << 10) | (1 << 5) | (11 << 1);
    let Action::SendSgi { value, .. } = action(esr, (5 << 24) | 1) else {
        panic!("not an SGI");
    };
    assert!(vgic.send_sgi(value));
    assert_eq!(read32(&vgic, REDIST, SGI + 0x200), 1 << 5);
    assert_eq!(offered(&mut vgic), [(5, 0xA0, false)]);
}
