//! Drives the physical virtio-blk driver end to end (tests/manifests/virtio-blk.toml; QEMU test
//! `virtio-blk`): a client of `block_api::Block` on the `blk` endpoint, its data in the window
//! `blk-data` it shares with the driver, mapped here at [`WINDOW_VA`].
//!
//! On the 1 MiB disk xtask creates (2048 sectors, all zero), it
//! 1. asks the capacity (2048 sectors, writable, a 64 KiB window);
//! 2. writes sectors 0..8 with the `counter32` pattern (each 4-byte little-endian word holds
//!    its index from the disk's start), sector 100 with [`SIGNATURE`] and zeros, and the last
//!    sector (2047) with 0x5A bytes, each from its own part of the window;
//! 3. clears other parts of the window, reads all three back there and compares every byte;
//! 4. checks that bad requests are typed errors that leave the disk alone: past the disk's end,
//!    past the window's end, no sectors, a message that does not decode;
//! 5. flushes.
//!
//! It prints `blk-client: all N checks passed` or one `blk-client: FAILED ...` line per failure
//! and stops the system with status 0 or 1. xtask then reads the disk image on the host
//! (`disk_expect` in tests/qemu-tests.toml): the three written ranges, and zeros between.
#![no_std]
#![no_main]

use abi::MessageInfo;
use block_api::{Block, BlockError, Reply, Request, Response, SECTOR_SIZE};
use userlib::println;

userlib::entry!(main);

/// Where the manifest maps the window `blk-data` (64 KiB) in this server.
const WINDOW_VA: u64 = 0x4020_0000;
/// Its size.
const WINDOW_BYTES: u64 = 0x10000;
/// The disk: `disk = { size_mib = 1 }`.
const DISK_SECTORS: u64 = 2048;
/// Sector 100's first bytes.
const SIGNATURE: &[u8] = b"blk-client was here\n";
const SECTOR: usize = SECTOR_SIZE as usize;

/// Counts checks and failures; every failure is printed when it happens.
struct Checks {
    blk: abi::CPtr,
    run: u32,
    failed: u32,
}

impl Checks {
    fn call(&mut self, request: Request) -> Result<Response, ipc::CallError> {
        ipc::call::<Block>(&mut userlib::Kernel, self.blk, &request)
    }

    fn fail(&mut self, what: &str, detail: core::fmt::Arguments<'_>) {
        self.failed += 1;
        println!("blk-client: FAILED {what}: {detail}");
    }

    /// Sends `request` and compares the answer with `expected`.
    fn expect(&mut self, what: &str, request: Request, expected: Response) {
        self.run += 1;
        let answer = self.call(request);
        if answer != Ok(expected) {
            self.fail(
                what,
                format_args!("{request:?} answered {answer:?}, expected {expected:?}"),
            );
        }
    }

    /// Compares the window's bytes at `offset` with `expected(i)` for byte `i`.
    fn expect_window(
        &mut self,
        what: &str,
        offset: u64,
        len: usize,
        expected: impl Fn(usize) -> u8,
    ) {
        self.run += 1;
        if let Some(i) = (0..len).find(|&i| read_byte(offset + i as u64) != expected(i)) {
            let found = read_byte(offset + i as u64);
            self.fail(
                what,
                format_args!("byte {i} is {found:#04x}, expected {:#04x}", expected(i)),
            );
        }
    }
}

/// Byte `i` of the `counter32` pattern from the disk's start: word `i / 4` little-endian.
fn counter32(i: usize) -> u8 {
    ((i / 4) as u32).to_le_bytes()[i % 4]
}

/// Byte `i` of sector 100.
fn signature(i: usize) -> u8 {
    SIGNATURE.get(i).copied().unwrap_or(0)
}

fn write_byte(offset: u64, value: u8) {
    assert!(offset < WINDOW_BYTES);
    // SAFETY: inside the window, mapped read-write at WINDOW_VA for the server's whole life.
    // Volatile: the device writes this memory behind the compiler's back (during our calls).
    unsafe { ((WINDOW_VA + offset) as *mut u8).write_volatile(value) }
}

fn read_byte(offset: u64) -> u8 {
    assert!(offset < WINDOW_BYTES);
    // SAFETY: as for `write_byte`.
    unsafe { ((WINDOW_VA + offset) as *const u8).read_volatile() }
}

fn fill(offset: u64, len: usize, value: impl Fn(usize) -> u8) {
    for i in 0..len {
        write_byte(offset + i as u64, value(i));
    }
}

fn read(sector: u64, count: u32, offset: u64) -> Request {
    Request::Read {
        sector,
        count,
        offset,
    }
}

fn write(sector: u64, count: u32, offset: u64) -> Request {
    Request::Write {
        sector,
        count,
        offset,
    }
}

fn main() -> ! {
    let mut checks = Checks {
        blk: userlib::cap("blk"),
        run: 0,
        failed: 0,
    };
    let done = Ok(Reply::Done);
    checks.expect(
        "capacity",
        Request::Capacity,
        Ok(Reply::Capacity {
            sectors: DISK_SECTORS,
            read_only: false,
            window_bytes: WINDOW_BYTES,
        }),
    );

    // Writes, each from its own part of the window.
    fill(0, 8 * SECTOR, counter32);
    checks.expect("write sectors 0..8", write(0, 8, 0), done);
    fill(0x2000, SECTOR, signature);
    checks.expect("write sector 100", write(100, 1, 0x2000), done);
    fill(0x2200, SECTOR, |_| 0x5A);
    checks.expect(
        "write the last sector",
        write(DISK_SECTORS - 1, 1, 0x2200),
        done,
    );

    // Read back into parts of the window that hold something else first.
    fill(0x4000, 8 * SECTOR, |_| 0xEE);
    checks.expect("read sectors 0..8", read(0, 8, 0x4000), done);
    checks.expect_window("sectors 0..8 read back", 0x4000, 8 * SECTOR, counter32);
    fill(0x6000, 2 * SECTOR, |_| 0xEE);
    checks.expect("read sectors 100..102", read(100, 2, 0x6000), done);
    checks.expect_window("sector 100 read back", 0x6000, SECTOR, signature);
    checks.expect_window("sector 101 is still zero", 0x6200, SECTOR, |_| 0);
    // The window's last bytes, and an offset that is not sector aligned.
    let last = WINDOW_BYTES - SECTOR_SIZE;
    checks.expect(
        "read the last sector into the window's end",
        read(DISK_SECTORS - 1, 1, last),
        done,
    );
    checks.expect_window("last sector read back", last, SECTOR, |_| 0x5A);
    checks.expect("read at an odd offset", read(0, 1, 0x8003), done);
    checks.expect_window("odd offset read back", 0x8003, SECTOR, counter32);

    // Bad requests: typed errors, nothing written (the host checks the zeros around).
    fill(0xA000, SECTOR, |_| 0x77);
    let past_disk = Err(BlockError::OutOfRange {
        capacity: DISK_SECTORS,
    });
    let past_window = Err(BlockError::BadOffset {
        window_bytes: WINDOW_BYTES,
    });
    checks.expect(
        "write past the disk",
        write(DISK_SECTORS, 1, 0xA000),
        past_disk,
    );
    checks.expect(
        "write across the disk's end",
        write(DISK_SECTORS - 1, 2, 0xA000),
        past_disk,
    );
    checks.expect("read at sector u64::MAX", read(u64::MAX, 1, 0), past_disk);
    checks.expect("write past the window", write(8, 1, last + 1), past_window);
    checks.expect("more sectors than the window", read(0, 129, 0), past_window);
    checks.expect("offset u64::MAX", write(8, 1, u64::MAX), past_window);
    checks.expect(
        "no sectors",
        write(8, 0, 0xA000),
        Err(BlockError::EmptyTransfer),
    );
    checks.run += 1;
    let (info, words) =
        userlib::syscall::call(checks.blk, MessageInfo::new(40, 0, 4), [u64::MAX; 4]);
    let garbage = ipc::interpret::<Response>(info, &words);
    if garbage != Err(ipc::CallError::Rejected) {
        checks.fail(
            "a message that does not decode",
            format_args!("answered {garbage:?}"),
        );
    }
    checks.expect("served after garbage", read(100, 1, 0x6000), done);
    checks.expect_window("sector 100 again", 0x6000, SECTOR, signature);

    checks.expect("flush", Request::Flush, done);

    if checks.failed == 0 {
        println!("blk-client: all {} checks passed", checks.run);
        userlib::system_off(0)
    } else {
        println!(
            "blk-client: FAILED {} of {} checks",
            checks.failed, checks.run
        );
        userlib::system_off(1)
    }
}
