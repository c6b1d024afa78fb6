//! Hypercalls: `hvc #0` with the SMC Calling Convention (Arm DEN 0028, SMC64/HVC64 fast
//! calls), the PSCI functions (Arm DEN 0022) and the vendor calls of docs/GUEST-ABI.md.
//!
//! Function id in `w0`, arguments in `x1..x6`, results in `x0..x3`. SMCCC v1.0 lets the callee
//! corrupt `x4..x17`, so the wrapper declares them clobbered rather than rely on v1.1.
//!
//! "No hypervisor" has two faces and both become [`HvcError::NoHypervisor`]: a hypervisor that
//! does not know the id answers `NOT_SUPPORTED` (-1); a machine with no EL2 makes `hvc`
//! UNDEFINED (ARM ARM, the HVC instruction: UNDEFINED when EL2 is not implemented). Plain QEMU
//! 7.2 without `virtualization=on` is the first kind after all: its PSCI emulation catches
//! every `hvc` and answers `NOT_SUPPORTED` to the vendor ids. The second kind (an EL2-less CPU
//! without such emulation, or a hypervisor that injects an undefined instruction) is handled
//! too: the wrapper arms [`Expect::UndefinedHvc`] around the `hvc`, so that exception returns
//! here with `x0 = -1` instead of ending the run.

use core::arch::asm;

use crate::exception::{self, Expect};

/// SMCCC `NOT_SUPPORTED`.
const NOT_SUPPORTED: i64 = -1;

/// PSCI_VERSION: `x0` = major << 16 | minor.
pub const PSCI_VERSION: u32 = 0x8400_0000;
/// PSCI SYSTEM_OFF; our hypervisor takes the verdict in `x1`.
pub const PSCI_SYSTEM_OFF: u32 = 0x8400_0008;
/// Starts dirty logging over `[x1, x1 + x2)`.
pub const HV_DIRTY_LOG_ENABLE: u32 = 0xC600_0010;
/// Returns and clears the dirty bitmap of `[x1, x1 + x2)` in `x1..x4`.
pub const HV_DIRTY_LOG_GET_AND_CLEAR: u32 = 0xC600_0011;
/// Stops dirty logging over `[x1, x1 + x2)` (the range an enable gave) and frees its window.
pub const HV_DIRTY_LOG_DISABLE: u32 = 0xC600_0017;
/// Our vendor status NO_WINDOW: HV_DIRTY_LOG_ENABLE of a new range while every dirty-log
/// window the VM has is in use (docs/GUEST-ABI.md).
pub const NO_WINDOW: i64 = -4;
/// Returns the stage-2 fault counters in `x1..x3`.
pub const HV_STAGE2_FAULTS: u32 = 0xC600_0012;
/// Vendor hypervisor service: how many times this VM was reset.
pub const HV_BOOT_COUNT: u32 = 0xC600_0013;
/// Vendor hypervisor service: makes a virtual SError pending for this VCPU.
pub const HV_INJECT_SERROR: u32 = 0xC600_0014;
/// Vendor hypervisor service: how many resets the system's manifest asks of this guest.
pub const HV_RESET_LOOP: u32 = 0xC600_0015;
/// Vendor hypervisor service: the RAM page at offset `x2` also at IPA `x1` (0 removes it).
pub const HV_RAM_ALIAS: u32 = 0xC600_0016;
/// PSCI SYSTEM_RESET.
pub const PSCI_SYSTEM_RESET: u32 = 0x8400_0009;

/// Why a hypercall gave no result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HvcError {
    /// There is no hypervisor that implements this call; how we learnt it is in the field.
    NoHypervisor(Absence),
    /// The hypervisor answered with this (negative, not `NOT_SUPPORTED`) status.
    Failed(i64),
}

/// How the absence of a hypervisor call showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Absence {
    /// `x0 = NOT_SUPPORTED`.
    NotSupported,
    /// `hvc` raised an undefined-instruction exception (no EL2).
    Undefined,
}

impl Absence {
    /// A phrase for the console.
    pub fn describe(self) -> &'static str {
        match self {
            Absence::NotSupported => "hypercall not supported",
            Absence::Undefined => "hvc is undefined",
        }
    }
}

/// Makes the call `function(args)` and returns `x0..x4` (GET_AND_CLEAR's last bitmap word is in
/// `x4`), or the [`Absence`] when the call was undefined or answered `NOT_SUPPORTED`.
/// Another negative `x0` is left for the caller to judge (PSCI and the vendor calls differ).
fn call(function: u32, args: [u64; 3]) -> Result<[u64; 5], Absence> {
    let [mut x1, mut x2, mut x3] = args;
    let x4;
    let mut x0 = u64::from(function);
    exception::expect(Expect::UndefinedHvc);
    // SAFETY: `hvc #0` enters the hypervisor (or QEMU's PSCI, or raises an undefined-instruction
    // exception that `guest_handle_exception` turns into a return with x0 = -1 because of the
    // expectation armed above). Not `nomem`: that handler writes the exception module's
    // atomics. Every register the callee may change under SMCCC v1.0 is an output or clobbered.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") x0,
            inout("x1") x1,
            inout("x2") x2,
            inout("x3") x3,
            inout("x4") 0u64 => x4,
            inout("x5") 0u64 => _,
            inout("x6") 0u64 => _,
            out("x7") _, out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _, out("x16") _,
            out("x17") _,
            options(nostack),
        );
    }
    if exception::take_undefined_hvc() {
        return Err(Absence::Undefined);
    }
    if x0 as i64 == NOT_SUPPORTED {
        return Err(Absence::NotSupported);
    }
    Ok([x0, x1, x2, x3, x4])
}

/// A vendor call: `x0 = 0` on success, results in `x1..x4`.
fn vendor_call(function: u32, args: [u64; 3]) -> Result<[u64; 4], HvcError> {
    let [status, x1, x2, x3, x4] = call(function, args).map_err(HvcError::NoHypervisor)?;
    match status as i64 {
        0 => Ok([x1, x2, x3, x4]),
        error => Err(HvcError::Failed(error)),
    }
}

/// PSCI_VERSION: `(major, minor)`.
pub fn psci_version() -> Result<(u16, u16), HvcError> {
    let [version, ..] = call(PSCI_VERSION, [0; 3]).map_err(HvcError::NoHypervisor)?;
    if (version as i64) < 0 {
        return Err(HvcError::Failed(version as i64));
    }
    Ok(((version >> 16) as u16, version as u16))
}

/// PSCI SYSTEM_OFF with `verdict` in `x1`. Our hypervisor ends the VM with that exit status;
/// QEMU's PSCI ignores `x1` and exits 0. If the call returns (no PSCI at all), the CPU waits
/// forever so that a test runner's timeout reports it.
pub fn system_off(verdict: u64) -> ! {
    let _ = call(PSCI_SYSTEM_OFF, [verdict, 0, 0]);
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// PSCI SYSTEM_RESET: the VM starts again from its image. Returns only if the call failed.
pub fn system_reset() -> Result<(), HvcError> {
    let [status, ..] = call(PSCI_SYSTEM_RESET, [0; 3]).map_err(HvcError::NoHypervisor)?;
    Err(HvcError::Failed(status as i64))
}

/// HV_BOOT_COUNT: resets of this VM so far (0 on the first boot).
pub fn boot_count() -> Result<u64, HvcError> {
    vendor_call(HV_BOOT_COUNT, [0; 3]).map(|[count, ..]| count)
}

/// HV_RESET_LOOP: how many resets the manifest asks of this guest before its checks (0 when
/// not asked).
pub fn reset_loop() -> Result<u64, HvcError> {
    vendor_call(HV_RESET_LOOP, [0; 3]).map(|[resets, ..]| resets)
}

/// HV_INJECT_SERROR: a virtual SError becomes pending for this VCPU, taken once PSTATE.A is
/// clear (at once if it already is, so callers mask SErrors first).
pub fn inject_serror() -> Result<(), HvcError> {
    vendor_call(HV_INJECT_SERROR, [0; 3]).map(|_| ())
}

/// HV_RAM_ALIAS: the page of RAM at byte `offset` (from the RAM's base) also appears at `ipa`
/// (0: the alias is removed).
pub fn ram_alias(ipa: u64, offset: u64) -> Result<(), HvcError> {
    vendor_call(HV_RAM_ALIAS, [ipa, offset, 0]).map(|_| ())
}

/// HV_DIRTY_LOG_ENABLE over `[ipa, ipa + len)`: write-protects the range, starts clean.
pub fn dirty_log_enable(ipa: u64, len: u64) -> Result<(), HvcError> {
    vendor_call(HV_DIRTY_LOG_ENABLE, [ipa, len, 0]).map(|_| ())
}

/// HV_DIRTY_LOG_GET_AND_CLEAR over `[ipa, ipa + len)`: the bitmap of pages written since the
/// enable or the last get (bit *n* of word *w* = page `64w + n`), then cleared.
pub fn dirty_log_get_and_clear(ipa: u64, len: u64) -> Result<[u64; 4], HvcError> {
    vendor_call(HV_DIRTY_LOG_GET_AND_CLEAR, [ipa, len, 0])
}

/// HV_DIRTY_LOG_DISABLE over `[ipa, ipa + len)`: logging stops there and its window is free
/// again; a range that is not logged is already done.
pub fn dirty_log_disable(ipa: u64, len: u64) -> Result<(), HvcError> {
    vendor_call(HV_DIRTY_LOG_DISABLE, [ipa, len, 0]).map(|_| ())
}

/// The stage-2 fault counters of HV_STAGE2_FAULTS.
#[derive(Clone, Copy, Debug)]
pub struct Stage2Faults {
    /// Faults resolved by mapping a 4 KiB page.
    pub pages: u64,
    /// Faults resolved by mapping a 2 MiB block.
    pub blocks: u64,
    /// Permission faults (dirty logging).
    pub permission: u64,
}

/// HV_STAGE2_FAULTS.
pub fn stage2_faults() -> Result<Stage2Faults, HvcError> {
    let [pages, blocks, permission, _] = vendor_call(HV_STAGE2_FAULTS, [0; 3])?;
    Ok(Stage2Faults {
        pages,
        blocks,
        permission,
    })
}
