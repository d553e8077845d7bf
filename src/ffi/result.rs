//! Status codes and the thread-local error message (conventions 10–12).

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};

/// Status of a fallible call. `SIGNALR_RESULT_OK` is 0, so `if (rc)` tests for failure.
///
/// Values are never renumbered or reused; a call that fails also leaves a message naming the
/// problem in `signalr_last_error_message()`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum signalr_result {
    Ok = 0,
    /// An argument has a value the function does not accept (unknown enum value, empty name…).
    InvalidArgument = 1,
    /// A required pointer argument was NULL.
    NullParameter = 2,
    /// A string argument is not valid UTF-8.
    InvalidUtf8 = 3,
    /// A JSON argument is malformed or is not of the required shape (e.g. not an array).
    InvalidJson = 4,
    /// The call is not allowed in the connection's current state.
    InvalidState = 5,
    /// The hub method failed on the server; the message is the server's error text.
    HubError = 6,
    /// The connection closed (or was lost) before the operation completed.
    ConnectionClosed = 7,
    /// The operation was canceled (by the caller, by `_stop` or by `_free`).
    Canceled = 8,
    /// The operation did not complete within its timeout.
    Timeout = 9,
    /// Negotiation failed (HTTP error, `error` field, redirect loop, no usable transport).
    NegotiationFailed = 10,
    /// The transport failed to connect or broke.
    TransportFailed = 11,
    /// The server sent something the hub protocol does not allow.
    ProtocolError = 12,
    /// The server refused the hub handshake.
    HandshakeFailed = 13,
    /// The server answered 401 Unauthorized.
    Unauthorized = 14,
    /// A blocking call was made from inside a library callback, where it would deadlock.
    WouldDeadlock = 15,
    /// A panic inside the library was caught at the boundary; the library state may be degraded.
    Panic = 16,
    /// A buffer supplied by the caller is too small.
    BufferTooSmall = 17,
    /// An internal error that fits no other code.
    Internal = 18,
}

impl signalr_result {
    fn name(self) -> &'static CStr {
        match self {
            Self::Ok => c"SIGNALR_RESULT_OK",
            Self::InvalidArgument => c"SIGNALR_RESULT_INVALID_ARGUMENT",
            Self::NullParameter => c"SIGNALR_RESULT_NULL_PARAMETER",
            Self::InvalidUtf8 => c"SIGNALR_RESULT_INVALID_UTF8",
            Self::InvalidJson => c"SIGNALR_RESULT_INVALID_JSON",
            Self::InvalidState => c"SIGNALR_RESULT_INVALID_STATE",
            Self::HubError => c"SIGNALR_RESULT_HUB_ERROR",
            Self::ConnectionClosed => c"SIGNALR_RESULT_CONNECTION_CLOSED",
            Self::Canceled => c"SIGNALR_RESULT_CANCELED",
            Self::Timeout => c"SIGNALR_RESULT_TIMEOUT",
            Self::NegotiationFailed => c"SIGNALR_RESULT_NEGOTIATION_FAILED",
            Self::TransportFailed => c"SIGNALR_RESULT_TRANSPORT_FAILED",
            Self::ProtocolError => c"SIGNALR_RESULT_PROTOCOL_ERROR",
            Self::HandshakeFailed => c"SIGNALR_RESULT_HANDSHAKE_FAILED",
            Self::Unauthorized => c"SIGNALR_RESULT_UNAUTHORIZED",
            Self::WouldDeadlock => c"SIGNALR_RESULT_WOULD_DEADLOCK",
            Self::Panic => c"SIGNALR_RESULT_PANIC",
            Self::BufferTooSmall => c"SIGNALR_RESULT_BUFFER_TOO_SMALL",
            Self::Internal => c"SIGNALR_RESULT_INTERNAL",
        }
    }

    fn from_u32(code: u32) -> Option<Self> {
        const ALL: [signalr_result; 19] = [
            signalr_result::Ok,
            signalr_result::InvalidArgument,
            signalr_result::NullParameter,
            signalr_result::InvalidUtf8,
            signalr_result::InvalidJson,
            signalr_result::InvalidState,
            signalr_result::HubError,
            signalr_result::ConnectionClosed,
            signalr_result::Canceled,
            signalr_result::Timeout,
            signalr_result::NegotiationFailed,
            signalr_result::TransportFailed,
            signalr_result::ProtocolError,
            signalr_result::HandshakeFailed,
            signalr_result::Unauthorized,
            signalr_result::WouldDeadlock,
            signalr_result::Panic,
            signalr_result::BufferTooSmall,
            signalr_result::Internal,
        ];
        ALL.iter().copied().find(|r| *r as u32 == code)
    }
}

/// A failed FFI call: the status and the message stored for `signalr_last_error_message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub code: signalr_result,
    pub message: String,
}

impl Failure {
    pub fn new(code: signalr_result, message: impl Into<String>) -> Self {
        Failure { code, message: message.into() }
    }
}

pub(crate) type FfiResult<T = ()> = Result<T, Failure>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records the outcome of a call on this thread: the failure's message, or nothing on success.
pub(crate) fn record(outcome: &FfiResult) -> signalr_result {
    let (code, message) = match outcome {
        Ok(()) => (signalr_result::Ok, String::new()),
        Err(f) => (f.code, f.message.clone()),
    };
    // Interior NULs cannot be represented in a C string; replace them rather than lose the text.
    let text = CString::new(message.replace('\0', "\u{FFFD}")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = text);
    code
}

/// The message of the last failed `signalr_` call on this thread ("" after a successful one).
///
/// Ownership: borrowed; never NULL; valid until the next `signalr_` call on this thread.
/// Thread safety: per thread.
#[no_mangle]
pub extern "C" fn signalr_last_error_message() -> *const c_char {
    // Must not go through `record`: reading the message must not clear it.
    std::panic::catch_unwind(|| LAST_ERROR.with(|slot| slot.borrow().as_ptr()))
        .unwrap_or(c"".as_ptr())
}

/// The constant name of a status code, e.g. "SIGNALR_RESULT_TIMEOUT"; "SIGNALR_RESULT_UNKNOWN"
/// for a value that is not a code.
///
/// Ownership: static string, never NULL, never freed.
#[no_mangle]
pub extern "C" fn signalr_result_name(code: u32) -> *const c_char {
    signalr_result::from_u32(code)
        .map(|r| r.name().as_ptr())
        .unwrap_or(c"SIGNALR_RESULT_UNKNOWN".as_ptr())
}

/// The status a core error maps to (the table in `notes/c-api.md`); the message is its text.
pub(crate) fn code_of(error: &crate::Error) -> signalr_result {
    use crate::Error as E;
    match error {
        E::InvalidArgument(_) | E::NotSupported(_) => signalr_result::InvalidArgument,
        E::InvalidState(_) => signalr_result::InvalidState,
        E::Negotiation(_) => signalr_result::NegotiationFailed,
        E::Transport(_) => signalr_result::TransportFailed,
        E::Protocol(_) => signalr_result::ProtocolError,
        E::Hub(_) => signalr_result::HubError,
        E::Timeout(_) => signalr_result::Timeout,
        E::Closed(_) | E::ServerClosed(_) => signalr_result::ConnectionClosed,
        E::Canceled(_) => signalr_result::Canceled,
        E::Handshake(_) => signalr_result::HandshakeFailed,
        E::Unauthorized(_) => signalr_result::Unauthorized,
        E::Internal(m) if m.starts_with(crate::error::PANIC_PREFIX) => signalr_result::Panic,
        E::Internal(_) => signalr_result::Internal,
    }
}

impl From<crate::Error> for Failure {
    fn from(error: crate::Error) -> Self {
        Failure::new(code_of(&error), error.to_string())
    }
}
