//! QEMU's `-d in_asm,exec,nochain` log, line by line → the block executions that ran, each
//! with how many of its instructions ran.
//!
//! `in_asm` logs every translated block's instructions once, when it is translated, and
//! `exec,nochain` logs every execution of a block (`Trace 0: <host ptr> [<cs_base>/<pc>/<flags>/
//! <cflags>] <symbol>`). A block execution counts the instructions of its translation, found by
//! the host pointer QEMU prints (unique per live translation; a translation is bound to it by
//! the execution line that follows it), else by the latest translation of its pc. Two of QEMU's
//! own lines correct that, so an execution is held back until the next one is logged:
//! `Stopped execution of TB chain before ...` means the block just logged did not run at all
//! (an interrupt or the instruction budget was due), `cpu_io_recompile: rewound execution of
//! TB to <pc>` means it ran only up to the device access at `<pc>`, which runs again in a block
//! of its own. Translations are only ever appended, so their indices stay valid.

use std::collections::HashMap;

/// One translated block, from `in_asm`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Translation {
    /// Its first instruction's address.
    pub(super) pc: u64,
    /// (address, encoding) of every instruction, in order.
    pub(super) instructions: Vec<(u64, u32)>,
}

/// One logged block execution.
#[derive(Clone, Copy, Debug)]
pub(super) struct Execution {
    pub(super) pc: u64,
    /// The index of its translation in [`Parser::translations`], when known.
    pub(super) translation: Option<usize>,
    /// How many of the translation's instructions ran.
    pub(super) count: usize,
    /// Whether QEMU's flags for it say EL2 (see [`runs_at_el2`]).
    pub(super) el2: bool,
}

/// The state machine over the trace's lines.
#[derive(Default)]
pub(super) struct Parser {
    translations: Vec<Translation>,
    by_host: HashMap<u64, usize>,
    by_pc: HashMap<u64, usize>,
    /// The `in_asm` block being read.
    reading: Option<Translation>,
    /// The latest translation, until the execution line that follows binds it to its host
    /// pointer.
    fresh: Option<usize>,
    /// The latest execution, not yet handed out (QEMU may still say it did not run, or not
    /// completely).
    pending: Option<Execution>,
}

impl Parser {
    /// Every translation read so far, indexed by [`Execution::translation`].
    pub(super) fn translations(&self) -> &[Translation] {
        &self.translations
    }

    /// Takes one line of the log (with or without its line end); returns the block execution
    /// it shows to have run, if any.
    pub(super) fn line(&mut self, line: &str) -> Option<Execution> {
        let line = line.trim_end();
        if let Some(reading) = &mut self.reading {
            if let Some(instruction) = parse_instruction(line) {
                reading.instructions.push(instruction);
                return None;
            }
            self.end_translation();
        }
        if let Some(rest) = line.strip_prefix("Trace ") {
            let (host, pc, flags) = parse_execution(rest)?;
            return self.execution(host, pc, runs_at_el2(flags));
        } else if line.starts_with("IN:") {
            self.reading = Some(Translation::default());
        } else if let Some(rest) = line.strip_prefix("Stopped execution of TB chain before ") {
            // The block just logged was not entered.
            if let Some((_, pc)) = parse_stopped(rest)
                && self.pending.is_some_and(|pending| pending.pc == pc)
            {
                self.pending = None;
            }
        } else if let Some(rest) =
            line.strip_prefix("cpu_io_recompile: rewound execution of TB to ")
        {
            // The block just logged ran up to (not including) the device access at `pc`.
            if let (Some(pc), Some(pending)) = (parse_hex(rest.trim()), &mut self.pending)
                && let Some(index) = pending.translation
            {
                let ran = self.translations[index]
                    .instructions
                    .iter()
                    .take_while(|(address, _)| *address != pc)
                    .count();
                pending.count = pending.count.min(ran);
            }
        }
        None
    }

    /// Ends the log: returns the last block execution, if it ran.
    pub(super) fn finish(&mut self) -> Option<Execution> {
        self.end_translation();
        self.pending.take()
    }

    fn end_translation(&mut self) {
        if let Some(translation) = self.reading.take()
            && let Some(&(pc, _)) = translation.instructions.first()
        {
            let index = self.translations.len();
            self.translations.push(Translation { pc, ..translation });
            self.by_pc.insert(pc, index);
            self.fresh = Some(index);
        }
    }

    /// A block execution is logged: the one before it ran.
    fn execution(&mut self, host: u64, pc: u64, el2: bool) -> Option<Execution> {
        let ran = self.pending.take();
        if let Some(index) = self.fresh.take()
            && self.translations[index].pc == pc
        {
            self.by_host.insert(host, index);
        }
        let translation = self
            .by_host
            .get(&host)
            .filter(|&&index| self.translations[index].pc == pc)
            .or_else(|| self.by_pc.get(&pc))
            .copied();
        let count = translation.map_or(0, |index| self.translations[index].instructions.len());
        self.pending = Some(Execution {
            pc,
            translation,
            count,
            el2,
        });
        ran
    }
}

/// `0x40100004:  d5384253  mrs      x19, currentel` → (address, encoding).
fn parse_instruction(line: &str) -> Option<(u64, u32)> {
    let (address, rest) = line.strip_prefix("0x")?.split_once(':')?;
    let address = u64::from_str_radix(address, 16).ok()?;
    let word = rest.split_whitespace().next()?;
    let word = u32::from_str_radix(word, 16).ok()?;
    Some((address, word))
}

/// `0: 0x7fc960000240 [0000000000000000/0000000040100004/00000061/ff020200] sym` (after
/// "Trace ") → (host pointer, pc, flags).
fn parse_execution(rest: &str) -> Option<(u64, u64, u32)> {
    let (_cpu, rest) = rest.split_once(": ")?;
    let (host, rest) = rest.split_once(" [")?;
    let (fields, _symbol) = rest.split_once(']')?;
    let mut fields = fields.split('/');
    let _cs_base = fields.next()?;
    let pc = u64::from_str_radix(fields.next()?, 16).ok()?;
    let flags = u32::from_str_radix(fields.next()?, 16).ok()?;
    Some((parse_hex(host)?, pc, flags))
}

/// Whether a block's TB flags say it runs at EL2: QEMU 7.2's `TBFLAG_ANY.MMUIDX` (bits 4..8)
/// is then `E20_2`, `E20_2_PAN` or `E2` (3, 5, 6). Only a cross-check of the classification by
/// address, which does not depend on QEMU's internals.
fn runs_at_el2(flags: u32) -> bool {
    matches!((flags >> 4) & 0xf, 3 | 5 | 6)
}

/// `0x7fc9600aa280 [0000000000203d00] sym` (after "Stopped execution of TB chain before ") →
/// (host pointer, pc).
fn parse_stopped(rest: &str) -> Option<(u64, u64)> {
    let (host, rest) = rest.split_once(" [")?;
    let (pc, _) = rest.split_once(']')?;
    Some((parse_hex(host)?, u64::from_str_radix(pc, 16).ok()?))
}

/// Hexadecimal with or without `0x`.
fn parse_hex(text: &str) -> Option<u64> {
    u64::from_str_radix(text.strip_prefix("0x").unwrap_or(text), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{TRACE, episodes, run};
    use super::*;

    #[test]
    fn parses_the_line_shapes_of_qemu_7_2() {
        assert_eq!(
            parse_instruction("0x40100004:  d5384253  mrs      x19, currentel"),
            Some((0x4010_0004, 0xd538_4253))
        );
        assert_eq!(parse_instruction(""), None);
        assert_eq!(parse_instruction("IN: kernel_main"), None);
        assert_eq!(
            parse_execution(
                "0: 0x7fc960000240 [0000000000000000/0000000040100004/00000061/ff020200] "
            ),
            Some((0x7fc9_6000_0240, 0x4010_0004, 0x61))
        );
        assert!(runs_at_el2(0x61));
        assert!(runs_at_el2(0x261));
        assert!(!runs_at_el2(0x101));
        assert!(!runs_at_el2(0x121));
        assert_eq!(
            parse_stopped("0x7fc9600aa280 [0000000000203d00] "),
            Some((0x7fc9_600a_a280, 0x20_3d00))
        );
    }

    #[test]
    fn counts_blocks_by_translation_and_drops_the_stopped_one() {
        let report = run(TRACE);
        // Executed: boot 2; client 2, kernel 3+2; server 2, kernel 3+4; client 2, kernel 3+2;
        // server 2, kernel 3 + (4 stopped, then 4); client 1 (budget), then 2.
        assert_eq!(report.blocks, 15);
        assert_eq!(report.unknown_blocks, 0);
        assert_eq!(report.misplaced_blocks, 0);
        assert_eq!(report.kernel_instructions, 2 + 5 + 7 + 5 + 7);
        assert_eq!(report.user_instructions, 2 + 2 + 2 + 2 + 1 + 2);
        assert_eq!(report.unlabelled_instructions, 2);
    }

    #[test]
    fn a_block_rewound_for_io_counts_up_to_the_access_only() {
        let trace = "\
IN: 
0x00200100:  d2800020  movz     x0, #0x1
0x00200104:  d4000001  svc      #0

Trace 0: 0x10 [0000000000000000/0000000000200100/00000101/ff020200] 
IN: 
0x40100800:  d10443ff  sub      sp, sp, #0x110
0x40100804:  b9400000  ldr      w0, [x0]
0x40100808:  d69f03e0  eret

Trace 0: 0x20 [0000000000000000/0000000040100800/00000061/ff020200] 
cpu_io_recompile: rewound execution of TB to 0000000040100804
IN: 
0x40100804:  b9400000  ldr      w0, [x0]

Trace 0: 0x30 [0000000000000000/0000000040100804/00000061/ff038201] 
IN: 
0x40100808:  d69f03e0  eret

Trace 0: 0x40 [0000000000000000/0000000040100808/00000061/ff020200] 
Trace 0: 0x10 [0000000000000000/0000000000200100/00000101/ff020200] 
";
        let report = run(trace);
        assert_eq!(episodes(&report), vec![("ipc_bench::round_trip", vec![3])]);
    }
}
