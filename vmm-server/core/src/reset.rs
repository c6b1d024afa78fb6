//! PSCI SYSTEM_RESET of the VM (docs/VMM.md, "Reset"): what a device's answer to
//! `device_api::Request::Reset` means. The vmm-server carries the reset out in this order:
//!
//! 1. the kernel's first `TcbRestart` step stops the VCPU: the SYSTEM_RESET exit is cancelled,
//!    the VSpace emptied, every frame lent from the VM's RAM revoked, the VCPU's registers put
//!    in their reset state;
//! 2. every device of the VM gets `Request::Reset`, so that no device server acts on the old
//!    boot's rings or registers again; the vmm waits for each answer ([`device_reset`]) before
//!    going on, so a device that was still working for the old boot has finished first, before
//!    the new boot's memory exists;
//! 3. the remaining `TcbRestart` steps rebuild RAM from the image, a bounded piece each;
//! 4. the vGIC model starts over (every line low, which the devices' answers confirmed) and the
//!    mmu-server's RAM slot is set again (dirty-log state dropped);
//! 5. `TcbResume` starts the VCPU at the image's entry point.
//!
//! A device that does not answer as told (its server down, a malformed answer, a line still
//! high) is reported and the reset goes on: the guest's driver resets a device it probes
//! anyway (Linux's virtio core writes 0 to Status first), so a stale device is a loss of
//! hygiene, not of the reboot.

use core::fmt;
use device_api::Response;
use ipc::CallError;

/// Why a device did not confirm its reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceResetError {
    /// It answered something other than `Done` or a low `DoneLine`.
    Answered(Response),
    /// The call failed (server down, restarted without the request being sent again, the
    /// request refused, a malformed reply, a kernel error).
    Call(CallError),
}

impl fmt::Display for DeviceResetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Answered(Response::DoneLine { line: true }) => {
                write!(f, "its interrupt line is still high")
            }
            Self::Answered(response) => write!(f, "it answered {response:?}"),
            Self::Call(error) => write!(f, "{error}"),
        }
    }
}

/// What the answer to `Request::Reset` says: `Ok` when the device is in its reset state,
/// which is `Done` (a device without an interrupt line) or `DoneLine { line: false }`.
pub fn device_reset(answer: Result<Response, CallError>) -> Result<(), DeviceResetError> {
    match answer {
        Ok(Response::Done | Response::DoneLine { line: false }) => Ok(()),
        Ok(other) => Err(DeviceResetError::Answered(other)),
        Err(error) => Err(DeviceResetError::Call(error)),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn done_and_a_low_line_are_a_reset_device() {
        assert_eq!(device_reset(Ok(Response::Done)), Ok(()));
        assert_eq!(device_reset(Ok(Response::DoneLine { line: false })), Ok(()));
    }

    #[test]
    fn any_other_answer_or_a_failed_call_is_reported() {
        for answer in [
            Response::DoneLine { line: true },
            Response::BusError,
            Response::Value(0),
            Response::ValueLine {
                value: 0,
                line: false,
            },
        ] {
            assert_eq!(
                device_reset(Ok(answer)),
                Err(DeviceResetError::Answered(answer)),
                "{answer:?}"
            );
        }
        let down = CallError::ServerDown { generation: 2 };
        assert_eq!(device_reset(Err(down)), Err(DeviceResetError::Call(down)));
    }

    #[test]
    fn the_reasons_read_as_sentences() {
        let high = device_reset(Ok(Response::DoneLine { line: true })).unwrap_err();
        assert_eq!(high.to_string(), "its interrupt line is still high");
        let bus = device_reset(Ok(Response::BusError)).unwrap_err();
        assert_eq!(bus.to_string(), "it answered BusError");
        let down = device_reset(Err(CallError::ServerDown { generation: 2 })).unwrap_err();
        assert_eq!(down.to_string(), "server is down (generation 2)");
    }
}
