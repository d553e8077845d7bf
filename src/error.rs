//! The one error type of the client. Each variant is a kind the C API maps to a status code; the
//! text names the problem (and, for server errors, is the server's text verbatim).

use std::fmt;
use std::sync::Arc;

use crate::protocol::ProtocolError;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A caller-supplied value is not acceptable (bad URL, invalid JSON arguments, empty method name…).
    InvalidArgument(String),
    /// The call is not allowed in the connection's current state (e.g. invoke while Disconnected).
    InvalidState(String),
    /// Negotiation failed: HTTP error, the server's `error` field, redirect loop, no usable transport.
    Negotiation(String),
    /// The transport could not connect, or it broke.
    Transport(String),
    /// The server sent something the hub protocol does not allow.
    Protocol(String),
    /// A hub method failed on the server: the server's error text, verbatim.
    Hub(String),
    /// Something did not happen in time (server timeout, handshake timeout, HTTP timeout).
    Timeout(String),
    /// The connection closed before the operation completed; carries the cause when there was one.
    Closed(Option<Arc<Error>>),
    /// The operation was canceled (stop during start, stop during reconnect, reconnect exhausted).
    Canceled(String),
    /// The server refused the hub handshake (its error text included).
    Handshake(String),
    /// The server answered 401 Unauthorized.
    Unauthorized(String),
    /// The server closed the connection with a Close message carrying this error text (C-1).
    ServerClosed(String),
    /// A feature is configured that this version does not implement yet.
    NotSupported(String),
    /// A failure that fits no other kind (TLS set-up, a background task that panicked…).
    Internal(String),
}

/// How the text of an [`Error::Internal`] begins when a library task panicked (the C API reports
/// those as `SIGNALR_RESULT_PANIC`).
pub(crate) const PANIC_PREFIX: &str = "a library task panicked";

impl Error {
    /// The error a panic of the task `what` becomes: the connection closes with it.
    pub(crate) fn panicked(what: &str, payload: &(dyn std::any::Any + Send)) -> Error {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Error::Internal(format!("{PANIC_PREFIX} ({what}): {detail}"))
    }

    /// The error pending operations see when the connection goes away with `cause` (E-1).
    pub(crate) fn closed(cause: Option<&Error>) -> Error {
        Error::Closed(cause.map(|c| Arc::new(c.clone())))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::InvalidState(m) => write!(f, "invalid state: {m}"),
            Error::Negotiation(m) => write!(f, "negotiation failed: {m}"),
            Error::Transport(m) => write!(f, "transport error: {m}"),
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
            Error::Hub(m) => f.write_str(m),
            Error::Timeout(m) => write!(f, "timeout: {m}"),
            Error::Closed(None) => {
                f.write_str("Invocation canceled due to the underlying connection being closed.")
            }
            Error::Closed(Some(cause)) => write!(f, "connection closed: {cause}"),
            Error::Canceled(m) => write!(f, "canceled: {m}"),
            Error::Handshake(m) => write!(f, "handshake failed: {m}"),
            Error::Unauthorized(m) => write!(f, "unauthorized: {m}"),
            Error::ServerClosed(m) => write!(f, "Server returned an error on close: {m}"),
            Error::NotSupported(m) => write!(f, "not supported: {m}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e.to_string())
    }
}

/// An error's text followed by its sources' (libraries such as reqwest keep the cause, e.g.
/// "connection refused", in the source chain).
pub(crate) fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
