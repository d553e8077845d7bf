//! The outgoing side of one connection: encoded messages wait here until the transport takes them.
//!
//! Writers append each encoded message to the tail frame, so while the transport is busy writing
//! one frame the next one fills up with many messages (several messages per WebSocket frame, SSE
//! event or poll body are allowed by the protocol). Raw frames (`SendRaw`) are never merged.
//! The lock is per connection and held only to append or take bytes.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::stateful::ReplayBuffer;

/// Messages are merged into one frame until it holds this much.
const FRAME_FILL_BYTES: usize = 64 * 1024;
/// A new frame's first allocation: most frames hold one small message.
const FRAME_START_BYTES: usize = 1024;
/// Long Polling answers carry consecutive frames up to this size.
const POLL_BODY_BYTES: usize = 1024 * 1024;
/// Writers wait while this much is queued and the transport has not taken it.
const QUEUE_LIMIT_BYTES: usize = 1024 * 1024;

pub struct Frame {
    pub data: Vec<u8>,
    /// WebSocket message type: binary once a MessagePack handshake succeeded, text before.
    pub binary: bool,
    /// Written verbatim as its own frame (`SendRaw`).
    raw: bool,
}

/// What a transport gets when it asks for the next thing to write.
pub enum Pull {
    Frames(Vec<Frame>),
    /// The connection is over and everything was written: close gracefully.
    End,
    /// `DropTransport`: cut the socket/stream without any closing handshake.
    Abort,
    /// Another transport request took over (stateful re-connect, newer poll).
    Replaced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Write what is queued, then end.
    Drain,
    /// End now; queued frames are dropped.
    Now,
}

#[derive(Debug)]
pub enum SendError<E> {
    /// The connection is finishing; nothing more goes out.
    Closed,
    Encode(E),
}

pub struct Outbound {
    inner: Mutex<Inner>,
    transport_wake: Notify,
    writer_wake: Notify,
}

struct Inner {
    frames: VecDeque<Frame>,
    queued_bytes: usize,
    binary: bool,
    /// Identifies the transport request currently allowed to pull.
    generation: u64,
    /// A stateful connection whose WebSocket dropped: messages live only in the replay buffer.
    parked: bool,
    aborted: bool,
    finish: Option<Finish>,
    replay: Option<ReplayBuffer>,
}

impl Inner {
    /// Whether a message may be queued now: the queue is under its limit (or parked), and for a
    /// trackable message the replay buffer is too.
    fn has_room(&self, trackable: bool) -> bool {
        let queue_ok = self.parked || self.queued_bytes < QUEUE_LIMIT_BYTES;
        queue_ok && (!trackable || self.replay.as_ref().is_none_or(|r| !r.over_limit()))
    }
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            inner: Mutex::new(Inner {
                frames: VecDeque::new(),
                queued_bytes: 0,
                binary: false,
                generation: 0,
                parked: false,
                aborted: false,
                finish: None,
                replay: None,
            }),
            transport_wake: Notify::new(),
            writer_wake: Notify::new(),
        }
    }
}

impl Outbound {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Messages written from now on go out in binary WebSocket frames.
    pub fn set_binary(&self, binary: bool) {
        self.lock().binary = binary;
    }

    /// Turns on stateful reconnect for this connection (handshake version 2 after a
    /// negotiate with `useStatefulReconnect`).
    pub fn enable_replay(&self, replay: ReplayBuffer) {
        self.lock().replay = Some(replay);
    }

    pub fn is_finishing(&self) -> bool {
        self.lock().finish.is_some()
    }

    /// Queues one message, encoded by `encode` straight into the outgoing frame.
    /// `trackable` messages (types 1-5) are kept for replay when stateful reconnect is on, and
    /// wait while the replay buffer is over its limit.
    pub async fn send<E>(
        &self,
        trackable: bool,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), SendError<E>> {
        loop {
            // Room is checked under the lock that appends: a writer with room (nearly always)
            // takes the lock once and never registers with `writer_wake`.
            {
                let guard = self.lock();
                if guard.finish.is_some() {
                    return Err(SendError::Closed);
                }
                if guard.has_room(trackable) {
                    return self.append(guard, trackable, encode);
                }
            }
            self.wait_for_room(trackable).await?;
        }
    }

    fn append<E>(
        &self,
        mut guard: std::sync::MutexGuard<'_, Inner>,
        trackable: bool,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), SendError<E>> {
        let inner = &mut *guard;
        if inner.parked {
            let mut message = Vec::new();
            encode(&mut message).map_err(SendError::Encode)?;
            if let (true, Some(replay)) = (trackable, inner.replay.as_mut()) {
                replay.record(Bytes::from(message));
            }
            return Ok(());
        }
        let was_empty = inner.frames.is_empty();
        let frame = tail_frame(&mut inner.frames, inner.binary);
        let start = frame.data.len();
        if start >= FRAME_START_BYTES && frame.data.capacity() < FRAME_FILL_BYTES {
            // A frame that keeps filling grows to its full size at once, not by doublings.
            frame.data.reserve_exact(FRAME_FILL_BYTES + FRAME_START_BYTES - start);
        }
        if let Err(e) = encode(&mut frame.data) {
            frame.data.truncate(start);
            if frame.data.is_empty() {
                inner.frames.pop_back();
            }
            return Err(SendError::Encode(e));
        }
        let written = frame.data.len() - start;
        if let (true, Some(replay)) = (trackable, inner.replay.as_mut()) {
            replay.record(Bytes::copy_from_slice(&frame.data[start..]));
        }
        inner.queued_bytes += written;
        drop(guard);
        if was_empty {
            self.transport_wake.notify_waiters();
        }
        Ok(())
    }

    /// Queues `data` as one frame of its own, written verbatim.
    pub async fn send_raw(&self, data: Vec<u8>) -> Result<(), SendError<std::convert::Infallible>> {
        self.wait_for_room(false).await?;
        let mut inner = self.lock();
        if inner.finish.is_some() {
            return Err(SendError::Closed);
        }
        if inner.parked {
            return Ok(());
        }
        inner.queued_bytes += data.len();
        let binary = inner.binary;
        inner.frames.push_back(Frame { data, binary, raw: true });
        drop(inner);
        self.transport_wake.notify_waiters();
        Ok(())
    }

    /// Returns once there is room (or fails once finishing); registers for the wake before it
    /// looks, so no release is missed.
    async fn wait_for_room<E>(&self, trackable: bool) -> Result<(), SendError<E>> {
        loop {
            let notified = self.writer_wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let inner = self.lock();
                if inner.finish.is_some() {
                    return Err(SendError::Closed);
                }
                if inner.has_room(trackable) {
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    /// Whether a message sent now would go out without waiting. Pings and Acks are skipped
    /// rather than queued behind a full queue (like ASP.NET's pings when the writer is busy).
    pub fn has_room(&self) -> bool {
        self.lock().has_room(false)
    }

    /// A client Ack: releases acknowledged messages and writers waiting on the buffer limit.
    pub fn ack(&self, sequence_id: u64) {
        if let Some(replay) = self.lock().replay.as_mut() {
            replay.ack(sequence_id);
        }
        self.writer_wake.notify_waiters();
    }

    /// A new transport request takes over pulling; the previous one gets [`Pull::Replaced`].
    pub fn attach(&self) -> u64 {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.aborted = false;
        let generation = inner.generation;
        drop(inner);
        self.transport_wake.notify_waiters();
        generation
    }

    /// A stateful WebSocket re-connect: whatever the old socket had not written is dropped and the
    /// new one starts with `Sequence` plus every unacknowledged message (SR-8).
    pub fn attach_resumed(&self) -> u64 {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.aborted = false;
        inner.parked = false;
        inner.frames.clear();
        inner.queued_bytes = 0;
        let mut data = Vec::new();
        if let Some(replay) = inner.replay.as_ref() {
            if let Err(e) = replay.write_resend(&mut data) {
                tracing::error!("cannot write the stateful resend: {e}");
            }
        }
        if !data.is_empty() {
            inner.queued_bytes = data.len();
            let binary = inner.binary;
            inner.frames.push_back(Frame { data, binary, raw: false });
        }
        let generation = inner.generation;
        drop(inner);
        self.transport_wake.notify_waiters();
        self.writer_wake.notify_waiters();
        generation
    }

    /// The stateful connection's WebSocket is gone: keep only the replay buffer until a re-connect.
    pub fn park(&self, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        inner.generation += 1;
        inner.parked = true;
        inner.frames.clear();
        inner.queued_bytes = 0;
        drop(inner);
        self.transport_wake.notify_waiters();
        self.writer_wake.notify_waiters();
    }

    /// A stateful connection waiting for its WebSocket to come back.
    pub fn is_parked(&self) -> bool {
        self.lock().parked
    }

    pub fn is_current(&self, generation: u64) -> bool {
        self.lock().generation == generation
    }

    /// `DropTransport`: the current transport request is cut without a closing handshake.
    pub fn abort_transport(&self) {
        self.lock().aborted = true;
        self.transport_wake.notify_waiters();
    }

    pub fn finish(&self, how: Finish) {
        let mut inner = self.lock();
        if inner.finish != Some(Finish::Now) {
            inner.finish = Some(how);
        }
        if how == Finish::Now {
            inner.frames.clear();
            inner.queued_bytes = 0;
        }
        drop(inner);
        self.transport_wake.notify_waiters();
        self.writer_wake.notify_waiters();
    }

    /// The next thing transport request `generation` has to do. With `batch`, consecutive
    /// message frames are returned together (one poll body, one SSE write).
    pub async fn pull(&self, generation: u64, batch: bool) -> Pull {
        loop {
            let notified = self.transport_wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inner = self.lock();
                if inner.generation != generation {
                    return Pull::Replaced;
                }
                if inner.aborted {
                    return Pull::Abort;
                }
                if let Some(first) = inner.frames.pop_front() {
                    let mut taken = first.data.len();
                    let single = first.raw || !batch;
                    let mut frames = vec![first];
                    while !single && taken < POLL_BODY_BYTES {
                        match inner.frames.front() {
                            Some(next) if !next.raw => {
                                taken += next.data.len();
                                frames.extend(inner.frames.pop_front());
                            }
                            _ => break,
                        }
                    }
                    inner.queued_bytes -= taken;
                    drop(inner);
                    self.writer_wake.notify_waiters();
                    return Pull::Frames(frames);
                }
                if inner.finish.is_some() {
                    return Pull::End;
                }
            }
            notified.await;
        }
    }
}

/// The frame new messages are appended to: the last one if it is a message frame of the same
/// type with room left, else a fresh one.
fn tail_frame(frames: &mut VecDeque<Frame>, binary: bool) -> &mut Frame {
    let reuse = matches!(frames.back(), Some(f) if !f.raw && f.binary == binary && f.data.len() < FRAME_FILL_BYTES);
    if !reuse {
        frames.push_back(Frame { data: Vec::with_capacity(FRAME_START_BYTES), binary, raw: false });
    }
    frames.back_mut().expect("a frame was just ensured")
}
