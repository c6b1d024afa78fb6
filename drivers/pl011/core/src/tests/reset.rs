//! The VM's reset (`Request::Reset`): whatever a guest did to the UART, it reads afterwards as a
//! fresh one does, and the line of output it left unfinished is printed, not carried over.

use super::*;

/// Every register a guest can read, in offset order (UARTDR last: reading it pops the FIFO).
const READABLE: [u32; 22] = [
    RSR_ECR,
    FR,
    ILPR,
    IBRD,
    FBRD,
    LCR_H,
    CR,
    IFLS,
    IMSC,
    RIS,
    MIS,
    ICR,
    DMACR,
    PERIPH_ID0,
    PERIPH_ID0 + 4,
    PERIPH_ID0 + 8,
    PERIPH_ID0 + 0xC,
    PERIPH_ID0 + 0x10,
    PERIPH_ID0 + 0x14,
    PERIPH_ID0 + 0x18,
    PERIPH_ID0 + 0x1C,
    DR,
];

fn register_values(uart: &mut Pl011) -> Vec<(u32, u64)> {
    READABLE
        .iter()
        .map(|&offset| (offset, read(uart, offset)))
        .collect()
}

/// A UART as a running guest leaves it: every writable register programmed, interrupts
/// unmasked and raised, input in the FIFO after an overrun, half a line transmitted.
fn used_uart() -> Pl011 {
    let mut uart = Pl011::new();
    write(&mut uart, ILPR, 0x5A);
    write(&mut uart, IBRD, 0x27);
    write(&mut uart, FBRD, 0x04);
    write(&mut uart, LCR_H, u64::from(lcr_h::FEN) | 0x60);
    write(&mut uart, CR, 0x301);
    write(&mut uart, IFLS, 0x00);
    write(&mut uart, IMSC, u64::from(int::ALL));
    write(&mut uart, DMACR, 0x7);
    uart.receive(&[b'z'; RX_FIFO_DEPTH + 1]);
    assert!(transmit(&mut uart, b"reboot: Restarting sys").is_empty());
    uart
}

#[test]
fn a_reset_uart_reads_as_a_fresh_one() {
    let mut uart = used_uart();
    let mut fresh = Pl011::new();
    let before = register_values(&mut uart.clone());
    assert_ne!(
        before,
        register_values(&mut fresh.clone()),
        "the used UART must differ, or the test proves nothing"
    );
    assert!(uart.interrupt_line_level());

    let mut lines = Vec::new();
    let response = uart.handle(Request::Reset, &mut |line: &[u8]| lines.push(line.to_vec()));

    assert_eq!(response, Response::DoneLine { line: false });
    assert_eq!(
        register_values(&mut uart.clone()),
        register_values(&mut fresh)
    );
    assert_eq!(
        uart,
        Pl011::new(),
        "hidden state too (FIFO, overrun, output)"
    );
    assert!(!uart.interrupt_line_level());
    assert_eq!(lines, [b"reboot: Restarting sys".to_vec()]);
}

#[test]
fn after_a_reset_the_uart_works_from_its_reset_values() {
    let mut uart = used_uart();
    uart.reset(&mut |_: &[u8]| {});
    // FIFOs off again (LCR_H.FEN reset): one character fills the holding register.
    uart.receive(b"ab");
    assert_eq!(
        read(&mut uart, FR) & u64::from(fr::RXFF),
        u64::from(fr::RXFF)
    );
    assert_eq!(read(&mut uart, DR), u64::from(b'a'));
    assert_eq!(transmit(&mut uart, b"boot 2\n"), [b"boot 2\n".to_vec()]);
}

#[test]
fn a_reset_with_nothing_transmitted_prints_nothing() {
    let mut uart = Pl011::new();
    uart.reset(&mut no_output);
    assert_eq!(uart, Pl011::new());
}
