//! `signalr_responder`: the answer to one client-result call.

use std::ffi::c_char;

use std::sync::Weak;

use super::boundary::{handle_ref, json_value_arg, str_arg, take_handle, BoxCastable};
use super::connection::Connection;
use super::result::{Failure, FfiResult};
use super::signalr_result;
use crate::{ConnectionState, Payload, Responder};

/// The pending answer to a server call of a client-result handler.
///
/// Thread safety: may be answered from any thread, at once or later.
/// Ownership: consumed by exactly one successful `signalr_responder_complete` or
/// `signalr_responder_complete_with_error`, or by `signalr_responder_free`.
pub struct signalr_responder {
    _private: [u8; 0],
}

impl BoxCastable for signalr_responder {
    type Inner = Answer;
}

/// A responder and the connection it answers on.
pub(crate) struct Answer {
    pub responder: Responder,
    pub conn: Weak<Connection>,
}

impl Answer {
    /// Sends the answer, unless the connection it belongs to is gone.
    fn send(self, answer: Result<Payload, String>) -> FfiResult {
        let alive = self.conn.upgrade().is_some_and(|c| !c.is_freed() && c.hub.state() == ConnectionState::Connected);
        if !alive {
            return Err(Failure::new(
                signalr_result::ConnectionClosed,
                "the connection of this client-result call was closed or freed; the answer was dropped",
            ));
        }
        self.responder.respond(answer);
        Ok(())
    }
}

/// The responder behind a handle, checked before it is consumed.
unsafe fn answer_arg(r: *mut signalr_responder) -> FfiResult<()> {
    handle_ref(r, "responder").map(|_| ())
}

/// Answers with a result: the text of one JSON value (`"null"` is a valid result), borrowed for
/// the call.
///
/// Ownership: consumes `r` when it returns OK or `CONNECTION_CLOSED`; after a validation error
/// (`INVALID_UTF8`, `INVALID_JSON`) `r` is untouched and must still be answered or freed.
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`, `INVALID_JSON`, `CONNECTION_CLOSED` (the connection
/// was lost, stopped or freed since the call arrived).
#[no_mangle]
pub unsafe extern "C" fn signalr_responder_complete(r: *mut signalr_responder, result_json: *const c_char) -> signalr_result {
    ffi_call!({
        answer_arg(r)?;
        let value = json_value_arg(result_json, "result_json")?;
        take_handle(r).expect("checked").send(Ok(value))
    })
}

/// Answers with an error; the server's caller sees it as a HubException with this text.
///
/// Ownership: as `signalr_responder_complete`.
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`, `CONNECTION_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn signalr_responder_complete_with_error(r: *mut signalr_responder, error: *const c_char) -> signalr_result {
    ffi_call!({
        answer_arg(r)?;
        let error = str_arg(error, "error")?;
        take_handle(r).expect("checked").send(Err(error.to_owned()))
    })
}

/// Frees a responder without answering: the server gets the error "Client didn't provide a
/// result.". NULL is a no-op.
///
/// Ownership: consumes `r`.
#[no_mangle]
pub unsafe extern "C" fn signalr_responder_free(r: *mut signalr_responder) {
    ffi_value!((), {
        drop(take_handle(r));
    })
}
