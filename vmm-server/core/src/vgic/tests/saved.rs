//! The model through the vmm's state page: what a restore refuses and forces, and how
//! `reconcile` brings a restored model in line with the kernel's list registers.

use super::*;
use proptest::prelude::*;

fn saved(vgic: &Vgic) -> Vec<u8> {
    let mut bytes = std::vec![0u8; SAVED_BYTES];
    assert_eq!(vgic.save(&mut bytes), Some(SAVED_BYTES));
    bytes
}

/// Bit `intid` of a `VcpuListRegisters` answer.
fn held(intids: &[u16]) -> [u64; 4] {
    let mut held = [0u64; 4];
    for &intid in intids {
        held[usize::from(intid) / 64] |= 1 << (intid % 64);
    }
    held
}

#[test]
fn only_a_whole_record_of_this_version_restores() {
    let vgic = enabled_distributor();
    let bytes = saved(&vgic);
    assert_eq!(Vgic::restore(&bytes), Some(vgic.clone()));
    assert_eq!(
        vgic.save(&mut [0u8; SAVED_BYTES - 1]),
        None,
        "a short buffer"
    );
    assert_eq!(Vgic::restore(&bytes[..SAVED_BYTES - 1]), None);
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(Vgic::restore(&longer), None);
    let mut other_version = bytes;
    other_version[0] = 2;
    assert_eq!(Vgic::restore(&other_version), None);
}

#[test]
fn fixed_fields_are_forced_back_on_restore() {
    // All ones: GICD_CTLR keeps only its writable bits (ARE and DS read as fixed), every
    // route its affinity bits, and the SGIs stay edge-triggered whatever the bytes say.
    let mut bytes = std::vec![0xFFu8; SAVED_BYTES];
    bytes[0] = 1;
    let vgic = Vgic::restore(&bytes).unwrap();
    assert_eq!(read32(&vgic, DIST, 0) & 0b11, 0b11);
    assert_eq!(vgic.read(DIST, 0x6000 + 8 * 40, 8), Some(0x00FF_FFFF));
    let mut zeros = std::vec![0u8; SAVED_BYTES];
    zeros[0] = 1;
    let vgic = Vgic::restore(&zeros).unwrap();
    assert_eq!(read32(&vgic, REDIST, SGI + 0xC00), 0xAAAA_AAAA, "SGIs edge");
}

#[test]
fn a_completion_lost_with_the_vmm_ends_the_flight() {
    // A level SPI in flight when the vmm died; its maintenance exit was abandoned with it
    // (the kernel had freed the list register): not held. Its line is still high, so once
    // reconciled it is offered again, which is what the lost maintenance exit would have done.
    let mut vgic = enabled_distributor();
    enable(&mut vgic, 40, 0x80);
    vgic.set_line(40, true).unwrap();
    assert_eq!(offered(&mut vgic), [(40, 0x80, true)]);
    let mut restored = Vgic::restore(&saved(&vgic)).unwrap();
    assert_eq!(offered(&mut restored), [], "in flight: not offered");
    restored.reconcile(&held(&[]));
    assert_eq!(offered(&mut restored), [(40, 0x80, true)]);
    // Held: nothing changes.
    let mut restored = Vgic::restore(&saved(&vgic)).unwrap();
    restored.reconcile(&held(&[40]));
    assert_eq!(restored, vgic);
    assert_eq!(offered(&mut restored), []);
    assert_eq!(
        restored.completed(40),
        Ok(()),
        "its maintenance exit still ends it"
    );
}

#[test]
fn an_injection_made_after_the_last_save_is_taken_as_in_flight() {
    let mut vgic = enabled_distributor();
    enable(&mut vgic, 41, 0x80);
    vgic.set_line(41, true).unwrap();
    let before = saved(&vgic);
    // The previous instance handed it to the kernel, then died before saving.
    assert_eq!(offered(&mut vgic), [(41, 0x80, true)]);
    let mut restored = Vgic::restore(&before).unwrap();
    restored.reconcile(&held(&[41]));
    assert_eq!(offered(&mut restored), [], "not offered twice");
    assert_eq!(restored.completed(41), Ok(()), "and it awaits its EOI");
    assert_eq!(
        offered(&mut restored),
        [(41, 0x80, true)],
        "line still high"
    );
}

#[test]
fn the_kernels_own_intids_are_left_alone() {
    let mut vgic = enabled_distributor();
    let before = vgic.clone();
    vgic.reconcile(&held(&[VTIMER_INTID, MAINTENANCE_INTID]));
    assert_eq!(vgic, before);
    vgic.reconcile(&[u64::MAX; 4]);
    assert!(
        (0..256u16)
            .filter(|&i| i != VTIMER_INTID && i != MAINTENANCE_INTID)
            .all(|i| read32(
                &vgic,
                if i < 32 { REDIST } else { DIST },
                (if i < 32 { SGI } else { 0 }) + 0x200 + u64::from(i) / 32 * 4
            ) & (1 << (i % 32))
                != 0),
        "every other INTID held shows pending (in flight)"
    );
}

proptest! {
    /// Any bytes of the right length restore to a model that answers every register without
    /// panicking, and saves back to a record that restores to the same model.
    #[test]
    fn any_record_restores_to_a_usable_model(mut bytes in proptest::collection::vec(any::<u8>(), SAVED_BYTES)) {
        bytes[0] = 1;
        let mut vgic = Vgic::restore(&bytes).unwrap();
        for offset in (0..0x1000u64).step_by(4) {
            let _ = vgic.read(DIST, offset, 4);
        }
        let _ = offered(&mut vgic);
        vgic.reconcile(&[0x5555_5555_5555_5555; 4]);
        prop_assert_eq!(Vgic::restore(&saved(&vgic)), Some(vgic.clone()));
    }
}
