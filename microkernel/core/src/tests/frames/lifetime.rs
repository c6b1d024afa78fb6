//! A mapping belongs to the frame capability that made it: deleting that capability unmaps it in
//! the same invocation, a copy's deletion leaves it, a later map takes over the records it
//! replaces, and VM reset's revocation reaches the VM's frames mapped in other VSpaces.

use super::super::{CLIENT, EP, message, syscall};
use super::*;
use abi::InvocationLabel::FrameRevoke;
use abi::{MessageInfo, Rights, Syscall};

#[test]
fn deleting_a_mapped_frame_unmaps_it_in_the_same_invocation() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    for (slot, size, ipa) in [(10, PAGE, GUEST + 3 * PAGE), (11, BLOCK, GUEST + BLOCK)] {
        let offset = if size == PAGE { 3 * PAGE } else { BLOCK };
        f.carve(&mut system, offset, size, slot);
        f.map(&mut system, VSPACE, slot, ipa, MapAttributes::WRITE)
            .unwrap();
        assert_eq!(f.tables.translate(0, ipa), Some(RAM + offset));
        assert_eq!(
            frame_at(&system, slot).mapping(),
            Some((0, (ipa / PAGE) as u32))
        );

        assert_eq!(
            f.delete(&mut system, slot),
            Effect::Unmap {
                vspace: 0,
                ipa,
                size
            },
            "the kernel is asked to remove the mapping with the capability"
        );
        assert_eq!(f.tables.translate(0, ipa), None, "the mapping is gone");
        assert_eq!(f.tables.translate(0, ipa + size - PAGE), None);
        assert!(system.lookup(SERVER, slot).is_err(), "the slot is empty");
        assert_eq!(recorded_mappings(&system), [], "nothing records a mapping");
    }
    // An empty slot, or a capability that maps nothing, deletes without an effect.
    assert_eq!(f.delete(&mut system, 10), Effect::None);
    f.carve(&mut system, 0, PAGE, 12);
    assert_eq!(f.delete(&mut system, 12), Effect::None);
    assert_eq!(f.delete(&mut system, EP), Effect::None);
}

#[test]
fn carve_map_delete_then_revoke_finds_nothing_left_to_unmap() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    f.carve(&mut system, 0, BLOCK, 10);
    f.map(&mut system, VSPACE, 10, GUEST, MapAttributes::WRITE)
        .unwrap();
    f.delete(&mut system, 10);

    let Ok(Effect::Revoke {
        region,
        first_page,
        pages,
    }) = f.invoke(&mut system, RANGE, FrameRevoke, [0; 4])
    else {
        panic!("revoke has an effect");
    };
    let mut unmapped = Vec::new();
    let revoked = system.revoke_frames(region, first_page, pages, |v, ipa, size| {
        unmapped.push((v, ipa, size))
    });
    assert_eq!(revoked, 0, "the deleted capability is not there to revoke");
    assert_eq!(
        unmapped,
        [],
        "and its mapping went with it, not left behind"
    );
    assert_eq!(f.tables.translate(0, GUEST), None);
}

#[test]
fn a_copy_does_not_own_the_mapping_of_the_capability_it_was_copied_from() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    f.carve(&mut system, PAGE, PAGE, 10);
    f.map(&mut system, VSPACE, 10, GUEST, MapAttributes::WRITE)
        .unwrap();
    f.copy(&mut system, 10, 11, Rights::ALL).unwrap();
    assert_eq!(
        frame_at(&system, 11).mapping(),
        None,
        "a copy starts unmapped"
    );
    assert_eq!(f.delete(&mut system, 11), Effect::None);
    assert_eq!(
        f.tables.translate(0, GUEST),
        Some(RAM + PAGE),
        "still mapped"
    );
    assert_eq!(
        f.delete(&mut system, 10),
        Effect::Unmap {
            vspace: 0,
            ipa: GUEST,
            size: PAGE
        }
    );
    assert_eq!(f.tables.translate(0, GUEST), None);
}

#[test]
fn a_map_takes_over_the_records_of_the_entries_it_replaces() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    // A 2 MiB block, then a page inside it (dirty logging splits blocks this way): the page's
    // map replaced the block, so the block's capability no longer maps anything.
    f.carve(&mut system, 0, BLOCK, 10);
    f.map(&mut system, VSPACE, 10, GUEST, MapAttributes::READ_ONLY)
        .unwrap();
    f.carve(&mut system, 5 * PAGE, PAGE, 11);
    f.map(
        &mut system,
        VSPACE,
        11,
        GUEST + 5 * PAGE,
        MapAttributes::WRITE,
    )
    .unwrap();
    assert_eq!(frame_at(&system, 10).mapping(), None);
    assert_eq!(
        f.tables.translate(0, GUEST),
        None,
        "the rest of the block refaults"
    );
    assert_eq!(
        f.delete(&mut system, 10),
        Effect::None,
        "deleting the block's capability leaves the page that replaced it"
    );
    assert_eq!(
        f.tables.translate(0, GUEST + 5 * PAGE),
        Some(RAM + 5 * PAGE)
    );

    // A second copy of the page's frame mapped at the same place (a permission change through
    // a fresh copy, as the mmu-server makes) takes the record: exactly one capability owns it.
    f.copy(&mut system, 11, 12, Rights::ALL).unwrap();
    f.map(
        &mut system,
        VSPACE,
        12,
        GUEST + 5 * PAGE,
        MapAttributes::READ_ONLY,
    )
    .unwrap();
    assert_eq!(frame_at(&system, 11).mapping(), None);
    assert_eq!(recorded_mappings(&system), [(pool_index(12), 0, 0x4_0005)]);
    assert_eq!(f.delete(&mut system, 11), Effect::None);
    assert_eq!(
        f.tables.translate(0, GUEST + 5 * PAGE),
        Some(RAM + 5 * PAGE)
    );
    f.delete(&mut system, 12);
    assert_eq!(f.tables.translate(0, GUEST + 5 * PAGE), None);

    // A block over pages: every page's record goes with the table the block replaced.
    f.carve(&mut system, PAGE, PAGE, 11);
    f.map(&mut system, VSPACE, 11, GUEST + PAGE, MapAttributes::WRITE)
        .unwrap();
    f.carve(&mut system, 0, BLOCK, 12);
    f.map(&mut system, VSPACE, 12, GUEST, MapAttributes::WRITE)
        .unwrap();
    assert_eq!(recorded_mappings(&system), [(pool_index(12), 0, 0x4_0000)]);
    assert_eq!(f.delete(&mut system, 11), Effect::None);
    assert_eq!(
        f.tables.translate(0, GUEST + PAGE),
        Some(RAM + PAGE),
        "the block's"
    );
}

#[test]
fn a_page_inside_a_block_that_already_maps_it_owns_the_block_it_leaves_in_place() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    f.carve(&mut system, 0, BLOCK, 10);
    f.map(&mut system, VSPACE, 10, GUEST, MapAttributes::WRITE)
        .unwrap();
    // The same memory, the same attributes: the kernel keeps the block (a no-op).
    f.carve(&mut system, 3 * PAGE, PAGE, 11);
    f.map(
        &mut system,
        VSPACE,
        11,
        GUEST + 3 * PAGE,
        MapAttributes::WRITE,
    )
    .unwrap();
    assert_eq!(
        f.tables.translate(0, GUEST + BLOCK - PAGE),
        Some(RAM + BLOCK - PAGE)
    );
    assert_eq!(recorded_mappings(&system), [(pool_index(11), 0, 0x4_0003)]);
    assert_eq!(f.delete(&mut system, 10), Effect::None);
    assert_eq!(
        f.tables.translate(0, GUEST),
        Some(RAM),
        "the block stays, reachable through the page's capability"
    );
    f.delete(&mut system, 11);
    assert_eq!(
        f.tables.translate(0, GUEST),
        None,
        "whose deletion takes the block"
    );
    assert_eq!(f.tables.translate(0, GUEST + BLOCK - PAGE), None);
}

#[test]
fn an_unmap_of_a_page_inside_a_block_clears_the_blocks_record() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    f.carve(&mut system, 0, BLOCK, 10);
    f.map(&mut system, VSPACE, 10, GUEST, MapAttributes::WRITE)
        .unwrap();
    let unmap = abi::InvocationLabel::VSpaceUnmap;
    f.invoke(&mut system, VSPACE, unmap, [GUEST + 7 * PAGE, PAGE, 0, 0])
        .unwrap();
    assert_eq!(
        f.tables.translate(0, GUEST),
        None,
        "the kernel removed the block"
    );
    assert_eq!(
        frame_at(&system, 10).mapping(),
        None,
        "and its record with it"
    );
    assert_eq!(f.delete(&mut system, 10), Effect::None);
}

#[test]
fn a_received_capability_never_overwrites_a_slot() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    // CLIENT holds a mapped frame in slot 13 and names that slot to receive into.
    put_cap(&mut system, CLIENT, VSPACE, Cap::VSpace { vspace: 0 });
    let range = system.lookup(SERVER, RANGE).unwrap();
    put_cap(&mut system, CLIENT, 13, range);
    let carve = invoke(
        &mut system,
        &mut f.memory,
        CLIENT,
        13,
        FrameCarve,
        [0, PAGE, 14, 0],
    );
    assert_eq!(carve, Effect::None);
    let effect = invoke(
        &mut system,
        &mut f.memory,
        CLIENT,
        VSPACE,
        VSpaceMap,
        [14, GUEST, MapAttributes::WRITE.0, 0],
    );
    f.tables.apply(effect);
    let held = system.lookup(CLIENT, 14).unwrap();
    f.carve(&mut system, PAGE, PAGE, 10);
    lend(&mut system, &mut f.memory, 10, 14);
    assert_eq!(
        system.lookup(CLIENT, 14),
        Ok(held),
        "the mapped frame stays"
    );
    assert_eq!(f.tables.translate(0, GUEST), Some(RAM));
}

#[test]
fn a_restart_keeps_the_servers_frame_capabilities_and_their_mappings() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    f.carve(&mut system, 0, PAGE, 10);
    f.map(&mut system, VSPACE, 10, GUEST, MapAttributes::WRITE)
        .unwrap();
    let before = recorded_mappings(&system);
    assert_eq!(
        system.restart(SERVER, true),
        Effect::ResetServer { tcb: SERVER }
    );
    assert_eq!(
        recorded_mappings(&system),
        before,
        "no capability was dropped"
    );
    // The restarted server clearing its slot is a deletion like any other.
    assert!(matches!(f.delete(&mut system, 10), Effect::Unmap { .. }));
    assert_eq!(f.tables.translate(0, GUEST), None);
}

#[test]
fn vm_reset_revocation_reports_the_foreign_mapping_to_unmap() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    // The VM's RAM is region 0 and its VSpace is 0. One frame of it is mapped there (the
    // guest's own stage 2), one in VSpace 1 (a foreign mapping), one is carved and unmapped.
    f.carve(&mut system, 0, BLOCK, 10);
    f.map(&mut system, VSPACE, 10, GUEST, MapAttributes::WRITE)
        .unwrap();
    f.carve(&mut system, BLOCK, PAGE, 11);
    f.map(
        &mut system,
        OTHER_VSPACE,
        11,
        0x9000_0000,
        MapAttributes::READ_ONLY,
    )
    .unwrap();
    f.carve(&mut system, BLOCK + PAGE, PAGE, 12);
    // A frame of another region (another VM's RAM) mapped in the VM's VSpace: not revoked, but
    // the emptied VSpace no longer holds its mapping.
    put_cap(
        &mut system,
        SERVER,
        13,
        Cap::Frame(crate::cap::FrameCap::new(1, 0x9_0000, 1, true)),
    );
    f.map(
        &mut system,
        VSPACE,
        13,
        GUEST + 4 * BLOCK,
        MapAttributes::WRITE,
    )
    .unwrap();

    // The kernel empties the VM's VSpace first (`vspace::clear`), then revokes.
    let range = frame_at(&system, RANGE);
    let mut unmapped = Vec::new();
    let revoked = system.revoke_for_vm_reset(
        0,
        range.region,
        range.first_page,
        range.pages,
        |v, ipa, size| unmapped.push((v, ipa, size)),
    );
    assert_eq!(revoked, 3);
    assert_eq!(
        unmapped,
        [(1, 0x9000_0000, PAGE)],
        "only the mapping outside the emptied VSpace is left to unmap, and it is reported"
    );
    for slot in [10, 11, 12] {
        assert!(system.lookup(SERVER, slot).is_err(), "slot {slot} revoked");
    }
    assert_eq!(
        frame_at(&system, 13).mapping(),
        None,
        "the other region's frame stays"
    );
    assert_eq!(recorded_mappings(&system), []);
}

/// SERVER lends its `slot` to CLIENT through a reply, into CLIENT's `receive` slot (how the
/// memory-backing server lends frames to the mmu-server).
pub(super) fn lend(system: &mut System<'_>, memory: &mut MockMemory, slot: u64, receive: u64) {
    let client_buffer = system.tcb(CLIENT).ipc_buffer;
    memory.0.insert(
        (client_buffer, abi::message::IPC_BUFFER_RECEIVE_SLOT),
        receive,
    );
    let server_buffer = system.tcb(SERVER).ipc_buffer;
    memory
        .0
        .insert((server_buffer, abi::message::IPC_BUFFER_SEND_CAP), slot);
    syscall(
        system,
        memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
    syscall(
        system,
        memory,
        CLIENT,
        Syscall::Call,
        &[EP, message(0, 0)],
        true,
    );
    let reply = MessageInfo::new(0, 1, 0).raw();
    syscall(
        system,
        memory,
        SERVER,
        Syscall::ReplyRecv,
        &[EP, reply, 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
}
