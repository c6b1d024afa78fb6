//! The kernel's binary interface, shared by the kernel, userlib and the host tools.
//!
//! Everything here is wire ABI: numbers are appended, never renumbered. It plays the role of
//! seL4's `libsel4` headers (we do not depend on `sel4-sys`, which has no aarch64 hypervisor
//! support).
#![no_std]
#![forbid(unsafe_code)]

pub mod error;
pub mod fault;
pub mod layout;
pub mod message;
pub mod mmio;
pub mod platform;
pub mod rights;
pub mod syscall;
pub mod vm;

pub use error::KernelError;
pub use fault::{FaultInfo, FaultKind, InjectAt};
pub use message::MessageInfo;
pub use rights::Rights;
pub use syscall::{InvocationLabel, Syscall};

/// A capability pointer: an index into the calling thread's CNode (single level).
pub type CPtr = u64;

/// Slot 0 of every CNode is always empty, so a zeroed register never names a capability.
pub const NULL_SLOT: CPtr = 0;
/// Slot 1 holds the server's own Reply object: the target of `Call` replies it receives.
pub const REPLY_SLOT: CPtr = 1;
/// Slot 2 holds a capability to the server's own CNode (copy, mint, delete).
pub const CNODE_SLOT: CPtr = 2;
/// The first slot the manifest compiler assigns.
pub const FIRST_FREE_SLOT: CPtr = 3;

/// The manifest name of the capability that lets a server write console text (`DebugWrite`),
/// granted by its manifest's `debug = ["console"]`.
pub const DEBUG_CONSOLE_CAP: &str = "debug:console";
/// The manifest name of the capability that lets a server hand defmt records to the kernel's
/// log (`DebugLog`), granted by its manifest's `debug = ["log"]`.
pub const DEBUG_LOG_CAP: &str = "debug:log";
