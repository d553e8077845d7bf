//! Client methods the hub calls: `signalr_connection_on` (handlers), `_on_batch` (handlers
//! given the calls in batches), `_on_invocation` (client-result handlers), `_off`,
//! `_remove_handler`.
//!
//! The connection keeps each registration (callback and user data) in its own table; the core's
//! handler only queues a job naming the registration. So removal and teardown release the user
//! data on their own schedule, never while a call of it runs (calls happen on the callback
//! thread and hold the registration).

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use super::boundary::{out_arg, str_arg, to_handle};
use super::connection::{connection_arg, signalr_connection, Connection};
use super::call_args::CallArgs;
use super::dispatcher::{Call, CallbackScope, Queue, Sender};
use super::invocation::require_callback;
use super::operation::{c_text, ReadyProbe};
use super::responder::{signalr_responder, Answer};
use super::result::{Failure, FfiResult};
use super::signalr_result;
use super::userdata::{signalr_userdata_free, UserData};
use crate::id_map::IdMap;
use crate::{HandlerId, Payload};

/// Receives a call of a client method: `method` as registered and the arguments as the text of a
/// JSON array (both borrowed, NUL-terminated, valid until the callback returns).
///
/// Called on: the connection's callback thread, in the order the server sent the calls; handlers
/// of one method in registration order. May call any `signalr_` function except the `_blocking`
/// ones. Must not unwind.
pub type signalr_handler_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        method: *const c_char,
        method_len: usize,
        args_json: *const c_char,
        args_len: usize,
    ),
>;

/// Receives calls of a client method in a batch: `calls_json` is the text of a JSON array of
/// `count` argument arrays (`[[1,"a"],[2,"b"]]`), one per call, in the order the server sent
/// them; `method` as registered. Both borrowed, NUL-terminated, valid until the callback returns.
///
/// A batch holds the calls of this handler that were already queued, one after the other, when
/// its first call was due: the library never waits for more, so a lone call comes at once as a
/// batch of one. Any other callback of the connection due in between ends the batch, so
/// callbacks keep the server's order. At most 1024 calls per batch; a batch ends with the call
/// that takes its JSON to 64 KiB or more.
///
/// Called on: as `signalr_handler_callback`.
pub type signalr_batch_handler_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        method: *const c_char,
        method_len: usize,
        calls_json: *const c_char,
        calls_len: usize,
        count: usize,
    ),
>;

/// Receives a call of a client method that expects a result. `responder` belongs to the callee
/// from now on: answer it exactly once with `signalr_responder_complete` or
/// `signalr_responder_complete_with_error` (at once or later, from any thread), or free it.
///
/// Called on: as `signalr_handler_callback`.
pub type signalr_invocation_handler_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        method: *const c_char,
        method_len: usize,
        args_json: *const c_char,
        args_len: usize,
        responder: *mut signalr_responder,
    ),
>;

type PlainCallback = unsafe extern "C" fn(*mut c_void, *const c_char, usize, *const c_char, usize);
type BatchCallback = unsafe extern "C" fn(*mut c_void, *const c_char, usize, *const c_char, usize, usize);
type InvocationCallback =
    unsafe extern "C" fn(*mut c_void, *const c_char, usize, *const c_char, usize, *mut signalr_responder);

enum Kind {
    Plain(PlainCallback),
    Batch(BatchCallback),
    Invocation(InvocationCallback),
}

/// Bounds of one batch: the memory it takes and how long the first call waits for the last.
const BATCH_MAX_CALLS: usize = 1024;
/// Below glibc's mmap threshold (128 KiB), so batch buffers are reused heap memory, not fresh pages.
const BATCH_MAX_JSON: usize = 64 * 1024;

struct Registration {
    /// Lower-cased, as the core matches names.
    key: String,
    /// As registered, NUL-terminated, for the callback.
    method: Vec<u8>,
    kind: Kind,
    userdata: UserData,
    core_id: OnceLock<HandlerId>,
}

#[derive(Default)]
pub(crate) struct Registrations {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    regs: IdMap<Arc<Registration>>,
    closed: bool,
}

impl Registrations {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, reg: Registration) -> FfiResult<(u64, Arc<Registration>)> {
        let mut table = self.lock();
        if table.closed {
            return Err(Failure::new(signalr_result::ConnectionClosed, "the connection was freed"));
        }
        table.next_id += 1; // ids start at 1: 0 is never a handler
        let id = table.next_id;
        let reg = Arc::new(reg);
        table.regs.insert(id, reg.clone());
        Ok((id, reg))
    }

    fn get(&self, id: u64) -> Option<Arc<Registration>> {
        self.lock().regs.get(&id).cloned()
    }

    /// Teardown: releases every registration (on the callback thread, so no call is running).
    pub fn clear(&self) {
        let regs = {
            let mut table = self.lock();
            table.closed = true;
            std::mem::take(&mut table.regs)
        };
        drop(regs);
    }

    /// On the callback thread: runs `call` and, for a batch handler, the calls of the same
    /// registration queued right behind it.
    pub fn run(&self, conn: &Connection, call: Call, queue: &mut Queue) {
        let Some(reg) = self.get(call.reg) else { return }; // removed meanwhile: a responder answers with an error
        match reg.kind {
            Kind::Plain(callback) => {
                let _scope = CallbackScope::enter();
                lend_args(&call.args, |args| unsafe {
                    callback(reg.userdata.ptr(), reg.method.as_ptr().cast(), reg.method.len() - 1, args.as_ptr().cast(), args.len() - 1)
                });
            }
            Kind::Batch(callback) => {
                let (json, count) = batch_json(call, queue);
                if count == 0 {
                    return;
                }
                let _scope = CallbackScope::enter();
                unsafe {
                    callback(
                        reg.userdata.ptr(),
                        reg.method.as_ptr().cast(),
                        reg.method.len() - 1,
                        json.as_ptr().cast(),
                        json.len() - 1,
                        count,
                    )
                };
            }
            Kind::Invocation(callback) => {
                let Some(responder) = call.responder else { return };
                let _scope = CallbackScope::enter();
                // Arguments without a JSON form drop the responder unused: it answers with an error.
                lend_args(&call.args, |args| {
                    let responder = to_handle::<signalr_responder>(Answer { responder, conn: conn.weak() });
                    unsafe {
                        callback(
                            reg.userdata.ptr(),
                            reg.method.as_ptr().cast(),
                            reg.method.len() - 1,
                            args.as_ptr().cast(),
                            args.len() - 1,
                            responder,
                        )
                    }
                });
            }
        }
    }
}

/// The arguments of `first` and of the calls of its registration queued right behind it, as one
/// NUL-terminated JSON array written straight from the payloads; and how many calls it holds
/// (arguments not convertible to JSON are left out, as single calls drop them).
fn batch_json(first: Call, queue: &mut Queue) -> (Vec<u8>, usize) {
    let reg = first.reg;
    let mut json = Vec::with_capacity(2 * first.args.len() + 16);
    json.push(b'[');
    let mut count = 0;
    let mut next = Some(first);
    while let Some(call) = next {
        let start = json.len();
        if count > 0 {
            json.push(b',');
        }
        match call.args.write_json(&mut json) {
            Ok(()) => count += 1,
            Err(e) => {
                tracing::error!("handler arguments not convertible to JSON: {e}");
                json.truncate(start);
            }
        }
        if count == BATCH_MAX_CALLS || json.len() >= BATCH_MAX_JSON {
            break;
        }
        next = queue.next_call_if(|c| c.reg == reg);
    }
    json.extend_from_slice(b"]\0");
    (json, count)
}

/// Lends `args` as JSON text to a handler call; a call whose arguments have no JSON form is
/// dropped with an error record.
fn lend_args(args: &CallArgs, call: impl FnOnce(&[u8])) {
    if let Err(e) = args.lend(call) {
        tracing::error!("handler arguments not convertible to JSON: {e}");
    }
}

fn method_arg<'a>(method: *const c_char) -> FfiResult<&'a str> {
    let method = unsafe { str_arg(method, "method")? };
    if method.is_empty() {
        return Err(Failure::new(signalr_result::InvalidArgument, "`method` is empty"));
    }
    Ok(method)
}

/// Registers `kind` in the table and with the core; undoes the table entry when the core refuses.
fn register(
    conn: &Arc<Connection>,
    method: &str,
    kind: Kind,
    userdata: UserData,
) -> FfiResult<u64> {
    let reg = Registration {
        key: method.to_lowercase(),
        method: c_text(method),
        kind,
        userdata,
        core_id: OnceLock::new(),
    };
    let (id, reg) = conn.handlers.insert(reg)?;
    let queue =
        CallQueue { conn: Arc::downgrade(conn), completions: conn.ops.ready_probe(), jobs: conn.dispatcher.sender() };
    let call = move |args: &Payload| Call { reg: id, args: CallArgs::new(args), responder: None };
    let registered = match reg.kind {
        Kind::Plain(_) => conn.hub.on(method, move |args: &Payload| queue.push(call(args))),
        // A batch cannot answer: calls expecting a result stay with the client-result handler.
        Kind::Batch(_) => conn.hub.on_notification(method, move |args: &Payload| queue.push(call(args))),
        Kind::Invocation(_) => conn.hub.on_invoke(method, move |args: &Payload, responder| {
            queue.push(Call { responder: Some(responder), ..call(args) })
        }),
    };
    match registered {
        Ok(core_id) => {
            let _ = reg.core_id.set(core_id);
            Ok(id)
        }
        Err(e) => {
            conn.handlers.lock().regs.remove(&id);
            Err(Failure::from(e))
        }
    }
}

/// The body of `_on`, `_on_batch` and `_on_invocation`: the same checks in the same order (the
/// caller wraps the user data first, so any failure releases it), then the registration.
unsafe fn register_entry<F>(
    c: *mut signalr_connection,
    method: *const c_char,
    callback: Option<F>,
    userdata: UserData,
    out_handler_id: *mut u64,
    kind: fn(F) -> Kind,
) -> FfiResult<()> {
    let conn = connection_arg(c)?;
    let method = method_arg(method)?;
    require_callback(&callback, "callback")?;
    let out = out_arg(out_handler_id, "out_handler_id")?;
    *out = register(&conn, method, kind(callback.expect("checked")), userdata)?;
    Ok(())
}

/// Where a registration's handler hook (run by the receive loop) queues its calls. It holds the
/// connection weakly (the core's handler table must not keep it alive) and upgrades only when
/// completions wait to be flushed, not for every message.
struct CallQueue {
    conn: Weak<Connection>,
    completions: ReadyProbe,
    jobs: Sender,
}

impl CallQueue {
    /// Flushes what completed before (callbacks keep the server's order), then queues `call`.
    fn push(&self, call: Call) {
        if self.completions.any() {
            if let Some(conn) = self.conn.upgrade() {
                conn.ops.flush();
            }
        }
        self.jobs.send_call(call);
    }
}

/// Registers a handler for calls of the client method `method` (case-insensitive). Several
/// handlers may share a method; each call runs them in registration order.
///
/// Ownership: `userdata` is released with `userdata_free` exactly once: after the handler was
/// removed (`_off`, `_remove_handler`) or the connection freed, and its last call returned; or
/// before this function returns when it fails. On OK `*out_handler_id` (never 0) identifies the
/// handler for `signalr_connection_remove_handler`.
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`, `INVALID_ARGUMENT` (empty method),
/// `CONNECTION_CLOSED` (freed).
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_on(
    c: *mut signalr_connection,
    method: *const c_char,
    callback: signalr_handler_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
    out_handler_id: *mut u64,
) -> signalr_result {
    ffi_call!({
        let userdata = UserData::new(userdata, userdata_free);
        register_entry(c, method, callback, userdata, out_handler_id, Kind::Plain)
    })
}

/// Registers a handler that receives the calls of the client method `method` (case-insensitive)
/// in batches (see `signalr_batch_handler_callback`): one callback for many calls where a
/// `signalr_connection_on` handler would take one each. For receiving many calls fast.
///
/// It receives the calls that expect no result (the server's `SendAsync`, without invocation
/// id); those then no longer go to the method's client-result handler (`_on_invocation`), which
/// keeps answering the calls that expect one. The method's `signalr_connection_on` handlers
/// get each call before its batch handlers, and batch handlers in registration order: with
/// another handler on the same method, batches hold one call each (register one per method).
///
/// Ownership, errors: as `signalr_connection_on`.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_on_batch(
    c: *mut signalr_connection,
    method: *const c_char,
    callback: signalr_batch_handler_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
    out_handler_id: *mut u64,
) -> signalr_result {
    ffi_call!({
        let userdata = UserData::new(userdata, userdata_free);
        register_entry(c, method, callback, userdata, out_handler_id, Kind::Batch)
    })
}

/// Registers the handler that answers the server's calls of `method` expecting a result (client
/// results). One per method: a second one fails with `INVALID_STATE`. A call that arrives with
/// no such handler is answered with the error "Client didn't provide a result.". It is also
/// called for the calls that expect no result, unless the method has a batch handler
/// (`signalr_connection_on_batch`), which then takes those.
///
/// Ownership, errors: as `signalr_connection_on`; plus `INVALID_STATE`.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_on_invocation(
    c: *mut signalr_connection,
    method: *const c_char,
    callback: signalr_invocation_handler_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
    out_handler_id: *mut u64,
) -> signalr_result {
    ffi_call!({
        let userdata = UserData::new(userdata, userdata_free);
        register_entry(c, method, callback, userdata, out_handler_id, Kind::Invocation)
    })
}

/// Removes every handler (and the client-result handler) of `method` (case-insensitive). Calls
/// already queued for them are dropped. Not an error when there is none.
///
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_off(c: *mut signalr_connection, method: *const c_char) -> signalr_result {
    ffi_call!({
        let conn = connection_arg(c)?;
        let method = str_arg(method, "method")?;
        conn.hub.off(method);
        let key = method.to_lowercase();
        let removed: Vec<Arc<Registration>> = {
            let mut table = conn.handlers.lock();
            let ids: Vec<u64> = table.regs.iter().filter(|(_, r)| r.key == key).map(|(id, _)| *id).collect();
            ids.iter().filter_map(|id| table.regs.remove(id)).collect()
        };
        drop(removed); // a call running now holds its registration: released when it returns
        Ok(())
    })
}

/// Removes one handler by the id `signalr_connection_on`, `_on_batch` or `_on_invocation` gave.
/// Not an error when it is already gone.
///
/// Errors: `NULL_PARAMETER`.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_remove_handler(c: *mut signalr_connection, handler_id: u64) -> signalr_result {
    ffi_call!({
        let conn = connection_arg(c)?;
        let removed = conn.handlers.lock().regs.remove(&handler_id);
        if let Some(core_id) = removed.as_ref().and_then(|r| r.core_id.get()) {
            conn.hub.remove_handler(*core_id);
        }
        drop(removed);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::dispatcher::Dispatcher;
    use crate::protocol::Format;

    fn call(reg: u64, json: &str) -> Call {
        Call { reg, args: CallArgs::new(&Payload { format: Format::Json, bytes: json.to_owned().into() }), responder: None }
    }

    #[test]
    fn a_batch_takes_the_queued_calls_of_its_registration_up_to_the_cap() {
        let d = Dispatcher::new();
        let mut queue = d.test_queue();
        for i in 1..BATCH_MAX_CALLS + 10 {
            d.send_call(call(7, &format!("[{i}]")));
        }
        let (json, count) = batch_json(call(7, "[0]"), &mut queue);
        assert_eq!(count, BATCH_MAX_CALLS);
        let text = std::str::from_utf8(&json[..json.len() - 1]).unwrap();
        assert_eq!(json.last(), Some(&0), "NUL-terminated");
        let calls: Vec<(usize,)> = serde_json::from_str(text).unwrap();
        assert!(calls.iter().enumerate().all(|(i, c)| c.0 == i));
        // The rest waits for the next batch, which ends at another registration's call.
        d.send_call(call(8, "[]"));
        let Some(next) = queue.next_call_if(|_| true) else { panic!("the rest is queued") };
        let (json, count) = batch_json(next, &mut queue);
        assert_eq!((count, &json[..]), (10, &b"[[1024],[1025],[1026],[1027],[1028],[1029],[1030],[1031],[1032],[1033]]\0"[..]));
        assert_eq!(queue.next_call_if(|c| c.reg == 8).map(|c| c.reg), Some(8));
    }

    #[test]
    fn a_call_whose_arguments_cannot_be_json_is_left_out_of_its_batch() {
        let d = Dispatcher::new();
        let mut queue = d.test_queue();
        d.send_call(call(1, "[\"a\u{1e}\"]")); // a raw record separator
        d.send_call(call(1, "[2]"));
        let msgpack = Payload::from_value(&("m", 3), Format::MessagePack).unwrap();
        d.send_call(Call { reg: 1, args: CallArgs::new(&msgpack), responder: None });
        let (json, count) = batch_json(call(1, "[1]"), &mut queue);
        assert_eq!((count, &json[..]), (3, &b"[[1],[2],[\"m\",3]]\0"[..]));
    }
}
