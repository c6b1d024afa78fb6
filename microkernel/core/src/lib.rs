//! The kernel's portable core: every decision the kernel makes that does not touch hardware.
//!
//! The target kernel (`microkernel/kernel`) owns the object storage (carved from RAM at boot),
//! the exception entry and the MMU; it calls into this crate for capability lookup and
//! derivation, the IPC state machine, notifications, the scheduler and invocation decoding.
//! Everything here is host-tested and free of `unsafe`.
//!
//! Objects refer to each other by index into the pools of [`system::System`], never by pointer,
//! so a stale reference is a bounds-checked lookup, not a use-after-free.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod boot_check;
pub mod cap;
pub mod cnode;
pub mod elf;
pub mod endpoint;
pub mod guest_load;
pub mod invocation;
pub mod memory;
pub mod mmio;
pub mod notification;
pub mod queue;
pub mod sched;
pub mod stage2;
pub mod system;
pub mod tcb;
pub mod vgic;

#[cfg(test)]
mod tests;

/// Index of a thread (one per server).
pub type TcbId = u16;
/// Index of an endpoint.
pub type EndpointId = u16;
/// Index of a notification.
pub type NotificationId = u16;
/// Index of a reply object (one per thread, same index as its owner).
pub type ReplyId = u16;
