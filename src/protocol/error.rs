//! The one error type of the protocol layer.

use std::borrow::Cow;
use std::fmt;

/// A message that is malformed, truncated or oversized, or a value that cannot be encoded.
///
/// The text names the problem (for example "Completion message carries both 'result' and
/// 'error'"); the connection that produced it should be closed with it (M-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    message: Cow<'static, str>,
}

impl ProtocolError {
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        ProtocolError { message: message.into() }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same problem, prefixed with where it was found ("StreamItem 'item': …").
    pub(crate) fn context(self, place: &str) -> Self {
        ProtocolError::new(format!("{place}: {}", self.message))
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProtocolError {}
