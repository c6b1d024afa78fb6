//! Frame rights: a mapping may not exceed its frame capability's rights (refused in decode,
//! naming the frame's slot), and copying, minting and lending can only keep or drop rights.

use super::super::CLIENT;
use super::lifetime::lend;
use super::*;
use crate::cap::{DeriveError, FrameCap};
use abi::Rights;
use abi::vm::MapAttributes as A;

const READ_ONLY: Rights = Rights::READ;

#[test]
fn a_frame_lent_read_only_cannot_be_mapped_writable_or_executable() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    // The lender carves a frame, derives a read-only copy and lends that with its reply.
    f.carve(&mut system, 0, PAGE, 10);
    assert_eq!(frame_at(&system, 10).rights, FrameCap::ALL_RIGHTS);
    f.copy(&mut system, 10, 11, READ_ONLY).unwrap();
    lend(&mut system, &mut f.memory, 11, 13);
    let lent = match system.lookup(CLIENT, 13) {
        Ok(Cap::Frame(frame)) => frame,
        other => panic!("nothing lent: {other:?}"),
    };
    assert_eq!(
        lent.rights, READ_ONLY,
        "the transfer kept the lender's narrowing"
    );

    // The borrower holds a VSpace capability: it may map the frame, but only readable.
    put_cap(&mut system, CLIENT, VSPACE, Cap::VSpace { vspace: 0 });
    let map = |system: &mut System<'_>, memory: &mut MockMemory, attributes: A| {
        let args = [13, GUEST, attributes.0, 0];
        let effect = invoke(system, memory, CLIENT, VSPACE, VSpaceMap, args);
        error_of(system, CLIENT).map_or(Ok(effect), Err)
    };
    let memory = &mut f.memory;
    let refused = Err(KernelError::InsufficientRights { slot: 13 });
    assert_eq!(map(&mut system, memory, A::WRITE), refused, "writable");
    assert_eq!(map(&mut system, memory, A::EXECUTE), refused, "executable");
    assert_eq!(
        map(&mut system, memory, A(A::WRITE.0 | A::EXECUTE.0)),
        refused,
        "both"
    );
    assert_eq!(
        map(&mut system, memory, A(1 << 5)),
        Err(KernelError::InvalidArgument { index: 2 }),
        "unknown attribute bits are still the attribute argument's error"
    );
    assert_eq!(
        recorded_mappings(&system),
        [],
        "a refused map records nothing"
    );
    assert_eq!(
        map(&mut system, memory, A::READ_ONLY),
        Ok(Effect::Map {
            vspace: 0,
            pa: RAM,
            ipa: GUEST,
            size: PAGE,
            attributes: A::READ_ONLY
        })
    );
}

#[test]
fn a_read_only_frame_cannot_be_derived_to_more_rights() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    f.carve(&mut system, 0, PAGE, 10);
    f.copy(&mut system, 10, 11, READ_ONLY).unwrap();
    // Asking for every right back through CNodeCopy keeps read only, and the copy cannot be
    // mapped writable either.
    f.copy(&mut system, 11, 12, Rights::ALL).unwrap();
    assert_eq!(frame_at(&system, 12).rights, READ_ONLY);
    assert_eq!(
        f.map(&mut system, VSPACE, 12, GUEST, A::WRITE),
        Err(KernelError::InsufficientRights { slot: 12 })
    );
    // Every request mask: the derived rights are within both the source's and the mask.
    let source = Cap::Frame(frame_at(&system, 11));
    let full = Cap::Frame(frame_at(&system, 10));
    for mask in 0..=u8::MAX {
        let asked = Rights::from_bits_truncate(mask);
        for from in [source, full] {
            let derived = from.derive(asked, None).unwrap();
            assert_eq!(
                derived.rights(),
                from.rights().intersection(asked),
                "{from:?} asked {mask:#b}"
            );
            let again = derived.derive(Rights::ALL, None).unwrap();
            assert_eq!(again.rights(), derived.rights(), "nothing is won back");
        }
    }
    assert_eq!(
        source.derive(Rights::ALL, Some(7)),
        Err(DeriveError::NotBadgeable)
    );
}

#[test]
fn a_mapping_needs_read_and_write_and_execute_as_its_attributes_ask() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    f.carve(&mut system, 0, PAGE, 10);
    let cases = [
        (Rights::WRITE, A::WRITE, false), // no read: nothing can be mapped
        (Rights::READ.union(Rights::WRITE), A::WRITE, true),
        (Rights::READ.union(Rights::WRITE), A::EXECUTE, false),
        (Rights::READ.union(Rights::EXECUTE), A::EXECUTE, true),
        (Rights::READ.union(Rights::EXECUTE), A::WRITE, false),
        (FrameCap::ALL_RIGHTS, A(A::WRITE.0 | A::EXECUTE.0), true),
    ];
    for (rights, attributes, allowed) in cases {
        f.copy(&mut system, 10, 11, rights).unwrap();
        let mapped = f.map(&mut system, VSPACE, 11, GUEST, attributes);
        if allowed {
            assert!(mapped.is_ok(), "{rights:?} maps {attributes:?}: {mapped:?}");
        } else {
            assert_eq!(
                mapped,
                Err(KernelError::InsufficientRights { slot: 11 }),
                "{rights:?} maps {attributes:?}"
            );
        }
        f.delete(&mut system, 11);
    }
    assert_eq!(f.tables.translate(0, GUEST), None, "each deletion unmapped");
}

#[test]
fn frames_carved_from_a_range_carry_the_ranges_rights() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    // A range booted read + execute (a ROM image, say): no frame of it is ever writable.
    let rx = Rights::READ.union(Rights::EXECUTE);
    let range = frame_at(&system, RANGE).with_rights(rx);
    put_cap(&mut system, SERVER, RANGE, Cap::Frame(range));
    f.carve(&mut system, 0, BLOCK, 10);
    assert_eq!(frame_at(&system, 10).rights, rx);
    assert_eq!(
        f.map(&mut system, VSPACE, 10, GUEST, A::WRITE),
        Err(KernelError::InsufficientRights { slot: 10 })
    );
    assert!(f.map(&mut system, VSPACE, 10, GUEST, A::EXECUTE).is_ok());
    // `with_rights` keeps frame rights only.
    assert_eq!(range.with_rights(Rights::ALL).rights, FrameCap::ALL_RIGHTS);
    assert_eq!(range.with_rights(Rights::GRANT).rights, Rights::NONE);
}

#[test]
fn a_frame_answers_its_physical_address_and_size() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    let address = abi::InvocationLabel::FrameGetAddress;
    f.carve(&mut system, BLOCK, BLOCK, 10);
    f.carve(&mut system, 3 * PAGE, PAGE, 11);
    let range = match system.lookup(SERVER, RANGE) {
        Ok(Cap::Frame(range)) => range,
        other => panic!("no range: {other:?}"),
    };
    for (slot, pa, size) in [
        (10, range.base() + BLOCK, BLOCK),
        (11, range.base() + 3 * PAGE, PAGE),
        (RANGE, range.base(), range.size()),
    ] {
        assert_eq!(
            f.invoke(&mut system, slot, address, [0; 4]),
            Ok(Effect::None)
        );
        let (_, info, words) = super::super::received(&system, SERVER);
        assert_eq!(info.length(), 2, "slot {slot}");
        assert_eq!((words[0], words[1]), (pa, size), "slot {slot}");
    }
    // Only frames answer.
    assert!(matches!(
        f.invoke(&mut system, VSPACE, address, [0; 4]),
        Err(KernelError::IllegalOperation { .. })
    ));
}
