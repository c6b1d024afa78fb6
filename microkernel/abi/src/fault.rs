//! Fault messages: what the kernel sends to a thread's fault endpoint when the thread faults.
//!
//! The message label is the [`FaultKind`], the sender's badge names the faulting server (the
//! manifest compiler badges each server's fault capability with its server index), and four
//! message registers carry [`FaultInfo`].

/// Why a thread stopped.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// A load or store to an address its VSpace does not map, or maps without the right.
    DataAbort = 1,
    /// An instruction fetch from an address its VSpace does not map executable.
    InstructionAbort = 2,
    /// An undefined or trapped instruction.
    UndefinedInstruction = 3,
    /// A misaligned PC or SP.
    Alignment = 4,
    /// A `brk`: the server panicked (userlib's panic handler ends in `brk`).
    Panic = 5,
    /// Anything else the kernel could not attribute (the syndrome is in the message).
    Unknown = 6,
    /// A guest exit (a VCPU thread's "fault"): the message is a [`crate::vm::VmExit`].
    VmExit = 7,
    /// A fault the kernel made on the manifest's request (test systems only, [`InjectAt`]): the
    /// thread stopped at the point named instead of going on. The address word is the count
    /// at which it fired, the syndrome word the [`InjectAt`].
    Injected = 8,
    /// A guest MMIO access the kernel sends straight to a device server from a stage-2 MMIO
    /// marker: the message is a [`crate::mmio::MmioMessage`]. Its value is far above postcard
    /// enum indices, so a device server tells it from its `device-api` requests by label.
    Mmio = 0xF_FFFE,
}

impl FaultKind {
    /// Decodes a label.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            1 => Self::DataAbort,
            2 => Self::InstructionAbort,
            3 => Self::UndefinedInstruction,
            4 => Self::Alignment,
            5 => Self::Panic,
            6 => Self::Unknown,
            7 => Self::VmExit,
            8 => Self::Injected,
            0xF_FFFE => Self::Mmio,
            _ => return None,
        })
    }

    /// A short human name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::DataAbort => "data abort",
            Self::InstructionAbort => "instruction abort",
            Self::UndefinedInstruction => "undefined instruction",
            Self::Alignment => "alignment fault",
            Self::Panic => "panic",
            Self::Unknown => "unknown fault",
            Self::VmExit => "guest exit",
            Self::Injected => "injected fault",
            Self::Mmio => "guest MMIO access",
        }
    }
}

/// Where the kernel makes an injected fault ([`FaultKind::Injected`]): the N-th time the
/// thread reaches this point since it last started, it faults there instead of going on
/// (Hubris's `fault_task` made by the kernel, so no server carries a hook of its own).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectAt {
    /// On taking its N-th message or bound signal through a receive, before running any of
    /// its own code for it: a caller waits on the thread's reply object, and the restart
    /// answers it `Restarted`.
    Receive = 1,
    /// At its N-th reply (a ReplyRecv with a caller waiting), instead of replying: the
    /// request's side effects happened, its answer is lost.
    Reply = 2,
    /// At its N-th Call on an endpoint, instead of calling: between taking a request and
    /// completing it, for a server that calls a peer to serve it.
    Call = 3,
    /// At its N-th signal (Signal, or Send to a notification), instead of signalling: after
    /// the work, before telling anyone.
    Signal = 4,
}

impl InjectAt {
    /// Decodes a raw value.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            1 => Self::Receive,
            2 => Self::Reply,
            3 => Self::Call,
            4 => Self::Signal,
            _ => return None,
        })
    }

    /// What the thread was doing when it fired, as in "injected fault at its receive 40".
    pub const fn name(self) -> &'static str {
        match self {
            Self::Receive => "receive",
            Self::Reply => "reply",
            Self::Call => "call",
            Self::Signal => "signal",
        }
    }
}

/// The details of a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultInfo {
    /// What happened.
    pub kind: FaultKind,
    /// The faulting instruction's address.
    pub pc: u64,
    /// The faulting data or instruction address (FAR), when the architecture reports one.
    pub address: u64,
    /// The raw exception syndrome (ESR_EL2).
    pub syndrome: u64,
}

/// Number of message words of a fault message.
pub const FAULT_MESSAGE_WORDS: usize = 3;

impl FaultInfo {
    /// The message words: `[pc, address, syndrome]`.
    pub const fn to_words(&self) -> [u64; FAULT_MESSAGE_WORDS] {
        [self.pc, self.address, self.syndrome]
    }

    /// Rebuilds a fault from its label and words.
    pub const fn from_message(label: u64, words: [u64; FAULT_MESSAGE_WORDS]) -> Option<Self> {
        match FaultKind::from_raw(label) {
            Some(kind) => Some(Self {
                kind,
                pc: words[0],
                address: words[1],
                syndrome: words[2],
            }),
            None => None,
        }
    }
}
