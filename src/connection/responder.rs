//! The answer slot of a client-result invocation (CR-1 … CR-5).

use std::sync::Arc;

use super::session::Session;
use crate::protocol::{Completion, CompletionResult, HubMessage, Payload};

/// The text the official clients send when no handler produced a result (CR-2, CR-3).
pub const NO_RESULT_ERROR: &str = "Client didn't provide a result.";

/// Answers one server invocation. Complete it at once or later, from any thread; dropping it
/// unanswered sends the error Completion "Client didn't provide a result.". For an invocation
/// without id (CR-5) or after the connection was lost (E-4) answering does nothing.
pub struct Responder {
    target: Option<(Arc<Session>, String)>,
}

impl Responder {
    pub(crate) fn new(session: Arc<Session>, invocation_id: Option<String>) -> Responder {
        Responder { target: invocation_id.map(|id| (session, id)) }
    }

    /// Whether the server waits for this answer (the invocation carried an id).
    pub fn expects_result(&self) -> bool {
        self.target.is_some()
    }

    /// Sends the result value (null is a valid result).
    pub fn ok(mut self, value: Payload) {
        self.complete(CompletionResult::Value(value));
    }

    /// Sends an error; the server reports it to its caller.
    pub fn error(mut self, message: impl Into<String>) {
        self.complete(CompletionResult::Error(message.into()));
    }

    /// `ok` or `error`.
    pub fn respond(self, outcome: Result<Payload, String>) {
        match outcome {
            Ok(v) => self.ok(v),
            Err(e) => self.error(e),
        }
    }

    fn complete(&mut self, result: CompletionResult) {
        let Some((session, invocation_id)) = self.target.take() else { return };
        let completion = |result| HubMessage::Completion(Completion { headers: Vec::new(), invocation_id: invocation_id.clone(), result });
        let bytes = session.encode(&completion(result)).or_else(|e| {
            // The server still waits for an answer: tell it why there is none.
            session.encode(&completion(CompletionResult::Error(format!("Client failed to serialize the result: {e}"))))
        });
        match bytes {
            Ok(bytes) => {
                if let Err(e) = session.send(bytes, true) {
                    tracing::debug!("client result not sent: {e}");
                }
            }
            Err(e) => tracing::error!("client result could not be encoded: {e}"),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.complete(CompletionResult::Error(NO_RESULT_ERROR.into()));
    }
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder").field("invocation_id", &self.target.as_ref().map(|t| &t.1)).finish()
    }
}
