//! Property tests: whatever the guest puts in its memory and writes to the registers, the
//! devices never panic, never call the backend outside its contract (`MemoryDisk` asserts
//! it), keep the line equal to InterruptStatus, and keep completing in order.

use super::*;
use crate::console::{RECEIVEQ, TRANSMITQ};
use crate::mmio::{CONFIG_OFFSET, register};
use proptest::prelude::*;

/// Fills guest RAM from a seed (xorshift64*): random memory without a 256 KiB strategy.
fn random_ram(seed: u64) -> Guest {
    let mut guest = Guest::new();
    let mut state = seed | 1;
    for chunk in guest.ram.chunks_mut(8) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    guest
}

/// An offset: mostly a register or the configuration, sometimes anything.
fn offset() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => prop::sample::select(vec![
            register::DEVICE_FEATURES_SEL,
            register::DRIVER_FEATURES,
            register::DRIVER_FEATURES_SEL,
            register::QUEUE_SEL,
            register::QUEUE_NUM,
            register::QUEUE_READY,
            register::QUEUE_NOTIFY,
            register::INTERRUPT_ACK,
            register::STATUS,
            register::QUEUE_DESC_LOW,
            register::QUEUE_DESC_HIGH,
            register::QUEUE_DRIVER_LOW,
            register::QUEUE_DRIVER_HIGH,
            register::QUEUE_DEVICE_LOW,
            register::QUEUE_DEVICE_HIGH,
            register::INTERRUPT_STATUS,
            register::CONFIG_GENERATION,
        ]),
        1 => CONFIG_OFFSET..0x200u32,
        1 => any::<u32>(),
    ]
}

/// A value: small numbers and RAM addresses are what make progress; anything else too.
fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => 0..16u64,
        1 => prop::sample::select(vec![1u64, 2, 3, 7, 11, 15, 0x40, 0x80, 0xFF]),
        2 => (0..RAM_BYTES as u64).prop_map(|offset| (RAM_BASE + offset) & !0xF),
        1 => any::<u64>(),
    ]
}

#[derive(Clone, Debug)]
enum Access {
    Read { offset: u32, width: u8 },
    Write { offset: u32, width: u8, value: u64 },
    Input(Vec<u8>),
}

fn access() -> impl Strategy<Value = Access> {
    let width = prop_oneof![8 => Just(4u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(8u8), 1 => any::<u8>()];
    prop_oneof![
        3 => (offset(), width.clone()).prop_map(|(offset, width)| Access::Read { offset, width }),
        6 => (offset(), width, value()).prop_map(|(offset, width, value)| Access::Write { offset, width, value }),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Access::Input),
    ]
}

fn check_line(response: Response, interrupt_status: Option<u64>) {
    if let (Some(line), Some(status)) = (response.line(), interrupt_status) {
        assert_eq!(line, status != 0, "the line is InterruptStatus != 0");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_memory_and_register_writes_never_panic_the_block_device(
        seed in any::<u64>(),
        accesses in prop::collection::vec(access(), 0..200),
    ) {
        let mut guest = random_ram(seed);
        let mut blk = Blk {
            device: BlockDevice::new(super::blk::config(), Guest::window()).unwrap(),
            disk: MemoryDisk::new(super::blk::CAPACITY),
        };
        for access in &accesses {
            let request = match *access {
                Access::Read { offset, width } => Request::Read { offset, width },
                Access::Write { offset, width, value } => Request::Write { offset, width, value },
                Access::Input(_) => continue,
            };
            let response = blk.access(&mut guest, request);
            check_line(response, blk.device.read(register::INTERRUPT_STATUS, 4));
        }
    }

    #[test]
    fn random_memory_and_register_writes_never_panic_the_console(
        seed in any::<u64>(),
        accesses in prop::collection::vec(access(), 0..200),
    ) {
        let mut guest = random_ram(seed);
        let mut console = Console { device: ConsoleDevice::new(Guest::window()), output: Vec::new() };
        for access in &accesses {
            let response = match access {
                Access::Read { offset, width } => {
                    console.access(&mut guest, Request::Read { offset: *offset, width: *width })
                }
                Access::Write { offset, width, value } => console.access(
                    &mut guest,
                    Request::Write { offset: *offset, width: *width, value: *value },
                ),
                Access::Input(bytes) => {
                    let delivered = console.device.push_input(&mut guest.memory(), bytes);
                    prop_assert!(delivered <= bytes.len());
                    Response::DoneLine { line: console.device.interrupt_line() }
                }
            };
            check_line(response, console.device.read(register::INTERRUPT_STATUS, 4));
        }
    }

    #[test]
    fn hostile_descriptors_never_panic_the_block_device_nor_break_order(
        rounds in prop::collection::vec(round(16), 1..12),
    ) {
        let (mut blk, mut guest, mut ring) = super::blk::running(super::blk::config());
        for round in &rounds {
            round.apply(&mut guest, &mut ring);
            let before = used_position(blk.device.transport(), 0);
            let line = notify(&mut blk, &mut guest, 0);
            prop_assert_eq!(line, blk.device.interrupt_line());
            check_order(blk.device.transport(), 0, &ring, &guest, before)?;
        }
    }

    #[test]
    fn hostile_descriptors_never_panic_the_console_nor_break_order(
        rounds in prop::collection::vec((round(8), any::<bool>(), prop::collection::vec(any::<u8>(), 0..300)), 1..12),
    ) {
        let (mut console, mut guest, mut receive, mut transmit) = super::console::running();
        for (round, transmitting, input) in &rounds {
            let before = [RECEIVEQ, TRANSMITQ].map(|index| used_position(console.device.transport(), index));
            if *transmitting {
                round.apply(&mut guest, &mut transmit);
                notify(&mut console, &mut guest, u32::from(TRANSMITQ));
            } else {
                round.apply(&mut guest, &mut receive);
                let delivered = console.device.push_input(&mut guest.memory(), input);
                prop_assert!(delivered <= input.len());
            }
            check_order(console.device.transport(), RECEIVEQ, &receive, &guest, before[0])?;
            check_order(console.device.transport(), TRANSMITQ, &transmit, &guest, before[1])?;
        }
    }
}

fn used_position(transport: &crate::Transport, index: u16) -> u16 {
    transport.queue(index).unwrap().next_used()
}

/// In-order completion: a queue still running has completed every chain it took, and when
/// it completed any just now, the used index in memory says so. (Only then: the guest may
/// point buffers of one queue at another's used ring, and gets the device's data there.)
fn check_order(
    transport: &crate::Transport,
    index: u16,
    ring: &Ring,
    guest: &Guest,
    next_used_before: u16,
) -> Result<(), TestCaseError> {
    let queue = transport.queue(index).unwrap();
    if queue.is_ready() && !queue.is_broken() {
        prop_assert_eq!(queue.next_avail(), queue.next_used());
        if queue.next_used() != next_used_before {
            prop_assert_eq!(ring.used_index(guest), queue.next_used());
        }
    }
    Ok(())
}

/// Where hostile descriptors point: buffer slots (where request headers are planted), the
/// rings themselves, RAM's edges, anywhere.
fn address() -> impl Strategy<Value = u64> {
    let end = RAM_BASE + RAM_BYTES as u64;
    prop_oneof![
        4 => (0..32u64).prop_map(|slot| BUFFERS + 0x200 * slot),
        1 => (0..0x8000u64).prop_map(|offset| RAM_BASE + offset),
        1 => (0..64u64).prop_map(move |back| end - back),
        1 => any::<u64>(),
    ]
}

fn length() -> impl Strategy<Value = u32> {
    prop_oneof![
        1 => Just(0u32),
        2 => Just(1u32),
        2 => Just(16u32),
        3 => (1..4u32).prop_map(|sectors| 512 * sectors),
        2 => 0..2048u32,
        1 => any::<u32>(),
    ]
}

/// One batch of guest mischief on one ring.
#[derive(Clone, Debug)]
struct Round {
    /// Descriptor table entries: index, address, length, flags, next.
    descriptors: Vec<(u16, u64, u32, u16, u16)>,
    /// Block request headers planted at buffer slots: slot, type, sector.
    headers: Vec<(u64, u32, u64)>,
    /// Heads made available.
    heads: Vec<u16>,
    /// Chains linked as a driver would, of buffers (address, length, writable): mostly
    /// header, data, status, so requests reach the backend.
    chains: Vec<Vec<(u64, u32, bool)>>,
    /// Sometimes an available index of the guest's choosing instead.
    avail_index: Option<u16>,
    /// Sometimes the interrupt-suppression flag.
    avail_flags: u16,
}

fn round(size: u16) -> impl Strategy<Value = Round> {
    let descriptor = (0..size, address(), length(), 0..8u16, 0..size + 2);
    let header = (
        0..32u64,
        prop_oneof![4 => prop::sample::select(vec![0u32, 1, 4, 8]), 1 => any::<u32>()],
        prop_oneof![4 => 0..super::blk::CAPACITY + 2, 1 => any::<u64>()],
    );
    (
        prop::collection::vec(descriptor, 0..4),
        prop::collection::vec(header, 0..6),
        prop::collection::vec(prop_oneof![20 => 0..size, 1 => any::<u16>()], 0..3),
        prop::collection::vec(chain(), 0..4),
        prop::option::weighted(0.03, any::<u16>()),
        prop_oneof![9 => Just(0u16), 1 => any::<u16>()],
    )
        .prop_map(
            |(descriptors, headers, heads, chains, avail_index, avail_flags)| Round {
                descriptors,
                headers,
                heads,
                chains,
                avail_index,
                avail_flags,
            },
        )
}

/// A buffer a driver might use: usually a slot's worth in a slot, direction as in a request.
fn buffer(writable: impl Strategy<Value = bool>) -> impl Strategy<Value = (u64, u32, bool)> {
    (
        prop_oneof![8 => (0..32u64).prop_map(|slot| BUFFERS + 0x200 * slot), 1 => address()],
        prop_oneof![8 => (0..2u32).prop_map(|sectors| 512 * sectors), 1 => length()],
        writable,
    )
}

/// Header, data, status, each sometimes wrong.
fn chain() -> impl Strategy<Value = Vec<(u64, u32, bool)>> {
    let header = (
        (0..32u64).prop_map(|slot| BUFFERS + 0x200 * slot),
        prop_oneof![8 => Just(16u32), 1 => 0..64u32],
        prop::bool::weighted(0.05),
    );
    let status = (
        (0..32u64).prop_map(|slot| BUFFERS + 0x200 * slot + 0x1F0),
        prop_oneof![8 => Just(1u32), 1 => 0..4u32],
        prop::bool::weighted(0.95),
    );
    (
        header,
        prop::collection::vec(buffer(any::<bool>()), 0..3),
        status,
    )
        .prop_map(|(header, data, status)| {
            let mut buffers = vec![header];
            buffers.extend(data);
            buffers.push(status);
            buffers
        })
}

impl Round {
    fn apply(&self, guest: &mut Guest, ring: &mut Ring) {
        for &(slot, kind, sector) in &self.headers {
            let mut header = [0u8; 16];
            header[0..4].copy_from_slice(&kind.to_le_bytes());
            header[8..16].copy_from_slice(&sector.to_le_bytes());
            guest.put(BUFFERS + 0x200 * slot, &header);
        }
        for &(index, address, length, flags, next) in &self.descriptors {
            ring.put_descriptor(guest, index, address, length, flags, next);
        }
        for &head in &self.heads {
            ring.publish(guest, head);
        }
        for chain in &self.chains {
            let buffers: Vec<Buffer> = chain
                .iter()
                .map(|&(address, length, writable)| Buffer {
                    address,
                    length,
                    writable,
                })
                .collect();
            ring.add(guest, &buffers);
        }
        if let Some(index) = self.avail_index {
            ring.avail_index = index;
            ring.set_avail_index(guest, index);
        }
        ring.set_avail_flags(guest, self.avail_flags);
    }
}
