//! CNode access: a thread's capability slots are a range of the system's slot pool.
//!
//! CNodes are single-level: a capability pointer is a slot index, checked against the CNode's
//! size. (seL4's guarded multi-level CNodes can come with untyped retype; nothing here depends on
//! the lookup being single-level.)

use crate::cap::Cap;
use crate::tcb::SlotRange;
use abi::KernelError;

/// The pool index of `cptr` in `cnode`, or the error that names the slot.
#[inline(always)]
pub fn slot_index(cnode: SlotRange, cptr: u64) -> Result<usize, KernelError> {
    if cptr >= u64::from(cnode.len) {
        return Err(KernelError::InvalidCapability { slot: cptr });
    }
    Ok(cnode.base as usize + cptr as usize)
}

/// The capability at `cptr`; an empty slot is an error.
#[inline(always)]
pub fn lookup(slots: &[Cap], cnode: SlotRange, cptr: u64) -> Result<Cap, KernelError> {
    let index = slot_index(cnode, cptr)?;
    match slots.get(index) {
        Some(cap) if !cap.is_null() => Ok(*cap),
        _ => Err(KernelError::InvalidCapability { slot: cptr }),
    }
}

/// Checks that `cptr` names an empty slot and returns its pool index.
pub fn empty_slot(slots: &[Cap], cnode: SlotRange, cptr: u64) -> Result<usize, KernelError> {
    let index = slot_index(cnode, cptr)?;
    match slots.get(index) {
        Some(Cap::Null) => Ok(index),
        Some(_) => Err(KernelError::DeleteFirst { slot: cptr }),
        None => Err(KernelError::InvalidCapability { slot: cptr }),
    }
}
