//! Held-back console input: fed to the receive FIFO as it has room, in order, and bounded.

use super::*;

/// Reads every character the receive FIFO holds now.
fn drain(uart: &mut Pl011) -> Vec<u8> {
    let mut out = Vec::new();
    while read(uart, 0x018) & u64::from(fr::RXFE) == 0 {
        out.push(read(uart, 0x000) as u8);
    }
    out
}

fn fifo_uart() -> Pl011 {
    let mut uart = Pl011::new();
    write(&mut uart, 0x02C, u64::from(lcr_h::FEN));
    write(&mut uart, 0x030, u64::from(cr::UARTEN | cr::RXE | cr::TXE));
    uart
}

#[test]
fn input_enters_the_fifo_as_it_has_room_and_in_order() {
    let mut uart = fifo_uart();
    let mut pending = PendingInput::new();
    let input: Vec<u8> = (0..40u8).collect();
    assert_eq!(pending.push(&input), 0);
    pending.feed(&mut uart);
    assert_eq!(
        pending.len(),
        40 - RX_FIFO_DEPTH,
        "the FIFO took what it had room for"
    );
    let mut seen = drain(&mut uart);
    while !pending.is_empty() {
        pending.feed(&mut uart);
        seen.extend(drain(&mut uart));
    }
    assert_eq!(seen, input, "nothing overrun, nothing reordered");
}

#[test]
fn past_its_capacity_input_is_dropped_and_the_ring_still_works() {
    let mut uart = fifo_uart();
    let mut pending = PendingInput::new();
    let flood: Vec<u8> = (0..PENDING_CAPACITY + 100).map(|i| i as u8).collect();
    assert_eq!(pending.push(&flood), 100);
    assert_eq!(pending.len(), PENDING_CAPACITY);
    assert_eq!(pending.push(b"x"), 1, "full: dropped");
    // The guest reads some; the ring wraps and keeps the order.
    pending.feed(&mut uart);
    assert_eq!(drain(&mut uart), flood[..RX_FIFO_DEPTH]);
    assert_eq!(pending.push(b"after"), 0);
    let mut seen = Vec::new();
    while !pending.is_empty() {
        pending.feed(&mut uart);
        seen.extend(drain(&mut uart));
    }
    let mut expected = flood[RX_FIFO_DEPTH..PENDING_CAPACITY].to_vec();
    expected.extend_from_slice(b"after");
    assert_eq!(seen, expected);
}
