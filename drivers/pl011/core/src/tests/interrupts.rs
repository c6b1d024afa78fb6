//! Interrupt state (PL011 TRM §3.4, §3.3.10 - §3.3.13): raw, mask, masked, clear, and the
//! conditions that raise each modelled interrupt.

use super::*;

#[test]
fn a_write_raises_the_transmit_interrupt() {
    let mut uart = Pl011::new();
    assert_eq!(read(&mut uart, RIS), 0);
    transmit(&mut uart, b"a");
    assert_eq!(read(&mut uart, RIS), u64::from(int::TX));
    // Masked out: raw only, and the line stays low.
    assert_eq!(read(&mut uart, MIS), 0);
    assert!(!uart.interrupt_line_level());
}

#[test]
fn the_mask_selects_what_reaches_mis_and_the_line() {
    let mut uart = Pl011::new();
    transmit(&mut uart, b"a");
    write(&mut uart, IMSC, u64::from(int::RX));
    assert_eq!(read(&mut uart, MIS), 0);
    assert!(!uart.interrupt_line_level());
    write(&mut uart, IMSC, u64::from(int::RX | int::TX));
    assert_eq!(read(&mut uart, IMSC), u64::from(int::RX | int::TX));
    assert_eq!(read(&mut uart, MIS), u64::from(int::TX));
    assert!(uart.interrupt_line_level());
    // Masking again lowers the line but keeps the raw status.
    write(&mut uart, IMSC, 0);
    assert!(!uart.interrupt_line_level());
    assert_eq!(read(&mut uart, RIS), u64::from(int::TX));
}

#[test]
fn icr_clears_only_the_bits_written_as_one() {
    let mut uart = Pl011::new();
    write(&mut uart, IMSC, u64::from(int::ALL));
    transmit(&mut uart, b"a");
    uart.receive(b"z");
    assert_eq!(read(&mut uart, RIS), u64::from(int::TX | int::RX | int::RT));
    write(&mut uart, ICR, u64::from(int::RX));
    assert_eq!(read(&mut uart, RIS), u64::from(int::TX | int::RT));
    write(&mut uart, ICR, 0);
    assert_eq!(read(&mut uart, RIS), u64::from(int::TX | int::RT));
    write(&mut uart, ICR, u64::from(int::ALL));
    assert_eq!(read(&mut uart, RIS), 0);
    assert!(!uart.interrupt_line_level());
    // The next write raises TX again: the FIFO passed through its trigger level once more.
    transmit(&mut uart, b"b");
    assert_eq!(read(&mut uart, MIS), u64::from(int::TX));
    assert!(uart.interrupt_line_level());
}

#[test]
fn receive_interrupt_follows_the_trigger_level() {
    let mut uart = Pl011::new();
    write(&mut uart, LCR_H, u64::from(lcr_h::FEN));
    // IFLS resets to half full: 16 of 32.
    uart.receive(&[b'r'; 15]);
    assert_eq!(
        read(&mut uart, RIS),
        u64::from(int::RT),
        "below the trigger: timeout only"
    );
    uart.receive(b"s");
    assert_eq!(read(&mut uart, RIS), u64::from(int::RX | int::RT));
    read(&mut uart, DR);
    assert_eq!(
        read(&mut uart, RIS),
        u64::from(int::RT),
        "below the trigger again"
    );
    for _ in 0..15 {
        read(&mut uart, DR);
    }
    assert_eq!(read(&mut uart, RIS), 0, "empty: the timeout clears");
}

#[test]
fn a_lower_trigger_level_raises_rx_sooner() {
    let mut uart = Pl011::new();
    write(&mut uart, LCR_H, u64::from(lcr_h::FEN));
    write(&mut uart, IFLS, 0b000 << 3);
    uart.receive(b"abcd");
    assert_ne!(read(&mut uart, RIS) as u32 & int::RX, 0);
}

#[test]
fn character_mode_raises_rx_per_character() {
    let mut uart = Pl011::new();
    write(&mut uart, IMSC, u64::from(int::RX));
    uart.receive(b"q");
    assert!(uart.interrupt_line_level());
    assert_eq!(read(&mut uart, DR), u64::from(b'q'));
    assert!(!uart.interrupt_line_level());
    assert_eq!(read(&mut uart, RIS), 0);
}

#[test]
fn overrun_sets_oe_in_ris_and_rsr_until_cleared() {
    let mut uart = Pl011::new();
    uart.receive(b"ab");
    assert_ne!(read(&mut uart, RIS) as u32 & int::OE, 0);
    assert_eq!(read(&mut uart, RSR_ECR), u64::from(rsr::OE));
    assert_eq!(
        read(&mut uart, DR),
        u64::from(b'a'),
        "the FIFO's content stays valid"
    );
    // The next character to enter the FIFO carries DR.OE (bit 11).
    uart.receive(b"c");
    assert_eq!(read(&mut uart, DR), u64::from(b'c') | 1 << 11);
    // Any write to UARTECR clears the status; UARTICR clears the interrupt.
    write(&mut uart, RSR_ECR, 0);
    assert_eq!(read(&mut uart, RSR_ECR), 0);
    write(&mut uart, ICR, u64::from(int::OE));
    assert_eq!(read(&mut uart, RIS) as u32 & int::OE, 0);
}

#[test]
fn loopback_feeds_the_receiver_instead_of_the_console() {
    let mut uart = Pl011::new();
    write(&mut uart, LCR_H, u64::from(lcr_h::FEN));
    write(
        &mut uart,
        CR,
        u64::from(cr::UARTEN | cr::TXE | cr::RXE | cr::LBE),
    );
    assert!(transmit(&mut uart, b"hi\n").is_empty());
    assert!(uart.pending_output().is_empty());
    // Input from outside is disconnected in loopback.
    uart.receive(b"X");
    let ris = read(&mut uart, RIS) as u32;
    assert_eq!(ris & (int::TX | int::RT), int::TX | int::RT);
    for byte in b"hi\n" {
        assert_eq!(read(&mut uart, DR), u64::from(*byte));
    }
    assert_eq!(read(&mut uart, FR), u64::from(fr::TXFE | fr::RXFE));
}

#[test]
fn clearing_fen_drops_pending_receive_interrupts() {
    let mut uart = Pl011::new();
    write(&mut uart, LCR_H, u64::from(lcr_h::FEN));
    write(&mut uart, IMSC, u64::from(int::RT));
    uart.receive(b"abc");
    assert!(uart.interrupt_line_level());
    write(&mut uart, LCR_H, 0);
    assert!(!uart.interrupt_line_level());
}

#[test]
fn receive_room_is_what_the_fifo_or_holding_register_can_still_take() {
    let mut uart = Pl011::new();
    assert_eq!(
        uart.receive_room(),
        1,
        "FIFOs off at reset: one holding register"
    );
    uart.receive(b"a");
    assert_eq!(uart.receive_room(), 0);
    let mut uart = Pl011::new();
    let mut sink = |_: &[u8]| {};
    uart.write(
        registers::LCR_H,
        4,
        u64::from(registers::lcr_h::FEN),
        &mut sink,
    );
    assert_eq!(uart.receive_room(), crate::RX_FIFO_DEPTH);
    uart.receive(b"abc");
    assert_eq!(uart.receive_room(), crate::RX_FIFO_DEPTH - 3);
    uart.read(registers::DR, 4);
    assert_eq!(uart.receive_room(), crate::RX_FIFO_DEPTH - 2);
}
