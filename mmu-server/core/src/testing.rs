//! Test support (feature `test-utils`): in-memory fakes of what the VMX port provides, an
//! independent reference walker, and a model of the CPU running on the shadow tables.
//!
//! * [`FakeGuestMemory`]: memory slots over a sparse host memory, with counters for slot searches
//!   and guest-memory reads (to prove the MMIO fast path uses neither), and a controllable
//!   slot generation.
//! * [`FakeTableStore`]: a pool of shadow tables at known host addresses.
//! * [`reference`](mod@reference): a straight SDM Vol. 3 §4.5/§4.6 walk, written separately from the engine's
//!   walker and permission code; also used to model the CPU walking the *shadow* tables.
//! * [`Machine`]: guest memory, store and engine together, with `access` running one guest
//!   access the way hardware and the port would: walk the shadow, fault to the engine, retry.

mod machine;
mod memory;
pub mod reference;
mod store;

pub use machine::{AccessResult, Machine};
pub use memory::{FakeGuestMemory, FakeSlot};
pub use store::FakeTableStore;
