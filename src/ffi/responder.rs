//! `signalr_responder`: the answer to one client-result call.

use std::ffi::c_char;

use std::sync::Weak;

use super::boundary::{json_value_arg, str_arg, take_handle, BoxCastable};
use super::connection::Connection;
use super::result::{Failure, FfiResult};
use super::signalr_result;
use crate::{ConnectionState, Payload, Responder};

/// The pending answer to a server call of a client-result handler.
///
/// Thread safety: may be answered from any thread, at once or later.
/// Ownership: consumed by exactly one call of `signalr_responder_complete`,
/// `signalr_responder_complete_with_error` (whatever it returns, NULL aside) or
/// `signalr_responder_free`.
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

/// Takes the responder; NULL is the only failure that does not consume one.
unsafe fn take(r: *mut signalr_responder) -> FfiResult<Box<Answer>> {
    take_handle(r).ok_or_else(|| Failure::new(signalr_result::NullParameter, "`responder` is NULL"))
}

/// Answers with a result: the text of one JSON value (`"null"` is a valid result), borrowed for
/// the call.
///
/// Ownership: consumes `r` whatever the result (except NULL): when `result_json` is not valid, the
/// server is answered with an error naming the problem, so that it never waits forever.
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`, `INVALID_JSON`, `CONNECTION_CLOSED` (the connection
/// was lost, stopped or freed since the call arrived; nothing is sent).
#[no_mangle]
pub unsafe extern "C" fn signalr_responder_complete(r: *mut signalr_responder, result_json: *const c_char) -> signalr_result {
    ffi_call!({
        let answer = take(r)?;
        match json_value_arg(result_json, "result_json") {
            Ok(value) => answer.send(Ok(value)),
            Err(invalid) => {
                let _ = answer.send(Err(format!("The client's result was not valid: {}", invalid.message)));
                Err(invalid)
            }
        }
    })
}

/// Answers with an error; the server's caller sees it as a HubException with this text.
///
/// Ownership: as `signalr_responder_complete` (invalid text is answered with an error naming the
/// problem).
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`, `CONNECTION_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn signalr_responder_complete_with_error(r: *mut signalr_responder, error: *const c_char) -> signalr_result {
    ffi_call!({
        let answer = take(r)?;
        match str_arg(error, "error") {
            Ok(error) => answer.send(Err(error.to_owned())),
            Err(invalid) => {
                let _ = answer.send(Err(format!("The client's error was not valid: {}", invalid.message)));
                Err(invalid)
            }
        }
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
