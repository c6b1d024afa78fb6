//! mmu-server core: the memory-management logic of the MMU server, host-tested.
//!
//! Pure logic with no heap and no unsafe code; the server binary and the x86 VMX port adapt it to
//! IPC and to real page tables. Each architecture's translation scheme is a top-level module:
//!
//! * [`shadow`]: x86-64 shadow paging (guest tables × memory slots → shadow tables), used by the
//!   VMX port when EPT is off. docs/DESIGN.md, "The five KVM lessons" (three of them live here);
//!   docs/SHADOW.md.
//!
//! The `test-utils` feature adds [`testing`]: in-memory fakes of guest memory and the shadow-table
//! store, an independent reference walker and a CPU model, for tests and benchmarks.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "test-utils"))]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod shadow;
pub mod stage2;

#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
