//! The injection decisions: which interrupts go to the kernel's list registers next, and how
//! an interrupt handed out comes back (a failed injection, its maintenance exit). See the
//! module comment of `vgic` ("In flight").

use super::{INTIDS, Injection, MAINTENANCE_INTID, VTIMER_INTID, Vgic, VgicError};

impl Vgic {
    /// Whether the model would offer `intid` now.
    fn deliverable(&self, intid: usize) -> bool {
        let irqs = &self.irqs;
        intid != usize::from(VTIMER_INTID)
            && intid != usize::from(MAINTENANCE_INTID)
            && irqs.is_pending(intid)
            && irqs.enabled.get(intid)
            && self.group_enabled(intid)
            && !irqs.in_flight.get(intid)
            && !irqs.active.get(intid)
            // An SPI routed to an affinity no PE has is not forwarded (GICD_IROUTER<n>).
            && (intid < 32 || irqs.route[intid] == 0)
    }

    /// Fills `out` (up to its free capacity) with the interrupts to hand to the kernel now,
    /// highest priority (lowest value) first, lower INTID first among equals, and marks them in
    /// flight. Edge-triggered interrupts handed out before are forgotten first (no maintenance
    /// exit reports their end).
    pub fn next_injections(&mut self, out: &mut heapless::Vec<Injection, 4>) {
        let irqs = &mut self.irqs;
        for n in 0..INTIDS / 32 {
            let ended = irqs.in_flight.word(n) & !irqs.awaiting_eoi.word(n);
            irqs.in_flight.set_word(n, irqs.in_flight.word(n) & !ended);
            irqs.consumed_latch
                .set_word(n, irqs.consumed_latch.word(n) & !ended);
        }
        let free = out.capacity() - out.len();
        let mut chosen: heapless::Vec<(u8, u16), 4> = heapless::Vec::new();
        for intid in 0..INTIDS {
            if !self.deliverable(intid) {
                continue;
            }
            let key = (self.irqs.priority[intid], intid as u16);
            let at = chosen.iter().position(|&other| key < other);
            match at {
                Some(at) => {
                    if chosen.len() == free {
                        chosen.pop();
                    }
                    // Cannot fail: there is room after the pop, and `at` <= len.
                    let _ = chosen.insert(at, key);
                }
                None if chosen.len() < free => {
                    let _ = chosen.push(key);
                }
                None => {}
            }
        }
        for (priority, intid) in chosen {
            let index = usize::from(intid);
            let irqs = &mut self.irqs;
            let level = !irqs.edge.get(index);
            irqs.consumed_latch.set(index, irqs.latched.get(index));
            irqs.latched.set(index, false);
            irqs.in_flight.set(index, true);
            irqs.awaiting_eoi.set(index, level);
            // Cannot fail: `chosen` holds at most the free capacity.
            let _ = out.push(Injection {
                intid,
                priority,
                level,
            });
        }
    }

    /// The kernel had no free list register for `intid`: it is queued again as it was.
    pub fn injection_failed(&mut self, intid: u32) -> Result<(), VgicError> {
        let intid = self.in_flight_index(intid)?;
        let irqs = &mut self.irqs;
        if irqs.consumed_latch.get(intid) {
            irqs.latched.set(intid, true);
        }
        self.end_flight(intid);
        Ok(())
    }

    /// The maintenance exit for `intid`: the guest deactivated it. It is no longer in flight
    /// nor active; a level-sensitive interrupt whose line is still high is pending again.
    pub fn completed(&mut self, intid: u32) -> Result<(), VgicError> {
        let intid = self.in_flight_index(intid)?;
        self.irqs.active.set(intid, false);
        self.end_flight(intid);
        Ok(())
    }

    fn in_flight_index(&self, intid: u32) -> Result<usize, VgicError> {
        let index = usize::try_from(intid)
            .ok()
            .filter(|&index| index < INTIDS)
            .ok_or(VgicError::OutOfRange)?;
        if self.irqs.in_flight.get(index) {
            Ok(index)
        } else {
            Err(VgicError::NotInFlight)
        }
    }

    pub(super) fn end_flight(&mut self, intid: usize) {
        let irqs = &mut self.irqs;
        irqs.in_flight.set(intid, false);
        irqs.consumed_latch.set(intid, false);
        irqs.awaiting_eoi.set(intid, false);
    }
}
