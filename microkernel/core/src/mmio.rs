//! Stage-2 MMIO markers and the kernel's MMIO fast path (KVM's MMIO sptes, in capability form;
//! docs/MMIO.md, docs/DESIGN.md "MMIO caching with generations").
//!
//! The first guest access to a device page takes the slow path (guest → kernel → vmm →
//! mmu-server "not memory" → vmm → device server). The mmu-server then asks the kernel
//! (`VSpaceMapMmio`) to leave an *invalid* stage-2 descriptor there whose software bits say
//! "MMIO, route r, generation g". The next access faults on it again; the kernel reads the
//! descriptor and, if the marker is current, sends the access straight to route r's device
//! server as a call from the VCPU thread ([`decide`], `System::mmio_fastpath`).
//!
//! # Marker layout
//!
//! An invalid descriptor (bit 0 clear) is ignored by the walker in every other bit (ARM ARM
//! D8.3, "Translation table descriptor formats": bits [63:1] of an invalid descriptor are
//! IGNORED), so a marker always faults, whatever else it holds. As KVM documents its MMIO spte
//! in `arch/x86/kvm/mmu/spte.h`:
//!
//! ```text
//!  63                                      24 23          16 15                        0
//! +------------------------------------------+--------------+---------------------------+
//! |           generation (40 bits)           | route (8)    |  tag 0x4D4E  (bit 0 = 0)  |
//! +------------------------------------------+--------------+---------------------------+
//! ```
//!
//! | bits | field | why |
//! |------|-------|-----|
//! | [15:0] | [`TAG`] `0x4D4E` | bit 0 clear: invalid at every level, the hardware faults. No other invalid descriptor the kernel writes carries it: unmapping and break-before-make write 0, new tables are zeroed. Sixteen bits, so no stray value passes by chance |
//! | [23:16] | route index | into the VM's route table ([`abi::mmio::MAX_ROUTES`] = 16 used; 8 bits leave room) |
//! | [63:24] | generation, low [`GENERATION_BITS`] = 40 bits | a marker matches only while it equals the VM's live generation; 2^40 changes before a wrap, and a wrap zaps every marker |
//!
//! Markers live in level-3 entries only (one page each). Nothing else in the kernel treats
//! them specially: the prejudgement installs over any invalid entry (a marker included, so a
//! mapping simply replaces it), unmap and write-protect skip invalid entries, and a freed
//! table takes its markers with it.
//!
//! # Generations
//!
//! [`MmioState`] holds the VM's generation, a count bumped by every memory-map change: a
//! route set or cleared, the end of an mmu-server update bracket (`VSpaceMmioUpdate`), and the
//! restart of a server behind one of the VM's routes. While a bracket is open the state is
//! *updating*: no marker matches and none is installed, so a marker made from a memory map in
//! flux can never exist (KVM's "memslot update in-progress" bit, which is never stored in an
//! spte). When a bump brings the stored bits back to 0 the generation has wrapped and markers
//! 2^40 changes old could match again: every marker is zapped first, in bounded steps
//! ([`crate::stage2::marker::zap_markers`]), and none matches or is installed until the zap
//! has gone through the whole IPA space.
//!
//! A route also remembers the generation of its endpoint capability when it was set; a route
//! whose endpoint's server has restarted since (or is down) never matches again until the vmm
//! sets it anew, so a marker can never reach a dead or restarted server.

use crate::cap::Cap;
use crate::stage2::{IPA_LIMIT, Level, PAGE_SIZE};
use crate::system::System;
use crate::{EndpointId, NotificationId, TcbId};
use abi::mmio::{MAX_ROUTES, MmioMessage, UPDATE_BEGIN, UPDATE_END};
use abi::{InvocationLabel, KernelError, Rights};

/// Bits [15:0] of every marker.
pub const TAG: u64 = 0x4D4E;
/// The bits [`TAG`] occupies.
pub const TAG_MASK: u64 = 0xFFFF;
/// Where the route index starts.
pub const ROUTE_SHIFT: u32 = 16;
/// The route index field's mask (after shifting).
pub const ROUTE_MASK: u64 = 0xFF;
/// Where the generation starts.
pub const GENERATION_SHIFT: u32 = 24;
/// Generation bits a marker stores.
pub const GENERATION_BITS: u32 = 40;
/// The stored generation's mask (after shifting).
pub const GENERATION_MASK: u64 = (1 << GENERATION_BITS) - 1;

// The tag must make the descriptor invalid (bit 0 clear) and must not be 0.
const _: () = assert!(TAG & 1 == 0 && TAG != 0 && TAG & !TAG_MASK == 0);
const _: () = assert!(GENERATION_SHIFT + GENERATION_BITS == 64);
const _: () = assert!(MAX_ROUTES as u64 <= ROUTE_MASK + 1);

/// A decoded marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    /// Index into the VM's route table.
    pub route: u8,
    /// The low [`GENERATION_BITS`] of the VM's generation when it was installed.
    pub generation: u64,
}

/// The marker descriptor for `route` at `generation` (only its low [`GENERATION_BITS`] are
/// stored).
pub const fn encode(route: u8, generation: u64) -> u64 {
    ((generation & GENERATION_MASK) << GENERATION_SHIFT) | ((route as u64) << ROUTE_SHIFT) | TAG
}

/// The marker in `descriptor`, if it is one (never for a valid descriptor or 0).
pub const fn decode(descriptor: u64) -> Option<Marker> {
    if !is_marker(descriptor) {
        return None;
    }
    Some(Marker {
        route: ((descriptor >> ROUTE_SHIFT) & ROUTE_MASK) as u8,
        generation: descriptor >> GENERATION_SHIFT,
    })
}

/// Whether `descriptor` is a marker of any generation.
pub const fn is_marker(descriptor: u64) -> bool {
    descriptor & TAG_MASK == TAG
}

/// A write at one offset of a route that signals a notification instead of calling the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Doorbell {
    /// Offset from the route's base (4-byte aligned, inside the route).
    pub offset: u64,
    /// The notification signalled.
    pub notification: NotificationId,
    /// The badge it is signalled with (the notification capability's).
    pub badge: u64,
}

/// Where the accesses to one IPA range go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioRoute {
    /// First IPA (page aligned).
    pub base: u64,
    /// Bytes (a non-zero multiple of the page size).
    pub size: u64,
    /// The device server's endpoint.
    pub endpoint: EndpointId,
    /// The badge the device server sees (the endpoint capability's).
    pub badge: u64,
    /// The endpoint generation the capability named when the route was set: the route matches
    /// only while the endpoint is still at it.
    pub endpoint_generation: u32,
    /// A write-only doorbell register, if the vmm set one.
    pub doorbell: Option<Doorbell>,
}

impl MmioRoute {
    /// Whether `ipa` is inside the route.
    pub const fn covers(&self, ipa: u64) -> bool {
        ipa >= self.base && ipa - self.base < self.size
    }

    const fn overlaps(&self, base: u64, size: u64) -> bool {
        base < self.base + self.size && self.base < base + size
    }
}

/// One VM's MMIO routes and marker generation (indexed like `System::vspaces`: VM index =
/// VCPU index = guest VSpace index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioState {
    routes: [Option<MmioRoute>; MAX_ROUTES],
    /// Memory-map changes so far (only the low [`GENERATION_BITS`] go into markers).
    generation: u64,
    /// An update bracket is open.
    updating: bool,
    /// After a wrap: the IPA from which markers are still to be zapped.
    zap_from: Option<u64>,
    /// Markers may be installed (the manifest turns them off for the slow-path benchmark).
    pub markers_enabled: bool,
}

impl Default for MmioState {
    fn default() -> Self {
        Self::new(true)
    }
}

impl MmioState {
    /// No routes, generation 0, markers on or off as the manifest says.
    pub const fn new(markers_enabled: bool) -> Self {
        Self {
            routes: [None; MAX_ROUTES],
            generation: 0,
            updating: false,
            zap_from: None,
            markers_enabled,
        }
    }

    /// The same state `generation` changes on (tests reach a wrap without 2^40 bumps).
    #[cfg(test)]
    pub(crate) const fn with_generation(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }

    /// Route `index`, if set.
    pub fn route(&self, index: usize) -> Option<&MmioRoute> {
        self.routes.get(index).and_then(Option::as_ref)
    }

    /// The set routes with their indices.
    pub fn routes(&self) -> impl Iterator<Item = (usize, &MmioRoute)> {
        self.routes
            .iter()
            .enumerate()
            .filter_map(|(index, route)| route.as_ref().map(|route| (index, route)))
    }

    /// The index of the route covering `ipa`.
    pub fn route_covering(&self, ipa: u64) -> Option<usize> {
        self.routes()
            .find(|(_, route)| route.covers(ipa))
            .map(|(index, _)| index)
    }

    /// How many memory-map changes the VM has had.
    pub const fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether an update bracket is open.
    pub const fn updating(&self) -> bool {
        self.updating
    }

    /// Where a pending zap resumes, if one is pending.
    pub const fn zap_pending(&self) -> Option<u64> {
        self.zap_from
    }

    /// The generation bits a marker must hold to match now, or `None` while no marker may
    /// match (an update bracket open, or a zap after a wrap still under way).
    pub const fn live_generation(&self) -> Option<u64> {
        if self.updating || self.zap_from.is_some() {
            None
        } else {
            Some(self.generation & GENERATION_MASK)
        }
    }

    /// Whether `marker` matches the live generation.
    pub const fn is_current(&self, marker: Marker) -> bool {
        match self.live_generation() {
            Some(live) => marker.generation == live,
            None => false,
        }
    }

    /// A memory-map change: a fresh generation. When the stored bits wrap to 0, every marker
    /// must go before any matches again: a zap from IPA 0 starts (or starts over).
    pub fn bump(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation & GENERATION_MASK == 0 {
            self.zap_from = Some(0);
        }
    }

    /// Records how far a zap got (`next` from [`crate::stage2::marker::zap_markers`]); at the
    /// end of the IPA space the zap is over and markers match again. Returns whether a zap is
    /// still pending.
    pub fn zapped(&mut self, next: u64) -> bool {
        if self.zap_from.is_some() {
            self.zap_from = (next < IPA_LIMIT).then_some(next);
        }
        self.zap_from.is_some()
    }

    /// Checks a route for slot `index` over `base .. base + size` (`VcpuSetMmioRoute`'s MR0,
    /// MR2, MR3). The route it replaces is not counted as an overlap.
    pub fn check_route(&self, index: u64, base: u64, size: u64) -> Result<(), KernelError> {
        check_index(index)?;
        if !base.is_multiple_of(PAGE_SIZE) || base >= IPA_LIMIT {
            return Err(KernelError::InvalidArgument { index: 2 });
        }
        if size == 0
            || !size.is_multiple_of(PAGE_SIZE)
            || base.checked_add(size).is_none_or(|end| end > IPA_LIMIT)
        {
            return Err(KernelError::InvalidArgument { index: 3 });
        }
        let clash = self
            .routes()
            .any(|(other, route)| other as u64 != index && route.overlaps(base, size));
        if clash {
            return Err(KernelError::InvalidArgument { index: 2 });
        }
        Ok(())
    }

    /// Checks a doorbell at `offset` of route `index` (`VcpuSetDoorbell`'s MR0, MR1).
    pub fn check_doorbell(&self, index: u64, offset: u64) -> Result<(), KernelError> {
        check_index(index)?;
        let route = self
            .route(index as usize)
            .ok_or(KernelError::InvalidArgument { index: 0 })?;
        if offset >= route.size || !offset.is_multiple_of(4) {
            return Err(KernelError::InvalidArgument { index: 1 });
        }
        Ok(())
    }

    /// Sets route `index` (checked with [`Self::check_route`]): a memory-map change.
    pub fn set_route(&mut self, index: usize, route: MmioRoute) {
        if let Some(slot) = self.routes.get_mut(index) {
            *slot = Some(route);
        }
        self.bump();
    }

    /// Empties route `index`: a memory-map change.
    pub fn clear_route(&mut self, index: usize) {
        if let Some(slot) = self.routes.get_mut(index) {
            *slot = None;
        }
        self.bump();
    }

    /// Gives route `index` its doorbell (checked with [`Self::check_doorbell`]). Not a
    /// memory-map change: markers name the route, and the doorbell is read from it live.
    pub fn set_doorbell(&mut self, index: usize, doorbell: Doorbell) {
        if let Some(Some(route)) = self.routes.get_mut(index) {
            route.doorbell = Some(doorbell);
        }
    }

    /// Opens an update bracket (again, if one is open).
    pub fn begin_update(&mut self) {
        self.updating = true;
    }

    /// Closes the update bracket with a fresh generation. Returns false (nothing changed)
    /// when none was open.
    pub fn end_update(&mut self) -> bool {
        if !self.updating {
            return false;
        }
        self.updating = false;
        self.bump();
        true
    }
}

fn check_index(index: u64) -> Result<(), KernelError> {
    if index >= MAX_ROUTES as u64 {
        return Err(KernelError::RangeError {
            index: 0,
            min: 0,
            max: MAX_ROUTES as u64 - 1,
        });
    }
    Ok(())
}

/// Fields of ESR_EL2 for a data abort taken from a lower exception level (ARM ARM D17.2.37,
/// "ISS encoding for an exception from a Data Abort").
pub mod esr {
    /// EC, bits [31:26].
    pub const EC_SHIFT: u32 = 26;
    /// EC 0x24: data abort from a lower exception level.
    pub const EC_DATA_ABORT_LOWER: u64 = 0x24;
    /// IL: a 32-bit instruction (the only kind an AArch64 guest has).
    pub const IL: u64 = 1 << 25;
    /// ISV: bits [23:14] hold a valid instruction syndrome.
    pub const ISV: u64 = 1 << 24;
    /// SAS, bits [23:22]: access size, log2 bytes.
    pub const SAS_SHIFT: u32 = 22;
    /// SSE: a load sign-extends.
    pub const SSE: u64 = 1 << 21;
    /// SRT, bits [20:16]: the register transferred (31 = xzr / wzr).
    pub const SRT_SHIFT: u32 = 16;
    /// SF: the register is 64-bit (else 32-bit: the upper half of Xt is cleared).
    pub const SF: u64 = 1 << 15;
    /// AR: acquire/release semantics.
    pub const AR: u64 = 1 << 14;
    /// VNCR (FEAT_NV2): the access was to the VNCR page; never ours.
    pub const VNCR: u64 = 1 << 13;
    /// FnV: FAR is not valid.
    pub const FNV: u64 = 1 << 10;
    /// EA: external abort type.
    pub const EA: u64 = 1 << 9;
    /// CM: a cache maintenance or address translation instruction.
    pub const CM: u64 = 1 << 8;
    /// S1PTW: the fault was on the guest's stage-1 table walk.
    pub const S1PTW: u64 = 1 << 7;
    /// WnR: a write.
    pub const WNR: u64 = 1 << 6;
    /// DFSC, bits [5:0].
    pub const DFSC_MASK: u64 = 0x3F;
    /// DFSC 0b000111: translation fault, level 3 (where markers live).
    pub const DFSC_TRANSLATION_L3: u64 = 0b00_0111;
}

/// A guest load or store, decoded from its syndrome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// The register transferred (31 = xzr / wzr).
    pub register: u8,
    /// Bytes: 1, 2, 4 or 8.
    pub width: u8,
    /// A load sign-extends.
    pub sign_extend: bool,
    /// The register is 64-bit.
    pub sixty_four: bool,
    /// A store.
    pub write: bool,
}

/// The access behind a stage-2 data-abort syndrome, if the fast path may take it: a data abort
/// from the guest (EC 0x24), a 32-bit instruction, a valid instruction syndrome (ISV: a single
/// load or store of one general-purpose register, no writeback), FAR valid, no external abort,
/// no cache maintenance, not on a stage-1 walk, not VNCR, and a level-3 translation fault.
/// Anything else is the slow path's. AR is accepted: the device server completes the access
/// before the guest runs its next instruction, which is all acquire / release asks of it.
pub const fn decode_syndrome(syndrome: u64) -> Option<MmioAccess> {
    use esr::*;
    let rejected = VNCR | FNV | EA | CM | S1PTW;
    if syndrome >> EC_SHIFT != EC_DATA_ABORT_LOWER
        || syndrome & IL == 0
        || syndrome & ISV == 0
        || syndrome & rejected != 0
        || syndrome & DFSC_MASK != DFSC_TRANSLATION_L3
    {
        return None;
    }
    Some(MmioAccess {
        register: ((syndrome >> SRT_SHIFT) & 0x1F) as u8,
        width: 1 << ((syndrome >> SAS_SHIFT) & 0b11),
        sign_extend: syndrome & SSE != 0,
        sixty_four: syndrome & SF != 0,
        write: syndrome & WNR != 0,
    })
}

/// The low `width` bytes of `value`.
pub const fn truncate(value: u64, width: u8) -> u64 {
    if width >= 8 {
        value
    } else {
        value & ((1 << (width as u32 * 8)) - 1)
    }
}

/// What a load writes to its register: the value's low `width` bytes, sign-extended when SSE
/// says so, and cut to 32 bits for a W register (KVM's `kvm_handle_mmio_return`).
pub const fn load_result(access: MmioAccess, value: u64) -> u64 {
    let mut result = truncate(value, access.width);
    // For 8 bytes this is the identity, as it should be.
    if access.sign_extend {
        let sign = 1 << (access.width as u32 * 8 - 1);
        result = (result ^ sign).wrapping_sub(sign);
    }
    if !access.sixty_four {
        result &= 0xFFFF_FFFF;
    }
    result
}

/// What the kernel knows of an endpoint when it decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointStatus {
    /// Its server's restart count.
    pub generation: u32,
    /// Its server is down for good.
    pub down: bool,
}

/// What to do with a guest's stage-2 data abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The slow path: an exit to the vmm. Nothing was decided that changed anything.
    Fallback,
    /// Call the device server: `endpoint` with `badge`, label [`abi::FaultKind::Mmio`],
    /// `message`; its reply completes `access`.
    Call {
        endpoint: EndpointId,
        badge: u64,
        access: MmioAccess,
        message: MmioMessage,
    },
    /// A doorbell write: signal `notification` with `badge` and step the guest over the store.
    Doorbell {
        notification: NotificationId,
        badge: u64,
    },
}

/// The fast-path decision (pure). `syndrome` is ESR_EL2; `ipa` the faulting IPA (HPFAR_EL2's
/// page with FAR's low 12 bits, valid for the translation faults accepted here); `found` the
/// level and descriptor where the stage-2 walk for `ipa` stopped
/// ([`crate::stage2::marker::descriptor_at`]); `endpoint` the live status of an endpoint;
/// `registers` the guest's x0..x30 (a store's value is read from them).
///
/// The call goes ahead only with a current marker at level 3, a route that covers the whole
/// access, and a route endpoint that is up and still at the generation the route was set with;
/// anything else falls back.
pub fn decide(
    syndrome: u64,
    ipa: u64,
    found: (Level, u64),
    state: &MmioState,
    endpoint: impl Fn(EndpointId) -> Option<EndpointStatus>,
    registers: &[u64],
) -> Decision {
    let Some(access) = decode_syndrome(syndrome) else {
        return Decision::Fallback;
    };
    let (level, descriptor) = found;
    let Some(marker) = decode(descriptor) else {
        return Decision::Fallback;
    };
    if !state.markers_enabled || level != Level::Three || !state.is_current(marker) {
        return Decision::Fallback;
    }
    let Some(route) = state.route(usize::from(marker.route)) else {
        return Decision::Fallback;
    };
    let offset = ipa.wrapping_sub(route.base);
    if !route.covers(ipa) || route.size - offset < u64::from(access.width) {
        return Decision::Fallback;
    }
    match endpoint(route.endpoint) {
        Some(status) if !status.down && status.generation == route.endpoint_generation => {}
        _ => return Decision::Fallback,
    }
    let value = if access.write {
        let source = registers
            .get(usize::from(access.register))
            .copied()
            .filter(|_| access.register < 31)
            .unwrap_or(0);
        truncate(source, access.width)
    } else {
        0
    };
    if let Some(doorbell) = route.doorbell
        && access.write
        && doorbell.offset == offset
    {
        return Decision::Doorbell {
            notification: doorbell.notification,
            badge: doorbell.badge,
        };
    }
    Decision::Call {
        endpoint: route.endpoint,
        badge: route.badge,
        access,
        message: MmioMessage {
            offset,
            width: access.width,
            value,
            write: access.write,
        },
    }
}

/// A VCPU thread's outstanding fast-path MMIO call (`Tcb::mmio`): the message sent and the
/// access its reply completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioCall {
    /// The decoded load or store.
    pub access: MmioAccess,
    /// What the device server receives.
    pub message: MmioMessage,
}

/// A validated MMIO invocation. `vm` is the VM index (VCPU index = guest VSpace index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioInvocation {
    /// `VcpuSetMmioRoute`.
    SetRoute {
        vm: u16,
        index: usize,
        route: MmioRoute,
    },
    /// `VcpuClearMmioRoute`.
    ClearRoute { vm: u16, index: usize },
    /// `VcpuSetDoorbell`.
    SetDoorbell {
        vm: u16,
        index: usize,
        doorbell: Doorbell,
    },
    /// `VSpaceMapMmio` for the page holding `ipa` (route `route` covers it).
    MapMarker { vm: u16, ipa: u64, route: u8 },
    /// `VSpaceMmioUpdate`.
    Update { vm: u16, begin: bool },
}

/// Whether `operation` is one of the MMIO invocations.
pub const fn is_mmio_operation(operation: InvocationLabel) -> bool {
    matches!(
        operation,
        InvocationLabel::VcpuSetMmioRoute
            | InvocationLabel::VcpuClearMmioRoute
            | InvocationLabel::VcpuSetDoorbell
            | InvocationLabel::VSpaceMapMmio
            | InvocationLabel::VSpaceMmioUpdate
    )
}

/// Decodes an MMIO invocation of a VCPU or VSpace capability (pure: the system is only read).
pub fn decode_invocation(
    system: &System<'_>,
    caller: TcbId,
    cap: Cap,
    operation: InvocationLabel,
    args: [u64; 4],
) -> Result<MmioInvocation, KernelError> {
    let label = operation as u64;
    let (vm, on_vcpu) = match cap {
        Cap::Vcpu { vcpu } => (vcpu, true),
        Cap::VSpace { vspace } => (vspace, false),
        _ => return Err(KernelError::IllegalOperation { label }),
    };
    let state = system
        .mmio
        .get(usize::from(vm))
        .ok_or(KernelError::IllegalOperation { label })?;
    match (operation, on_vcpu) {
        (InvocationLabel::VcpuSetMmioRoute, true) => {
            state.check_route(args[0], args[2], args[3])?;
            let (endpoint, badge, endpoint_generation) = match system.lookup(caller, args[1]) {
                Ok(Cap::Endpoint {
                    ep,
                    badge,
                    rights,
                    generation,
                }) if rights.contains(Rights::WRITE) => (ep, badge, generation),
                Ok(Cap::Endpoint { .. }) => {
                    return Err(KernelError::InsufficientRights { slot: args[1] });
                }
                Ok(_) => return Err(KernelError::WrongObjectType { slot: args[1] }),
                Err(_) => return Err(KernelError::InvalidCapability { slot: args[1] }),
            };
            Ok(MmioInvocation::SetRoute {
                vm,
                index: args[0] as usize,
                route: MmioRoute {
                    base: args[2],
                    size: args[3],
                    endpoint,
                    badge,
                    endpoint_generation,
                    doorbell: None,
                },
            })
        }
        (InvocationLabel::VcpuClearMmioRoute, true) => {
            check_index(args[0])?;
            Ok(MmioInvocation::ClearRoute {
                vm,
                index: args[0] as usize,
            })
        }
        (InvocationLabel::VcpuSetDoorbell, true) => {
            state.check_doorbell(args[0], args[1])?;
            let (notification, badge) = match system.lookup(caller, args[2]) {
                Ok(Cap::Notification {
                    ntfn,
                    badge,
                    rights,
                }) if rights.contains(Rights::WRITE) => (ntfn, badge),
                Ok(Cap::Notification { .. }) => {
                    return Err(KernelError::InsufficientRights { slot: args[2] });
                }
                Ok(_) => return Err(KernelError::WrongObjectType { slot: args[2] }),
                Err(_) => return Err(KernelError::InvalidCapability { slot: args[2] }),
            };
            Ok(MmioInvocation::SetDoorbell {
                vm,
                index: args[0] as usize,
                doorbell: Doorbell {
                    offset: args[1],
                    notification,
                    badge,
                },
            })
        }
        (InvocationLabel::VSpaceMapMmio, false) => {
            let ipa = args[0];
            if !state.markers_enabled {
                return Err(KernelError::IllegalOperation { label });
            }
            if state.updating() {
                return Err(KernelError::Busy);
            }
            let route = state
                .route_covering(ipa)
                .ok_or(KernelError::InvalidArgument { index: 0 })?;
            // The walk may need a level-2 and a level-3 table, as a mapping does.
            if system
                .vspaces
                .get(usize::from(vm))
                .is_none_or(|v| v.free_tables < crate::memory::TABLES_PER_MAPPING)
            {
                return Err(KernelError::IllegalOperation { label });
            }
            Ok(MmioInvocation::MapMarker {
                vm,
                ipa: ipa & !(PAGE_SIZE - 1),
                route: route as u8,
            })
        }
        (InvocationLabel::VSpaceMmioUpdate, false) => match args[0] {
            UPDATE_BEGIN => Ok(MmioInvocation::Update { vm, begin: true }),
            UPDATE_END if state.updating() => Ok(MmioInvocation::Update { vm, begin: false }),
            UPDATE_END => Err(KernelError::InvalidArgument { index: 0 }),
            _ => Err(KernelError::RangeError {
                index: 0,
                min: 0,
                max: 1,
            }),
        },
        _ => Err(KernelError::IllegalOperation { label }),
    }
}

#[cfg(test)]
mod tests;
