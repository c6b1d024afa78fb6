//! Protocol tests: every variant round-trips through message words, the largest fits, and the
//! idempotence marking is what the restart contract says.

extern crate std;
use super::*;
use ipc::Protocol;
use std::vec::Vec;

fn requests() -> Vec<Request> {
    let spec = SlotSpec {
        ipa: 0x4000_0000,
        len: 64 << 20,
        region: u16::MAX,
        offset: u64::MAX,
        flags: SlotFlags {
            read_only: true,
            allow_blocks: true,
        },
    };
    std::vec![
        Request::HandleStage2Fault {
            ipa: u64::MAX,
            write: true,
            exec: false,
            permission: true,
        },
        Request::EnableDirtyLog {
            ipa: 0x4000_0000,
            len: 1 << 20,
        },
        Request::GetAndClearDirtyLog {
            ipa: u64::MAX,
            len: u64::MAX,
        },
        Request::Counters,
        Request::SetSlot { slot: 3, spec },
        Request::DeleteSlot { slot: u8::MAX },
        Request::DisableDirtyLog {
            ipa: u64::MAX,
            len: u64::MAX,
        },
    ]
}

fn responses() -> Vec<Response> {
    let mut all = std::vec![
        Ok(Reply::Mapped {
            size: MappedSize::Size4K
        }),
        Ok(Reply::Mapped {
            size: MappedSize::Size2M
        }),
        Ok(Reply::NotMemory),
        Ok(Reply::Done),
        Ok(Reply::DirtyBitmap {
            words: [u64::MAX; DIRTY_LOG_WORDS]
        }),
        Ok(Reply::Counters(FaultCounters {
            pages_4k: u64::MAX,
            blocks_2m: 1,
            permission: u64::MAX,
        })),
    ];
    for error in [
        MmuError::NoSlot,
        MmuError::BadRange,
        MmuError::BackingRetriesExhausted { attempts: 8 },
        MmuError::BackingFailed,
        MmuError::OutOfMemory,
        MmuError::MappingRefused,
        MmuError::DirtyLogWindowsExhausted { limit: u16::MAX },
    ] {
        all.push(Err(error));
    }
    all
}

#[test]
fn every_variant_round_trips() {
    for request in requests() {
        let encoded = ipc::encode(&request).unwrap();
        assert_eq!(
            ipc::decode::<Request>(encoded.label, &encoded.words),
            Ok(request)
        );
    }
    for response in responses() {
        let encoded = ipc::encode(&response).unwrap();
        assert_eq!(
            ipc::decode::<Response>(encoded.label, &encoded.words),
            Ok(response)
        );
    }
}

#[test]
fn only_get_and_clear_is_not_idempotent() {
    for request in requests() {
        let expected = !matches!(request, Request::GetAndClearDirtyLog { .. });
        assert_eq!(Mmu::is_idempotent(&request), expected, "{request:?}");
    }
}

#[test]
fn a_fault_fits_the_four_message_registers() {
    // The fast IPC path takes at most four words; the common request must stay within them.
    let worst = ipc::encode(&Request::HandleStage2Fault {
        ipa: (1 << 39) - 1,
        write: true,
        exec: true,
        permission: true,
    })
    .unwrap();
    assert!(worst.length <= 4, "{} words", worst.length);
    let mapped = ipc::encode(&Ok::<_, MmuError>(Reply::Mapped {
        size: MappedSize::Size2M,
    }))
    .unwrap();
    assert_eq!(mapped.length, 1);
}

#[test]
fn errors_say_what_went_wrong() {
    let text = std::format!("{}", MmuError::BackingRetriesExhausted { attempts: 8 });
    assert!(text.contains("after 8 attempts"), "{text}");
    let text = std::format!("{}", MmuError::DirtyLogWindowsExhausted { limit: 4 });
    assert!(
        text.contains("(4, its manifest's dirty_log_windows)"),
        "{text}"
    );
}

/// Variant order is wire ABI: the variants added later sit at the end, so what older peers
/// send keeps its meaning (postcard writes a variant as its index).
#[test]
fn later_variants_are_appended() {
    fn first_bytes<T: serde::Serialize>(value: &T) -> [u8; 2] {
        let mut buffer = [0u8; 64];
        let bytes = postcard::to_slice(value, &mut buffer).unwrap();
        [bytes[0], bytes.get(1).copied().unwrap_or(0)]
    }
    assert_eq!(first_bytes(&Request::DeleteSlot { slot: 0 })[0], 5);
    assert_eq!(
        first_bytes(&Request::DisableDirtyLog { ipa: 0, len: 0 })[0],
        6
    );
    let exhausted: Response = Err(MmuError::DirtyLogWindowsExhausted { limit: 4 });
    assert_eq!(first_bytes(&exhausted), [1, 6]);
}
