//! The vmm-server's logic: everything between "a guest exit arrived" and "this is the reply",
//! with no IPC and no hardware, so every decision is host-tested.
//!
//! - [`syndrome`]: ESR_EL2 decoding (data/instruction aborts, MMIO access shape, load values).
//! - [`sysreg`]: trapped MSR/MRS: debug, PMU and physical-timer registers RAZ/WI.
//! - [`hypercall`] and [`psci`]: SMCCC dispatch of docs/GUEST-ABI.md's calls.
//! - [`devices`]: IPA windows → device-server endpoints.
//! - [`mmu`]: plans ↔ the mmu-server's protocol (`mmu_api`).
//! - [`exit`]: the routing decision ([`exit::plan`] and the `after_*` steps).
//! - [`counters`] and [`trace`]: the summary line and a ring of recent exits.
//! - [`layout`]: the guest-physical map of the emulated devices.
//! - [`vgic`]: the virtual GICv3's distributor and redistributor, and what to inject next.
//! - [`reset`]: PSCI SYSTEM_RESET's steps, and what a device's answer to its reset means.
//! - [`saved`]: what the vmm keeps in its state page, so that a restarted vmm takes over.
//!
//! The server (`vmm-server`) is a thin loop that carries out the plans over IPC.
#![no_std]
#![forbid(unsafe_code)]

pub mod counters;
pub mod devices;
pub mod exit;
pub mod hypercall;
pub mod layout;
pub mod mmu;
pub mod psci;
pub mod ratelimit;
pub mod reset;
pub mod saved;
pub mod syndrome;
pub mod sysreg;
pub mod trace;
pub mod vgic;

pub use counters::ExitCounters;
pub use devices::{Device, DeviceTable};
pub use exit::{
    ExitPlan, MmioPlan, MmuAnswer, MmuPlan, Resume, Stage2Answer, Stage2Fault, after_mmio,
    after_mmu, after_stage2, boot_count_reply, plan, reset_loop_reply,
};
