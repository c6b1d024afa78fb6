//! Error codes of system calls and invocations.
//!
//! The kernel answers a failed call with [`MessageInfo::error`](crate::MessageInfo::error): the
//! code in the label, the details in message registers (which argument, which bound). Every code
//! is appended, never renumbered.

/// A typed kernel error, with the details that say what was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// The slot named by the argument holds no capability, or is outside the CNode.
    InvalidCapability { slot: u64 },
    /// The capability names an object of the wrong kind for this operation.
    WrongObjectType { slot: u64 },
    /// The capability lacks a right the operation needs.
    InsufficientRights { slot: u64 },
    /// The argument at `index` is not acceptable.
    InvalidArgument { index: u64 },
    /// The argument at `index` is outside `min..=max`.
    RangeError { index: u64, min: u64, max: u64 },
    /// The invocation label is not an operation of this object.
    IllegalOperation { label: u64 },
    /// The server behind this endpoint restarted; this capability now names `generation`.
    /// Operations marked idempotent may be retried at once.
    Restarted { generation: u64 },
    /// The server behind this endpoint is down for good (restart policy or budget exhausted).
    ServerDown { generation: u64 },
    /// The destination slot is occupied.
    DeleteFirst { slot: u64 },
    /// `x7` held no system call.
    InvalidSyscall { number: u64 },
    /// A receive was cancelled because the object it waited on went away.
    Cancelled,
    /// Every list register of the VCPU holds an interrupt the guest has not completed: the
    /// caller keeps the interrupt queued and injects it after a maintenance exit.
    NoFreeListRegister,
    /// The object is in the middle of a change that the operation must not overlap: a VM's
    /// memory-map update bracket is open (`VSpaceMmioUpdate`), so no MMIO marker is installed.
    Busy,
}

impl KernelError {
    /// The code that goes in the message-info label.
    pub const fn code(&self) -> u64 {
        match self {
            Self::InvalidCapability { .. } => 1,
            Self::WrongObjectType { .. } => 2,
            Self::InsufficientRights { .. } => 3,
            Self::InvalidArgument { .. } => 4,
            Self::RangeError { .. } => 5,
            Self::IllegalOperation { .. } => 6,
            Self::Restarted { .. } => 7,
            Self::ServerDown { .. } => 8,
            Self::DeleteFirst { .. } => 9,
            Self::InvalidSyscall { .. } => 10,
            Self::Cancelled => 11,
            Self::NoFreeListRegister => 12,
            Self::Busy => 13,
        }
    }

    /// The detail words, in message-register order.
    pub const fn details(&self) -> ([u64; 3], usize) {
        match *self {
            Self::InvalidCapability { slot }
            | Self::WrongObjectType { slot }
            | Self::InsufficientRights { slot }
            | Self::DeleteFirst { slot } => ([slot, 0, 0], 1),
            Self::InvalidArgument { index } => ([index, 0, 0], 1),
            Self::RangeError { index, min, max } => ([index, min, max], 3),
            Self::IllegalOperation { label } => ([label, 0, 0], 1),
            Self::Restarted { generation } | Self::ServerDown { generation } => {
                ([generation, 0, 0], 1)
            }
            Self::InvalidSyscall { number } => ([number, 0, 0], 1),
            Self::Cancelled | Self::NoFreeListRegister | Self::Busy => ([0, 0, 0], 0),
        }
    }

    /// Rebuilds an error from a code and its detail words; `None` for an unknown code.
    pub const fn decode(code: u64, mr: [u64; 3]) -> Option<Self> {
        Some(match code {
            1 => Self::InvalidCapability { slot: mr[0] },
            2 => Self::WrongObjectType { slot: mr[0] },
            3 => Self::InsufficientRights { slot: mr[0] },
            4 => Self::InvalidArgument { index: mr[0] },
            5 => Self::RangeError {
                index: mr[0],
                min: mr[1],
                max: mr[2],
            },
            6 => Self::IllegalOperation { label: mr[0] },
            7 => Self::Restarted { generation: mr[0] },
            8 => Self::ServerDown { generation: mr[0] },
            9 => Self::DeleteFirst { slot: mr[0] },
            10 => Self::InvalidSyscall { number: mr[0] },
            11 => Self::Cancelled,
            12 => Self::NoFreeListRegister,
            13 => Self::Busy,
            _ => return None,
        })
    }
}

impl core::fmt::Display for KernelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::InvalidCapability { slot } => write!(f, "slot {slot} holds no capability"),
            Self::WrongObjectType { slot } => write!(f, "slot {slot} names the wrong object type"),
            Self::InsufficientRights { slot } => {
                write!(f, "capability in slot {slot} lacks a right")
            }
            Self::InvalidArgument { index } => write!(f, "argument {index} is invalid"),
            Self::RangeError { index, min, max } => {
                write!(f, "argument {index} is outside {min}..={max}")
            }
            Self::IllegalOperation { label } => write!(f, "operation {label} is not supported"),
            Self::Restarted { generation } => {
                write!(f, "server restarted (generation {generation})")
            }
            Self::ServerDown { generation } => {
                write!(f, "server is down (generation {generation})")
            }
            Self::DeleteFirst { slot } => write!(f, "slot {slot} is occupied"),
            Self::InvalidSyscall { number } => write!(f, "no system call {number}"),
            Self::Cancelled => write!(f, "the operation was cancelled"),
            Self::NoFreeListRegister => write!(f, "no free list register"),
            Self::Busy => write!(f, "the object is being updated"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_round_trips_through_its_code() {
        let all = [
            KernelError::InvalidCapability { slot: 9 },
            KernelError::WrongObjectType { slot: 3 },
            KernelError::InsufficientRights { slot: 4 },
            KernelError::InvalidArgument { index: 2 },
            KernelError::RangeError {
                index: 1,
                min: 0,
                max: 63,
            },
            KernelError::IllegalOperation { label: 77 },
            KernelError::Restarted { generation: 1 },
            KernelError::ServerDown { generation: 3 },
            KernelError::DeleteFirst { slot: 5 },
            KernelError::InvalidSyscall { number: 99 },
            KernelError::Cancelled,
            KernelError::NoFreeListRegister,
            KernelError::Busy,
        ];
        for error in all {
            let (details, _) = error.details();
            assert_eq!(KernelError::decode(error.code(), details), Some(error));
        }
        assert_eq!(KernelError::decode(0, [0; 3]), None);
    }
}
