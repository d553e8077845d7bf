//! One transport session: from a successful handshake until the transport is gone. Owns the
//! outgoing queue (drained by the writer task) and the pending-invocation table. A reconnect makes
//! a new session; operations bound to an old one (uploads, late client results) fail quietly
//! instead of writing to the new connection (E-4).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::invocations::PendingTable;
use super::writer;
use crate::error::{Error, Result};
use crate::protocol::{HubMessage, HubProtocol};
use crate::transport::TransportWriter;

/// What the writer task is asked to do, in queue order.
pub(crate) enum Outgoing {
    /// A framed message. `trackable` marks types 1-5 (stateful reconnect will buffer those);
    /// `written` is told when the frame has been flushed to the transport (hub `send`).
    #[allow(dead_code)] // `trackable` is read once stateful reconnect exists
    Frame { bytes: Bytes, trackable: bool, written: Option<oneshot::Sender<Result<()>>> },
    /// Client stop: write what is queued, then the Close message (C-4), then close the transport.
    Stop { close: Bytes, done: oneshot::Sender<()> },
}

pub(crate) struct Session {
    pub protocol: HubProtocol,
    pub pending: PendingTable,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    /// Cancelled when the session is over, by whichever side ends it first.
    ended: CancellationToken,
    /// Why the writer failed, if it did (the receive loop reports it as the close cause).
    write_error: Mutex<Option<Error>>,
}

impl Session {
    /// Starts the writer task for `transport` and returns the session.
    pub fn start(
        protocol: HubProtocol,
        transport: TransportWriter,
        keep_alive: Option<std::time::Duration>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Arc<Session>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let session = Arc::new(Session {
            protocol,
            pending: PendingTable::default(),
            outgoing: tx,
            ended: CancellationToken::new(),
            write_error: Mutex::new(None),
        });
        let ping = session.encode(&HubMessage::Ping)?;
        runtime.spawn(writer::run(transport, rx, session.clone(), keep_alive.map(|i| (i, ping))));
        Ok(session)
    }

    /// Serializes one message in this session's protocol.
    pub fn encode(&self, message: &HubMessage) -> Result<Bytes> {
        let mut buf = Vec::new();
        self.protocol.write(message, &mut buf)?;
        Ok(Bytes::from(buf))
    }

    /// Queues a framed message. Fails once the session is over.
    pub fn send(&self, bytes: Bytes, trackable: bool) -> Result<()> {
        self.queue(Outgoing::Frame { bytes, trackable, written: None })
    }

    /// Queues a framed message and waits until the writer flushed it.
    pub async fn send_and_wait(&self, bytes: Bytes) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.queue(Outgoing::Frame { bytes, trackable: true, written: Some(tx) })?;
        rx.await.unwrap_or_else(|_| Err(self.closed_error()))
    }

    /// Encodes and queues a message.
    pub fn send_message(&self, message: &HubMessage) -> Result<()> {
        let bytes = self.encode(message)?;
        self.send(bytes, message.is_trackable())
    }

    fn queue(&self, item: Outgoing) -> Result<()> {
        if self.ended.is_cancelled() {
            return Err(self.closed_error());
        }
        self.outgoing.send(item).map_err(|_| self.closed_error())
    }

    fn closed_error(&self) -> Error {
        Error::closed(self.write_error.lock().unwrap_or_else(|p| p.into_inner()).as_ref())
    }

    pub fn is_ended(&self) -> bool {
        self.ended.is_cancelled()
    }

    /// Resolves when the session ended (writer failure or [`Session::end`]).
    pub async fn ended(&self) {
        self.ended.cancelled().await
    }

    /// The writer's error, once it failed.
    pub fn write_error(&self) -> Option<Error> {
        self.write_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn writer_failed(&self, error: Error) {
        tracing::debug!("transport send failed: {error}");
        let mut slot = self.write_error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(error);
        }
        drop(slot);
        self.ended.cancel();
    }

    /// Ends the session after a loss: pending operations fail with `cause` (E-1), the writer
    /// closes the transport without sending anything more.
    pub fn end(&self, cause: Option<&Error>) {
        self.ended.cancel();
        self.pending.close(Error::closed(cause));
    }

    /// Ends the session for a client stop: queued messages and a Close message are written first
    /// (best effort, bounded in time), then the transport is closed.
    pub async fn stop(&self) {
        if let Ok(close) = self.encode(&HubMessage::Close(Default::default())) {
            let (tx, rx) = oneshot::channel();
            if self.queue(Outgoing::Stop { close, done: tx }).is_ok() {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), rx).await;
            }
        }
        self.end(None);
    }
}
