//! Calls the fast path must refuse: each falls back without changing anything, and the full
//! path that follows gives the right answer (what the threads receive, what waits where).

use super::*;

#[test]
fn a_call_falls_back_when_a_thread_of_higher_priority_than_the_server_is_ready() {
    let regs = call_regs(message(7, 2));
    Case::new(CLIENT, Syscall::Call, &regs, &server_waits)
        .priorities([50, 100, 80])
        .falls_back(|system, _| {
            assert_eq!(system.current, OTHER, "OTHER outranks the woken server");
            assert_eq!(system.tcb(SERVER).state, ThreadState::Running);
            assert_eq!(
                received(system, SERVER).0,
                101,
                "the server has the message"
            );
            assert_eq!(system.tcb(CLIENT).state, blocked_on_reply_from_server());
        });
}

#[test]
fn a_call_falls_back_when_a_thread_of_equal_priority_was_ready_first() {
    let regs = call_regs(message(7, 2));
    Case::new(CLIENT, Syscall::Call, &regs, &server_waits)
        .priorities([50, 50, 50])
        .falls_back(|system, _| {
            assert_eq!(
                system.current, OTHER,
                "OTHER was ready first at the same level"
            );
            assert_eq!(system.sched.highest_priority(), Some(50));
            assert_eq!(system.tcb(SERVER).state, ThreadState::Running);
        });
}

#[test]
fn a_call_falls_back_when_a_second_receiver_waits_behind_the_server() {
    let two_receivers = |system: &mut System<'_>, memory: &mut MockMemory| {
        server_waits(system, memory);
        other_waits_too(system, memory);
    };
    let regs = call_regs(message(7, 2));
    Case::new(CLIENT, Syscall::Call, &regs, &two_receivers).falls_back(|system, _| {
        assert_eq!(system.current, SERVER);
        assert_eq!(received(system, SERVER).0, 101);
        assert_eq!(system.endpoints[0].state, EndpointState::Receiving);
        let queue = system.endpoints[0].queue;
        assert_eq!(
            (queue.head, queue.tail),
            (OTHER, OTHER),
            "OTHER still waits"
        );
        assert!(matches!(
            system.tcb(OTHER).state,
            ThreadState::BlockedOnReceive { ep: 0, .. }
        ));
    });
}

#[test]
fn a_call_longer_than_four_words_falls_back_and_the_rest_comes_through_the_buffer() {
    for length in [5, 10, 64] {
        let with_long_message = |system: &mut System<'_>, memory: &mut MockMemory| {
            let buffer = system.tcb(CLIENT).ipc_buffer;
            for index in 4..64 {
                memory.0.insert((buffer, index), index as u64 * 1000);
            }
            server_waits(system, memory);
        };
        let regs = call_regs(message(7, length));
        Case::new(CLIENT, Syscall::Call, &regs, &with_long_message).falls_back(|system, memory| {
            let (_, info, words) = received(system, SERVER);
            assert_eq!((info.length(), words), (length as usize, CALL_WORDS));
            let buffer = system.tcb(SERVER).ipc_buffer;
            for index in 4..length as usize {
                assert_eq!(memory.0.get(&(buffer, index)), Some(&(index as u64 * 1000)));
            }
            assert_eq!(
                memory.0.get(&(buffer, length as usize)),
                None,
                "no more than sent"
            );
        });
    }
}

#[test]
fn a_call_transferring_a_capability_falls_back_and_the_capability_arrives() {
    let server_accepts_a_cap = |system: &mut System<'_>, memory: &mut MockMemory| {
        let (server, client) = (system.tcb(SERVER).ipc_buffer, system.tcb(CLIENT).ipc_buffer);
        memory.0.insert((server, IPC_BUFFER_RECEIVE_SLOT), 12);
        memory.0.insert((client, IPC_BUFFER_SEND_CAP), NTFN);
        server_waits(system, memory);
    };
    // No message words at all: the capability alone must send the call to the full path.
    let regs = call_regs(MessageInfo::new(7, 1, 0).raw());
    Case::new(CLIENT, Syscall::Call, &regs, &server_accepts_a_cap).falls_back(|system, _| {
        assert_eq!(received(system, SERVER).1.extra_caps(), 1);
        assert_eq!(
            system.lookup(SERVER, 12),
            Ok(Cap::Notification {
                ntfn: 0,
                badge: 1 << CLIENT,
                rights: Rights::WRITE
            })
        );
    });
}

#[test]
fn a_call_with_a_stale_generation_falls_back_and_is_answered_restarted() {
    let server_restarted_since = |system: &mut System<'_>, memory: &mut MockMemory| {
        server_waits(system, memory);
        system.endpoints[0].generation = 1;
    };
    let regs = call_regs(message(7, 2));
    Case::new(CLIENT, Syscall::Call, &regs, &server_restarted_since).falls_back(|system, _| {
        assert_eq!(
            error_of(system, CLIENT),
            Some(KernelError::Restarted { generation: 1 })
        );
        assert!(matches!(
            system.lookup(CLIENT, EP),
            Ok(Cap::Endpoint { generation: 1, .. })
        ));
        assert_eq!(
            system.tcb(SERVER).state,
            server_receiving(),
            "the server still waits"
        );
        assert_eq!(system.current, CLIENT);
    });
}

#[test]
fn a_call_without_the_write_right_falls_back_and_is_refused() {
    for rights in [Rights::READ, Rights::GRANT, Rights::NONE] {
        let read_only = |system: &mut System<'_>, memory: &mut MockMemory| {
            put_cap(system, CLIENT, EP, endpoint_cap(101, rights));
            server_waits(system, memory);
        };
        let regs = call_regs(message(7, 2));
        Case::new(CLIENT, Syscall::Call, &regs, &read_only).falls_back(|system, _| {
            assert_eq!(
                error_of(system, CLIENT),
                Some(KernelError::InsufficientRights { slot: EP })
            );
            assert_eq!(system.tcb(SERVER).state, server_receiving());
        });
    }
}

#[test]
fn a_call_to_a_server_marked_down_falls_back_and_is_answered_server_down() {
    let down = |system: &mut System<'_>, memory: &mut MockMemory| {
        server_waits(system, memory);
        system.endpoints[0].down = true;
    };
    let regs = call_regs(message(7, 2));
    Case::new(CLIENT, Syscall::Call, &regs, &down).falls_back(|system, _| {
        assert_eq!(
            error_of(system, CLIENT),
            Some(KernelError::ServerDown { generation: 0 })
        );
        assert_eq!(system.tcb(SERVER).state, server_receiving());
    });
}

#[test]
fn a_call_with_nobody_receiving_falls_back_and_queues_the_caller() {
    let other_queued_first = |system: &mut System<'_>, memory: &mut MockMemory| {
        prepare(system, memory, OTHER, Syscall::Call, &[EP, message(2, 0)]);
    };
    for (setup, queue) in [
        (
            &(|_: &mut System<'_>, _: &mut MockMemory| {}) as Setup<'_>,
            [CLIENT, CLIENT],
        ),
        (&other_queued_first, [OTHER, CLIENT]),
    ] {
        let regs = call_regs(message(7, 2));
        Case::new(CLIENT, Syscall::Call, &regs, setup).falls_back(|system, _| {
            assert_eq!(
                system.tcb(CLIENT).state,
                ThreadState::BlockedOnSend {
                    ep: 0,
                    badge: 101,
                    is_call: true,
                    can_grant: true,
                    slot: EP as u32
                }
            );
            assert_eq!(system.endpoints[0].state, EndpointState::Sending);
            let ep_queue = system.endpoints[0].queue;
            assert_eq!([ep_queue.head, ep_queue.tail], queue);
            assert_eq!(system.current, SERVER);
        });
    }
}

#[test]
fn a_call_to_a_receiver_without_a_reply_object_falls_back_and_is_cancelled() {
    let no_reply_object = |system: &mut System<'_>, memory: &mut MockMemory| {
        prepare(
            system,
            memory,
            SERVER,
            Syscall::Recv,
            &[EP, 0, 0, 0, 0, 0, 0],
        );
    };
    let regs = call_regs(message(7, 2));
    Case::new(CLIENT, Syscall::Call, &regs, &no_reply_object).falls_back(|system, _| {
        assert_eq!(received(system, SERVER).0, 101, "the message is delivered");
        assert_eq!(error_of(system, CLIENT), Some(KernelError::Cancelled));
        assert_eq!(system.tcb(CLIENT).state, ThreadState::Running);
        assert_eq!(system.current, SERVER);
    });
}

#[test]
fn a_call_through_anything_but_an_endpoint_falls_back() {
    for (slot, error) in [
        (NTFN, KernelError::IllegalOperation { label: 7 }),
        (9, KernelError::InvalidCapability { slot: 9 }),
        (99, KernelError::InvalidCapability { slot: 99 }),
    ] {
        let mut regs = call_regs(message(7, 2));
        regs[0] = slot;
        Case::new(CLIENT, Syscall::Call, &regs, &server_waits).falls_back(|system, _| {
            assert_eq!(error_of(system, CLIENT), Some(error));
            assert_eq!(system.tcb(SERVER).state, server_receiving());
        });
    }
}

/// The receiver's reply object still names a caller: no system call sequence leaves it so
/// (a receive cancels a stale caller before blocking), but the fast path must not overwrite it.
#[test]
fn a_call_falls_back_when_the_receivers_reply_object_is_still_owed() {
    let reply_owed = |system: &mut System<'_>, memory: &mut MockMemory| {
        server_waits(system, memory);
        system.replies[usize::from(SERVER)].caller = Some(OTHER);
    };
    let regs = call_regs(message(7, 2));
    Case::new(CLIENT, Syscall::Call, &regs, &reply_owed).falls_back(|_, _| {});
}

#[test]
fn a_reply_recv_falls_back_when_a_thread_of_higher_priority_than_the_caller_is_ready() {
    let regs = reply_recv_regs(message(9, 1));
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &server_serves_client)
        .priorities([100, 50, 80])
        .falls_back(|system, _| {
            assert_eq!(system.current, OTHER);
            assert_eq!(
                received(system, CLIENT),
                (0, MessageInfo::new(9, 0, 1), REPLY_WORDS)
            );
            assert_eq!(system.tcb(CLIENT).state, ThreadState::Running);
            assert_eq!(system.tcb(SERVER).state, server_receiving());
        });
}

#[test]
fn a_reply_recv_falls_back_when_a_thread_of_equal_priority_was_ready_first() {
    let regs = reply_recv_regs(message(9, 1));
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &server_serves_client)
        .priorities([100, 50, 50])
        .falls_back(|system, _| {
            assert_eq!(
                system.current, OTHER,
                "OTHER was ready first at the same level"
            );
            assert_eq!(system.tcb(CLIENT).state, ThreadState::Running);
        });
}

#[test]
fn a_reply_recv_falls_back_when_a_sender_is_queued_and_takes_its_message_at_once() {
    let other_queued = |system: &mut System<'_>, memory: &mut MockMemory| {
        server_serves_client(system, memory);
        prepare(
            system,
            memory,
            OTHER,
            Syscall::Call,
            &[EP, message(2, 1), 5],
        );
    };
    let regs = reply_recv_regs(message(9, 1));
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &other_queued).falls_back(|system, _| {
        assert_eq!(
            received(system, CLIENT),
            (0, MessageInfo::new(9, 0, 1), REPLY_WORDS)
        );
        assert_eq!(
            system.current, SERVER,
            "the server goes on with OTHER's call"
        );
        let (badge, info, words) = received(system, SERVER);
        assert_eq!((badge, info.label(), words[0]), (102, 2, 5));
        assert_eq!(
            system.tcb(OTHER).state,
            ThreadState::BlockedOnReply {
                reply: SERVER,
                ep: 0,
                slot: EP as u32
            }
        );
        assert_eq!(system.endpoints[0].state, EndpointState::Idle);
    });
}

#[test]
fn a_reply_recv_falls_back_when_another_receiver_waits_and_queues_behind_it() {
    let other_receiving = |system: &mut System<'_>, memory: &mut MockMemory| {
        server_serves_client(system, memory);
        other_waits_too(system, memory);
    };
    let regs = reply_recv_regs(message(9, 1));
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &other_receiving).falls_back(|system, _| {
        assert_eq!(system.current, CLIENT);
        assert_eq!(system.tcb(SERVER).state, server_receiving());
        let queue = system.endpoints[0].queue;
        assert_eq!((queue.head, queue.tail), (OTHER, SERVER));
    });
}

#[test]
fn a_reply_recv_longer_than_four_words_falls_back_and_the_rest_comes_through_the_buffer() {
    let with_long_reply = |system: &mut System<'_>, memory: &mut MockMemory| {
        let buffer = system.tcb(SERVER).ipc_buffer;
        for index in 4..8 {
            memory.0.insert((buffer, index), index as u64 * 7);
        }
        server_serves_client(system, memory);
    };
    let regs = reply_recv_regs(message(9, 8));
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &with_long_reply).falls_back(|system, memory| {
        assert_eq!(
            received(system, CLIENT),
            (0, MessageInfo::new(9, 0, 8), REPLY_WORDS)
        );
        let buffer = system.tcb(CLIENT).ipc_buffer;
        let tail: Vec<_> = (4..8)
            .map(|index| memory.0.get(&(buffer, index)).copied())
            .collect();
        assert_eq!(tail, [Some(28), Some(35), Some(42), Some(49)]);
    });
}

#[test]
fn a_reply_recv_lending_a_capability_falls_back_and_the_capability_arrives() {
    let client_accepts_a_cap = |system: &mut System<'_>, memory: &mut MockMemory| {
        let (server, client) = (system.tcb(SERVER).ipc_buffer, system.tcb(CLIENT).ipc_buffer);
        memory.0.insert((client, IPC_BUFFER_RECEIVE_SLOT), 13);
        memory.0.insert((server, IPC_BUFFER_SEND_CAP), NTFN);
        server_serves_client(system, memory);
    };
    let regs = reply_recv_regs(MessageInfo::new(9, 1, 0).raw());
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &client_accepts_a_cap).falls_back(|system, _| {
        assert_eq!(received(system, CLIENT).1, MessageInfo::new(9, 1, 0));
        assert_eq!(
            system.lookup(CLIENT, 13),
            Ok(Cap::Notification {
                ntfn: 0,
                badge: 1 << SERVER,
                rights: Rights::READ
            })
        );
    });
}

#[test]
fn a_reply_recv_without_the_read_right_falls_back_answers_and_is_refused() {
    let write_only = |system: &mut System<'_>, memory: &mut MockMemory| {
        put_cap(system, SERVER, SPARE, endpoint_cap(0, Rights::WRITE));
        server_serves_client(system, memory);
    };
    let mut regs = reply_recv_regs(message(9, 1));
    regs[0] = SPARE;
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &write_only).falls_back(|system, _| {
        assert_eq!(
            received(system, CLIENT),
            (0, MessageInfo::new(9, 0, 1), REPLY_WORDS)
        );
        assert_eq!(
            error_of(system, SERVER),
            Some(KernelError::InsufficientRights { slot: SPARE })
        );
        assert_eq!(system.current, SERVER, "the server goes on after the error");
    });
}

#[test]
fn a_reply_recv_to_a_faulted_thread_falls_back_and_resumes_it_untouched() {
    let client_faulted = |system: &mut System<'_>, memory: &mut MockMemory| {
        server_waits(system, memory);
        system.tcb_mut(CLIENT).fault_handler = Some((0, 0xF1));
        run_as(system, CLIENT);
        system.tcb_mut(CLIENT).context.regs[..6].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        system.tcb_mut(CLIENT).context.regs[PC] = 0x20_0040;
        let fault = FaultInfo {
            kind: FaultKind::DataAbort,
            pc: 0x20_0040,
            address: 0xdead_0000,
            syndrome: 0x9200_0007,
        };
        system.handle_fault(memory, fault);
        system.choose_next();
    };
    let regs = reply_recv_regs(message(0, 0));
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &client_faulted).falls_back(|system, _| {
        let client = system.tcb(CLIENT);
        assert_eq!((client.state, client.fault), (ThreadState::Running, None));
        assert_eq!(
            client.context.regs[..6],
            [1, 2, 3, 4, 5, 6],
            "registers untouched"
        );
        assert_eq!(client.context.regs[PC], 0x20_0040);
    });
}

#[test]
fn a_reply_recv_with_nobody_to_answer_falls_back_and_just_waits() {
    let regs = reply_recv_regs(message(9, 1));
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &|_, _| {}).falls_back(|system, _| {
        assert_eq!(system.tcb(SERVER).state, server_receiving());
        assert_eq!(system.current, CLIENT);
    });
}

#[test]
fn a_reply_recv_with_a_bad_reply_capability_falls_back_and_is_refused() {
    for (slot, error) in [
        (EP, KernelError::WrongObjectType { slot: EP }),
        (0, KernelError::InvalidCapability { slot: 0 }),
        (99, KernelError::InvalidCapability { slot: 99 }),
    ] {
        let mut regs = reply_recv_regs(message(9, 1));
        regs[6] = slot;
        Case::new(SERVER, Syscall::ReplyRecv, &regs, &server_serves_client).falls_back(
            |system, _| {
                assert_eq!(error_of(system, SERVER), Some(error));
                assert_eq!(system.tcb(CLIENT).state, blocked_on_reply_from_server());
                assert_eq!(system.current, SERVER);
            },
        );
    }
}

#[test]
fn a_reply_recv_on_a_notification_falls_back_answers_and_waits_on_it() {
    let mut regs = reply_recv_regs(message(9, 1));
    regs[0] = NTFN;
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &server_serves_client).falls_back(|system, _| {
        assert_eq!(
            received(system, CLIENT),
            (0, MessageInfo::new(9, 0, 1), REPLY_WORDS)
        );
        assert_eq!(
            system.tcb(SERVER).state,
            ThreadState::BlockedOnNotification { ntfn: 0 }
        );
    });
}

#[test]
fn only_call_and_reply_recv_take_the_fast_path() {
    let others = [
        Syscall::Send,
        Syscall::NBSend,
        Syscall::Recv,
        Syscall::Signal,
        Syscall::Wait,
        Syscall::Yield,
        Syscall::Poll,
        Syscall::DebugWrite,
        Syscall::DebugLog,
    ]
    .map(|call| call as u64);
    let numbers = others.iter().copied().chain([11, 999, u64::MAX]);
    // Registers and state that would qualify for the Call fast path, then for ReplyRecv's.
    let qualifying: [(TcbId, Vec<u64>, Setup<'_>); 2] = [
        (CLIENT, call_regs(message(7, 1)), &server_waits),
        (
            SERVER,
            reply_recv_regs(message(9, 1)),
            &server_serves_client,
        ),
    ];
    for number in numbers {
        for (thread, regs, setup) in &qualifying {
            let case = Case {
                number,
                ..Case::new(*thread, Syscall::Call, regs, *setup)
            };
            case.falls_back(|_, _| {});
        }
    }
}

#[test]
fn no_current_thread_means_no_fast_path() {
    let mut pools = pools(&[100, 50, 40]);
    let mut system = system(&mut pools);
    system.current = NONE;
    for call in [Syscall::Call, Syscall::ReplyRecv] {
        assert_eq!(system.fastpath(call as u64), FastpathOutcome::Fallback);
    }
}
