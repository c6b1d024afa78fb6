//! Transmission: what reaches the sink, when, and in which pieces.

use super::*;

#[test]
fn a_line_reaches_the_sink_whole_at_its_newline() {
    let mut uart = Pl011::new();
    assert!(transmit(&mut uart, b"pl011 says hello").is_empty());
    assert_eq!(uart.pending_output(), b"pl011 says hello");
    let lines = transmit(&mut uart, b"\n");
    assert_eq!(lines, [b"pl011 says hello\n".to_vec()]);
    assert!(uart.pending_output().is_empty());
}

#[test]
fn guest_lines_pass_through_verbatim() {
    let mut uart = Pl011::new();
    let lines = transmit(&mut uart, b"guest: one\r\nguest: two\r\n");
    assert_eq!(
        lines,
        [b"guest: one\r\n".to_vec(), b"guest: two\r\n".to_vec()]
    );
}

#[test]
fn a_long_line_is_flushed_every_256_bytes() {
    let mut uart = Pl011::new();
    let long = [b'#'; 2 * LINE_CAPACITY + 10];
    let lines = transmit(&mut uart, &long);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|line| line.len() == LINE_CAPACITY));
    assert_eq!(uart.pending_output().len(), 10);
}

#[test]
fn flush_hands_over_a_partial_line() {
    let mut uart = Pl011::new();
    transmit(&mut uart, b"login: ");
    let mut lines = Vec::new();
    uart.flush(&mut |line: &[u8]| lines.push(line.to_vec()));
    assert_eq!(lines, [b"login: ".to_vec()]);
    assert!(uart.pending_output().is_empty());
}

#[test]
fn byte_and_halfword_writes_transmit_the_low_byte() {
    let mut uart = Pl011::new();
    let mut lines = Vec::new();
    for (width, value) in [(1, 0x4F), (2, 0x14B), (4, 0xFFFF_FF0A)] {
        let request = Request::Write {
            offset: DR,
            width,
            value,
        };
        let response = uart.handle(request, &mut |line: &[u8]| lines.push(line.to_vec()));
        assert_eq!(response, Response::Done);
    }
    assert_eq!(lines, [b"OK\n".to_vec()]);
}

#[test]
fn a_disabled_transmitter_still_transmits_as_qemus_does() {
    let mut uart = Pl011::new();
    // Reset state: TXE set but UARTEN clear, so a strict PL011 would send nothing.
    assert!(!uart.transmitter_enabled());
    assert_eq!(transmit(&mut uart, b"early\n"), [b"early\n".to_vec()]);
    write(&mut uart, CR, 0);
    assert_eq!(transmit(&mut uart, b"off\n"), [b"off\n".to_vec()]);
    write(&mut uart, CR, u64::from(cr::UARTEN | cr::TXE));
    assert!(uart.transmitter_enabled());
}

#[test]
fn reads_never_produce_output() {
    let mut uart = Pl011::new();
    transmit(&mut uart, b"partial");
    for offset in [DR, FR, CR, RIS, MIS, PERIPH_ID0] {
        read(&mut uart, offset);
    }
    assert_eq!(uart.pending_output(), b"partial");
}

#[test]
fn a_fresh_model_is_the_restart_state() {
    // The server restarts by starting over from `Pl011::new()`: what the guest configured
    // and what was not yet flushed are gone.
    let mut uart = Pl011::new();
    write(&mut uart, LCR_H, 0x70);
    write(&mut uart, CR, 0x301);
    write(&mut uart, IMSC, u64::from(int::TX));
    transmit(&mut uart, b"unflushed");
    let mut uart = Pl011::new();
    assert_eq!(read(&mut uart, LCR_H), 0);
    assert_eq!(read(&mut uart, CR), 0x300);
    assert_eq!(read(&mut uart, IMSC), 0);
    assert!(uart.pending_output().is_empty());
}
