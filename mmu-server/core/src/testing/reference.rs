//! The reference walker: a straight transcription of Intel SDM Vol. 3 §4.5 (4-level paging),
//! §4.6 (access rights) and §4.7 (error code), sharing no code with the engine.
//!
//! It serves twice: over guest memory it is the ground truth the shadow is compared with, and
//! over the shadow tables (with the host's controls) it models what the processor does when the
//! guest runs on them. It reads one entry per level through a closure and sets no A/D bits.

use alloc::vec::Vec;

use crate::shadow::{AccessKind, CpuMode, GuestCpu, MemAccess};

/// The control bits a walk obeys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Controls {
    /// CR0.PG (false: linear = physical, 32 bits).
    pub paging: bool,
    /// CR0.WP.
    pub wp: bool,
    /// CR4.SMEP.
    pub smep: bool,
    /// CR4.SMAP.
    pub smap: bool,
    /// EFER.NXE.
    pub nxe: bool,
    /// MAXPHYADDR.
    pub maxphyaddr: u8,
    /// 1 GiB pages.
    pub gbpages: bool,
}

impl Controls {
    /// The guest's controls.
    pub fn guest(mode: &CpuMode, cpu: GuestCpu) -> Controls {
        Controls {
            paging: mode.cr0_pg,
            wp: mode.cr0_wp,
            smep: mode.cr4_smep,
            smap: mode.cr4_smap,
            nxe: mode.efer_nxe,
            maxphyaddr: cpu.maxphyaddr,
            gbpages: cpu.gbpages,
        }
    }

    /// What the processor runs with while the guest is on shadow tables: paging, WP and NXE
    /// always on; SMEP and SMAP the guest's when it pages, off otherwise.
    pub fn host_for(mode: &CpuMode) -> Controls {
        Controls {
            paging: true,
            wp: true,
            smep: mode.cr0_pg && mode.cr4_smep,
            smap: mode.cr0_pg && mode.cr4_smap,
            nxe: true,
            maxphyaddr: 52,
            gbpages: true,
        }
    }
}

/// A successful translation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Physical address.
    pub pa: u64,
    /// Level of the leaf (0 with paging off).
    pub leaf_level: u8,
    /// Physical addresses of the entries used, top level first.
    pub entries: Vec<u64>,
}

fn bit(value: u64, n: u32) -> bool {
    (value >> n) & 1 == 1
}

fn any_bit(value: u64, lo: u32, hi_inclusive: u32) -> bool {
    (lo..=hi_inclusive).any(|n| bit(value, n))
}

/// Translate `va` for `access` with the tables at `root`, reading entries with `read`.
/// `Err` carries the page-fault error code.
pub fn walk(
    read: &dyn Fn(u64) -> u64,
    root: u64,
    va: u64,
    c: &Controls,
    access: MemAccess,
) -> Result<Translation, u32> {
    if !c.paging {
        return Ok(Translation {
            pa: va & 0xffff_ffff,
            leaf_level: 0,
            entries: Vec::new(),
        });
    }
    let write = access.kind == AccessKind::Write;
    let fetch = access.kind == AccessKind::Fetch;
    let mut code = 0u32;
    if write {
        code |= 2;
    }
    if access.user {
        code |= 4;
    }
    if fetch && (c.nxe || c.smep) {
        code |= 16;
    }
    let mut entries = Vec::new();
    let mut table = root & 0x000f_ffff_ffff_f000;
    let (mut rw, mut us, mut xd) = (true, true, false);
    for level in [4u32, 3, 2, 1] {
        let shift = 12 + 9 * (level - 1);
        let addr = table + ((va >> shift) & 511) * 8;
        let e = read(addr);
        entries.push(addr);
        if !bit(e, 0) {
            return Err(code);
        }
        let ps = level > 1 && bit(e, 7);
        let mut reserved = c.maxphyaddr < 52 && any_bit(e, c.maxphyaddr as u32, 51);
        reserved |= !c.nxe && bit(e, 63);
        reserved |= level == 4 && bit(e, 7);
        reserved |= level == 3 && ps && (!c.gbpages || any_bit(e, 13, 29));
        reserved |= level == 2 && ps && any_bit(e, 13, 20);
        if reserved {
            return Err(code | 1 | 8);
        }
        rw &= bit(e, 1);
        us &= bit(e, 2);
        xd |= c.nxe && bit(e, 63);
        if level == 1 || ps {
            let allowed = if access.user {
                us && (!write || rw) && (!fetch || !xd)
            } else if fetch {
                // SMEP: no supervisor fetch from a user page.
                let smep_blocks = c.smep && us;
                !xd && !smep_blocks
            } else {
                let smap_blocks = c.smap && us && !access.smap_override;
                !smap_blocks && (!write || rw || !c.wp)
            };
            if !allowed {
                return Err(code | 1);
            }
            let frame = ((e & ((1 << 52) - 1)) >> shift) << shift;
            return Ok(Translation {
                pa: frame | (va & ((1 << shift) - 1)),
                leaf_level: level as u8,
                entries,
            });
        }
        table = e & 0x000f_ffff_ffff_f000;
    }
    // Level 1 always returns above.
    Err(code)
}
