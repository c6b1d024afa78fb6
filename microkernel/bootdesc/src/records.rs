//! The record types of a boot description. Variant and field order is wire format: append only.

use abi::Rights;
use serde::{Deserialize, Serialize};

/// One record of the boot-description stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record<'a> {
    /// The first record: counts of everything that follows.
    #[serde(borrow)]
    Header(Header<'a>),
    /// A server: a thread with its own CNode and VSpace, loaded from an ELF image.
    #[serde(borrow)]
    Server(Server<'a>),
    /// A synchronous IPC endpoint.
    #[serde(borrow)]
    Endpoint(Endpoint<'a>),
    /// An asynchronous notification word.
    #[serde(borrow)]
    Notification(Notification<'a>),
    /// A physical memory region: a device's registers, or RAM the kernel allocates.
    #[serde(borrow)]
    Region(Region<'a>),
    /// An interrupt delivered to a notification.
    #[serde(borrow)]
    Irq(Irq<'a>),
    /// A capability placed in a server's CNode.
    Cap(Cap),
    /// A region mapped into a server's VSpace.
    Mapping(Mapping),
    /// A virtual machine: a VCPU thread, its own VSpace, RAM preloaded from its segments.
    #[serde(borrow)]
    Vm(Vm<'a>),
    /// Bytes of the payload copied into a VM's RAM at boot and again at every reset.
    VmSegment(VmSegment),
}

/// Counts of every kind of record, and system-wide settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header<'a> {
    /// Must be [`crate::FORMAT_VERSION`].
    pub version: u16,
    /// The system's name (for the boot banner).
    pub name: &'a str,
    /// Number of `Server` records.
    pub servers: u16,
    /// Number of `Endpoint` records.
    pub endpoints: u16,
    /// Number of `Notification` records.
    pub notifications: u16,
    /// Number of `Region` records.
    pub regions: u16,
    /// Number of `Irq` records.
    pub irqs: u16,
    /// Number of `Cap` records.
    pub caps: u32,
    /// Number of `Mapping` records.
    pub mappings: u32,
    /// Number of `Vm` records.
    pub vms: u16,
    /// Number of `VmSegment` records (all VMs together).
    pub vm_segments: u32,
    /// Round-robin time slice within a priority, in microseconds.
    pub timeslice_us: u32,
    /// A test manifest: fault-injection hooks and cycle counting are allowed.
    pub test_system: bool,
}

/// Where an image sits in the payload's image area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// Offset from the start of the image area.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

/// What the kernel does when a server faults, as the supervisor applies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    /// Stay down after the first fault.
    Never,
    /// Restart after every fault.
    Always,
    /// Restart at most `restarts` times within any `within_ms` window; then stay down.
    Budget { restarts: u32, within_ms: u32 },
}

/// The part a server plays in the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerRole {
    /// An ordinary server; its faults go to the supervisor.
    Ordinary,
    /// The supervisor: the fault handler of every other server. If it faults, the kernel stops
    /// the system.
    Supervisor,
}

/// Where the kernel makes a server fault: [`abi::InjectAt`], as a record field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InjectPoint {
    /// [`abi::InjectAt::Receive`] (`inject_fault_at_request`).
    Receive,
    /// [`abi::InjectAt::Reply`] (`inject_fault_after_request`).
    Reply,
    /// [`abi::InjectAt::Call`] (`inject_fault_at_call`).
    Call,
    /// [`abi::InjectAt::Signal`] (`inject_fault_at_signal`).
    Signal,
}

impl InjectPoint {
    /// The kernel's name for it.
    pub const fn to_abi(self) -> abi::InjectAt {
        match self {
            Self::Receive => abi::InjectAt::Receive,
            Self::Reply => abi::InjectAt::Reply,
            Self::Call => abi::InjectAt::Call,
            Self::Signal => abi::InjectAt::Signal,
        }
    }
}

/// A kernel-made fault: the `count`-th time (from 1, counted afresh at every start) the server
/// reaches `at`, it faults there instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedFault {
    /// Where.
    pub at: InjectPoint,
    /// At which occurrence (at least 1).
    pub count: u32,
}

/// A server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server<'a> {
    /// Its manifest name.
    pub name: &'a str,
    /// Its ELF image.
    pub image: ImageRef,
    /// Scheduling priority, 1 (lowest) ..= 254.
    pub priority: u8,
    /// Stack size in bytes (a multiple of the page size).
    pub stack_bytes: u32,
    /// Heap size in bytes (a multiple of the page size; 0 for none).
    pub heap_bytes: u32,
    /// Number of slots of its CNode.
    pub cnode_slots: u16,
    /// What the supervisor does when it faults.
    pub restart: RestartPolicy,
    /// Its role.
    pub role: ServerRole,
    /// Index of the endpoint its faults are sent to (the supervisor's), with this badge.
    pub fault_endpoint: Option<u16>,
    /// The badge of its fault messages (its server index + 1, so 0 is never a server).
    pub fault_badge: u64,
    /// A fault the kernel makes it take (test systems only; the manifest's `inject_fault_*`).
    pub inject_fault: Option<InjectedFault>,
    /// The boot-info blob copied into its boot-info page.
    pub bootinfo: &'a [u8],
}

/// A synchronous endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint<'a> {
    /// Its manifest name.
    pub name: &'a str,
    /// The server that receives on it: when that server restarts, the endpoint's generation
    /// goes up and stale client capabilities get `Restarted`.
    pub server: Option<u16>,
}

/// A notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification<'a> {
    /// Its manifest name.
    pub name: &'a str,
    /// The server it is bound to (manifest `bind = true`): a signal ends that server's receive
    /// on any endpoint (seL4's bound notification).
    pub bound: Option<u16>,
}

/// What kind of memory a region is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegionKind {
    /// Device registers at a fixed physical address, mapped uncached (Device-nGnRE).
    Device { phys_base: u64 },
    /// Normal memory the kernel allocates and zeroes at boot; may be shared between servers.
    Ram,
}

/// A physical memory region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region<'a> {
    /// Its manifest name.
    pub name: &'a str,
    /// Device or RAM.
    pub kind: RegionKind,
    /// Size in bytes (a multiple of the page size).
    pub size: u64,
}

/// An interrupt line delivered to a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Irq<'a> {
    /// Its manifest name.
    pub name: &'a str,
    /// GIC interrupt id (SPI 32..1019 or PPI 16..31).
    pub intid: u32,
    /// Index of the notification it signals.
    pub notification: u16,
    /// The badge it ORs into the notification word.
    pub badge: u64,
}

/// A capability in a server's CNode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cap {
    /// The server whose CNode holds it.
    pub server: u16,
    /// The slot (at least [`abi::FIRST_FREE_SLOT`], below the server's `cnode_slots`).
    pub slot: u16,
    /// What it names.
    pub object: CapObject,
}

/// The object a capability names, with its rights and badge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CapObject {
    /// An endpoint.
    Endpoint {
        index: u16,
        badge: u64,
        rights: Rights,
    },
    /// A notification.
    Notification {
        index: u16,
        badge: u64,
        rights: Rights,
    },
    /// A server's thread: suspend, resume, restart, read state.
    Tcb { server: u16 },
    /// The right to acknowledge an interrupt.
    IrqHandler { irq: u16 },
    /// The right to stop the system.
    SystemControl,
    /// A VM's VCPU thread: suspend, resume, read state (like a server's TCB).
    GuestTcb { vm: u16 },
    /// A VM's VCPU (virtual interrupts, EL1 state).
    Vcpu { vm: u16 },
    /// A VM's stage-2 address space: map, unmap, write-protect.
    GuestVSpace { vm: u16 },
    /// A RAM region as a frame range: carve 4 KiB / 2 MiB frames from it, revoke them. `rights`
    /// (read, write, execute) bound every frame carved from it and every mapping of those.
    Frame { region: u16, rights: Rights },
    /// The right to write text to the kernel console (`DebugWrite`).
    DebugConsole,
    /// The right to hand defmt records to the kernel's log (`DebugLog`).
    DebugLog,
    /// The right to read console input (`DebugInputBind`, `DebugInputRead`).
    DebugInput,
}

/// A region mapped into a server's address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// The server.
    pub server: u16,
    /// The region.
    pub region: u16,
    /// Where, in the server's address space (page aligned, inside the region window).
    pub va: u64,
    /// Writable.
    pub writable: bool,
    /// Executable (never for device regions).
    pub executable: bool,
}

/// A virtual machine with one VCPU. What its RAM holds at boot is given by the `VmSegment`
/// records that name it; the rest of its RAM is zero.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vm<'a> {
    /// Its manifest name.
    pub name: &'a str,
    /// Guest-physical base of its RAM (2 MiB aligned).
    pub ram_base: u64,
    /// The RAM region (kind `Ram`, the same size as the guest's RAM) backing it.
    pub ram_region: u16,
    /// Scheduling priority of the VCPU thread, 1..=254.
    pub priority: u8,
    /// The endpoint its exits are sent to (served by its vmm), and the badge they carry.
    pub exit_endpoint: u16,
    /// The badge of its exit messages.
    pub exit_badge: u64,
    /// Guest-physical address of the first instruction (inside RAM).
    pub entry: u64,
    /// The value of x0 at entry: the device tree's guest-physical address for Linux
    /// (Documentation/arch/arm64/booting.rst), 0 for a guest given none.
    pub x0: u64,
    /// Whether the kernel keeps MMIO markers in its stage 2 (docs/MMIO.md): `false` (the
    /// manifest's `mmio_markers = false`) refuses `VSpaceMapMmio` and keeps every MMIO access on
    /// the slow path through the vmm, which is what the slow-path benchmark measures.
    pub mmio_markers: bool,
}

/// One piece of a VM's initial RAM: `image`'s bytes, copied to guest-physical `ipa`. The
/// compiler turns every guest into these (an ELF's `PT_LOAD` file bytes; a Linux Image, its
/// initrd and its device tree), so the kernel copies bytes and parses no guest format. Records
/// come after every `Vm` record, grouped by VM in VM order, each VM's in ascending, disjoint
/// address order, all inside the VM's RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSegment {
    /// Index of the VM.
    pub vm: u16,
    /// The bytes, in the payload's image area.
    pub image: ImageRef,
    /// Where they go, as the guest sees it.
    pub ipa: u64,
}
