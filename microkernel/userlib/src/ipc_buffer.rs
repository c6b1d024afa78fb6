//! The IPC buffer: message words beyond the four that travel in registers, and the capability
//! transfer slots. The kernel maps it at `abi::layout::IPC_BUFFER_VA`, read-write, for this
//! server only.

use abi::layout::IPC_BUFFER_VA;
use abi::message::IPC_BUFFER_WORDS;

fn word_pointer(index: usize) -> *mut u64 {
    assert!(
        index < IPC_BUFFER_WORDS,
        "IPC buffer word {index} out of range"
    );
    (IPC_BUFFER_VA as *mut u64).wrapping_add(index)
}

/// Reads word `index`.
pub fn read(index: usize) -> u64 {
    // SAFETY: the page at IPC_BUFFER_VA is this server's IPC buffer, mapped read-write by the
    // kernel for its whole life; `word_pointer` bounds the index to the page. Volatile because
    // the kernel writes it during system calls.
    unsafe { word_pointer(index).read_volatile() }
}

/// Writes word `index`.
pub fn write(index: usize, value: u64) {
    // SAFETY: as in `read`.
    unsafe { word_pointer(index).write_volatile(value) }
}
