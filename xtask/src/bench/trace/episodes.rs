//! Block executions → episodes of kernel code, labelled, split by kernel path, counted.
//!
//! An **episode** is a maximal run of kernel blocks between two user blocks: from the exception
//! entry after the user's `svc` to the `eret` that leaves the kernel, both included. It is
//! labelled by the server function that holds the last instruction of the user block before it
//! (the `svc`; see [`Symbols::label`]). Kernel instructions before the first user block (boot)
//! or after the last (shutdown) belong to no episode.
//!
//! One function may trap on more than one kernel path (the IPC benchmark's `round_trip` sends
//! one word, then five), so a label's episodes are split by their exact sequence of kernel
//! blocks (a hash of their pcs and instruction counts), and each path seen often enough gets
//! its own figure, named by kernel functions it visits and the label's other paths do not
//! ([`name_paths`]); the path that visits no such function keeps the plain label. A timer
//! interrupt is an episode too, labelled by whatever it interrupted: a rare path, left out.

use std::collections::HashMap;

use super::parse::{Execution, Translation};
use super::report::Report;
use super::symbols::Symbols;

/// Labels and kernel paths seen fewer times than this are not reported (boot, one-off calls,
/// interrupts).
pub(super) const MIN_EPISODES: usize = 100;

/// The episodes of one label.
#[derive(Debug, Default)]
pub(super) struct Label {
    pub(super) name: String,
    /// Kernel instructions of each episode, in trace order.
    pub(super) episodes: Vec<u64>,
    /// Its episodes split by the kernel path they took (path hash → index).
    path_index: HashMap<u64, usize>,
    pub(super) paths: Vec<KernelPath>,
    /// Seen often enough to be reported (set by [`Episodes::finish`]).
    pub(super) shown: bool,
}

/// The episodes of one label that took one kernel path (the same blocks).
#[derive(Debug, Default)]
pub(super) struct KernelPath {
    /// The kernel functions its blocks lie in, in order of first appearance.
    pub(super) functions: Vec<String>,
    /// Kernel instructions of each episode.
    pub(super) episodes: Vec<u64>,
    /// Seen often enough (in a shown label) to be reported (set by [`Episodes::finish`]).
    pub(super) shown: bool,
    /// What tells it from the label's other shown paths: empty, ` via <its own functions>`,
    /// or ` #<n>` (set by [`Episodes::finish`]).
    pub(super) suffix: String,
}

/// The user block an episode started from.
#[derive(Clone, Copy, Debug)]
struct UserBlock {
    execution: Execution,
}

/// The kernel run in progress.
#[derive(Clone, Copy, Debug)]
struct Episode {
    from: Option<UserBlock>,
    instructions: u64,
    /// FNV-1a over its blocks' (pc, instructions): equal for episodes on one kernel path.
    path: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(hash: u64, value: u64) -> u64 {
    value.to_le_bytes().iter().fold(hash, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The episodes so far, and the counts of the report.
pub(super) struct Episodes<'a> {
    symbols: &'a Symbols,
    episode: Option<Episode>,
    /// The pcs of the current episode's blocks (to name a new kernel path).
    episode_blocks: Vec<u64>,
    last_user: Option<UserBlock>,
    /// (translation, count) of a trapping user block → label index.
    label_of: HashMap<(Option<usize>, u64, usize), usize>,
    report: Report,
}

impl<'a> Episodes<'a> {
    pub(super) fn new(symbols: &'a Symbols) -> Self {
        Self {
            symbols,
            episode: None,
            episode_blocks: Vec::new(),
            last_user: None,
            label_of: HashMap::new(),
            report: Report::default(),
        }
    }

    /// Counts one block that ran; `translations` are the parser's.
    pub(super) fn count(&mut self, execution: Execution, translations: &[Translation]) {
        self.report.blocks += 1;
        if execution.translation.is_none() {
            self.report.unknown_blocks += 1;
        }
        let instructions = execution.count as u64;
        let kernel = self.symbols.is_kernel(execution.pc);
        if kernel != execution.el2 {
            self.report.misplaced_blocks += 1;
        }
        if kernel {
            self.report.kernel_instructions += instructions;
            let episode = self.episode.get_or_insert_with(|| {
                self.episode_blocks.clear();
                Episode {
                    from: self.last_user,
                    instructions: 0,
                    path: FNV_OFFSET,
                }
            });
            episode.instructions += instructions;
            episode.path = fnv(fnv(episode.path, execution.pc), instructions);
            self.episode_blocks.push(execution.pc);
        } else {
            self.report.user_instructions += instructions;
            if let Some(episode) = self.episode.take() {
                match episode.from {
                    Some(from) => self.record(from, episode, translations),
                    None => self.report.unlabelled_instructions += episode.instructions,
                }
            }
            self.last_user = Some(UserBlock { execution });
        }
    }

    fn record(&mut self, from: UserBlock, episode: Episode, translations: &[Translation]) {
        let execution = from.execution;
        let key = (execution.translation, execution.pc, execution.count);
        let index = match self.label_of.get(&key) {
            Some(&index) => index,
            None => {
                let name = self.label_name(execution, translations);
                let index = match self.report.labels.iter().position(|l| l.name == name) {
                    Some(index) => index,
                    None => {
                        self.report.labels.push(Label {
                            name,
                            ..Label::default()
                        });
                        self.report.labels.len() - 1
                    }
                };
                self.label_of.insert(key, index);
                index
            }
        };
        let label = &mut self.report.labels[index];
        label.episodes.push(episode.instructions);
        let path = match label.path_index.get(&episode.path) {
            Some(&path) => path,
            None => {
                let mut functions: Vec<String> = Vec::new();
                for &pc in &self.episode_blocks {
                    let name = self.symbols.kernel_functions.function_at(pc);
                    let name = name.map_or_else(|| format!("{pc:#x}"), str::to_string);
                    if !functions.contains(&name) {
                        functions.push(name);
                    }
                }
                label.paths.push(KernelPath {
                    functions,
                    ..KernelPath::default()
                });
                label.path_index.insert(episode.path, label.paths.len() - 1);
                label.paths.len() - 1
            }
        };
        label.paths[path].episodes.push(episode.instructions);
    }

    fn label_name(&self, execution: Execution, translations: &[Translation]) -> String {
        let Some(index) = execution.translation else {
            return self.symbols.label(execution.pc, &[], execution.pc);
        };
        let ran = &translations[index].instructions[..execution.count];
        let words: Vec<u32> = ran.iter().map(|(_, word)| *word).collect();
        let last_pc = ran.last().map_or(execution.pc, |(address, _)| *address);
        self.symbols.label(execution.pc, &words, last_pc)
    }

    /// Ends the trace: decides what is shown and names the paths.
    pub(super) fn finish(mut self) -> Report {
        // A kernel run the trace ends in never returned to a user (system off).
        if let Some(episode) = self.episode.take() {
            self.report.unlabelled_instructions += episode.instructions;
        }
        for label in &mut self.report.labels {
            label.shown = label.episodes.len() >= MIN_EPISODES;
            for path in &mut label.paths {
                path.shown = label.shown && path.episodes.len() >= MIN_EPISODES;
            }
            name_paths(&mut label.paths);
        }
        self.report
    }
}

/// Names the shown `paths` of one label apart by kernel functions each visits and others do
/// not: greedily the function that the most of the remaining other paths do not visit (the
/// earliest on a tie), until none remains or no function rules more out. A path that visits no
/// function the others lack keeps the plain label; paths left with the same name (the same
/// functions, with a loop run more often) are numbered in order of instructions.
fn name_paths(paths: &mut [KernelPath]) {
    let shown: Vec<usize> = (0..paths.len()).filter(|&i| paths[i].shown).collect();
    let mut names = Vec::with_capacity(shown.len());
    for &path in &shown {
        let mut others: Vec<usize> = shown.iter().copied().filter(|&i| i != path).collect();
        let mut chosen: Vec<&str> = Vec::new();
        while !others.is_empty() {
            let best = paths[path]
                .functions
                .iter()
                .map(|name| {
                    let rules_out = others
                        .iter()
                        .filter(|&&other| !paths[other].functions.contains(name))
                        .count();
                    (name, rules_out)
                })
                .filter(|&(_, rules_out)| rules_out > 0)
                .min_by_key(|&(_, rules_out)| std::cmp::Reverse(rules_out));
            let Some((name, _)) = best else {
                break;
            };
            chosen.push(name);
            others.retain(|&other| paths[other].functions.contains(name));
        }
        names.push(if chosen.is_empty() {
            String::new()
        } else {
            format!(" via {}", chosen.join(" + "))
        });
    }
    let mut order: Vec<usize> = (0..shown.len()).collect();
    order.sort_by_key(|&index| median(&paths[shown[index]].episodes));
    let mut numbered: HashMap<&str, usize> = HashMap::new();
    for &index in &order {
        let name = names[index].as_str();
        let suffix = if names.iter().filter(|other| *other == name).count() > 1 {
            let n = numbered.entry(name).or_default();
            *n += 1;
            format!("{name} #{n}")
        } else {
            name.to_string()
        };
        paths[shown[index]].suffix = suffix;
    }
}

/// The lower median (an instruction count that occurred) of non-empty `values`.
pub(super) fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[(sorted.len() - 1) / 2]
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{TRACE, episodes, run};
    use super::*;

    #[test]
    fn labels_episodes_by_the_trapping_function_in_the_matching_elf() {
        let report = run(TRACE);
        assert_eq!(
            episodes(&report),
            vec![
                ("ipc_bench::round_trip", vec![5, 5]),
                ("ipc_bench::serve", vec![7, 7]),
            ]
        );
    }

    #[test]
    fn median_is_the_lower_middle_value() {
        assert_eq!(median(&[5]), 5);
        assert_eq!(median(&[9, 1, 5]), 5);
        assert_eq!(median(&[206, 206, 1500, 206, 214, 214]), 206);
        assert_eq!(median(&[4, 3, 2, 1]), 2);
    }
    #[test]
    fn splits_a_label_by_the_kernel_path_and_names_the_paths_apart() {
        // The client traps twice: once the kernel goes vector → eret_path, once vector →
        // slow_path → eret_path; the server's blocks end each kernel run.
        let trace = "\
IN: 
0x00200100:  d2800020  movz     x0, #0x1
0x00200104:  d4000001  svc      #0

Trace 0: 0x10 [0000000000000000/0000000000200100/00000101/ff020200] 
IN: 
0x40100800:  d10443ff  sub      sp, sp, #0x110
0x40100804:  a90007e0  stp      x0, x1, [sp]

Trace 0: 0x20 [0000000000000000/0000000040100800/00000061/ff020200] 
IN: 
0x40100810:  d69f03e0  eret

Trace 0: 0x30 [0000000000000000/0000000040100810/00000061/ff020200] 
IN: 
0x00200200:  d2800040  movz     x0, #0x2

Trace 0: 0x40 [0000000000000000/0000000000200200/00000101/ff020200] 
Trace 0: 0x10 [0000000000000000/0000000000200100/00000101/ff020200] 
Trace 0: 0x20 [0000000000000000/0000000040100800/00000061/ff020200] 
IN: 
0x40100900:  d2800000  mov      x0, #0
0x40100904:  d2800000  mov      x0, #0
0x40100908:  d2800000  mov      x0, #0

Trace 0: 0x50 [0000000000000000/0000000040100900/00000061/ff020200] 
Trace 0: 0x30 [0000000000000000/0000000040100810/00000061/ff020200] 
Trace 0: 0x40 [0000000000000000/0000000000200200/00000101/ff020200] 
";
        let mut report = run(trace);
        assert_eq!(
            episodes(&report),
            vec![("ipc_bench::round_trip", vec![3, 6])]
        );
        let label = &mut report.labels[0];
        let functions: Vec<&[String]> = label.paths.iter().map(|p| &p.functions[..]).collect();
        assert_eq!(
            functions,
            vec![
                &[
                    "exception_vectors".to_string(),
                    "kernel::trap::eret_path".into()
                ][..],
                &[
                    "exception_vectors".to_string(),
                    "kernel::trap::slow_path".into(),
                    "kernel::trap::eret_path".into()
                ][..],
            ]
        );
        label.shown = true;
        for path in &mut label.paths {
            path.shown = true;
        }
        name_paths(&mut label.paths);
        let figures: Vec<String> = report
            .figures()
            .into_iter()
            .map(|(name, n)| format!("{name}: {n}"))
            .collect();
        assert_eq!(
            figures,
            vec![
                "ipc_bench::round_trip: 3",
                "ipc_bench::round_trip via kernel::trap::slow_path: 6",
            ]
        );
    }

    #[test]
    fn paths_are_named_by_functions_the_others_do_not_visit() {
        let path = |functions: &[&str], instructions: u64| KernelPath {
            functions: functions.iter().map(|name| name.to_string()).collect(),
            episodes: vec![instructions],
            shown: true,
            suffix: String::new(),
        };
        let mut paths = vec![
            path(&["a", "b"], 20),
            path(&["a", "c", "b"], 30),
            path(&["a", "c", "d", "b"], 40),
            path(&["a", "b"], 10),
            KernelPath {
                shown: false,
                ..path(&["a", "x"], 1)
            },
        ];
        name_paths(&mut paths);
        let suffixes: Vec<&str> = paths.iter().map(|path| path.suffix.as_str()).collect();
        assert_eq!(suffixes, vec![" #2", " via c", " via d", " #1", ""]);
    }
}
