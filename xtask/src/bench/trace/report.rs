//! The printed report of a trace: totals, a table per label and kernel path, figure lines.
//!
//! Every figure line has the shape `cargo xtask bench` collects (see
//! [`figures`](super::super::figures)): `trace <label><suffix> kernel: <N> instructions`, one
//! per shown kernel path of a shown label (the suffix tells the label's paths apart), or one
//! for the label when none of its paths is shown; N is the lower median of the episodes'
//! kernel instructions, a count that occurred.

use std::time::Duration;

use super::episodes::{KernelPath, Label, MIN_EPISODES, median};

/// What a trace came to.
#[derive(Debug, Default)]
pub(super) struct Report {
    /// The image's name.
    pub(super) title: String,
    pub(super) labels: Vec<Label>,
    pub(super) blocks: u64,
    pub(super) kernel_instructions: u64,
    pub(super) user_instructions: u64,
    /// Block executions whose translation was never logged (counted as 0 instructions).
    pub(super) unknown_blocks: u64,
    /// Block executions whose address says kernel but whose flags say not EL2, or the other
    /// way round (a guest at the kernel's addresses, or another QEMU's flag layout).
    pub(super) misplaced_blocks: u64,
    /// Kernel instructions before the first user block (boot) and after the last (shutdown).
    pub(super) unlabelled_instructions: u64,
    pub(super) trace_bytes: u64,
    pub(super) run_time: Duration,
    pub(super) parse_time: Duration,
}

impl Report {
    /// The figure lines: per shown label, one per shown kernel path (the label's median when
    /// no path was frequent enough).
    pub(super) fn figures(&self) -> Vec<(String, u64)> {
        let mut figures = Vec::new();
        for label in self.labels.iter().filter(|label| label.shown) {
            let mut paths: Vec<&KernelPath> =
                label.paths.iter().filter(|path| path.shown).collect();
            paths.sort_by_key(|path| median(&path.episodes));
            if paths.is_empty() {
                figures.push((label.name.clone(), median(&label.episodes)));
            }
            for path in paths {
                figures.push((
                    format!("{}{}", label.name, path.suffix),
                    median(&path.episodes),
                ));
            }
        }
        figures
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "trace {}: kernel instructions per system call (QEMU -icount shift=0 exec trace)\n\
             \x20 An episode runs from the exception entry after a user's svc to the eret that \
             leaves the kernel, both\n\
             \x20 included. It is labelled by the user function that trapped and split by the \
             kernel path it took;\n\
             \x20 a path is named by kernel functions it visits and the label's other paths do \
             not. Timer interrupts\n\
             \x20 count as episodes of whatever they interrupted: rare paths, left out (like \
             any label or path seen\n\
             \x20 < {MIN_EPISODES} times) but included in a label's median/min/max.",
            self.title
        )?;
        writeln!(
            f,
            "  {} blocks, {} kernel + {} user instructions ({} kernel outside episodes: boot, \
             shutdown);\n  {} MB of trace, QEMU ran {:.1} s, reading it took {:.1} s",
            self.blocks,
            self.kernel_instructions,
            self.user_instructions,
            self.unlabelled_instructions,
            self.trace_bytes / 1_000_000,
            self.run_time.as_secs_f64(),
            self.parse_time.as_secs_f64()
        )?;
        if self.unknown_blocks > 0 {
            writeln!(
                f,
                "  warning: {} block executions had no logged translation (counted as 0)",
                self.unknown_blocks
            )?;
        }
        if self.misplaced_blocks > 0 {
            writeln!(
                f,
                "  warning: {} block executions ran at another exception level than their \
                 address says (kernel = inside the kernel ELF's segments = EL2)",
                self.misplaced_blocks
            )?;
        }
        let shown: Vec<&Label> = self.labels.iter().filter(|label| label.shown).collect();
        if shown.is_empty() {
            return writeln!(f, "  (no label with {MIN_EPISODES} episodes)");
        }
        writeln!(f, "  episodes  median     min     max  label / kernel path")?;
        let row = |f: &mut std::fmt::Formatter<'_>, values: &[u64], name: &str| {
            writeln!(
                f,
                "  {:>8}  {:>6}  {:>6}  {:>6}  {name}",
                values.len(),
                median(values),
                values.iter().min().copied().unwrap_or(0),
                values.iter().max().copied().unwrap_or(0),
            )
        };
        for label in &shown {
            row(f, &label.episodes, &label.name)?;
            let mut paths: Vec<&KernelPath> =
                label.paths.iter().filter(|path| path.shown).collect();
            paths.sort_by_key(|path| median(&path.episodes));
            let single = paths.len() == 1;
            for path in paths {
                let name = match path.suffix.strip_prefix(' ') {
                    _ if single => "one kernel path".to_string(),
                    None => "base path (no kernel function the others lack)".to_string(),
                    Some(suffix) => suffix.to_string(),
                };
                row(f, &path.episodes, &format!("  {name}"))?;
            }
        }
        for (name, instructions) in self.figures() {
            writeln!(f, "trace {name} kernel: {instructions} instructions")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{TRACE, run};

    #[test]
    fn report_lines_are_figures_bench_accepts() {
        let mut report = run(TRACE);
        for label in &mut report.labels {
            label.shown = true;
        }
        let text = report.to_string();
        let figures = super::super::super::figures(&text);
        assert_eq!(
            figures,
            vec![
                "trace ipc_bench::round_trip kernel: 5 instructions",
                "trace ipc_bench::serve kernel: 7 instructions",
            ]
        );
    }
}
