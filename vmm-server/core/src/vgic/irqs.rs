//! The per-INTID state and the interrupt-configuration register bank that the distributor
//! (INTIDs 32..) and the redistributor's SGI frame (INTIDs 0..31) share: the same registers at
//! the same offsets (GICv3 spec IHI 0069, 12.9 and 12.11; e.g. `GICD_ISENABLER<n>` at 0x0100 and
//! GICR_ISENABLER0 at SGI_base + 0x0100).

use super::INTIDS;

/// One bit per INTID 0..255, 32 per word as the registers lay them out (word n = INTIDs
/// 32n..32n+31, bit i = INTID 32n + i).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Bits([u32; INTIDS / 32]);

impl Bits {
    pub(super) const fn none() -> Self {
        Self([0; INTIDS / 32])
    }

    pub(super) const fn get(&self, intid: usize) -> bool {
        intid < INTIDS && self.0[intid / 32] & (1 << (intid % 32)) != 0
    }

    pub(super) fn set(&mut self, intid: usize, on: bool) {
        if intid < INTIDS {
            let bit = 1 << (intid % 32);
            if on {
                self.0[intid / 32] |= bit;
            } else {
                self.0[intid / 32] &= !bit;
            }
        }
    }

    /// Word `n`; 0 past the last implemented INTID.
    pub(super) fn word(&self, n: usize) -> u32 {
        self.0.get(n).copied().unwrap_or(0)
    }

    /// Replaces word `n` (ignored past the last implemented INTID).
    pub(super) fn set_word(&mut self, n: usize, value: u32) {
        if let Some(word) = self.0.get_mut(n) {
            *word = value;
        }
    }
}

/// Everything the model knows about the 256 INTIDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Irqs {
    /// IGROUPR: 1 = Group 1.
    pub(super) group1: Bits,
    /// ISENABLER / ICENABLER.
    pub(super) enabled: Bits,
    /// The pending latch: set by an edge, ISPENDR or an SGI; cleared by ICPENDR and by handing
    /// the interrupt to the kernel.
    pub(super) latched: Bits,
    /// The input line of an SPI, as its device drives it (`Vgic::set_line`).
    pub(super) line: Bits,
    /// ICFGR Int_config bit 1: 1 = edge-triggered, 0 = level-sensitive.
    pub(super) edge: Bits,
    /// ISACTIVER / ICACTIVER, as the guest wrote them (see the module comment of `vgic`).
    pub(super) active: Bits,
    /// Handed to the kernel, sitting in a list register.
    pub(super) in_flight: Bits,
    /// In flight and the injection consumed the latch: a failed injection restores it.
    pub(super) consumed_latch: Bits,
    /// In flight with an EOI maintenance request: it ends with `Vgic::completed`.
    pub(super) awaiting_eoi: Bits,
    /// IPRIORITYR, all eight bits.
    pub(super) priority: [u8; INTIDS],
    /// IROUTER Aff2.Aff1.Aff0 (bits 23:0) of the SPIs; unused for INTIDs < 32.
    pub(super) route: [u32; INTIDS],
}

impl Irqs {
    /// The reset state (IHI 0069 12.9/12.11 reset values; UNKNOWN ones chosen as KVM's vgic does
    /// for a GICv3 guest): everything Group 1, disabled, inactive, not pending, priority 0, SGIs
    /// edge (fixed), PPIs and SPIs level, SPIs routed to affinity 0.
    pub(super) const fn new() -> Self {
        let mut edge = Bits::none();
        edge.0[0] = 0xFFFF; // SGIs 0..15 are always edge-triggered.
        Self {
            group1: Bits([u32::MAX; INTIDS / 32]),
            enabled: Bits::none(),
            latched: Bits::none(),
            line: Bits::none(),
            edge,
            active: Bits::none(),
            in_flight: Bits::none(),
            consumed_latch: Bits::none(),
            awaiting_eoi: Bits::none(),
            priority: [0; INTIDS],
            route: [0; INTIDS],
        }
    }

    /// The pending state a read of ISPENDR shows: the latch, a level interrupt's high line,
    /// and whatever is in flight (its real state is in a list register).
    pub(super) fn pending_word(&self, n: usize) -> u32 {
        self.latched.word(n) | (self.line.word(n) & !self.edge.word(n)) | self.in_flight.word(n)
    }

    /// Whether `intid` is pending in the model's own state (not counting in flight).
    pub(super) fn is_pending(&self, intid: usize) -> bool {
        self.latched.get(intid) || (self.line.get(intid) && !self.edge.get(intid))
    }
}

/// The registers of the shared bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BankRegister {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
    Priority,
    Config,
    GroupModifier,
    NonSecureAccess,
}

impl BankRegister {
    /// Bits of state per INTID.
    const fn bits_per_intid(self) -> u64 {
        match self {
            Self::Priority => 8,
            Self::Config | Self::NonSecureAccess => 2,
            _ => 1,
        }
    }
}

/// `(register, offset, bytes in the distributor, bytes in the SGI frame)`. The distributor's
/// arrays cover INTIDs 0..1019 (`IPRIORITYR<n>` for n = 0..254, so 0x7FC is reserved); the SGI
/// frame's cover the 32 private INTIDs.
const BANK: [(BankRegister, u64, u64, u64); 11] = [
    (BankRegister::Group, 0x0080, 0x80, 4),
    (BankRegister::SetEnable, 0x0100, 0x80, 4),
    (BankRegister::ClearEnable, 0x0180, 0x80, 4),
    (BankRegister::SetPending, 0x0200, 0x80, 4),
    (BankRegister::ClearPending, 0x0280, 0x80, 4),
    (BankRegister::SetActive, 0x0300, 0x80, 4),
    (BankRegister::ClearActive, 0x0380, 0x80, 4),
    (BankRegister::Priority, 0x0400, 0x3FC, 0x20),
    (BankRegister::Config, 0x0C00, 0x100, 8),
    (BankRegister::GroupModifier, 0x0D00, 0x80, 4),
    (BankRegister::NonSecureAccess, 0x0E00, 0x100, 4),
];

/// One decoded access to the bank: the register and the first INTID it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BankAccess {
    pub(super) register: BankRegister,
    pub(super) first_intid: usize,
}

/// Decodes `offset` (from the distributor's base, or from the SGI frame's) with `width`: a
/// 32-bit access anywhere in the bank, a byte access to IPRIORITYR too, naturally aligned.
pub(super) fn decode(offset: u64, width: u8, sgi_frame: bool) -> Option<BankAccess> {
    BANK.iter()
        .find_map(|&(register, base, dist_len, sgi_len)| {
            let len = if sgi_frame { sgi_len } else { dist_len };
            let byte = offset.checked_sub(base).filter(|&byte| byte < len)?;
            let width_ok = width == 4 || (width == 1 && register == BankRegister::Priority);
            if !width_ok || byte % u64::from(width) != 0 {
                return None;
            }
            Some(BankAccess {
                register,
                first_intid: usize::try_from(byte * 8 / register.bits_per_intid()).ok()?,
            })
        })
}

impl Irqs {
    /// A read of the bank: RAZ for INTIDs this GIC does not implement.
    pub(super) fn read(&self, access: BankAccess, width: u8) -> u64 {
        let BankAccess {
            register,
            first_intid: first,
        } = access;
        if first >= INTIDS {
            return 0;
        }
        let n = first / 32;
        let value = match register {
            BankRegister::Group => self.group1.word(n),
            BankRegister::SetEnable | BankRegister::ClearEnable => self.enabled.word(n),
            BankRegister::SetPending | BankRegister::ClearPending => self.pending_word(n),
            BankRegister::SetActive | BankRegister::ClearActive => self.active.word(n),
            BankRegister::Priority => (0..usize::from(width)).fold(0, |word, i| {
                word | u32::from(self.priority[first + i]) << (8 * i)
            }),
            // Int_config[1] of each of the 16 INTIDs; Int_config[0] is RES0.
            BankRegister::Config => (0..16).fold(0, |word, i| {
                word | u32::from(self.edge.get(first + i)) << (2 * i + 1)
            }),
            // RAZ/WI with GICD_CTLR.DS = 1 (GICD_IGRPMODR<n>, GICD_NSACR<n>).
            BankRegister::GroupModifier | BankRegister::NonSecureAccess => 0,
        };
        u64::from(value)
    }

    /// A write to the bank: WI for INTIDs this GIC does not implement.
    pub(super) fn write(&mut self, access: BankAccess, width: u8, value: u64) {
        let BankAccess {
            register,
            first_intid: first,
        } = access;
        if first >= INTIDS {
            return;
        }
        let n = first / 32;
        let bits = value as u32; // every bank register is 32 bits wide (or one byte of one)
        match register {
            BankRegister::Group => self.group1.set_word(n, bits),
            BankRegister::SetEnable => self.enabled.set_word(n, self.enabled.word(n) | bits),
            BankRegister::ClearEnable => self.enabled.set_word(n, self.enabled.word(n) & !bits),
            BankRegister::SetPending => self.latched.set_word(n, self.latched.word(n) | bits),
            BankRegister::ClearPending => self.latched.set_word(n, self.latched.word(n) & !bits),
            BankRegister::SetActive => self.active.set_word(n, self.active.word(n) | bits),
            BankRegister::ClearActive => self.active.set_word(n, self.active.word(n) & !bits),
            BankRegister::Priority => {
                for i in 0..usize::from(width) {
                    self.priority[first + i] = (bits >> (8 * i)) as u8;
                }
            }
            BankRegister::Config => {
                for i in 0..16 {
                    // SGIs are edge-triggered, read-only (GICR_ICFGR0).
                    if first + i >= 16 {
                        self.edge.set(first + i, bits & (1 << (2 * i + 1)) != 0);
                    }
                }
            }
            BankRegister::GroupModifier | BankRegister::NonSecureAccess => {}
        }
    }
}
