//! Shadow-engine benchmarks over the in-memory fakes (`--features test-utils`).
//!
//! * `shadow_fault/warm`: one 4 KiB fault resolved with the shadow path already built (INVLPG,
//!   then the fault: guest walk, A/D, leaf install).
//! * `shadow_fault/cold_512`: 512 faults after a full flush (rebuilding the shadow tree too).
//! * `mmio_fault/{cached,uncached}/{1,8,64}`: a fault on an MMIO address with and without the MMIO
//!   shadow entry, with 1, 8 and 64 memory slots (searched linearly by the fake, as a naive port
//!   would; the MMIO address is in none, the worst case for a search).
//!
//! Run: `CARGO_TARGET_DIR=/work/target-shadow cargo bench -p mmu-core --features test-utils`.

use core::hint::black_box;
use core::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mmu_core::shadow::pte::{A, D, P, RW, US};
use mmu_core::shadow::{Config, CpuMode, FaultOutcome, Gpa, Gva, Hpa, PfErrorCode, ShadowMmu};
use mmu_core::testing::{FakeGuestMemory, FakeTableStore};

const POOL: usize = 256;
const PML4: u64 = 0x1000;
const PDPT: u64 = 0x2000;
const PD: u64 = 0x3000;
const PT: u64 = 0x4000;
const PT_MMIO: u64 = 0x5000;
const DATA: u64 = 0x8_0000;
const MMIO_GPA: u64 = 0x100_0000_0000;
const MMIO_VA: u64 = 0x20_0000;
const URW: u64 = P | RW | US;

/// Guest memory with `slots` slots of 1 MiB at GPA 0, 2 MiB, 4 MiB, ...; slot 0 holds the tables:
/// VA 0..2 MiB maps 512 data pages, VA 2 MiB.. maps MMIO.
fn guest(slots: u64) -> FakeGuestMemory {
    let mut mem = FakeGuestMemory::new();
    for i in 0..slots {
        mem.add_slot(
            Gpa(i * (2 << 20)),
            1 << 20,
            Hpa(0x10_0000_0000 + i * (2 << 20)),
            false,
        );
    }
    mem.poke_u64(Gpa(PML4), PDPT | URW);
    mem.poke_u64(Gpa(PDPT), PD | URW);
    mem.poke_u64(Gpa(PD), PT | URW);
    mem.poke_u64(Gpa(PD + 8), PT_MMIO | URW);
    for i in 0..512 {
        let frame = DATA + (i % 128) * 0x1000;
        mem.poke_u64(Gpa(PT + i * 8), frame | URW | A | D);
    }
    mem.poke_u64(Gpa(PT_MMIO), MMIO_GPA | URW | A | D);
    mem
}

fn engine(
    mem: &mut FakeGuestMemory,
    store: &mut FakeTableStore,
    mmio_cache: bool,
) -> ShadowMmu<POOL> {
    let config = Config {
        mmio_cache,
        ..Config::default()
    };
    match ShadowMmu::new(config, mem, store, PML4, &CpuMode::long_mode()) {
        Ok(mmu) => mmu,
        Err(e) => panic!("engine: {e:?}"),
    }
}

const WRITE: PfErrorCode = PfErrorCode(PfErrorCode::WRITE);

fn shadow_faults(c: &mut Criterion) {
    let mut g = c.benchmark_group("shadow_fault");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);

    let mut mem = guest(1);
    let mut store = FakeTableStore::new(POOL);
    let mut mmu = engine(&mut mem, &mut store, true);
    let mut i = 0u64;
    g.throughput(Throughput::Elements(1));
    g.bench_function("warm", |b| {
        b.iter(|| {
            let gva = Gva((i & 511) << 12);
            i += 1;
            mmu.invlpg(&mut store, gva);
            let out = mmu.page_fault(&mut mem, &mut store, gva, WRITE, false);
            assert_eq!(out, FaultOutcome::Fixed);
        })
    });

    g.throughput(Throughput::Elements(512));
    g.bench_function("cold_512", |b| {
        b.iter(|| {
            mmu.flush_all(&mut store);
            for p in 0..512u64 {
                let out = mmu.page_fault(&mut mem, &mut store, Gva(p << 12), WRITE, false);
                black_box(out);
            }
        })
    });
    g.finish();
}

fn mmio_faults(c: &mut Criterion) {
    let mut g = c.benchmark_group("mmio_fault");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(20)
        .throughput(Throughput::Elements(1));
    for slots in [1u64, 8, 64] {
        for cached in [true, false] {
            let mut mem = guest(slots);
            let mut store = FakeTableStore::new(POOL);
            let mut mmu = engine(&mut mem, &mut store, cached);
            // The first fault walks, searches and (when enabled) installs the MMIO entry.
            mmu.page_fault(&mut mem, &mut store, Gva(MMIO_VA), WRITE, false);
            let name = if cached { "cached" } else { "uncached" };
            g.bench_with_input(BenchmarkId::new(name, slots), &slots, |b, _| {
                b.iter(|| {
                    let out = mmu.page_fault(&mut mem, &mut store, Gva(MMIO_VA + 8), WRITE, false);
                    assert!(matches!(out, FaultOutcome::Mmio { cached: c, .. } if c == cached));
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, shadow_faults, mmio_faults);
criterion_main!(benches);
