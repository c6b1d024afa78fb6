//! The vGIC register model (`vmm_core::vgic::Vgic`) under any sequence of guest register
//! accesses, device lines, SGIs and injection rounds. Besides never panicking, it keeps the
//! contracts its documentation states:
//!
//! - a read changes nothing, and neither does a write or a call that is refused;
//! - a write reports `vtimer_changed` exactly when `Vgic::vtimer` changed;
//! - an injection round hands out at most its free room, highest priority first (lower INTID
//!   among equals), never the virtual timer, never an interrupt already in flight;
//! - `completed` and `injection_failed` succeed exactly for interrupts in flight: level ones
//!   until they end, edge ones until the next round (checked against a model of "in flight").
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use vmm_core::vgic::{GicWindow, INTIDS, Injection, VTIMER_INTID, Vgic, VgicError};

#[derive(Arbitrary, Debug)]
enum Op {
    Read {
        window: Window,
        offset: Offset,
        width: Width,
    },
    Write {
        window: Window,
        offset: Offset,
        width: Width,
        value: u64,
    },
    SetLine {
        intid: Intid,
        high: bool,
    },
    SendSgi(u64),
    /// An injection round with `room` free places (0..=4) in the output.
    Next {
        room: u8,
    },
    Failed(Intid),
    Completed(Intid),
    Reset,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Window {
    Distributor,
    Redistributor,
}

/// Mostly inside the windows (64 KiB and 128 KiB), sometimes anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Offset {
    Inside(u32),
    Raw(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Width {
    Valid(u8),
    Raw(u8),
}

/// Mostly one of the 256 implemented INTIDs, sometimes anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Intid {
    Implemented(u8),
    Raw(u32),
}

impl Offset {
    fn get(self) -> u64 {
        match self {
            Self::Inside(offset) => u64::from(offset & 0x1_FFFF),
            Self::Raw(offset) => offset,
        }
    }
}

impl Width {
    fn get(self) -> u8 {
        match self {
            Self::Valid(width) => [1, 2, 4, 8][usize::from(width % 4)],
            Self::Raw(width) => width,
        }
    }
}

impl Intid {
    fn get(self) -> u32 {
        match self {
            Self::Implemented(intid) => u32::from(intid),
            Self::Raw(intid) => intid,
        }
    }
}

impl Window {
    fn get(self) -> GicWindow {
        match self {
            Self::Distributor => GicWindow::Distributor,
            Self::Redistributor => GicWindow::Redistributor,
        }
    }
}

/// What the model says is in flight: INTID → level-sensitive.
type InFlight = BTreeMap<u16, bool>;

libfuzzer_sys::fuzz_target!(|ops: Vec<Op>| {
    let mut vgic = Vgic::new();
    let mut in_flight = InFlight::new();
    for op in ops {
        apply(&mut vgic, &mut in_flight, op);
    }
});

fn apply(vgic: &mut Vgic, in_flight: &mut InFlight, op: Op) {
    let before = vgic.clone();
    match op {
        Op::Read {
            window,
            offset,
            width,
        } => {
            let value = vgic.read(window.get(), offset.get(), width.get());
            assert_eq!(*vgic, before, "a read has no side effects");
            if let Some(value) = value
                && width.get() < 8
            {
                let bits = u32::from(width.get()) * 8;
                assert_eq!(value >> bits, 0, "a read answers only `width` bytes");
            }
        }
        Op::Write {
            window,
            offset,
            width,
            value,
        } => match vgic.write(window.get(), offset.get(), width.get(), value) {
            Some(outcome) => {
                assert_eq!(outcome.vtimer_changed, vgic.vtimer() != before.vtimer());
            }
            None => assert_eq!(*vgic, before, "a refused write changes nothing"),
        },
        Op::SetLine { intid, high } => {
            let intid = intid.get();
            let result = vgic.set_line(intid, high);
            assert_eq!(result.is_ok(), (32..INTIDS as u32).contains(&intid));
            if result.is_err() {
                assert_eq!(*vgic, before);
            }
        }
        Op::SendSgi(value) => {
            let _ = vgic.send_sgi(value);
        }
        Op::Next { room } => next(vgic, in_flight, usize::from(room % 5)),
        Op::Failed(intid) => ended(
            vgic,
            in_flight,
            &before,
            intid.get(),
            Vgic::injection_failed,
        ),
        Op::Completed(intid) => ended(vgic, in_flight, &before, intid.get(), Vgic::completed),
        Op::Reset => {
            vgic.reset();
            assert_eq!(*vgic, Vgic::new());
            in_flight.clear();
        }
    }
}

/// One injection round with `room` free places, checked against the in-flight model.
fn next(vgic: &mut Vgic, in_flight: &mut InFlight, room: usize) {
    let filler = Injection {
        intid: 1023,
        priority: 0,
        level: false,
    };
    let mut out = heapless::Vec::<Injection, 4>::new();
    for _ in room..4 {
        let _ = out.push(filler);
    }
    vgic.next_injections(&mut out);
    assert!(out[..4 - room].iter().all(|&kept| kept == filler));
    let handed = &out[4 - room..];
    // Edge-triggered interrupts handed out before are forgotten at the start of each round.
    in_flight.retain(|_, level| *level);
    for window in handed.windows(2) {
        let key = |i: &Injection| (i.priority, i.intid);
        assert!(key(&window[0]) < key(&window[1]), "{handed:?} out of order");
    }
    for injection in handed {
        assert_ne!(
            injection.intid, VTIMER_INTID,
            "the kernel injects the timer itself"
        );
        assert!(usize::from(injection.intid) < INTIDS);
        let again = in_flight.insert(injection.intid, injection.level);
        assert_eq!(again, None, "{injection:?} handed out while in flight");
    }
}

/// `injection_failed` or `completed` of `intid`: accepted exactly when it is in flight.
fn ended(
    vgic: &mut Vgic,
    in_flight: &mut InFlight,
    before: &Vgic,
    intid: u32,
    end: fn(&mut Vgic, u32) -> Result<(), VgicError>,
) {
    let result = end(vgic, intid);
    let modelled = u16::try_from(intid)
        .ok()
        .and_then(|intid| in_flight.remove(&intid));
    match result {
        Ok(()) => assert!(modelled.is_some(), "{intid} ended but was not in flight"),
        Err(error) => {
            assert_eq!(modelled, None, "{intid} in flight but refused: {error:?}");
            assert_eq!(*vgic, *before, "a refused call changes nothing");
        }
    }
}
