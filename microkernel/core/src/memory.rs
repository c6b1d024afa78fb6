//! Memory invocations: carving frames out of a RAM range, revoking them, and mapping frames
//! into a guest's stage-2 VSpace. Decode checks everything (alignment, ranges, rights, that the
//! VSpace has the page-table pages the mapping may need); the mapping itself is an [`Effect`]
//! the kernel performs through the stage-2 mapping path, which cannot fail after these checks.
//!
//! A frame capability remembers where it is mapped, and the mapping belongs to it (seL4's
//! rule): deleting the capability unmaps it ([`System::delete_slot`]), revoking a range unmaps
//! and deletes every frame carved from it, wherever it went (lent to the mmu-server, say).
//! Frames are lent as capabilities that can be taken back, never pinned, and no mapping
//! outlives every capability that could revoke it.
//!
//! The records follow the tables: at most one capability records a given translation. A map
//! takes over the records of every other capability whose mapping it overlaps in that VSpace
//! (the map replaced or absorbed their entries), an unmap clears the records it overlaps, and
//! a record can be stale only towards nothing (its entry went with a larger unmap): unmapping
//! through it then removes nothing, and the next map there clears it.
//!
//! Frame capabilities carry rights: a mapping needs [`Rights::READ`], and `WRITE` / `EXECUTE`
//! attributes need the same rights of the frame (refused in decode with
//! [`KernelError::InsufficientRights`] naming the frame's slot).

use crate::TcbId;
use crate::cap::{Cap, FrameCap};
use crate::system::{Effect, System};
use abi::vm::MapAttributes;
use abi::{InvocationLabel, KernelError, Rights};

/// 4 KiB.
pub const SIZE_4K: u64 = 4096;
/// 2 MiB.
pub const SIZE_2M: u64 = 2 << 20;
/// Table pages one mapping may need at most (a level-2 and a level-3 table).
pub const TABLES_PER_MAPPING: u32 = 2;

/// Bookkeeping of one guest VSpace that decode needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VSpaceInfo {
    /// Page-table pages still free in its pool.
    pub free_tables: u32,
}

/// A validated memory invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryInvocation {
    /// Store a carved frame capability in the empty pool slot `index`.
    Carve { index: usize, cap: Cap },
    /// Revoke every frame carved from `region` pages `first_page .. first_page + pages`.
    Revoke {
        region: u16,
        first_page: u32,
        pages: u32,
    },
    /// Map the frame in pool slot `frame_index`.
    Map {
        vspace: u16,
        frame_index: usize,
        pa: u64,
        ipa: u64,
        size: u64,
        attributes: MapAttributes,
    },
    /// Remove the mapping of `size` at `ipa`.
    Unmap { vspace: u16, ipa: u64, size: u64 },
    /// Make `ipa .. ipa + len` read-only.
    WriteProtect { vspace: u16, ipa: u64, len: u64 },
}

fn aligned(value: u64, to: u64) -> bool {
    value.is_multiple_of(to)
}

/// The frame rights a mapping with `attributes` needs: read always (every stage-2 mapping is
/// readable), write and execute as asked.
pub const fn rights_needed(attributes: MapAttributes) -> Rights {
    let mut rights = Rights::READ;
    if attributes.0 & MapAttributes::WRITE.0 != 0 {
        rights = rights.union(Rights::WRITE);
    }
    if attributes.0 & MapAttributes::EXECUTE.0 != 0 {
        rights = rights.union(Rights::EXECUTE);
    }
    rights
}

/// Decodes an invocation of a Frame or VSpace capability.
pub fn decode(
    system: &System<'_>,
    caller: TcbId,
    cap: Cap,
    operation: InvocationLabel,
    args: [u64; 4],
) -> Result<MemoryInvocation, KernelError> {
    let label = operation as u64;
    match (cap, operation) {
        (Cap::Frame(range), InvocationLabel::FrameCarve) if !range.is_carved() => {
            let (offset, size) = (args[0], args[1]);
            if size != SIZE_4K && size != SIZE_2M {
                return Err(KernelError::InvalidArgument { index: 1 });
            }
            if !aligned(offset, size)
                || offset
                    .checked_add(size)
                    .is_none_or(|end| end > range.size())
            {
                return Err(KernelError::RangeError {
                    index: 0,
                    min: 0,
                    max: range.size().saturating_sub(size),
                });
            }
            if !aligned(range.base() + offset, size) {
                return Err(KernelError::InvalidArgument { index: 0 });
            }
            let index = crate::cnode::empty_slot(system.slots, system.tcb(caller).cnode, args[2])?;
            // A carved frame is derived from the range: it carries the range's rights.
            let cap = Cap::Frame(
                FrameCap::new(
                    range.region,
                    range.first_page + (offset / SIZE_4K) as u32,
                    (size / SIZE_4K) as u32,
                    true,
                )
                .with_rights(range.rights),
            );
            Ok(MemoryInvocation::Carve { index, cap })
        }
        (Cap::Frame(range), InvocationLabel::FrameRevoke) if !range.is_carved() => {
            Ok(MemoryInvocation::Revoke {
                region: range.region,
                first_page: range.first_page,
                pages: range.pages,
            })
        }
        (Cap::VSpace { vspace }, InvocationLabel::VSpaceMap) => {
            let frame_index = crate::cnode::slot_index(system.tcb(caller).cnode, args[0])?;
            let Some(Cap::Frame(frame)) = system.slots.get(frame_index).copied() else {
                return Err(KernelError::WrongObjectType { slot: args[0] });
            };
            if !frame.is_carved() {
                return Err(KernelError::InvalidArgument { index: 0 });
            }
            let (ipa, size) = (args[1], frame.size());
            if !aligned(ipa, size)
                || ipa
                    .checked_add(size)
                    .is_none_or(|end| end > crate::stage2::IPA_LIMIT)
            {
                return Err(KernelError::InvalidArgument { index: 1 });
            }
            if args[2] & !(MapAttributes::WRITE.0 | MapAttributes::EXECUTE.0) != 0 {
                return Err(KernelError::InvalidArgument { index: 2 });
            }
            if !frame.rights.contains(rights_needed(MapAttributes(args[2]))) {
                // A frame lent read-only cannot be mapped writable, nor executable without the
                // execute right: the capability names the limit, so the error names it.
                return Err(KernelError::InsufficientRights { slot: args[0] });
            }
            if frame
                .mapping()
                .is_some_and(|at| at != (vspace, (ipa / SIZE_4K) as u32))
            {
                // One capability, one mapping: map a copy to map the frame twice.
                return Err(KernelError::InvalidArgument { index: 0 });
            }
            if system
                .vspaces
                .get(usize::from(vspace))
                .is_none_or(|v| v.free_tables < TABLES_PER_MAPPING)
            {
                return Err(KernelError::IllegalOperation { label });
            }
            Ok(MemoryInvocation::Map {
                vspace,
                frame_index,
                pa: frame.base(),
                ipa,
                size,
                attributes: MapAttributes(args[2]),
            })
        }
        (Cap::VSpace { vspace }, InvocationLabel::VSpaceUnmap) => {
            let (ipa, size) = (args[0], args[1]);
            if (size != SIZE_4K && size != SIZE_2M)
                || !aligned(ipa, size)
                || ipa >= crate::stage2::IPA_LIMIT
            {
                return Err(KernelError::InvalidArgument {
                    index: if aligned(ipa, size) { 1 } else { 0 },
                });
            }
            Ok(MemoryInvocation::Unmap { vspace, ipa, size })
        }
        (Cap::VSpace { vspace }, InvocationLabel::VSpaceWriteProtect) => {
            let (ipa, len) = (args[0], args[1]);
            if !aligned(ipa, SIZE_4K)
                || !aligned(len, SIZE_4K)
                || ipa
                    .checked_add(len)
                    .is_none_or(|end| end > crate::stage2::IPA_LIMIT)
            {
                return Err(KernelError::InvalidArgument { index: 0 });
            }
            Ok(MemoryInvocation::WriteProtect { vspace, ipa, len })
        }
        _ => Err(KernelError::IllegalOperation { label }),
    }
}

impl System<'_> {
    /// Performs a decoded memory invocation: capability bookkeeping here, page-table work as
    /// the returned effect.
    pub fn perform_memory(&mut self, invocation: MemoryInvocation) -> Effect {
        match invocation {
            MemoryInvocation::Carve { index, cap } => {
                self.slots[index] = cap;
                Effect::None
            }
            MemoryInvocation::Revoke {
                region,
                first_page,
                pages,
            } => Effect::Revoke {
                region,
                first_page,
                pages,
            },
            MemoryInvocation::Map {
                vspace,
                frame_index,
                pa,
                ipa,
                size,
                attributes,
            } => {
                // The new entry replaces (or, a page inside an equal block, absorbs) whatever
                // the other capabilities recorded there: the records move to this one.
                self.forget_mappings(vspace, ipa, size);
                if let Cap::Frame(frame) = &mut self.slots[frame_index] {
                    frame.set_mapping(Some((vspace, (ipa / SIZE_4K) as u32)));
                }
                Effect::Map {
                    vspace,
                    pa,
                    ipa,
                    size,
                    attributes,
                }
            }
            MemoryInvocation::Unmap { vspace, ipa, size } => {
                self.forget_mappings(vspace, ipa, size);
                Effect::Unmap { vspace, ipa, size }
            }
            MemoryInvocation::WriteProtect { vspace, ipa, len } => {
                Effect::WriteProtect { vspace, ipa, len }
            }
        }
    }

    /// Clears the recorded mapping of every frame capability whose mapping overlaps
    /// `ipa .. ipa + size` of `vspace` (a page inside a mapped block clears the block's record:
    /// the kernel's unmap of such a page removes the whole block). VM reset clears a whole
    /// VSpace this way after emptying its tables.
    pub fn forget_mappings(&mut self, vspace: u16, ipa: u64, size: u64) {
        let first = ipa / SIZE_4K;
        let end = ipa.saturating_add(size) / SIZE_4K;
        for slot in self.slots.iter_mut() {
            if let Cap::Frame(frame) = slot
                && frame.mapping().is_some_and(|(v, page)| {
                    let page = u64::from(page);
                    v == vspace && page < end && page + u64::from(frame.pages) > first
                })
            {
                frame.set_mapping(None);
            }
        }
    }

    /// Empties pool slot `index`: the one way a capability leaves a slot other than revocation.
    /// A mapped frame capability is unmapped first: the returned [`Effect::Unmap`] is its
    /// mapping, for the kernel to remove in the same invocation (deletion unmaps, as in seL4),
    /// so the mapping cannot outlive every capability that could revoke it.
    pub fn delete_slot(&mut self, index: usize) -> Effect {
        let effect = match self.slots[index] {
            Cap::Frame(frame) => match frame.mapping() {
                Some((vspace, page)) => Effect::Unmap {
                    vspace,
                    ipa: u64::from(page) * SIZE_4K,
                    size: frame.size(),
                },
                None => Effect::None,
            },
            _ => Effect::None,
        };
        self.slots[index] = Cap::Null;
        effect
    }

    /// VM reset's revocation: VSpace `vspace` (the VM's own) has just been emptied, so no
    /// capability maps anything in it any more; then every frame carved from the VM's RAM
    /// (`region` pages `first_page .. first_page + pages`) is revoked, and `unmap` is called for
    /// each one still mapped: in another VSpace, since the VM's own is empty. Returns how many
    /// were revoked.
    pub fn revoke_for_vm_reset(
        &mut self,
        vspace: u16,
        region: u16,
        first_page: u32,
        pages: u32,
        unmap: impl FnMut(u16, u64, u64),
    ) -> usize {
        self.forget_mappings(vspace, 0, crate::stage2::IPA_LIMIT);
        self.revoke_frames(region, first_page, pages, unmap)
    }

    /// Deletes every frame carved from `region` pages `first_page .. first_page + pages`, calling
    /// `unmap(vspace, ipa, size)` for each that is mapped. Returns how many were revoked.
    pub fn revoke_frames(
        &mut self,
        region: u16,
        first_page: u32,
        pages: u32,
        mut unmap: impl FnMut(u16, u64, u64),
    ) -> usize {
        let end = first_page.saturating_add(pages);
        let mut revoked = 0;
        for slot in self.slots.iter_mut() {
            let Cap::Frame(frame) = *slot else { continue };
            if frame.is_carved()
                && frame.region == region
                && frame.first_page < end
                && frame.first_page + frame.pages > first_page
            {
                if let Some((vspace, page)) = frame.mapping() {
                    unmap(vspace, u64::from(page) * SIZE_4K, frame.size());
                }
                *slot = Cap::Null;
                revoked += 1;
            }
        }
        revoked
    }
}
