//! Stateful reconnect (SR-1 … SR-11): what lets a connection survive a dropped WebSocket.
//!
//! Both directions number their trackable messages (types 1-5) implicitly from 1 (SR-3).
//! - [`ReplayBuffer`], the sending side: every trackable message handed to the transport is kept
//!   (as its encoded bytes, shared, not copied) until the server's `Ack` covers it; after a
//!   re-connect the writer sends `Sequence{oldest kept id}` and everything kept (SR-8). Senders
//!   that push the kept bytes to the limit wait for Acks (SR-6).
//! - [`ReceiveTracker`], the receiving side: counts what arrives, drops what was already
//!   processed (the server replays what we had not acknowledged), and says when to send `Ack`
//!   (SR-5, SR-9).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use crate::error::{Error, Result};
use crate::protocol::{HubMessage, HubProtocol};

/// How long after new messages arrive the receiver acknowledges them (SR-5), coalescing
/// everything received in between into one Ack.
pub(crate) const ACK_DELAY: Duration = Duration::from_secs(1);

/// Received bytes after which the receiver acknowledges at once instead of waiting for
/// [`ACK_DELAY`]. A sender stops when its unacknowledged bytes reach its limit (100,000 by default
/// in ASP.NET and here); acknowledging well before that keeps a fast stream flowing, where an Ack
/// per second alone would cap it at about one buffer per second.
pub(crate) const EAGER_ACK_BYTES: usize = 16 * 1024;

/// Sent trackable messages the server has not acknowledged yet.
pub(crate) struct ReplayBuffer {
    limit: usize,
    /// Bytes of trackable messages queued or kept, counted when queued (so a sender sees its own
    /// message at once) and released by Acks.
    bytes: AtomicUsize,
    kept: Mutex<Kept>,
    /// Woken when an Ack released bytes.
    released: Notify,
}

#[derive(Default)]
struct Kept {
    /// Trackable messages handed to the transport so far; the id of the latest one.
    total_sent: u64,
    messages: VecDeque<(u64, Bytes)>,
}

impl ReplayBuffer {
    pub fn new(limit: usize) -> ReplayBuffer {
        ReplayBuffer { limit, bytes: AtomicUsize::new(0), kept: Mutex::default(), released: Notify::new() }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A trackable message was queued for sending.
    pub fn queued(&self, len: usize) {
        self.bytes.fetch_add(len, Ordering::AcqRel);
    }

    /// The writer hands a trackable message to the transport: it gets the next id and is kept.
    /// Called in transport order, under the writer's lock.
    pub fn record(&self, message: &Bytes) {
        let mut kept = self.kept();
        kept.total_sent += 1;
        let id = kept.total_sent;
        kept.messages.push_back((id, message.clone()));
    }

    /// `Ack{n}` releases every kept message with id <= n (SR-4).
    pub fn ack(&self, sequence_id: u64) {
        let mut released = 0;
        {
            let mut kept = self.kept();
            while kept.messages.front().is_some_and(|(id, _)| *id <= sequence_id) {
                if let Some((_, message)) = kept.messages.pop_front() {
                    released += message.len();
                }
            }
        }
        if released > 0 {
            self.bytes.fetch_sub(released, Ordering::AcqRel);
            self.released.notify_waiters();
        }
    }

    fn has_room(&self) -> bool {
        self.bytes.load(Ordering::Acquire) < self.limit
    }

    /// Resolves once the queued and kept bytes are below the limit again (SR-6). The caller
    /// races it against the end of the session.
    pub async fn room(&self) {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the check, so an Ack in between is not missed.
            released.as_mut().enable();
            if self.has_room() {
                return;
            }
            released.await;
        }
    }

    /// What re-opens the stream after a re-connect (SR-8): `Sequence{oldest kept id}` (or
    /// `total sent + 1` when nothing is kept), then every kept message in order.
    pub fn resend(&self, protocol: HubProtocol) -> Result<Vec<Bytes>> {
        let kept = self.kept();
        let first = kept.messages.front().map_or(kept.total_sent + 1, |(id, _)| *id);
        let mut sequence = Vec::new();
        protocol.write(&HubMessage::Sequence { sequence_id: first }, &mut sequence)?;
        let mut frames = Vec::with_capacity(kept.messages.len() + 1);
        frames.push(Bytes::from(sequence));
        frames.extend(kept.messages.iter().map(|(_, message)| message.clone()));
        Ok(frames)
    }
}

/// Receive side of stateful reconnect: implicit ids of the server's trackable messages,
/// duplicate detection after a re-connect, and the Ack timer.
pub(crate) struct ReceiveTracker {
    /// Id the next trackable message will have.
    next_id: u64,
    /// Highest id processed: what the next Ack carries.
    latest: u64,
    /// After a re-connect nothing counts until the server's Sequence arrives (SR-9).
    waiting_for_sequence: bool,
    ack_timer: Pin<Box<Sleep>>,
    ack_armed: bool,
    /// Bytes received since the last Ack (pings and all: an estimate is enough).
    bytes_since_ack: usize,
}

/// What to do with a received message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Process,
    /// A duplicate, the Sequence itself, or anything before the Sequence.
    Skip,
}

impl ReceiveTracker {
    pub fn new() -> ReceiveTracker {
        ReceiveTracker {
            next_id: 1,
            latest: 0,
            waiting_for_sequence: false,
            ack_timer: Box::pin(tokio::time::sleep(ACK_DELAY)),
            ack_armed: false,
            bytes_since_ack: 0,
        }
    }

    /// Counts received transport bytes, for [`ReceiveTracker::eager_ack`].
    pub fn received(&mut self, bytes: usize) {
        self.bytes_since_ack += bytes;
    }

    /// A new transport took over: skip everything until the server's Sequence.
    pub fn reconnected(&mut self) {
        self.waiting_for_sequence = true;
    }

    /// Sorts one received message. An error (a Sequence beyond what was received) ends the
    /// connection (SR-9).
    pub fn accept(&mut self, message: &HubMessage) -> Result<Verdict> {
        if let HubMessage::Sequence { sequence_id } = *message {
            self.waiting_for_sequence = false;
            if sequence_id > self.next_id {
                return Err(Error::Protocol(format!(
                    "Sequence ID greater than amount of messages we've received ({sequence_id} > {}).",
                    self.next_id
                )));
            }
            self.next_id = sequence_id;
            return Ok(Verdict::Skip);
        }
        if self.waiting_for_sequence {
            return Ok(Verdict::Skip);
        }
        if !message.is_trackable() {
            return Ok(Verdict::Process);
        }
        let id = self.next_id;
        self.next_id += 1;
        if id <= self.latest {
            // The server replays what it has not seen acknowledged: once the replay reaches
            // where we stand, tell it (as the official clients do).
            if id == self.latest {
                self.arm_ack();
            }
            return Ok(Verdict::Skip);
        }
        self.latest = id;
        self.arm_ack();
        Ok(Verdict::Process)
    }

    fn arm_ack(&mut self) {
        if !self.ack_armed {
            self.ack_armed = true;
            self.ack_timer.as_mut().reset(Instant::now() + ACK_DELAY);
        }
    }

    pub fn ack_armed(&self) -> bool {
        self.ack_armed
    }

    /// Resolves when an Ack is due and returns it; only while armed. Cancel-safe.
    pub async fn ack_due(&mut self) -> HubMessage {
        self.ack_timer.as_mut().await;
        self.ack()
    }

    /// An Ack to send now, without waiting for the timer, once much was received since the last.
    pub fn eager_ack(&mut self) -> Option<HubMessage> {
        (self.ack_armed && self.bytes_since_ack >= EAGER_ACK_BYTES).then(|| self.ack())
    }

    fn ack(&mut self) -> HubMessage {
        self.ack_armed = false;
        self.bytes_since_ack = 0;
        HubMessage::Ack { sequence_id: self.latest }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Completion, CompletionResult};

    fn completion() -> HubMessage {
        HubMessage::Completion(Completion {
            headers: Vec::new(),
            invocation_id: "1".into(),
            result: CompletionResult::Void,
        })
    }

    #[test]
    fn acks_release_kept_messages_and_the_resend_starts_at_the_oldest() {
        let buffer = ReplayBuffer::new(10);
        let protocol = HubProtocol::Json;
        assert_eq!(buffer.resend(protocol).unwrap(), vec![Bytes::from_static(b"{\"type\":9,\"sequenceId\":1}\x1e")]);
        for m in ["aaaa", "bbbb", "cccc"] {
            buffer.queued(m.len());
            buffer.record(&Bytes::from_static(m.as_bytes()));
        }
        assert!(!buffer.has_room(), "12 bytes kept, limit 10");
        buffer.ack(1);
        assert!(buffer.has_room());
        let frames = buffer.resend(protocol).unwrap();
        assert_eq!(frames[0], Bytes::from_static(b"{\"type\":9,\"sequenceId\":2}\x1e"));
        assert_eq!(&frames[1..], &[Bytes::from_static(b"bbbb"), Bytes::from_static(b"cccc")]);
        buffer.ack(7); // beyond what was sent: releases all
        assert_eq!(buffer.resend(protocol).unwrap()[0], Bytes::from_static(b"{\"type\":9,\"sequenceId\":4}\x1e"));
        assert_eq!(buffer.bytes.load(Ordering::Acquire), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn duplicates_are_skipped_after_the_sequence_and_acks_coalesce() {
        let mut t = ReceiveTracker::new();
        assert!(!t.ack_armed());
        for _ in 0..3 {
            assert_eq!(t.accept(&completion()).unwrap(), Verdict::Process);
        }
        assert_eq!(t.accept(&HubMessage::Ping).unwrap(), Verdict::Process);
        let start = Instant::now();
        assert_eq!(t.ack_due().await, HubMessage::Ack { sequence_id: 3 });
        assert_eq!(Instant::now() - start, ACK_DELAY, "one Ack for all three");
        t.reconnected();
        assert_eq!(t.accept(&completion()).unwrap(), Verdict::Skip, "before the Sequence");
        assert!(t.accept(&HubMessage::Sequence { sequence_id: 5 }).is_err(), "beyond what arrived");
        t.reconnected();
        assert_eq!(t.accept(&HubMessage::Sequence { sequence_id: 2 }).unwrap(), Verdict::Skip);
        assert_eq!(t.accept(&completion()).unwrap(), Verdict::Skip); // 2
        assert!(!t.ack_armed());
        assert_eq!(t.accept(&completion()).unwrap(), Verdict::Skip); // 3: where we stand
        assert!(t.ack_armed(), "the last duplicate re-arms the Ack");
        assert_eq!(t.accept(&completion()).unwrap(), Verdict::Process); // 4
        assert_eq!(t.ack_due().await, HubMessage::Ack { sequence_id: 4 });
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_intake_is_acknowledged_at_once() {
        let mut t = ReceiveTracker::new();
        t.received(EAGER_ACK_BYTES);
        assert_eq!(t.eager_ack(), None, "nothing to acknowledge yet");
        assert_eq!(t.accept(&completion()).unwrap(), Verdict::Process);
        t.received(100);
        assert_eq!(t.eager_ack(), Some(HubMessage::Ack { sequence_id: 1 }), "no second of waiting");
        assert!(!t.ack_armed());
        assert_eq!(t.accept(&completion()).unwrap(), Verdict::Process);
        t.received(EAGER_ACK_BYTES - 1);
        assert_eq!(t.eager_ack(), None, "below the threshold: the timer's job");
        let start = Instant::now();
        assert_eq!(t.ack_due().await, HubMessage::Ack { sequence_id: 2 });
        assert_eq!(Instant::now() - start, ACK_DELAY);
    }
}
