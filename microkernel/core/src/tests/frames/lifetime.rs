//! A mapping belongs to the frame capability that made it: deleting that capability unmaps it in
//! the same invocation, a copy's deletion leaves it, a record made stale by a later map or unmap
//! removes nothing (never another frame's translation), and VM reset's revocation reaches the
//! VM's frames mapped in other VSpaces.

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
            Effect::UnmapFrame {
                vspace: 0,
                ipa,
                size,
                pa: RAM + offset
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
    let revoked = system.revoke_frames(region, first_page, pages, |v, ipa, size, pa| {
        unmapped.push((v, ipa, size, pa))
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
        Effect::UnmapFrame {
            vspace: 0,
            ipa: GUEST,
            size: PAGE,
            pa: RAM + PAGE
        }
    );
    assert_eq!(f.tables.translate(0, GUEST), None);
}

#[test]
fn a_record_made_stale_by_a_later_map_removes_nothing_on_deletion() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    // A 2 MiB block, then a page inside it (dirty logging splits blocks this way): the page's
    // map replaced the block, and no other capability was visited, so the block's record is
    // stale now. Its deletion finds a table where its block was and leaves the page.
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
    assert_eq!(
        f.tables.translate(0, GUEST),
        None,
        "the rest of the block refaults"
    );
    f.delete(&mut system, 10);
    assert_eq!(
        f.tables.translate(0, GUEST + 5 * PAGE),
        Some(RAM + 5 * PAGE),
        "deleting the block's capability leaves the page that replaced it"
    );

    // Another frame's page where that page was: the old page's deletion leaves it.
    f.carve(&mut system, 6 * PAGE, PAGE, 12);
    f.map(
        &mut system,
        VSPACE,
        12,
        GUEST + 5 * PAGE,
        MapAttributes::WRITE,
    )
    .unwrap();
    f.delete(&mut system, 11);
    assert_eq!(
        f.tables.translate(0, GUEST + 5 * PAGE),
        Some(RAM + 6 * PAGE),
        "the stale record of another frame there removes nothing"
    );
    f.delete(&mut system, 12);
    assert_eq!(
        f.tables.translate(0, GUEST + 5 * PAGE),
        None,
        "its own does"
    );

    // A block over pages: the pages' records go stale with the table the block replaced, and
    // their deletions leave the block.
    f.carve(&mut system, PAGE, PAGE, 11);
    f.map(&mut system, VSPACE, 11, GUEST + PAGE, MapAttributes::WRITE)
        .unwrap();
    f.carve(&mut system, 0, BLOCK, 12);
    f.map(&mut system, VSPACE, 12, GUEST, MapAttributes::WRITE)
        .unwrap();
    f.delete(&mut system, 11);
    assert_eq!(
        f.tables.translate(0, GUEST + PAGE),
        Some(RAM + PAGE),
        "the block's"
    );
    f.delete(&mut system, 12);
    assert_eq!(f.tables.translate(0, GUEST + PAGE), None);
}

#[test]
fn a_copy_mapped_over_the_same_frame_shares_the_translation_either_deletion_removes_it() {
    let mut pools = pools(&[100, 50, 40]);
    let mut vspaces = vspaces();
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    let mut f = fixture(&mut system);
    // A permission change through a fresh copy (as the mmu-server makes): the same frame at the
    // same place, so both records match the leaf. Removing too much is safe (the guest
    // refaults); what matters is that some capability can always remove it.
    f.carve(&mut system, 5 * PAGE, PAGE, 11);
    f.map(&mut system, VSPACE, 11, GUEST, MapAttributes::READ_ONLY)
        .unwrap();
    f.copy(&mut system, 11, 12, Rights::ALL).unwrap();
    f.map(&mut system, VSPACE, 12, GUEST, MapAttributes::WRITE)
        .unwrap();
    assert_eq!(
        recorded_mappings(&system),
        [(pool_index(11), 0, 0x4_0000), (pool_index(12), 0, 0x4_0000)]
    );
    for first in [11, 12] {
        let second = 23 - first;
        f.delete(&mut system, first);
        assert_eq!(f.tables.translate(0, GUEST), None, "deleting {first}");
        assert_eq!(
            f.delete(&mut system, second),
            Effect::UnmapFrame {
                vspace: 0,
                ipa: GUEST,
                size: PAGE,
                pa: RAM + 5 * PAGE,
            }
        );
        f.carve(&mut system, 5 * PAGE, PAGE, 11);
        f.map(&mut system, VSPACE, 11, GUEST, MapAttributes::READ_ONLY)
            .unwrap();
        f.copy(&mut system, 11, 12, Rights::ALL).unwrap();
        f.map(&mut system, VSPACE, 12, GUEST, MapAttributes::WRITE)
            .unwrap();
    }
}

#[test]
fn a_page_inside_a_block_that_already_maps_it_leaves_the_block_to_the_blocks_capability() {
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
    f.delete(&mut system, 11);
    assert_eq!(
        f.tables.translate(0, GUEST + 3 * PAGE),
        Some(RAM + 3 * PAGE),
        "the block is not the page's to remove"
    );
    f.delete(&mut system, 10);
    assert_eq!(
        f.tables.translate(0, GUEST),
        None,
        "the block's capability removes it"
    );
    assert_eq!(f.tables.translate(0, GUEST + BLOCK - PAGE), None);
}

#[test]
fn after_an_unmap_the_deletion_leaves_whatever_was_mapped_there_since() {
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
    // Another frame's block there now (the slot was given other memory), then the old one's
    // stale record is deleted: the new block stays.
    f.carve(&mut system, BLOCK, BLOCK, 11);
    f.map(&mut system, VSPACE, 11, GUEST, MapAttributes::WRITE)
        .unwrap();
    f.delete(&mut system, 10);
    assert_eq!(
        f.tables.translate(0, GUEST + 7 * PAGE),
        Some(RAM + BLOCK + 7 * PAGE)
    );
    f.delete(&mut system, 11);
    assert_eq!(f.tables.translate(0, GUEST), None);
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
    assert!(matches!(
        f.delete(&mut system, 10),
        Effect::UnmapFrame { .. }
    ));
    assert_eq!(f.tables.translate(0, GUEST), None);
}

#[test]
fn vm_reset_revocation_unmaps_the_vms_frames_mapped_in_other_vspaces() {
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
    // A frame of another region (another VM's RAM) mapped in the VM's VSpace: not revoked; the
    // emptied VSpace no longer holds its mapping, and its record is stale from then on.
    let other_region = 0x9_0000;
    put_cap(
        &mut system,
        SERVER,
        13,
        Cap::Frame(crate::cap::FrameCap::new(1, other_region, 1, true)),
    );
    f.map(
        &mut system,
        VSPACE,
        13,
        GUEST + 4 * BLOCK,
        MapAttributes::WRITE,
    )
    .unwrap();

    // The kernel empties the VM's VSpace first (`vspace::clear`), then revokes the VM's RAM,
    // unmapping each revoked frame's recorded leaf if it still maps that frame.
    f.tables.clear(0);
    let range = frame_at(&system, RANGE);
    let mut unmapped = Vec::new();
    let revoked = system.revoke_frames(
        range.region,
        range.first_page,
        range.pages,
        |v, ipa, size, pa| unmapped.push((v, ipa, size, pa)),
    );
    assert_eq!(revoked, 3);
    assert_eq!(
        unmapped,
        [(0, GUEST, BLOCK, RAM), (1, 0x9000_0000, PAGE, RAM + BLOCK)],
        "every revoked frame that records a mapping, named with its frame"
    );
    for (vspace, ipa, size, pa) in unmapped {
        f.tables.unmap_frame(vspace, ipa, size, pa);
    }
    assert_eq!(
        f.tables.translate(1, 0x9000_0000),
        None,
        "the foreign mapping did not survive the reset"
    );
    for slot in [10, 11, 12] {
        assert!(system.lookup(SERVER, slot).is_err(), "slot {slot} revoked");
    }
    assert!(
        system.lookup(SERVER, 13).is_ok(),
        "the other region's frame stays"
    );

    // The VM runs again and another frame is mapped where the other region's was: the stale
    // record of that one removes nothing when it is deleted.
    f.carve(&mut system, 0, PAGE, 10);
    f.map(
        &mut system,
        VSPACE,
        10,
        GUEST + 4 * BLOCK,
        MapAttributes::WRITE,
    )
    .unwrap();
    f.delete(&mut system, 13);
    assert_eq!(f.tables.translate(0, GUEST + 4 * BLOCK), Some(RAM));
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
