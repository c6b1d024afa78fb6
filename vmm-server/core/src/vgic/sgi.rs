//! Decoding a write to ICC_SGI1R_EL1 (GICv3 spec IHI 0069, 12.2 "ICC_SGI1R_EL1, Interrupt
//! Controller Software Generated Interrupt Group 1 Register"; ICC_SGI0R_EL1 and ICC_ASGI1R_EL1
//! share the layout):
//!
//! ```text
//!  63  56 55  48 47 44 43 41  40  39  32 31 28 27  24 23  16 15        0
//! ┌──────┬──────┬─────┬─────┬───┬──────┬─────┬──────┬──────┬────────────┐
//! │ RES0 │ Aff3 │ RS  │RES0 │IRM│ Aff2 │RES0 │INTID │ Aff1 │ TargetList │
//! └──────┴──────┴─────┴─────┴───┴──────┴─────┴──────┴──────┴────────────┘
//! IRM = 0: the PEs Aff3.Aff2.Aff1.<16 RS + n> for each TargetList bit n.
//! IRM = 1: every PE but the writer.
//! ```

/// The fields of an SGI generation register write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SgiRequest {
    /// The SGI, 0..15.
    pub intid: u8,
    /// Bit n: the PE with Aff0 = 16 * `range_selector` + n.
    pub target_list: u16,
    pub aff1: u8,
    pub aff2: u8,
    pub aff3: u8,
    /// RS: which 16 Aff0 values `target_list` names.
    pub range_selector: u8,
    /// IRM: every PE except the writer.
    pub all_but_self: bool,
}

impl SgiRequest {
    /// Decodes the written value; RES0 bits are ignored.
    pub const fn decode(value: u64) -> Self {
        Self {
            intid: ((value >> 24) & 0xF) as u8,
            target_list: value as u16,
            aff1: (value >> 16) as u8,
            aff2: (value >> 32) as u8,
            aff3: (value >> 48) as u8,
            range_selector: ((value >> 44) & 0xF) as u8,
            all_but_self: value & (1 << 40) != 0,
        }
    }

    /// Whether the PE with affinity 0.0.0.0, the writer itself and our only VCPU, is a target.
    /// RS != 0 names Aff0 values 16 and up, which no PE has (with ICC_CTLR_EL1.RSS = 0 such a
    /// write is CONSTRAINED UNPREDICTABLE, "ignored" being one permitted choice); IRM = 1
    /// excludes the writer, so on one PE it targets nobody.
    pub const fn targets_affinity_zero(&self) -> bool {
        !self.all_but_self
            && self.aff3 == 0
            && self.aff2 == 0
            && self.aff1 == 0
            && self.range_selector == 0
            && self.target_list & 1 != 0
    }
}
