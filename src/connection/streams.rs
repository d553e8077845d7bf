//! Handles for operations in flight: an invoke's result ([`PendingInvocation`]), a server-to-client
//! stream ([`HubStream`]) and a client-to-server upload stream ([`UploadStream`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};

use super::session::Session;
use crate::error::{Error, Result};
use crate::protocol::{Completion, CompletionResult, HubMessage, Payload, StreamItem};

/// The result of an invoke: resolves with the hub method's return value (JSON `null` for void
/// methods) or its error. Dropping it forgets the invocation (no message is sent, D-3).
pub struct PendingInvocation {
    pub(crate) rx: oneshot::Receiver<Result<Payload>>,
    pub(crate) session: Arc<Session>,
    pub(crate) id: u64,
}

impl Future for PendingInvocation {
    type Output = Result<Payload>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let session = self.session.clone();
        Pin::new(&mut self.rx).poll(cx).map(|r| r.unwrap_or_else(|_| Err(Error::closed(session.write_error().as_ref()))))
    }
}

impl Drop for PendingInvocation {
    fn drop(&mut self) {
        self.session.pending.remove(self.id);
    }
}

/// Items of a server-to-client stream, in order. Ends after the server's Completion; a Completion
/// with an error yields that error as the last item. Dropping it (or [`HubStream::cancel`]) before
/// the end sends CancelInvocation (SS-3).
pub struct HubStream {
    pub(crate) rx: mpsc::UnboundedReceiver<Result<Payload>>,
    pub(crate) session: Arc<Session>,
    pub(crate) id: u64,
}

impl HubStream {
    /// The next item; `None` once the stream completed.
    pub async fn next(&mut self) -> Option<Result<Payload>> {
        self.rx.recv().await
    }

    /// Stops the stream: the server is told with CancelInvocation; no item arrives afterwards.
    pub fn cancel(self) {}
}

impl Stream for HubStream {
    type Item = Result<Payload>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for HubStream {
    fn drop(&mut self) {
        // Still in the table = the server has not completed it: cancel on the server.
        if self.session.pending.remove(self.id).is_some() {
            let message = HubMessage::CancelInvocation { headers: Vec::new(), invocation_id: self.id.to_string() };
            let _ = self.session.send_message(&message);
        }
    }
}

/// Text of the error Completion sent for an upload stream dropped without completing (as .NET).
pub const UPLOAD_CANCELED_ERROR: &str = "Stream canceled by client.";

/// A client-to-server stream argument (U-1 … U-4). Items go out in order after the invocation
/// that declared the stream. Dropping it without [`UploadStream::complete`] ends the stream with
/// the error "Stream canceled by client.". After the connection is lost every call fails and
/// nothing is written (U-4, E-4).
pub struct UploadStream {
    pub(crate) session: Arc<Session>,
    pub(crate) stream_id: String,
    pub(crate) finished: bool,
}

impl UploadStream {
    /// The stream id listed in the invocation's `streamIds`.
    pub fn id(&self) -> &str {
        &self.stream_id
    }

    /// Queues one item.
    pub fn send(&self, item: Payload) -> Result<()> {
        let message = HubMessage::StreamItem(StreamItem { headers: Vec::new(), invocation_id: self.stream_id.clone(), item });
        self.session.send_message(&message)
    }

    /// Ends the stream normally.
    pub fn complete(mut self) -> Result<()> {
        self.finish(CompletionResult::Void)
    }

    /// Ends the stream with an error (the hub method sees it as an exception).
    pub fn fail(mut self, error: impl Into<String>) -> Result<()> {
        self.finish(CompletionResult::Error(error.into()))
    }

    fn finish(&mut self, result: CompletionResult) -> Result<()> {
        self.finished = true;
        let message = HubMessage::Completion(Completion { headers: Vec::new(), invocation_id: self.stream_id.clone(), result });
        self.session.send_message(&message)
    }
}

impl Drop for UploadStream {
    fn drop(&mut self) {
        if !self.finished && !self.session.is_ended() {
            let _ = self.finish(CompletionResult::Error(UPLOAD_CANCELED_ERROR.into()));
        }
    }
}
