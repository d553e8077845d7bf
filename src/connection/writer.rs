//! The sending side of a session.
//!
//! Messages are queued in order; whoever holds the writer lock drains the whole queue into the
//! transport and flushes once. An async caller (`invoke`, `send`, `stream`) that finds the lock
//! free writes at once on its own task — no hop to another task on the send path. Otherwise the
//! holder picks its message up before letting go. Sync callers (client results, upload items,
//! stream cancels) and the keep-alive ping go through the session's writer task, which also
//! sends a Ping when nothing was sent for the keep-alive interval (K-2).
//!
//! Stateful reconnect: every trackable message passes `Core::take` on its way to the transport,
//! where the [`ReplayBuffer`] numbers and keeps it. When the transport breaks, the writer is
//! *suspended* (in-flight writes abandoned, the queue left alone) until [`Writer::resume`] brings a
//! new transport, writes the resend and lets the queue flow again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::stateful::ReplayBuffer;
use crate::error::{Error, Result};
use crate::transport::TransportWriter;

/// What is queued for the transport, in order.
pub(crate) enum Outgoing {
    /// A framed message. `trackable` marks types 1-5 (kept for replay under stateful reconnect);
    /// `written` is told when the frame has been flushed to the transport (hub `send`).
    Frame { bytes: Bytes, trackable: bool, written: Option<oneshot::Sender<Result<()>>> },
    /// Client stop: write what is queued, then the Close message (C-4), then close the transport.
    Stop { close: Bytes, done: oneshot::Sender<()> },
}

/// Most frames written per flush, so that one burst cannot delay the others' completion forever.
const MAX_BATCH: usize = 256;

pub(crate) struct Writer {
    queue: mpsc::UnboundedSender<Outgoing>,
    /// Items queued and not yet taken by a drainer (incremented before the item is queued).
    queued: AtomicUsize,
    core: Mutex<Core>,
    /// Wakes the writer task: deferred sends, or an inline write that was interrupted.
    wake: Notify,
    /// When something was last flushed, in ms since `epoch` (for the keep-alive).
    last_write_ms: AtomicU64,
    epoch: Instant,
    /// The current transport's link, cancelled when it broke (stateful reconnect only).
    link: std::sync::Mutex<CancellationToken>,
    replay: Option<std::sync::Arc<ReplayBuffer>>,
}

struct Core {
    transport: TransportWriter,
    queue: mpsc::UnboundedReceiver<Outgoing>,
    frames: VecDeque<Bytes>,
    written: Vec<oneshot::Sender<Result<()>>>,
    stop: Option<oneshot::Sender<()>>,
    /// Frames were handed to the transport and not yet flushed (an inline write was cancelled).
    dirty: bool,
    /// The transport is closed or broken; nothing more is written.
    done: Option<Error>,
    /// Copy of `Writer::link` for this transport; once cancelled the writer is suspended.
    link: CancellationToken,
    replay: Option<std::sync::Arc<ReplayBuffer>>,
}

/// What the session learns from a drain.
pub(crate) enum Drained {
    /// Wrote `n` queued items (0 = the queue was empty).
    Wrote(usize),
    /// The transport is finished (stopped, closed or failed: see the error).
    Done(Option<Error>),
    /// The transport broke under stateful reconnect: nothing is written until `resume`.
    Suspended,
}

impl Writer {
    /// A writer for `transport`; with `replay`, trackable messages are kept for stateful reconnect.
    pub fn new(transport: TransportWriter, replay: Option<std::sync::Arc<ReplayBuffer>>) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        let link = CancellationToken::new();
        Writer {
            queue: tx,
            queued: AtomicUsize::new(0),
            core: Mutex::new(Core {
                transport,
                queue: rx,
                frames: VecDeque::new(),
                written: Vec::new(),
                stop: None,
                dirty: false,
                done: None,
                link: link.clone(),
                replay: replay.clone(),
            }),
            wake: Notify::new(),
            last_write_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            link: std::sync::Mutex::new(link),
            replay,
        }
    }

    pub fn replay(&self) -> Option<&ReplayBuffer> {
        self.replay.as_deref()
    }

    fn lock_link(&self) -> std::sync::MutexGuard<'_, CancellationToken> {
        self.link.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current transport's link: cancelled when that transport broke (stateful only).
    pub fn link(&self) -> CancellationToken {
        self.lock_link().clone()
    }

    /// Stateful reconnect: the transport is gone. A write in flight is abandoned (its frames are
    /// in the replay buffer); queued messages wait for [`Writer::resume`].
    pub fn suspend(&self) {
        self.lock_link().cancel();
    }

    /// Stateful reconnect: continues on `transport`. Writes `resend` (Sequence and the replay,
    /// SR-8) before anything queued, then lets the queue flow. An error means the new transport
    /// failed too; the writer stays suspended.
    pub async fn resume(&self, transport: TransportWriter, resend: impl FnOnce() -> Result<Vec<Bytes>>) -> Result<()> {
        // Suspended writers gave the lock up, so this does not wait for the broken transport.
        let mut core = self.core.lock().await;
        if let Some(e) = &core.done {
            return Err(e.clone());
        }
        let link = CancellationToken::new();
        // Until the resend is out, an error or a cancelled call leaves the writer suspended.
        let suspended_unless_done = link.clone().drop_guard();
        core.transport = transport; // the broken one is dropped (its socket closed)
        core.frames.clear(); // taken frames are in the replay buffer
        core.dirty = false;
        core.link = link.clone();
        // Built under the lock: nothing can be taken (and numbered) in between.
        core.frames.extend(resend()?);
        let Core { transport, frames, .. } = &mut *core;
        let outcome = tokio::select! {
            biased;
            _ = link.cancelled() => Err(Error::Transport("the connection was lost again while replaying".into())),
            r = transport.send_batch(frames) => r,
        };
        outcome?;
        suspended_unless_done.disarm();
        self.touch();
        // Sends that waited for their frames to reach a transport: they just did.
        for tx in core.written.drain(..) {
            let _ = tx.send(Ok(()));
        }
        *self.lock_link() = link;
        drop(core);
        self.wake();
        Ok(())
    }

    /// Queues an item; false if the queue is gone.
    pub fn push(&self, item: Outgoing) -> bool {
        self.queued.fetch_add(1, Ordering::AcqRel);
        if self.queue.send(item).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Has the writer task write what is queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Writes what is queued on the caller's task if nobody else is writing; else the current
    /// writer takes care of it. Cancel-safe: an interrupted write is finished by the writer task.
    pub async fn write_inline(&self) -> Option<Error> {
        struct Interrupted<'a>(Option<&'a Writer>);
        impl Drop for Interrupted<'_> {
            fn drop(&mut self) {
                if let Some(w) = self.0 {
                    w.wake();
                }
            }
        }
        let mut guard = Interrupted(Some(self));
        loop {
            let Ok(mut core) = self.core.try_lock() else { break };
            match core.drain(self).await {
                Drained::Done(error) => {
                    guard.0 = None;
                    return error;
                }
                // Queued: goes out after the stateful re-connect.
                Drained::Suspended => break,
                Drained::Wrote(0) if self.queued.load(Ordering::Acquire) > 0 => {
                    // Someone is between counting and queueing; the writer task will see it.
                    self.wake();
                    break;
                }
                Drained::Wrote(_) => {}
            }
            drop(core);
            if self.queued.load(Ordering::Acquire) == 0 {
                break;
            }
        }
        guard.0 = None;
        None
    }

    fn touch(&self) {
        self.last_write_ms.store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
    }

    fn last_write(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_write_ms.load(Ordering::Acquire))
    }
}

impl Core {
    fn take(&mut self, item: Outgoing) {
        match item {
            Outgoing::Frame { bytes, trackable, written } => {
                if let (true, Some(replay)) = (trackable, &self.replay) {
                    replay.record(&bytes);
                }
                self.frames.push_back(bytes);
                self.written.extend(written);
            }
            Outgoing::Stop { close, done } => {
                self.frames.push_back(close);
                self.stop = Some(done);
            }
        }
    }

    /// Takes everything queued (up to a batch), writes it and flushes.
    async fn drain(&mut self, writer: &Writer) -> Drained {
        if let Some(e) = &self.done {
            return Drained::Done(Some(e.clone()));
        }
        if self.link.is_cancelled() {
            return Drained::Suspended;
        }
        let mut taken = 0;
        while self.stop.is_none() && self.frames.len() < MAX_BATCH {
            match self.queue.try_recv() {
                Ok(item) => {
                    writer.queued.fetch_sub(1, Ordering::AcqRel);
                    self.take(item);
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        if self.frames.is_empty() && !self.dirty {
            return Drained::Wrote(taken);
        }
        self.dirty = true;
        let outcome = if self.replay.is_some() {
            tokio::select! {
                biased;
                _ = self.link.cancelled() => Err(Error::Transport("the connection was lost".into())),
                r = self.transport.send_batch(&mut self.frames) => r,
            }
        } else {
            // Without stateful reconnect the link never breaks: no waker to register per batch.
            self.transport.send_batch(&mut self.frames).await
        };
        if outcome.is_err() && self.replay.is_some() {
            // Stateful: what was taken is kept for replay; those waiting for `written` learn
            // the outcome once the resend went out (or the session ended).
            tracing::debug!("transport write failed, waiting for a stateful re-connect: {outcome:?}");
            self.link.cancel();
            return Drained::Suspended;
        }
        self.dirty = false;
        writer.touch();
        for tx in self.written.drain(..) {
            let _ = tx.send(outcome.clone());
        }
        if let Err(e) = outcome {
            self.done = Some(e.clone());
            return Drained::Done(Some(e));
        }
        if let Some(done) = self.stop.take() {
            self.transport.close().await;
            self.done = Some(Error::closed(None));
            let _ = done.send(());
            return Drained::Done(None);
        }
        Drained::Wrote(taken)
    }

    /// Fails what is still queued (the session is over).
    fn discard(&mut self, writer: &Writer, error: &Error) {
        self.frames.clear();
        for tx in self.written.drain(..) {
            let _ = tx.send(Err(error.clone()));
        }
        while let Ok(item) = self.queue.try_recv() {
            writer.queued.fetch_sub(1, Ordering::AcqRel);
            match item {
                Outgoing::Frame { written: Some(tx), .. } => {
                    let _ = tx.send(Err(error.clone()));
                }
                Outgoing::Stop { done, .. } => {
                    let _ = done.send(());
                }
                Outgoing::Frame { .. } => {}
            }
        }
    }
}

/// The writer task of a session: deferred sends, interrupted inline writes, keep-alive pings,
/// and closing the transport when the session ends.
pub(crate) async fn run(
    session: std::sync::Arc<super::session::Session>,
    keep_alive: Option<(Duration, Bytes)>,
) {
    let writer = session.writer();
    // H-8: one Ping right after the handshake; the server starts its client timeout after it.
    if let Some((_, ping)) = &keep_alive {
        writer.push(Outgoing::Frame { bytes: ping.clone(), trackable: false, written: None });
    }
    let ended = session.ended();
    tokio::pin!(ended);
    let mut ping_timer = keep_alive.as_ref().map(|(interval, _)| Box::pin(tokio::time::sleep(*interval)));
    let mut suspended = false;
    loop {
        let mut ping_due = false;
        if suspended || writer.queued.load(Ordering::Acquire) == 0 {
            tokio::select! {
                biased;
                _ = &mut ended => break,
                _ = writer.wake.notified() => {}
                _ = async { ping_timer.as_mut().unwrap().as_mut().await }, if ping_timer.is_some() => {
                    let (interval, _) = keep_alive.as_ref().unwrap();
                    let due = writer.last_write() + *interval;
                    if Instant::now() >= due {
                        ping_due = true;
                        ping_timer.as_mut().unwrap().as_mut().reset(Instant::now() + *interval);
                    } else {
                        ping_timer.as_mut().unwrap().as_mut().reset(due);
                    }
                }
            }
        }
        let mut core = tokio::select! {
            biased;
            _ = &mut ended => break,
            core = writer.core.lock() => core,
        };
        if ping_due && core.frames.is_empty() && !core.link.is_cancelled() {
            core.frames.push_back(keep_alive.as_ref().unwrap().1.clone());
        }
        // A peer that stopped reading must not keep this task (and the transport) forever.
        let drained = tokio::select! {
            biased;
            _ = &mut ended => break,
            drained = core.drain(writer) => drained,
        };
        suspended = false;
        match drained {
            Drained::Done(Some(e)) => {
                drop(core);
                session.writer_failed(e);
                break;
            }
            Drained::Done(None) => break,
            // Until `resume` wakes this task (pings are pointless meanwhile).
            Drained::Suspended => suspended = true,
            Drained::Wrote(0) if writer.queued.load(Ordering::Acquire) > 0 => {
                // A sender is between counting and queueing: let it finish.
                drop(core);
                tokio::task::yield_now().await;
            }
            Drained::Wrote(_) => {}
        }
    }
    // An inline writer still blocked on the dead transport gives the lock up as soon as it sees
    // the session end (see `Session::write_now`).
    let mut core = writer.core.lock().await;
    if core.done.is_none() {
        core.transport.close().await;
    }
    let error = core.done.clone().unwrap_or_else(|| Error::closed(None));
    core.done = Some(error.clone());
    core.discard(writer, &error);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc;
    use tokio::time::Instant;

    use crate::connection::session::Session;
    use crate::protocol::HubProtocol;
    use crate::transport::{memory, TransportWriter};

    const PING: &[u8] = b"{\"type\":6}\x1e";

    #[tokio::test(start_paused = true)]
    async fn pings_go_out_only_after_a_quiet_interval_and_queued_frames_share_one_flush() {
        let (tx, mut sent) = mpsc::unbounded_channel();
        let writer = TransportWriter::Memory(memory::Writer { sent: tx });
        let start = Instant::now();
        let session = Session::start(
            HubProtocol::Json,
            writer,
            Some(Duration::from_secs(10)),
            None,
            &tokio::runtime::Handle::current(),
        )
        .unwrap();
        // H-8: one Ping right after the handshake.
        let (at, frames) = sent.recv().await.unwrap();
        assert_eq!((at - start, frames.as_slice()), (Duration::ZERO, &[bytes::Bytes::from_static(PING)][..]));
        // A message at 6 s postpones the next Ping to 16 s (K-2)...
        tokio::time::sleep(Duration::from_secs(6)).await;
        session.send(bytes::Bytes::from_static(b"a"), true).unwrap();
        session.send(bytes::Bytes::from_static(b"b"), true).unwrap();
        let (at, frames) = sent.recv().await.unwrap();
        assert_eq!(at - start, Duration::from_secs(6));
        assert_eq!(frames, ["a", "b"].map(|s| bytes::Bytes::from_static(s.as_bytes())), "one batch");
        let (at, frames) = sent.recv().await.unwrap();
        assert_eq!((at - start, frames[0].as_ref()), (Duration::from_secs(16), PING));
        // ...and an idle connection pings every interval.
        let (at, _) = sent.recv().await.unwrap();
        assert_eq!(at - start, Duration::from_secs(26));
        // Inline writes go out on the caller's task.
        session.send_inline(bytes::Bytes::from_static(b"c")).await.unwrap();
        let (at, frames) = sent.recv().await.unwrap();
        assert_eq!((at - start, frames[0].as_ref()), (Duration::from_secs(26), &b"c"[..]));
        session.end(None);
    }

    #[tokio::test]
    async fn a_resumed_writer_sends_the_sequence_and_the_unacknowledged_frames_before_the_queue() {
        let b = |s: &'static str| bytes::Bytes::from_static(s.as_bytes());
        let (tx, mut first) = mpsc::unbounded_channel();
        let writer = TransportWriter::Memory(memory::Writer { sent: tx });
        let session = Session::start(HubProtocol::Json, writer, None, Some(1000), &tokio::runtime::Handle::current())
            .unwrap();
        for m in ["a", "b", "c"] {
            session.send_inline(b(m)).await.unwrap();
            assert_eq!(first.recv().await.unwrap().1, [b(m)]);
        }
        session.ack(1);
        // The transport breaks: what is sent now waits, whether trackable or not.
        session.writer().suspend();
        session.send_inline(b("d")).await.unwrap();
        session.send(b("ping"), false).unwrap();
        let (tx, mut second) = mpsc::unbounded_channel();
        let resend = || session.writer().replay().unwrap().resend(HubProtocol::Json);
        session.writer().resume(TransportWriter::Memory(memory::Writer { sent: tx }), resend).await.unwrap();
        assert!(first.try_recv().is_err(), "nothing went to the broken transport");
        // Sequence{2} (a was acknowledged), the replay, then the queue in order.
        assert_eq!(second.recv().await.unwrap().1, [b("{\"type\":9,\"sequenceId\":2}\u{1e}"), b("b"), b("c")]);
        let mut rest = Vec::new();
        while rest.len() < 2 {
            rest.extend(second.recv().await.unwrap().1);
        }
        assert_eq!(rest, [b("d"), b("ping")]);
        // d got id 4: a second resume replays b, c and d.
        session.writer().suspend();
        let (tx, mut third) = mpsc::unbounded_channel();
        let resend = || session.writer().replay().unwrap().resend(HubProtocol::Json);
        session.writer().resume(TransportWriter::Memory(memory::Writer { sent: tx }), resend).await.unwrap();
        assert_eq!(third.recv().await.unwrap().1, [b("{\"type\":9,\"sequenceId\":2}\u{1e}"), b("b"), b("c"), b("d")]);
        session.end(None);
    }

    #[tokio::test]
    async fn a_failed_write_suspends_a_stateful_writer_and_the_send_completes_after_the_resend() {
        let b = |s: &'static str| bytes::Bytes::from_static(s.as_bytes());
        let (tx, sent) = mpsc::unbounded_channel();
        let writer = TransportWriter::Memory(memory::Writer { sent: tx });
        let session = Session::start(HubProtocol::Json, writer, None, Some(1000), &tokio::runtime::Handle::current())
            .unwrap();
        let link = session.writer().link();
        drop(sent); // the connection breaks
        let sending = tokio::spawn({
            let session = session.clone();
            async move { session.send_and_wait(b("a")).await }
        });
        link.cancelled().await; // what the receive loop waits for
        assert!(!session.is_ended(), "the session outlives its transport");
        assert!(!sending.is_finished());
        let (tx, mut next) = mpsc::unbounded_channel();
        let resend = || session.writer().replay().unwrap().resend(HubProtocol::Json);
        session.writer().resume(TransportWriter::Memory(memory::Writer { sent: tx }), resend).await.unwrap();
        assert_eq!(next.recv().await.unwrap().1, [b("{\"type\":9,\"sequenceId\":1}\u{1e}"), b("a")]);
        sending.await.unwrap().unwrap();
        assert!(!session.writer().link().is_cancelled());
        session.end(None);
    }
}
