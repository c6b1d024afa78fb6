//! The real [`ipc::Transport`]: message words in registers and the IPC buffer.

use abi::message::{MAX_MESSAGE_WORDS, REGISTER_MESSAGE_WORDS};
use abi::{MessageInfo, REPLY_SLOT};
use ipc::{Encoded, Transport};

/// IPC through the kernel.
pub struct Kernel;

pub(crate) fn load(message: &Encoded) -> [u64; 4] {
    for index in REGISTER_MESSAGE_WORDS..message.length {
        crate::ipc_buffer::write(index, message.words[index]);
    }
    [
        message.words[0],
        message.words[1],
        message.words[2],
        message.words[3],
    ]
}

pub(crate) fn unload(info: MessageInfo, registers: [u64; 4]) -> [u64; MAX_MESSAGE_WORDS] {
    let mut words = [0u64; MAX_MESSAGE_WORDS];
    words[..REGISTER_MESSAGE_WORDS].copy_from_slice(&registers);
    // Error answers carry their details in registers only.
    if !info.is_error() {
        let length = info.length().min(MAX_MESSAGE_WORDS);
        for (index, word) in words
            .iter_mut()
            .enumerate()
            .take(length)
            .skip(REGISTER_MESSAGE_WORDS)
        {
            *word = crate::ipc_buffer::read(index);
        }
    }
    words
}

impl Transport for Kernel {
    fn call(
        &mut self,
        endpoint: u64,
        message: &Encoded,
    ) -> (MessageInfo, [u64; MAX_MESSAGE_WORDS]) {
        let (info, registers) = crate::syscall::call(endpoint, message.info(), load(message));
        (info, unload(info, registers))
    }

    fn reply_recv(
        &mut self,
        endpoint: u64,
        message: Option<&Encoded>,
    ) -> (u64, MessageInfo, [u64; MAX_MESSAGE_WORDS]) {
        let (badge, info, registers) = match message {
            Some(message) => {
                crate::syscall::reply_recv(endpoint, REPLY_SLOT, message.info(), load(message))
            }
            None => crate::syscall::recv(endpoint, REPLY_SLOT),
        };
        (badge, info, unload(info, registers))
    }
}
