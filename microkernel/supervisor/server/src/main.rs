//! The supervisor: receives every other server's faults on the `faults` endpoint (the sender's
//! badge names the server), reports them, and restarts the server from its pristine image or
//! leaves it down, as its restart policy says. It never replies to a fault: a restart cancels
//! the faulting thread's wait, and a server left down stays blocked.
#![no_std]
#![no_main]

use abi::{FaultInfo, InvocationLabel, REPLY_SLOT};
use bootdesc::RestartPolicy;
use supervisor_core::{Decision, Ledger};
use userlib::{println, syscall};

userlib::entry!(main);

/// A supervised server, as the boot info describes it.
#[derive(Clone, Copy)]
struct Supervised {
    name: &'static str,
    tcb_slot: u64,
    restart: RestartPolicy,
}

fn find(badge: u64) -> Option<Supervised> {
    let mut found = None;
    bootdesc::bootinfo::for_each_supervised(userlib::caps::bootinfo(), |server| {
        if server.fault_badge == badge {
            found = Some(Supervised {
                name: server.name,
                tcb_slot: u64::from(server.tcb_slot),
                restart: server.restart,
            });
            return false;
        }
        true
    });
    found
}

fn now_ms() -> u64 {
    let (ticks, frequency) = syscall::now_ticks();
    ticks / (frequency / 1000).max(1)
}

fn main() -> ! {
    let faults = userlib::cap("faults");
    let mut ledger = Ledger::new();
    println!("supervisor: watching {} servers", count_supervised());
    loop {
        let (badge, info, words) = syscall::recv(faults, REPLY_SLOT);
        let Some(fault) = FaultInfo::from_message(info.label(), [words[0], words[1], words[2]])
        else {
            println!(
                "supervisor: ignoring a message that is not a fault (label {})",
                info.label()
            );
            continue;
        };
        let Some(server) = find(badge) else {
            println!("supervisor: fault from unknown badge {badge}");
            continue;
        };
        match (fault.kind, abi::InjectAt::from_raw(fault.syndrome)) {
            // A kernel-made fault (test systems): the address word is the count it fired at.
            (abi::FaultKind::Injected, Some(at)) => println!(
                "supervisor: server `{}` faulted: injected fault at its {} {} (pc {:#x})",
                server.name,
                at.name(),
                fault.address,
                fault.pc
            ),
            _ => println!(
                "supervisor: server `{}` faulted: {} at address {:#x} (pc {:#x})",
                server.name,
                fault.kind.name(),
                fault.address,
                fault.pc
            ),
        }
        defmt::info!(
            "fault {=str} in {=str}: pc {=u64:#x} address {=u64:#x} syndrome {=u64:#x}",
            fault.kind.name(),
            server.name,
            fault.pc,
            fault.address,
            fault.syndrome
        );
        match ledger.decide(badge, server.restart, now_ms()) {
            Decision::Restart => {
                let (info, _) =
                    syscall::invoke(server.tcb_slot, InvocationLabel::TcbRestart, [1, 0, 0, 0]);
                let (_, state) =
                    syscall::invoke(server.tcb_slot, InvocationLabel::TcbReadState, [0; 4]);
                if info.is_error() {
                    println!(
                        "supervisor: restarting `{}` failed (error {})",
                        server.name,
                        info.label()
                    );
                } else {
                    println!(
                        "supervisor: restarted `{}` (generation {})",
                        server.name, state[0]
                    );
                }
            }
            decision => {
                syscall::invoke(server.tcb_slot, InvocationLabel::TcbRestart, [0, 0, 0, 0]);
                let why = match decision {
                    Decision::BudgetExhausted => "its restart budget is exhausted",
                    _ => "its restart policy is never",
                };
                println!("supervisor: server `{}` stays down: {why}", server.name);
            }
        }
    }
}

fn count_supervised() -> usize {
    let mut count = 0;
    bootdesc::bootinfo::for_each_supervised(userlib::caps::bootinfo(), |_| {
        count += 1;
        true
    });
    count
}
