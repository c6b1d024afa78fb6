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
//! The record is written by the capability's own map and nothing else touches it: no map or
//! unmap looks at other capabilities (no scan on the guest's fault path). So a record may be
//! stale: a later map replaced that entry (a page over the block, a block over the page, a copy
//! mapped there) or an unmap removed it. The unmap a deletion or revocation asks for is
//! therefore checked against the table ([`Effect::UnmapFrame`],
//! [`crate::stage2::unmap_frame`]): it removes the leaf only if it still maps this frame (same
//! size, same physical address), and a translation to another frame stays. Every leaf keeps a
//! capability whose record matches it exactly, the one whose map installed it or last changed
//! its permissions, because only that capability's deletion clears that record.
//!
//! A capability maps at one place: a map elsewhere while it records a mapping is refused (its
//! old translation might still be live and would lose its owner); map a copy instead.
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
            let frame = match system.slots.get(frame_index).copied() {
                Some(Cap::Frame(frame)) => frame,
                // An empty slot names no capability at all, as any other invocation says.
                None | Some(Cap::Null) => {
                    return Err(KernelError::InvalidCapability { slot: args[0] });
                }
                Some(_) => return Err(KernelError::WrongObjectType { slot: args[0] }),
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
                // Only this capability's record: whatever the map replaces, the records of it
                // go stale, and a deletion through them finds another leaf and removes nothing.
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
            MemoryInvocation::Unmap { vspace, ipa, size } => Effect::Unmap { vspace, ipa, size },
            MemoryInvocation::WriteProtect { vspace, ipa, len } => {
                Effect::WriteProtect { vspace, ipa, len }
            }
        }
    }

    /// Empties pool slot `index`: the one way a capability leaves a slot other than revocation.
    /// A frame capability that records a mapping is unmapped first: the returned
    /// [`Effect::UnmapFrame`] names its leaf and its physical address, for the kernel to remove
    /// in the same invocation if the table still maps this frame there (deletion unmaps, as in
    /// seL4), so the mapping cannot outlive every capability that could revoke it.
    pub fn delete_slot(&mut self, index: usize) -> Effect {
        let effect = match self.slots[index] {
            Cap::Frame(frame) => frame_unmap(&frame),
            _ => Effect::None,
        };
        self.slots[index] = Cap::Null;
        effect
    }

    /// Deletes every frame carved from `region` pages `first_page .. first_page + pages`,
    /// calling `unmap(vspace, ipa, size, pa)` for each that records a mapping: the kernel
    /// removes that leaf if it still maps the frame at `pa` (as for a deletion). Returns how
    /// many were revoked. VM reset empties the VM's VSpace first and then revokes its RAM's
    /// frames this way, which reaches the copies mapped in other VSpaces.
    pub fn revoke_frames(
        &mut self,
        region: u16,
        first_page: u32,
        pages: u32,
        mut unmap: impl FnMut(u16, u64, u64, u64),
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
                if let Effect::UnmapFrame {
                    vspace,
                    ipa,
                    size,
                    pa,
                } = frame_unmap(&frame)
                {
                    unmap(vspace, ipa, size, pa);
                }
                *slot = Cap::Null;
                revoked += 1;
            }
        }
        revoked
    }
}

/// The unmap that removing `frame` asks for: its recorded leaf, if the table still maps the
/// frame there.
fn frame_unmap(frame: &FrameCap) -> Effect {
    match frame.mapping() {
        Some((vspace, page)) => Effect::UnmapFrame {
            vspace,
            ipa: u64::from(page) * SIZE_4K,
            size: frame.size(),
            pa: frame.base(),
        },
        None => Effect::None,
    }
}
