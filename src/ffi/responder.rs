//! `signalr_responder`: the answer to one client-result call.

use std::ffi::c_char;

use super::boundary::{str_arg, take_handle, BoxCastable};
use super::result::{Failure, FfiResult};
use super::signalr_result;
use crate::{Payload, Responder};

/// The pending answer to a server call of a client-result handler.
///
/// Thread safety: may be answered from any thread, at once or later.
/// Ownership: consumed by exactly one of `signalr_responder_complete`,
/// `signalr_responder_complete_with_error` or `signalr_responder_free`. After the connection was
/// lost or freed answering does nothing (and still consumes it).
pub struct signalr_responder {
    _private: [u8; 0],
}

impl BoxCastable for signalr_responder {
    type Inner = Responder;
}

fn take(r: *mut signalr_responder) -> FfiResult<Box<Responder>> {
    unsafe { take_handle(r) }.ok_or_else(|| Failure::new(signalr_result::NullParameter, "`responder` is NULL"))
}

/// Answers with a result: the text of one JSON value (`"null"` is a valid result), borrowed for
/// the call.
///
/// Ownership: consumes `r`, also on failure: invalid text is answered with an error naming the
/// problem, so that the server never waits forever.
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`, `INVALID_JSON`.
#[no_mangle]
pub unsafe extern "C" fn signalr_responder_complete(r: *mut signalr_responder, result_json: *const c_char) -> signalr_result {
    ffi_call!({
        let responder = take(r)?;
        let value = str_arg(result_json, "result_json").and_then(|text| {
            Payload::from_json(text.to_owned())
                .map_err(|e| Failure::new(signalr_result::InvalidJson, format!("`result_json`: {e}")))
        });
        match value {
            Ok(value) => {
                responder.ok(value);
                Ok(())
            }
            Err(failure) => {
                responder.error(format!("Client failed to provide a valid result: {}", failure.message));
                Err(failure)
            }
        }
    })
}

/// Answers with an error; the server's caller sees it as a HubException with this text.
///
/// Ownership: consumes `r`, also on failure (invalid text is answered with an error).
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`.
#[no_mangle]
pub unsafe extern "C" fn signalr_responder_complete_with_error(r: *mut signalr_responder, error: *const c_char) -> signalr_result {
    ffi_call!({
        let responder = take(r)?;
        match str_arg(error, "error") {
            Ok(error) => {
                responder.error(error);
                Ok(())
            }
            Err(failure) => {
                responder.error(format!("Client failed to provide a valid error: {}", failure.message));
                Err(failure)
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
