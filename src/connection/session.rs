//! One transport session: from a successful handshake until the transport is gone. Owns the
//! outgoing queue (see `writer`) and the pending-invocation table. A reconnect makes
//! a new session; operations bound to an old one (uploads, late client results) fail quietly
//! instead of writing to the new connection (E-4). A stateful re-connect keeps the session: only
//! its transport changes (see `stateful` and [`Writer::resume`]).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::invocations::PendingTable;
use super::stateful::ReplayBuffer;
use super::writer::{self, Outgoing, Writer};
use crate::error::{Error, Result};
use crate::protocol::{HubMessage, HubProtocol};
use crate::transport::TransportWriter;

pub(crate) struct Session {
    pub protocol: HubProtocol,
    pub pending: PendingTable,
    writer: Writer,
    /// Cancelled when the session is over, by whichever side ends it first.
    ended: CancellationToken,
    /// Why the writer failed, if it did (the receive loop reports it as the close cause).
    write_error: Mutex<Option<Error>>,
    /// Why the session ended (what senders still waiting are told).
    end_cause: Mutex<Option<Error>>,
}

impl Session {
    /// Starts the writer task for `transport` and returns the session. `stateful_buffer` (bytes)
    /// turns on stateful reconnect's replay buffer.
    pub fn start(
        protocol: HubProtocol,
        transport: TransportWriter,
        keep_alive: Option<std::time::Duration>,
        stateful_buffer: Option<usize>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Arc<Session>> {
        let replay = stateful_buffer.map(|limit| Arc::new(ReplayBuffer::new(limit)));
        let session = Arc::new(Session {
            protocol,
            pending: PendingTable::default(),
            writer: Writer::new(transport, replay),
            ended: CancellationToken::new(),
            write_error: Mutex::new(None),
            end_cause: Mutex::new(None),
        });
        let ping = session.encode(&HubMessage::Ping)?;
        let run = std::panic::AssertUnwindSafe(writer::run(session.clone(), keep_alive.map(|i| (i, ping))));
        let guarded = session.clone();
        runtime.spawn(async move {
            use futures_util::FutureExt;
            // A panic ends the session like a transport failure: the receive loop closes or reconnects.
            if let Err(payload) = run.catch_unwind().await {
                guarded.writer_failed(Error::panicked("writer", &*payload));
            }
        });
        Ok(session)
    }

    pub(super) fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Serializes one message in this session's protocol.
    pub fn encode(&self, message: &HubMessage) -> Result<Bytes> {
        let mut buf = Vec::new();
        self.protocol.write(message, &mut buf)?;
        Ok(Bytes::from(buf))
    }

    /// Queues a framed message for the writer task (for callers that cannot wait). Fails once the
    /// session is over.
    pub fn send(&self, bytes: Bytes, trackable: bool) -> Result<()> {
        self.queue(Outgoing::Frame { bytes, trackable, written: None })?;
        self.writer.wake();
        Ok(())
    }

    /// Queues a framed message and writes it on this task if the transport is free.
    pub async fn send_inline(&self, bytes: Bytes) -> Result<()> {
        self.queue(Outgoing::Frame { bytes, trackable: true, written: None })?;
        self.write_now().await?;
        self.room_for_more().await
    }

    /// Queues a framed message and waits until it has been flushed to the transport.
    pub async fn send_and_wait(&self, bytes: Bytes) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.queue(Outgoing::Frame { bytes, trackable: true, written: Some(tx) })?;
        self.write_now().await?;
        rx.await.unwrap_or_else(|_| Err(self.closed_error()))?;
        self.room_for_more().await
    }

    /// Stateful reconnect's backpressure (SR-6): while the unacknowledged bytes are at the
    /// limit, a send (its message already on its way) completes only once Acks made room.
    async fn room_for_more(&self) -> Result<()> {
        let Some(replay) = self.writer.replay() else { return Ok(()) };
        tokio::select! {
            biased;
            _ = replay.room() => Ok(()),
            _ = self.ended.cancelled() => Err(self.closed_error()),
        }
    }

    /// A received `Ack`: releases what the server has (SR-4).
    pub fn ack(&self, sequence_id: u64) {
        if let Some(replay) = self.writer.replay() {
            replay.ack(sequence_id);
        }
    }

    /// Writes what is queued on this task if the transport is free. A write blocked by a peer that
    /// stopped reading is abandoned when the session ends, so callers never outlive the session.
    async fn write_now(&self) -> Result<()> {
        tokio::select! {
            biased;
            error = self.writer.write_inline() => match error {
                Some(e) => {
                    // The transport failed under this caller: the session is over for everyone.
                    self.writer_failed(e.clone());
                    Err(Error::closed(Some(&e)))
                }
                None => Ok(()),
            },
            _ = self.ended.cancelled() => Err(self.closed_error()),
        }
    }

    /// Encodes and queues a message (see [`Session::send`]).
    pub fn send_message(&self, message: &HubMessage) -> Result<()> {
        let bytes = self.encode(message)?;
        self.send(bytes, message.is_trackable())
    }

    fn queue(&self, item: Outgoing) -> Result<()> {
        if self.ended.is_cancelled() {
            return Err(self.closed_error());
        }
        if let (Outgoing::Frame { bytes, trackable: true, .. }, Some(replay)) = (&item, self.writer.replay()) {
            replay.queued(bytes.len());
        }
        if !self.writer.push(item) {
            return Err(self.closed_error());
        }
        Ok(())
    }

    fn closed_error(&self) -> Error {
        if let Some(cause) = self.end_cause.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Error::closed(Some(cause));
        }
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
        if let Some(cause) = cause {
            let mut slot = self.end_cause.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| cause.clone());
        }
        self.ended.cancel();
        self.pending.close(Error::closed(cause));
    }

    /// Ends the session for a client stop: queued messages and a Close message are written first
    /// (best effort, bounded in time), then the transport is closed.
    pub async fn stop(&self) {
        // Without a transport (stateful re-connect pending) there is nobody to tell.
        let connected = !self.writer.link().is_cancelled();
        if let (true, Ok(close)) = (connected, self.encode(&HubMessage::Close(Default::default()))) {
            let (tx, rx) = oneshot::channel();
            if self.queue(Outgoing::Stop { close, done: tx }).is_ok() {
                self.writer.wake();
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), rx).await;
            }
        }
        self.end(None);
    }
}
