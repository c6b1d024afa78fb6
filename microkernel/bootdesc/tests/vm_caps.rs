//! `bootinfo::find_vm_cap`: a server of one VM finds its role's endpoint under the role's own
//! name or, in a system with one such server per VM, under `<role>-<vm>`.
#![cfg(feature = "std")]

use bootdesc::bootinfo::{self, BootInfoHeader, CapName};

fn blob(caps: &[(&str, u16)]) -> Vec<u8> {
    let header = BootInfoHeader {
        server_id: 1,
        name: "mmu-left",
        caps: 0,
        heap_bytes: 0,
        supervised: 0,
        vms: 0,
        devices: 0,
    };
    let caps: Vec<CapName<'_>> = caps
        .iter()
        .map(|&(name, slot)| CapName { name, slot })
        .collect();
    bootinfo::encode(&header, &caps, &[], &[]).expect("encodes")
}

#[test]
fn the_role_name_itself_comes_first() {
    let blob = blob(&[("mmu-left", 4), ("mmu", 3)]);
    assert_eq!(bootinfo::find_vm_cap(&blob, "mmu", "left"), Some(3));
}

#[test]
fn else_the_name_suffixed_with_the_vm() {
    let blob = blob(&[("memory-right", 2), ("memory-left", 5), ("vspace:left", 6)]);
    assert_eq!(bootinfo::find_vm_cap(&blob, "memory", "left"), Some(5));
    assert_eq!(bootinfo::find_vm_cap(&blob, "memory", "right"), Some(2));
}

#[test]
fn no_other_name_matches() {
    // Neither another VM's, nor a longer role, nor a VM name that merely starts the same.
    let blob = blob(&[
        ("memory-right", 2),
        ("mmu-lefty", 3),
        ("mmux-left", 4),
        ("mmuleft", 5),
        ("mmu-", 6),
    ]);
    assert_eq!(bootinfo::find_vm_cap(&blob, "memory", "left"), None);
    assert_eq!(bootinfo::find_vm_cap(&blob, "mmu", "left"), None);
    assert_eq!(bootinfo::find_vm_cap(&blob, "mmu", ""), Some(6));
    assert_eq!(bootinfo::find_vm_cap(&[], "mmu", "left"), None);
}
