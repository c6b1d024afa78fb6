//! Capabilities: what a slot holds, and how one capability is derived from another.
//!
//! Derivation rules (seL4's): a derived capability's rights are the intersection of the source's
//! rights and the requested ones, so rights only shrink; a badge is set once, on an unbadged
//! endpoint or notification capability, and sticks: re-badging a badged capability is refused.
//! Frame capabilities carry rights too (read, write, execute): a mapping may not exceed them,
//! and a copy, a mint or a transfer can only keep or drop them.

use crate::{EndpointId, NotificationId, ReplyId, TcbId};
use abi::Rights;

/// A capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Cap {
    /// An empty slot.
    #[default]
    Null,
    /// An endpoint; `generation` is the endpoint generation this capability last saw.
    Endpoint {
        ep: EndpointId,
        badge: u64,
        rights: Rights,
        generation: u32,
    },
    /// A notification.
    Notification {
        ntfn: NotificationId,
        badge: u64,
        rights: Rights,
    },
    /// A reply object (the owner's; used by Recv/ReplyRecv).
    Reply { reply: ReplyId },
    /// A thread.
    Tcb { tcb: TcbId },
    /// A thread's CNode.
    CNode { owner: TcbId },
    /// The right to acknowledge an interrupt.
    IrqHandler { irq: u16 },
    /// The right to stop the system.
    SystemControl,
    /// A VM's VCPU.
    Vcpu { vcpu: u16 },
    /// A VM's stage-2 address space.
    VSpace { vspace: u16 },
    /// Physical memory: a whole RAM region as booted (a frame range), or a 4 KiB / 2 MiB frame
    /// carved from one.
    Frame(FrameCap),
    /// The right to write text to the kernel console (the `DebugWrite` system call).
    DebugConsole,
    /// The right to hand defmt records to the kernel's log (the `DebugLog` system call).
    DebugLog,
    /// The right to read the console's input (`DebugInputBind`, `DebugInputRead`).
    DebugInput,
}

/// A frame capability: which pages, with which rights, and where (if anywhere) this
/// capability mapped them.
///
/// A mapping belongs to the capability that made it (seL4's rule): deleting the capability
/// unmaps it first (`CNodeDelete` answers with the unmap for the kernel to do), so no mapping
/// outlives every capability that could revoke it. The record is only this capability's own:
/// a later map or unmap by others can make it stale, so the kernel removes the recorded entry
/// only if it still maps this frame (`memory.rs`).
///
/// Plain integers only (no `bool`, no `Option`): a field with spare bit patterns would let the
/// compiler hide `Cap`'s discriminant inside it, and every capability lookup, the IPC fast
/// path's included, would pay for decoding that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameCap {
    /// The boot region the pages belong to (revocation finds carved frames by it).
    pub region: u16,
    /// The VSpace this capability maps the frame in, or [`FrameCap::UNMAPPED`].
    pub mapped_vspace: u16,
    /// First physical page number (physical address / 4096).
    pub first_page: u32,
    /// Number of pages (1 or 512 for carved frames).
    pub pages: u32,
    /// The IPA page number of the mapping (meaningful when mapped).
    pub mapped_page: u32,
    /// 1 when carved from a range (mappable); 0 for the region's range capability itself.
    pub carved: u8,
    /// What a mapping of it may allow: [`Rights::READ`], [`Rights::WRITE`], [`Rights::EXECUTE`].
    pub rights: Rights,
}

impl FrameCap {
    /// `mapped_vspace` of an unmapped frame.
    pub const UNMAPPED: u16 = u16::MAX;
    /// Every right a frame can carry: read, write, execute.
    pub const ALL_RIGHTS: Rights = Rights::READ.union(Rights::WRITE).union(Rights::EXECUTE);

    /// A frame capability over `pages` pages from `first_page`, unmapped, with every frame
    /// right ([`FrameCap::with_rights`] narrows them).
    pub const fn new(region: u16, first_page: u32, pages: u32, carved: bool) -> Self {
        Self {
            region,
            mapped_vspace: Self::UNMAPPED,
            first_page,
            pages,
            mapped_page: 0,
            carved: carved as u8,
            rights: Self::ALL_RIGHTS,
        }
    }

    /// The same capability with `rights` (only the frame rights of it are kept).
    pub const fn with_rights(self, rights: Rights) -> Self {
        Self {
            rights: rights.intersection(Self::ALL_RIGHTS),
            ..self
        }
    }

    /// Whether it was carved from a range.
    pub const fn is_carved(&self) -> bool {
        self.carved != 0
    }

    /// Where this capability mapped the frame: VSpace and IPA page number (the translation may
    /// have been replaced or removed since).
    pub const fn mapping(&self) -> Option<(u16, u32)> {
        if self.mapped_vspace == Self::UNMAPPED {
            None
        } else {
            Some((self.mapped_vspace, self.mapped_page))
        }
    }

    /// Records (or clears) its mapping.
    pub fn set_mapping(&mut self, mapping: Option<(u16, u32)>) {
        (self.mapped_vspace, self.mapped_page) = mapping.unwrap_or((Self::UNMAPPED, 0));
    }
    /// Physical address of the first page.
    pub const fn base(&self) -> u64 {
        (self.first_page as u64) << 12
    }

    /// Size in bytes.
    pub const fn size(&self) -> u64 {
        (self.pages as u64) << 12
    }
}

/// Why a derivation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeriveError {
    /// The source slot is empty.
    NullSource,
    /// A badge was asked for on a capability that cannot carry one.
    NotBadgeable,
    /// The source already carries a different badge.
    AlreadyBadged,
    /// Reply capabilities are not copied: a reply right is single-use and owned.
    NotCopyable,
}

impl Cap {
    /// The rights this capability carries (objects without rights carry all).
    pub const fn rights(&self) -> Rights {
        match *self {
            Self::Endpoint { rights, .. } | Self::Notification { rights, .. } => rights,
            Self::Frame(FrameCap { rights, .. }) => rights,
            Self::Null => Rights::NONE,
            _ => Rights::ALL,
        }
    }

    /// Whether the slot is empty.
    pub const fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// A copy with `rights ∩ self.rights` and, when `badge` is given, that badge.
    pub fn derive(&self, rights: Rights, badge: Option<u64>) -> Result<Cap, DeriveError> {
        match *self {
            Self::Null => Err(DeriveError::NullSource),
            Self::Reply { .. } => Err(DeriveError::NotCopyable),
            Self::Endpoint {
                ep,
                badge: old,
                rights: have,
                generation,
            } => Ok(Self::Endpoint {
                ep,
                badge: merge_badge(old, badge)?,
                rights: have.intersection(rights),
                generation,
            }),
            Self::Notification {
                ntfn,
                badge: old,
                rights: have,
            } => Ok(Self::Notification {
                ntfn,
                badge: merge_badge(old, badge)?,
                rights: have.intersection(rights),
            }),
            Self::Frame(frame) => match badge {
                // A copy starts unmapped: a mapping belongs to one capability (seL4's rule).
                None => Ok(Self::Frame(FrameCap {
                    mapped_vspace: FrameCap::UNMAPPED,
                    mapped_page: 0,
                    rights: frame.rights.intersection(rights),
                    ..frame
                })),
                Some(_) => Err(DeriveError::NotBadgeable),
            },
            other => match badge {
                Some(_) => Err(DeriveError::NotBadgeable),
                None => Ok(other),
            },
        }
    }
}

fn merge_badge(old: u64, new: Option<u64>) -> Result<u64, DeriveError> {
    match new {
        None => Ok(old),
        Some(new) if old == 0 || old == new => Ok(new),
        Some(_) => Err(DeriveError::AlreadyBadged),
    }
}

// Capabilities are copied on every lookup, the IPC fast path included: keep them small.
const _: () = assert!(core::mem::size_of::<Cap>() <= 24);
const _: () = assert!(core::mem::size_of::<FrameCap>() <= 20);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn endpoint(badge: u64, rights: u8) -> Cap {
        Cap::Endpoint {
            ep: 3,
            badge,
            rights: Rights::from_bits_truncate(rights),
            generation: 0,
        }
    }

    proptest! {
        #[test]
        fn rights_only_shrink(have in 0u8..16, ask in 0u8..16, badge in 0u64..4) {
            let source = endpoint(badge, have);
            let derived = source.derive(Rights::from_bits_truncate(ask), None).unwrap();
            prop_assert!(source.rights().contains(derived.rights()));
            prop_assert!(Rights::from_bits_truncate(ask).contains(derived.rights()));
            // and a second derivation can never win back what the first dropped
            let again = derived.derive(Rights::ALL, None).unwrap();
            prop_assert_eq!(again.rights(), derived.rights());
        }

        #[test]
        fn badges_stick(first in 1u64..1000, second in 1u64..1000) {
            let badged = endpoint(0, 0b1111).derive(Rights::ALL, Some(first)).unwrap();
            let rebadged = badged.derive(Rights::ALL, Some(second));
            if first == second {
                prop_assert_eq!(rebadged, Ok(badged));
            } else {
                prop_assert_eq!(rebadged, Err(DeriveError::AlreadyBadged));
            }
            let copy = badged.derive(Rights::WRITE, None).unwrap();
            let kept = matches!(copy, Cap::Endpoint { badge, .. } if badge == first);
            prop_assert!(kept);
        }
    }

    #[test]
    fn an_empty_slot_carries_no_rights_and_objects_without_rights_carry_all() {
        assert_eq!(Cap::Null.rights(), Rights::NONE);
        assert_eq!(Cap::Tcb { tcb: 1 }.rights(), Rights::ALL);
        assert_eq!(
            endpoint(0, 0b0101).rights(),
            Rights::from_bits_truncate(0b0101)
        );
    }

    #[test]
    fn a_copy_of_a_mapped_frame_is_the_same_frame_unmapped() {
        let mut mapped = FrameCap::new(2, 0x4_0200, 512, true);
        mapped.set_mapping(Some((3, 0x200)));
        assert_eq!(mapped.mapping(), Some((3, 0x200)));
        assert_eq!(
            Cap::Frame(mapped).derive(Rights::ALL, None),
            Ok(Cap::Frame(FrameCap::new(2, 0x4_0200, 512, true))),
            "exactly a fresh carve of the same pages"
        );
        assert_eq!(
            Cap::Frame(mapped).derive(Rights::ALL, Some(1)),
            Err(DeriveError::NotBadgeable)
        );
    }

    #[test]
    fn replies_and_null_are_not_copied_and_tcbs_take_no_badge() {
        assert_eq!(
            Cap::Null.derive(Rights::ALL, None),
            Err(DeriveError::NullSource)
        );
        assert_eq!(
            Cap::Reply { reply: 1 }.derive(Rights::ALL, None),
            Err(DeriveError::NotCopyable)
        );
        assert_eq!(
            Cap::Tcb { tcb: 1 }.derive(Rights::ALL, Some(4)),
            Err(DeriveError::NotBadgeable)
        );
        assert_eq!(
            Cap::Tcb { tcb: 1 }.derive(Rights::NONE, None),
            Ok(Cap::Tcb { tcb: 1 })
        );
    }
}
