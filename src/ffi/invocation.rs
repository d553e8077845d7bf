//! Calling hub methods: `signalr_connection_invoke`, `_send`, their `_blocking` variants and the
//! variants with upload streams. Arguments are the text of a JSON array, whatever the hub
//! protocol on the wire.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::boundary::{json_array_arg, out_arg, str_arg};
use super::blocking::{block_on, may_block};
use super::connection::{connection_arg, signalr_connection, Connection};
use super::operation::{signalr_completion_callback, Callbacks, Work};
use super::result::{Failure, FfiResult};
use super::signalr_result;
use super::strings::to_owned_c_string;
use super::upload::{fill_uploads, signalr_upload, UploadSlots};
use super::userdata::signalr_userdata_free;
use crate::{ConnectionState, Payload};

/// A call's method name and arguments, checked before anything is queued.
pub(crate) struct CallArgs {
    pub conn: Arc<Connection>,
    pub method: String,
    pub args: Payload,
}

/// Checks the common arguments of a call and that the connection can send now.
pub(crate) unsafe fn call_args(
    c: *const signalr_connection,
    method: *const c_char,
    args_json: *const c_char,
) -> FfiResult<CallArgs> {
    let conn = connection_arg(c)?;
    let method = str_arg(method, "method")?;
    if method.is_empty() {
        return Err(Failure::new(signalr_result::InvalidArgument, "`method` is empty"));
    }
    let args = json_array_arg(args_json, "args_json")?;
    if conn.is_freed() {
        return Err(Failure::new(signalr_result::ConnectionClosed, "the connection was freed"));
    }
    match conn.hub.state() {
        ConnectionState::Connected => {}
        state => {
            return Err(Failure::new(
                signalr_result::InvalidState,
                format!("cannot call '{method}' while the connection is {state}; it must be Connected"),
            ))
        }
    }
    Ok(CallArgs { conn, method: method.to_owned(), args })
}

pub(crate) fn require_callback<T>(callback: &Option<T>, name: &str) -> FfiResult {
    match callback {
        Some(_) => Ok(()),
        None => Err(Failure::new(signalr_result::NullParameter, format!("`{name}` is NULL"))),
    }
}

/// Invokes a hub method; `done` receives its result as JSON (`"null"` for a void method) or its
/// error (`HUB_ERROR` with the server's text, `CONNECTION_CLOSED` when the connection went away).
///
/// `args_json` is the text of a JSON array (`"[]"` for no arguments), borrowed for the call.
/// Ownership: `userdata` is released with `userdata_free` exactly once: after `done` returned,
/// or before this function returns when it fails.
/// Called on: `done` on the connection's callback thread, exactly once when this returns OK.
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`, `INVALID_JSON` (malformed or not an array),
/// `INVALID_ARGUMENT` (empty method), `INVALID_STATE` (not `CONNECTED`), `CONNECTION_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_invoke(
    c: *mut signalr_connection,
    method: *const c_char,
    args_json: *const c_char,
    done: signalr_completion_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
) -> signalr_result {
    ffi_call!({
        let callbacks = Callbacks::new(done, None, userdata, userdata_free);
        let CallArgs { conn, method, args } = call_args(c, method, args_json)?;
        require_callback(&done, "done")?;
        let hub = conn.hub.clone();
        conn.run_op(Work::Future(Box::pin(async move { hub.invoke(&method, args).await.map(Some) })), callbacks)
    })
}

/// `signalr_connection_invoke`, waiting up to `timeout_ms` (0 = no limit) for the result.
///
/// Ownership: on OK `*out_json` is the result's JSON text, owned by the caller
/// (`signalr_string_free`).
/// Errors: as `signalr_connection_invoke` and its completion (`HUB_ERROR` leaves the server's
/// text in `signalr_last_error_message()`); `TIMEOUT`; `WOULD_DEADLOCK` inside a callback.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_invoke_blocking(
    c: *mut signalr_connection,
    method: *const c_char,
    args_json: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
) -> signalr_result {
    ffi_call!({
        may_block()?;
        let out = out_arg(out_json, "out_json")?;
        let CallArgs { conn, method, args } = call_args(c, method, args_json)?;
        let result = block_on(timeout_ms, async { conn.hub.invoke(&method, args).await.map_err(Failure::from) })?;
        let text = result.to_json().map_err(|e| Failure::from(crate::Error::from(e)))?;
        *out = to_owned_c_string(&text);
        Ok(())
    })
}

/// Calls a hub method without waiting for it to run (no result). `done` (may be NULL) is called
/// once the message was written to the transport.
///
/// Ownership, callbacks, errors: as `signalr_connection_invoke`.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_send(
    c: *mut signalr_connection,
    method: *const c_char,
    args_json: *const c_char,
    done: signalr_completion_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
) -> signalr_result {
    ffi_call!({
        let callbacks = Callbacks::new(done, None, userdata, userdata_free);
        let CallArgs { conn, method, args } = call_args(c, method, args_json)?;
        let hub = conn.hub.clone();
        conn.run_op(Work::Future(Box::pin(async move { hub.send(&method, args).await.map(|()| None) })), callbacks)
    })
}

/// `signalr_connection_send`, waiting up to `timeout_ms` (0 = no limit) until the message was
/// written.
///
/// Errors: as `signalr_connection_send`; `TIMEOUT`; `WOULD_DEADLOCK` inside a callback.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_send_blocking(
    c: *mut signalr_connection,
    method: *const c_char,
    args_json: *const c_char,
    timeout_ms: u64,
) -> signalr_result {
    ffi_call!({
        may_block()?;
        let CallArgs { conn, method, args } = call_args(c, method, args_json)?;
        block_on(timeout_ms, async { conn.hub.send(&method, args).await.map_err(Failure::from) })
    })
}

/// `signalr_connection_invoke` for a hub method with `upload_count` stream parameters: their
/// stream ids are appended after the arguments, and `out_uploads` (a caller array of
/// `upload_count` pointers) receives one writer handle per stream on OK. Items written before
/// the invocation went out are sent right after it.
///
/// Ownership: each `out_uploads[i]` belongs to the caller (`signalr_upload_free`); `userdata`
/// as for `signalr_connection_invoke`.
/// Errors: as `signalr_connection_invoke`; `NULL_PARAMETER` when `out_uploads` is NULL and
/// `upload_count` is not 0.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_invoke_with_uploads(
    c: *mut signalr_connection,
    method: *const c_char,
    args_json: *const c_char,
    upload_count: usize,
    out_uploads: *mut *mut signalr_upload,
    done: signalr_completion_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
) -> signalr_result {
    ffi_call!({
        let callbacks = Callbacks::new(done, None, userdata, userdata_free);
        let out = upload_out_arg(out_uploads, upload_count)?;
        let CallArgs { conn, method, args } = call_args(c, method, args_json)?;
        require_callback(&done, "done")?;
        let (slots, handles) = UploadSlots::new(&conn, upload_count);
        let hub = conn.hub.clone();
        conn.run_op(
            Work::Future(Box::pin(async move {
                let pending = slots.attach(hub.invoke_with_uploads(&method, args, upload_count).await)?;
                pending.await.map(Some)
            })),
            callbacks,
        )?;
        fill_uploads(out, handles);
        Ok(())
    })
}

/// `signalr_connection_send` for a hub method with `upload_count` stream parameters (see
/// `signalr_connection_invoke_with_uploads`). `done` (may be NULL) is called once the
/// invocation was written.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_send_with_uploads(
    c: *mut signalr_connection,
    method: *const c_char,
    args_json: *const c_char,
    upload_count: usize,
    out_uploads: *mut *mut signalr_upload,
    done: signalr_completion_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
) -> signalr_result {
    ffi_call!({
        let callbacks = Callbacks::new(done, None, userdata, userdata_free);
        let out = upload_out_arg(out_uploads, upload_count)?;
        let CallArgs { conn, method, args } = call_args(c, method, args_json)?;
        let (slots, handles) = UploadSlots::new(&conn, upload_count);
        let hub = conn.hub.clone();
        conn.run_op(
            Work::Future(Box::pin(async move {
                slots.attach(hub.send_with_uploads(&method, args, upload_count).await.map(|u| ((), u)))?;
                Ok(None)
            })),
            callbacks,
        )?;
        fill_uploads(out, handles);
        Ok(())
    })
}

/// The caller's array for upload handles, checked before anything starts.
pub(crate) unsafe fn upload_out_arg<'a>(
    out: *mut *mut signalr_upload,
    count: usize,
) -> FfiResult<&'a mut [*mut signalr_upload]> {
    match (out.is_null(), count) {
        (_, 0) => Ok(&mut []),
        (true, _) => Err(Failure::new(signalr_result::NullParameter, "`out_uploads` is NULL")),
        (false, _) => Ok(std::slice::from_raw_parts_mut(out, count)),
    }
}
