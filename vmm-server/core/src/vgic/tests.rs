//! The vGIC model: the register table (offsets, widths, reset values, access behaviour), Linux
//! 6.1's irq-gic-v3 probe and init sequence, the injection decisions, SGIs, and hostile input.

extern crate std;

use super::*;
use std::vec::Vec;

mod hostile;
mod injection;
mod linux;
mod registers;
mod saved;

const DIST: GicWindow = GicWindow::Distributor;
const REDIST: GicWindow = GicWindow::Redistributor;
/// The redistributor's SGI frame.
const SGI: u64 = 0x1_0000;

/// A 32-bit read that must decode.
fn read32(vgic: &Vgic, window: GicWindow, offset: u64) -> u64 {
    vgic.read(window, offset, 4)
        .unwrap_or_else(|| panic!("read {window:?} {offset:#x} did not decode"))
}

/// A 32-bit write that must decode.
fn write32(vgic: &mut Vgic, window: GicWindow, offset: u64, value: u64) -> Outcome {
    vgic.write(window, offset, 4, value)
        .unwrap_or_else(|| panic!("write {window:?} {offset:#x} did not decode"))
}

/// What the model hands the kernel now, as a list.
fn offered(vgic: &mut Vgic) -> Vec<(u16, u8, bool)> {
    let mut out = heapless::Vec::new();
    vgic.next_injections(&mut out);
    out.iter()
        .map(|injection| (injection.intid, injection.priority, injection.level))
        .collect()
}

/// Distributor and Group 1 on, as Linux's gic_dist_init leaves GICD_CTLR.
fn enabled_distributor() -> Vgic {
    let mut vgic = Vgic::new();
    let _ = write32(&mut vgic, DIST, 0, 0b11 | (1 << 4));
    vgic
}

/// Enables `intid` at `priority` through the register its number belongs to.
fn enable(vgic: &mut Vgic, intid: u16, priority: u8) {
    let intid = u64::from(intid);
    let (window, bank) = if intid < 32 { (REDIST, SGI) } else { (DIST, 0) };
    let _ = vgic
        .write(window, bank + 0x400 + intid, 1, u64::from(priority))
        .unwrap();
    let _ = write32(
        vgic,
        window,
        bank + 0x100 + intid / 32 * 4,
        1 << (intid % 32),
    );
}

/// Sets `intid` pending through ISPENDR.
fn set_pending(vgic: &mut Vgic, intid: u16) {
    let intid = u64::from(intid);
    let (window, bank) = if intid < 32 { (REDIST, SGI) } else { (DIST, 0) };
    let _ = write32(
        vgic,
        window,
        bank + 0x200 + intid / 32 * 4,
        1 << (intid % 32),
    );
}

/// Makes SPI `intid` edge-triggered (ICFGR Int_config[1]).
fn make_edge(vgic: &mut Vgic, intid: u16) {
    let offset = 0xC00 + u64::from(intid) / 16 * 4;
    let old = read32(vgic, DIST, offset);
    let _ = write32(vgic, DIST, offset, old | 2 << (2 * (intid % 16)));
}

#[test]
fn the_windows_are_where_the_device_tree_says_and_clear_of_the_uart() {
    assert_eq!(
        GicWindow::of(0x0800_0000, 4),
        Some((GicWindow::Distributor, 0))
    );
    assert_eq!(
        GicWindow::of(0x0800_FFFC, 4),
        Some((GicWindow::Distributor, 0xFFFC))
    );
    assert_eq!(GicWindow::of(0x0800_FFFD, 4), None, "straddles the end");
    assert_eq!(
        GicWindow::of(0x080A_0000, 8),
        Some((GicWindow::Redistributor, 0))
    );
    assert_eq!(
        GicWindow::of(0x080B_FFFC, 4),
        Some((GicWindow::Redistributor, 0x1_FFFC))
    );
    assert_eq!(GicWindow::of(0x080C_0000, 4), None);
    assert_eq!(GicWindow::of(0x0801_0000, 4), None, "between the two");
    assert_eq!(GicWindow::of(u64::MAX, 8), None);
    assert_eq!(
        (DISTRIBUTOR.base, DISTRIBUTOR.size),
        (0x0800_0000, 0x1_0000)
    );
    assert_eq!(
        (REDISTRIBUTOR.base, REDISTRIBUTOR.size),
        (0x080A_0000, 0x2_0000)
    );
    let uart = crate::layout::PL011;
    assert!(!uart.overlaps(&DISTRIBUTOR) && !uart.overlaps(&REDISTRIBUTOR));
    assert!(!DISTRIBUTOR.overlaps(&REDISTRIBUTOR));
}

#[test]
fn reset_restores_the_state_after_reset() {
    let mut vgic = enabled_distributor();
    enable(&mut vgic, 33, 0x80);
    enable(&mut vgic, VTIMER_INTID, 0x20);
    vgic.set_line(33, true).unwrap();
    assert!(!offered(&mut vgic).is_empty());
    let _ = write32(&mut vgic, REDIST, 0x14, 0);
    assert_ne!(vgic, Vgic::new());
    vgic.reset();
    assert_eq!(vgic, Vgic::new());
    assert_eq!(vgic, Vgic::default());
    assert_eq!(vgic.vtimer(), (false, 0));
    assert_eq!(read32(&vgic, REDIST, 0x14), 0b110, "asleep again");
    assert_eq!(offered(&mut vgic), []);
}

#[test]
fn the_kernels_own_ppis_are_never_offered_whatever_the_guest_sets() {
    let mut vgic = enabled_distributor();
    for intid in [MAINTENANCE_INTID, VTIMER_INTID, 26] {
        enable(&mut vgic, intid, 0x20);
        set_pending(&mut vgic, intid);
    }
    // 26 is the physical timer's PPI: the guest's own to pend, so it is offered.
    assert_eq!(offered(&mut vgic), [(26, 0x20, true)]);
}
