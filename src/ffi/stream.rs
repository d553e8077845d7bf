//! Server-to-client streams: `signalr_connection_stream`, `_stream_with_uploads` and the
//! `signalr_stream` handle that cancels one.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::boundary::{handle_ref, out_arg, take_handle, to_handle, BoxCastable};
use super::connection::signalr_connection;
use super::invocation::{call_args, require_callback, upload_out_arg, CallArgs};
use super::operation::{signalr_completion_callback, signalr_stream_item_callback, Callbacks, Op, Work};
use super::signalr_result;
use super::upload::{fill_uploads, signalr_upload, UploadSlots};
use super::userdata::signalr_userdata_free;
use crate::Error;

/// A running server-to-client stream.
///
/// Thread safety: its functions may be called from any thread.
/// Ownership: freed exactly once with `signalr_stream_free` (also after the stream ended or its
/// connection was freed).
pub struct signalr_stream {
    _private: [u8; 0],
}

impl BoxCastable for signalr_stream {
    type Inner = Arc<Op>;
}

/// Starts a server-to-client stream: `on_item` receives each item (JSON) in order, then `done`
/// is called exactly once: OK when the server completed the stream, the error (`HUB_ERROR` with
/// the server's text, `CONNECTION_CLOSED`), or `CANCELED` after `signalr_stream_cancel`.
///
/// Ownership: `userdata` (shared by both callbacks) is released with `userdata_free` exactly
/// once, after `done` returned, or before this function returns when it fails. `*out_stream`
/// belongs to the caller (`signalr_stream_free`).
/// Errors: as `signalr_connection_invoke`.
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_stream(
    c: *mut signalr_connection,
    method: *const c_char,
    args_json: *const c_char,
    on_item: signalr_stream_item_callback,
    done: signalr_completion_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
    out_stream: *mut *mut signalr_stream,
) -> signalr_result {
    signalr_connection_stream_with_uploads(c, method, args_json, 0, std::ptr::null_mut(), on_item, done, userdata, userdata_free, out_stream)
}

/// `signalr_connection_stream` for a hub method with `upload_count` stream parameters (see
/// `signalr_connection_invoke_with_uploads`).
#[no_mangle]
pub unsafe extern "C" fn signalr_connection_stream_with_uploads(
    c: *mut signalr_connection,
    method: *const c_char,
    args_json: *const c_char,
    upload_count: usize,
    out_uploads: *mut *mut signalr_upload,
    on_item: signalr_stream_item_callback,
    done: signalr_completion_callback,
    userdata: *mut c_void,
    userdata_free: signalr_userdata_free,
    out_stream: *mut *mut signalr_stream,
) -> signalr_result {
    ffi_call!({
        let callbacks = Callbacks::new(done, on_item, userdata, userdata_free);
        let out = out_arg(out_stream, "out_stream")?;
        let uploads_out = upload_out_arg(out_uploads, upload_count)?;
        let CallArgs { conn, method, args } = call_args(c, method, args_json)?;
        require_callback(&on_item, "on_item")?;
        require_callback(&done, "done")?;
        let (slots, handles) = UploadSlots::new(&conn, upload_count);
        let hub = conn.hub.clone();
        let op = conn.ops.register(
            &conn,
            Work::StreamStarting(Box::pin(async move {
                slots.attach(hub.stream_with_uploads(&method, args, upload_count).await)
            })),
            callbacks,
        )?;
        op.start();
        fill_uploads(uploads_out, handles);
        *out = to_handle::<signalr_stream>(op);
        Ok(())
    })
}

/// Cancels the stream: the server is sent CancelInvocation, no further item is reported, and
/// `done` gets `SIGNALR_RESULT_CANCELED`. Not an error when the stream already ended.
///
/// Errors: `NULL_PARAMETER`.
#[no_mangle]
pub unsafe extern "C" fn signalr_stream_cancel(s: *mut signalr_stream) -> signalr_result {
    ffi_call!({
        let op = handle_ref(s, "stream")?;
        op.cancel(Error::Canceled("the stream was canceled by the client".into()));
        Ok(())
    })
}

/// Frees a stream handle; a stream still running is canceled first (see
/// `signalr_stream_cancel`). NULL is a no-op.
///
/// Ownership: consumes `s`.
#[no_mangle]
pub unsafe extern "C" fn signalr_stream_free(s: *mut signalr_stream) {
    ffi_value!((), {
        if let Some(op) = take_handle(s) {
            op.cancel(Error::Canceled("the stream was freed by the client".into()));
        }
    })
}
