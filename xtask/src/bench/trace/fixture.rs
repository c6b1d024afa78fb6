//! Test fixtures shared by the trace modules' tests: a made-up image's symbols and a trace.
//!
//! The trace's lines are in the shapes QEMU 7.2 prints, its addresses and instruction words
//! those of [`symbols`], so a test can run it through the parser and the episodes as
//! `cargo xtask bench --trace` does ([`run`]).

use super::Tracer;
use super::report::Report;
use super::symbols::{Elf, Symbols};

/// A kernel at 0x4010_0000.. and one server with `ipc_bench::round_trip` at 0x20_0100 and
/// `ipc_bench::serve` at 0x20_0200, whose code is the words used below.
pub(super) fn symbols() -> Symbols {
    let mut code = vec![0u8; 0x300];
    for (offset, word) in [
        (0x100, 0xd280_0020u32),
        (0x104, 0xd400_0001),
        (0x200, 0xd280_0040),
        (0x204, 0xd400_0001),
    ] {
        code[offset..offset + 4].copy_from_slice(&u32::to_le_bytes(word));
    }
    let server = Elf {
        functions: vec![
            (0x20_0100..0x20_0180, "ipc_bench::round_trip".into()),
            (0x20_0200..0x20_0280, "ipc_bench::serve".into()),
        ],
        code: vec![(0x20_0000, code)],
    };
    // A second server at the same addresses with other code: never matches.
    let other = Elf {
        functions: vec![(0x20_0000..0x20_1000, "supervisor::main".into())],
        code: vec![(0x20_0000, vec![0xff; 0x1000])],
    };
    let kernel_functions = Elf {
        functions: vec![
            (0x4010_0000..0x4010_0800, "kernel_main".into()),
            (0x4010_0800..0x4010_0810, "exception_vectors".into()),
            (0x4010_0810..0x4010_0820, "kernel::trap::eret_path".into()),
            (0x4010_0820..0x4010_0900, "kernel::trap::reply_path".into()),
            (0x4010_0900..0x4010_0a00, "kernel::trap::slow_path".into()),
        ],
        code: Vec::new(),
    };
    Symbols {
        // Two segments, as a kernel ELF has (code, then data).
        kernel: vec![0x4010_0000..0x4018_0000, 0x4018_0000..0x4020_0000],
        kernel_functions,
        servers: vec![other, server],
    }
}

/// The trace of two round trips: the client's block at 0x200100 (2 instructions, ending in
/// `svc`) enters the kernel (vector block of 3, then 2), which returns to the server at
/// 0x200200 (2 instructions, `svc`), whose kernel run (3, then 4) returns to the client.
/// The second time round the kernel's 4-instruction block is logged but stopped before
/// it ran, and the client's block is a fresh 1-instruction translation (icount budget).
pub(super) const TRACE: &str = "\
----------------
IN: kernel_main
0x40100000:  d5034fdf  msr      daifset, #0xf
0x40100004:  d65f03e0  eret

Trace 0: 0x7f0000000100 [0000000000000000/0000000040100000/00000061/ff020200] kernel_main
----------------
IN: 
0x00200100:  d2800020  movz     x0, #0x1
0x00200104:  d4000001  svc      #0

Trace 0: 0x7f0000000200 [0000000000000000/0000000000200100/00000101/ff020200] 
----------------
IN: vector
0x40100800:  d10443ff  sub      sp, sp, #0x110
0x40100804:  a90007e0  stp      x0, x1, [sp]
0x40100808:  14000002  b        #0x40100810

Trace 0: 0x7f0000000300 [0000000000000000/0000000040100800/00000061/ff020200] vector
----------------
IN: eret_path
0x40100810:  d2800000  mov      x0, #0
0x40100814:  d69f03e0  eret

Trace 0: 0x7f0000000400 [0000000000000000/0000000040100810/00000061/ff020200] eret_path
----------------
IN: 
0x00200200:  d2800040  movz     x0, #0x2
0x00200204:  d4000001  svc      #0

Trace 0: 0x7f0000000500 [0000000000000000/0000000000200200/00000101/ff020200] 
Trace 0: 0x7f0000000300 [0000000000000000/0000000040100800/00000061/ff020200] vector
----------------
IN: reply_path
0x40100820:  d2800000  mov      x0, #0
0x40100824:  d2800001  mov      x1, #0
0x40100828:  d2800002  mov      x2, #0
0x4010082c:  d69f03e0  eret

Trace 0: 0x7f0000000600 [0000000000000000/0000000040100820/00000061/ff020200] reply_path
Trace 0: 0x7f0000000200 [0000000000000000/0000000000200100/00000101/ff020200] 
Trace 0: 0x7f0000000300 [0000000000000000/0000000040100800/00000061/ff020200] vector
Trace 0: 0x7f0000000400 [0000000000000000/0000000040100810/00000061/ff020200] eret_path
Trace 0: 0x7f0000000500 [0000000000000000/0000000000200200/00000101/ff020200] 
Trace 0: 0x7f0000000300 [0000000000000000/0000000040100800/00000061/ff020200] vector
Trace 0: 0x7f0000000600 [0000000000000000/0000000040100820/00000061/ff020200] reply_path
Stopped execution of TB chain before 0x7f0000000600 [0000000040100820] reply_path
Trace 0: 0x7f0000000600 [0000000000000000/0000000040100820/00000061/ff020200] reply_path
----------------
IN: 
0x00200100:  d2800020  movz     x0, #0x1

Trace 0: 0x7f0000000700 [0000000000000000/0000000000200100/00000101/ff020201] 
Trace 0: 0x7f0000000200 [0000000000000000/0000000000200100/00000101/ff020200] 
";

/// `trace` run through a [`Tracer`] over [`symbols`].
pub(super) fn run(trace: &str) -> Report {
    let symbols = symbols();
    let mut tracer = Tracer::new(&symbols);
    for line in trace.split_inclusive('\n') {
        tracer.line(line);
    }
    tracer.finish()
}

/// Each label's name and the kernel instructions of its episodes.
pub(super) fn episodes(report: &Report) -> Vec<(&str, Vec<u64>)> {
    report
        .labels
        .iter()
        .map(|label| (label.name.as_str(), label.episodes.clone()))
        .collect()
}
