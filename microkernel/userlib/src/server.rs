//! The server harness: one serve loop for every server that answers a typed protocol
//! (docs/ARCHITECTURE.md, "Servers: one serve loop").
//!
//! A server implements [`Server`] and its `main` is `userlib::server::run::<MyServer>()`. The
//! harness then
//!
//! 1. finds the endpoint named by [`Server::ENDPOINT`] ([`find_endpoint`]; a missing one is a
//!    manifest/server mismatch and panics, which the supervisor reports);
//! 2. calls [`Server::start`] once, which builds the server's whole state;
//! 3. runs [`ipc::server::serve`]: receive, decode, [`Server::handle`] with the caller's badge,
//!    reply (with the capability the handler lends, if any). A message that does not decode is
//!    answered `LABEL_MALFORMED` (the caller's `ipc::call` returns `CallError::Rejected`), logged
//!    once at debug level, and the loop goes on: no IPC input makes a server panic;
//! 4. crashes on purpose only as the kernel makes it (test systems: the manifest's
//!    `inject_fault_*` keys, `abi::InjectAt`, docs/TESTING.md): the harness holds no hook.
//!
//! # What survives a restart
//!
//! Nothing in the server's own memory: a restart (docs/ARCHITECTURE.md, "Faults, the
//! supervisor and restart") rewrites its image, `.data` and `.bss`, stack, heap and IPC buffer
//! from the pristine ELF and starts it at its entry again, so every variable, the loop's
//! is back at its initial value. What outlives the server is outside
//! that memory:
//!
//! - memory it does not own: a guest's RAM, and regions the manifest maps into it
//!   (`[regions.<name>]`, at `0x4000_0000` and up), which the kernel does not rewrite;
//! - kernel objects: the capabilities in its CNode (including ones it received or carved into
//!   spare slots before the crash), endpoints, notifications, mappings made through them;
//! - other servers' state (a client's view of what it asked for).
//!
//! So [`Server::start`] is where a server rebuilds: it reads its boot info again, re-derives
//! what it can from the objects it holds, reads back whatever it deliberately kept in a mapped
//! region, and clears leftovers from its previous life (the mmu-server deletes its ring of
//! lent-frame slots, which unmaps what they still mapped). It cannot tell a first start from
//! a restart by its memory; a server that must, keeps a marker in a mapped region. A request
//! that was in flight is not retried by the server: its caller got `Restarted` and decides
//! (`ipc::call` retries idempotent requests).
//!
//! # Notifications and guest accesses
//!
//! [`Server::notified`] hears the server's bound notification (seL4 style: a signal ends the
//! server's receive on its endpoint, with no caller to reply to; [`KernelLink::reply_recv`]
//! recognises the kernel's marker label). A device server's doorbell arrives this way
//! (docs/MMIO.md). [`Server::mmio`] answers the guest accesses the kernel's MMIO fast path
//! sends on the same endpoint.

use crate::syscall;
use abi::message::{IPC_BUFFER_SEND_CAP, MAX_MESSAGE_WORDS};
pub use abi::mmio::{MmioAnswer, MmioMessage};
use abi::{CPtr, REPLY_SLOT};
use ipc::Protocol;
pub use ipc::server::{Caller, Received, Rejection, Reply};
use ipc::server::{Handler, Link, Outgoing};

/// A request of server `S`'s protocol.
pub type Request<S> = <<S as Server>::Protocol as Protocol>::Request;
/// A response of server `S`'s protocol.
pub type Response<S> = <<S as Server>::Protocol as Protocol>::Response;

/// A server that answers one protocol on one endpoint.
pub trait Server: Sized {
    /// The protocol it serves.
    type Protocol: Protocol;
    /// The role name of the endpoint it serves, looked up by [`find_endpoint`].
    const ENDPOINT: &'static str;
    /// Builds the server's state; called once per life, before the first receive. Everything
    /// in the server's memory starts from its initial value, after a restart too: rebuild here
    /// from the boot info and from what outlives the server (the module docs).
    fn start() -> Self;
    /// Answers one well-formed request from `caller`. Values the protocol allows but the server
    /// refuses get the protocol's error response, never a panic.
    fn handle(&mut self, caller: Caller, request: Request<Self>) -> Reply<Response<Self>>;
    /// A notification arrived (no reply is sent). The default ignores it.
    fn notified(&mut self, word: u64) {
        let _ = word;
    }
    /// A guest access the kernel sent straight from a stage-2 MMIO marker (docs/MMIO.md), or
    /// `None` for words the kernel never sends. Only device servers get these; the default is
    /// a bus error.
    fn mmio(&mut self, caller: Caller, access: Option<MmioMessage>) -> MmioAnswer {
        let _ = (caller, access);
        MmioAnswer::BusError
    }
}

/// Runs server `S` for ever: endpoint lookup, [`Server::start`], then the serve loop.
pub fn run<S: Server>() -> ! {
    let Some(endpoint) = find_endpoint(S::ENDPOINT) else {
        panic!(
            "no `{role}`, `{role}-<vm>` or `{name}` capability",
            role = S::ENDPOINT,
            name = crate::server_name()
        );
    };
    let mut server = Serving(S::start());
    ipc::server::serve(&mut KernelLink { endpoint }, &mut server)
}

/// The endpoint a server knows by its role `role`: the capability named `role`; else
/// `<role>-<vm>` for a VM of its boot info (one mmu-server or memory-backing server per VM, each
/// endpoint named after its VM: `bootdesc::bootinfo::find_vm_cap`); else the one named after the
/// server itself (one device server per VM: `pl011-left`). Endpoint names are global, hence the
/// suffixes.
pub fn find_endpoint(role: &str) -> Option<CPtr> {
    let blob = crate::caps::bootinfo();
    let mut found = crate::caps::try_cap(role);
    bootdesc::bootinfo::for_each_vm(blob, |vm| {
        found = found.or_else(|| crate::caps::try_vm_cap(role, vm.name));
        found.is_none()
    });
    found.or_else(|| crate::caps::try_cap(crate::server_name()))
}

/// A [`Server`] as the loop's handler.
struct Serving<S>(S);

impl<S: Server> Handler for Serving<S> {
    type Protocol = S::Protocol;
    fn handle(&mut self, caller: Caller, request: Request<S>) -> Reply<Response<S>> {
        self.0.handle(caller, request)
    }
    fn notified(&mut self, word: u64) {
        self.0.notified(word);
    }
    fn mmio(&mut self, caller: Caller, access: Option<MmioMessage>) -> MmioAnswer {
        self.0.mmio(caller, access)
    }
}

/// The loop's kernel side: ReplyRecv on the server's endpoint, the reply object in
/// [`REPLY_SLOT`].
pub struct KernelLink {
    endpoint: CPtr,
}

impl Link for KernelLink {
    fn reply_recv(&mut self, reply: Option<&Outgoing>) -> Received {
        let (badge, info, registers) = match reply {
            Some(reply) => {
                // Written last, after the handler's own use of the IPC buffer (print!, calls).
                let registers = crate::transport::load(&reply.message);
                if let Some(cap) = reply.cap {
                    crate::ipc_buffer::write(IPC_BUFFER_SEND_CAP, cap);
                }
                syscall::reply_recv(self.endpoint, REPLY_SLOT, reply.info(), registers)
            }
            None => syscall::recv(self.endpoint, REPLY_SLOT),
        };
        // A bound notification's signal: the word in x0, the marker label, no message.
        if !info.is_error() && info.label() == abi::message::BOUND_NOTIFICATION_LABEL {
            return Received::Notification { word: badge };
        }
        let words: [u64; MAX_MESSAGE_WORDS] = crate::transport::unload(info, registers);
        Received::Message { badge, info, words }
    }

    fn rejected(&mut self, caller: Caller, why: Rejection) {
        let (why, code) = match why {
            Rejection::KernelError { code } => ("the receive failed with kernel error", code),
            Rejection::Malformed => ("the request did not decode", 0),
            Rejection::Unencodable => ("the response did not encode", 0),
        };
        defmt::debug!(
            "{=str}: rejected a message from badge {=u64:#x}: {=str} {=u64}",
            crate::server_name(),
            caller.badge,
            why,
            code
        );
    }
}
