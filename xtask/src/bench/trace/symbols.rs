//! The image's ELFs: where the kernel is, and which function an address lies in.
//!
//! A block is kernel code when its pc lies in a loaded segment of the kernel ELF (the image's
//! `<name>.elf`), else user code (servers at EL0, or a guest). Servers share one virtual
//! layout, so one pc may lie in several server ELFs: a user block is looked up only in the
//! ELFs whose loaded bytes at its pc are the instruction words the trace logged for it, and
//! where the code is unknown every candidate is named. Each distinct ELF (by content) is loaded
//! once; function names are demangled without their hashes by `rustc-demangle`.

use std::fs;
use std::ops::Range;
use std::path::PathBuf;

use anyhow::Context;
use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

use crate::build::Image;

/// Where the kernel is, and the kernel's and the servers' functions.
pub(super) struct Symbols {
    /// The kernel ELF's loaded segments.
    pub(super) kernel: Vec<Range<u64>>,
    /// The kernel's functions (its code is not needed).
    pub(super) kernel_functions: Elf,
    /// One entry per distinct server (or guest) ELF.
    pub(super) servers: Vec<Elf>,
}

/// What an ELF says about its addresses.
#[derive(Default)]
pub(super) struct Elf {
    /// Function address ranges and demangled names, sorted by start.
    pub(super) functions: Vec<(Range<u64>, String)>,
    /// Loaded bytes by address (segments' file contents).
    pub(super) code: Vec<(u64, Vec<u8>)>,
}

impl Symbols {
    pub(super) fn load(image: &Image) -> anyhow::Result<Self> {
        let kernel_bytes =
            fs::read(&image.elf).with_context(|| format!("reading {}", image.elf.display()))?;
        let kernel_elf = object::File::parse(&*kernel_bytes)
            .with_context(|| format!("parsing {}", image.elf.display()))?;
        let kernel = kernel_elf
            .segments()
            .map(|segment| segment.address()..segment.address() + segment.size())
            .filter(|range| !range.is_empty())
            .collect();
        let mut kernel_functions = Elf::parse(&kernel_bytes)
            .with_context(|| format!("parsing {}", image.elf.display()))?;
        kernel_functions.code.clear();
        // The servers, then the other ELFs of the image directory: the VMs' guests.
        let mut paths: Vec<PathBuf> = image.servers.iter().map(|(_, path)| path.clone()).collect();
        let mut others: Vec<PathBuf> = fs::read_dir(&image.dir)
            .with_context(|| format!("listing {}", image.dir.display()))?
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "elf"))
            .filter(|path| !paths.contains(path))
            .collect();
        others.sort();
        paths.extend(others);
        let mut seen: Vec<Vec<u8>> = Vec::new();
        let mut servers = Vec::new();
        for path in &paths {
            let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            if seen.contains(&bytes) {
                continue;
            }
            let elf = Elf::parse(&bytes).with_context(|| format!("parsing {}", path.display()))?;
            servers.push(elf);
            seen.push(bytes);
        }
        Ok(Self {
            kernel,
            kernel_functions,
            servers,
        })
    }

    pub(super) fn is_kernel(&self, pc: u64) -> bool {
        self.kernel.iter().any(|range| range.contains(&pc))
    }

    /// The label of an episode whose user block started at `first_pc` with the instruction
    /// `words` (empty when unknown) and last executed the instruction at `last_pc`.
    pub(super) fn label(&self, first_pc: u64, words: &[u32], last_pc: u64) -> String {
        let matching: Vec<&Elf> = self
            .servers
            .iter()
            .filter(|elf| words.is_empty() || elf.holds(first_pc, words))
            .collect();
        let mut names: Vec<&str> = Vec::new();
        for elf in matching {
            if let Some(name) = elf.function_at(last_pc)
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
        if names.is_empty() {
            format!("{last_pc:#x}")
        } else {
            names.join(" | ")
        }
    }
}

impl Elf {
    fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        let elf = object::File::parse(bytes)?;
        let mut symbols: Vec<(u64, u64, &str)> = elf
            .symbols()
            .filter(|symbol| symbol.kind() == SymbolKind::Text)
            .filter_map(|symbol| Some((symbol.address(), symbol.size(), symbol.name().ok()?)))
            .collect();
        symbols.sort_unstable();
        symbols.dedup_by_key(|(address, _, _)| *address);
        let mut functions = Vec::with_capacity(symbols.len());
        for (index, &(address, size, name)) in symbols.iter().enumerate() {
            // A symbol without a size reaches to the next one.
            let end = match size {
                0 => symbols
                    .get(index + 1)
                    .map_or(address + 4, |(next, _, _)| *next),
                size => address + size,
            };
            functions.push((address..end, demangle(name)));
        }
        let code = elf
            .segments()
            .filter_map(|segment| Some((segment.address(), segment.data().ok()?.to_vec())))
            .filter(|(_, data)| !data.is_empty())
            .collect();
        Ok(Self { functions, code })
    }

    /// Whether this ELF's bytes at `pc` are `words`.
    fn holds(&self, pc: u64, words: &[u32]) -> bool {
        let expected: Vec<u8> = words.iter().flat_map(|word| word.to_le_bytes()).collect();
        self.code.iter().any(|(address, data)| {
            pc.checked_sub(*address)
                .and_then(|offset| usize::try_from(offset).ok())
                .and_then(|offset| data.get(offset..offset.checked_add(expected.len())?))
                .is_some_and(|bytes| bytes == expected)
        })
    }

    pub(super) fn function_at(&self, pc: u64) -> Option<&str> {
        let index = self
            .functions
            .partition_point(|(range, _)| range.start <= pc)
            .checked_sub(1)?;
        let (range, name) = &self.functions[index];
        range.contains(&pc).then_some(name.as_str())
    }
}

/// `symbol` demangled (rustc's legacy `_ZN...E` or v0 `_R...` scheme) without its hash, or
/// unchanged when it is not a Rust symbol.
fn demangle(symbol: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(symbol))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::symbols;
    use super::*;

    #[test]
    fn classifies_by_the_kernel_segments() {
        let symbols = symbols();
        assert!(symbols.is_kernel(0x4010_0000));
        assert!(symbols.is_kernel(0x401f_fffc));
        assert!(!symbols.is_kernel(0x4020_0000));
        assert!(!symbols.is_kernel(0x20_0100));
    }

    #[test]
    fn labels_fall_back_to_the_address_or_name_every_candidate() {
        let symbols = symbols();
        // Code no ELF holds (a guest): the address.
        assert_eq!(
            symbols.label(0x20_0100, &[0x1234_5678], 0x20_0100),
            "0x200100"
        );
        // Code unknown: every ELF with a function there.
        assert_eq!(
            symbols.label(0x20_0104, &[], 0x20_0104),
            "supervisor::main | ipc_bench::round_trip"
        );
        assert_eq!(
            symbols.label(0x20_0100, &[0xd280_0020, 0xd400_0001], 0x20_0104),
            "ipc_bench::round_trip"
        );
    }

    #[test]
    fn demangles_legacy_and_v0_symbols() {
        for (mangled, demangled) in [
            (
                "_ZN12hello_client4main17h7436312e3f346ad6E",
                "hello_client::main",
            ),
            (
                "_ZN100_$LT$core..iter..adapters..take..Take$LT$I$GT$$u20$as$u20$core..iter..\
                 traits..iterator..Iterator$GT$3nth17h7001e052934ac640E",
                "<core::iter::adapters::take::Take<I> as core::iter::traits::iterator::\
                 Iterator>::nth",
            ),
            (
                "_ZN11kernel_core6system3ipc45_$LT$impl$u20$kernel_core..system..System$GT$\
                 8recv_ipc17h3d0be55a4899a371E",
                "kernel_core::system::ipc::<impl kernel_core::system::System>::recv_ipc",
            ),
            (
                "_ZN9ipc_bench5serve17h0123456789abcdefE.llvm.42",
                "ipc_bench::serve",
            ),
            (
                "_RNvMsa_NtCs3g5Gb6bJpu0_4core3fmtNtB5_9Formatter3pad",
                "<core::fmt::Formatter>::pad",
            ),
            (
                "_RNvXs0_NtNtCs3g5Gb6bJpu0_4core3fmt8buildersNtB5_10PadAdapterNtB7_5Write9\
                 write_str",
                "<core::fmt::builders::PadAdapter as core::fmt::Write>::write_str",
            ),
            (
                "_RNvXs1i_NtCs3g5Gb6bJpu0_4core3fmtReNtB6_7Display3fmtB8_",
                "<&str as core::fmt::Display>::fmt",
            ),
            (
                "_RNvNvMsa_NtCs3g5Gb6bJpu0_4core3fmtNtB7_9Formatter12pad_integral12write_prefix",
                "<core::fmt::Formatter>::pad_integral::write_prefix",
            ),
            (
                "_RNvCsfLfy6EI15iL_7___rustc17rust_begin_unwind",
                "__rustc::rust_begin_unwind",
            ),
            (
                "_RNvXs0_NtNtCs7OxSQD10jZQ_18tracing_subscriber3fmt4timeFG0_QL1_INtNtB7_6format6\
                 WriterL0_EEINtNtCsgEmfK2I1SDS_4core6result6ResultuNtNtB1u_3fmt5ErrorENtB5_10\
                 FormatTime11format_time",
                "<for<'a, 'b> fn(&'a mut tracing_subscriber::fmt::format::Writer<'b>) -> \
                 core::result::Result<(), core::fmt::Error> as tracing_subscriber::fmt::time::\
                 FormatTime>::format_time",
            ),
            (
                "_RNvMsn_NtCslNYArtu3iFV_5alloc4syncINtB5_3ArcDINtNtNtCsgEmfK2I1SDS_4core3ops8\
                 function2FnuEp6OutputNtNtNtCsdadwybgsbvk_12rustc_middle5query5stack20QueryStack\
                 FrameExtraNtNtCs3MG2ofusW15_21rustc_data_structures6marker7DynSyncNtB2F_7DynSend\
                 EL_E9drop_slowB1D_",
                "<alloc::sync::Arc<dyn core::ops::function::Fn<(), Output = rustc_middle::query::\
                 stack::QueryStackFrameExtra> + rustc_data_structures::marker::DynSync + \
                 rustc_data_structures::marker::DynSend>>::drop_slow",
            ),
            ("memcpy", "memcpy"),
            ("_ZN3foo", "_ZN3foo"),
        ] {
            assert_eq!(demangle(mangled), demangled, "{mangled}");
        }
    }
}
