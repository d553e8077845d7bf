//! Stateful reconnect (SR-1..SR-11): the replay buffer of sent messages and the receive-side
//! bookkeeping that drops duplicates after a WebSocket re-connect. Mirrors the behaviour of
//! ASP.NET Core's shared `MessageBuffer`.

use std::collections::VecDeque;

use bytes::Bytes;
use signalr_native::protocol::{HubMessage, HubProtocol, ProtocolError};

/// Every trackable message sent (types 1-5), kept serialized until the client acknowledges it.
pub struct ReplayBuffer {
    protocol: HubProtocol,
    limit: usize,
    total_sent: u64,
    items: VecDeque<(u64, Bytes)>,
    bytes: usize,
}

impl ReplayBuffer {
    pub fn new(protocol: HubProtocol, limit: usize) -> Self {
        ReplayBuffer { protocol, limit, total_sent: 0, items: VecDeque::new(), bytes: 0 }
    }

    /// Records the next trackable message; ids are implicit and start at 1 (SR-3).
    pub fn record(&mut self, message: Bytes) {
        self.total_sent += 1;
        self.bytes += message.len();
        self.items.push_back((self.total_sent, message));
    }

    /// `Ack{n}` releases every message with id <= n (SR-4).
    pub fn ack(&mut self, sequence_id: u64) {
        while let Some((id, message)) = self.items.front() {
            if *id > sequence_id {
                break;
            }
            self.bytes -= message.len();
            self.items.pop_front();
        }
    }

    /// Like ASP.NET, a writer waits before sending while the unacknowledged bytes exceed the
    /// limit; the message that crosses the limit still goes out (SR-6).
    pub fn over_limit(&self) -> bool {
        self.bytes > self.limit
    }

    /// What follows a re-connect (SR-8): `Sequence{oldest unacknowledged id}` (or
    /// `total sent + 1` when nothing is buffered), then every unacknowledged message in order.
    pub fn write_resend(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let first = self.items.front().map_or(self.total_sent + 1, |(id, _)| *id);
        self.protocol.write(&HubMessage::Sequence { sequence_id: first }, out)?;
        for (_, message) in &self.items {
            out.extend_from_slice(message);
        }
        Ok(())
    }
}

/// Receive side: implicit ids of the client's trackable messages, duplicate detection (SR-9).
pub struct ReceiveTracker {
    next_id: u64,
    latest: u64,
    waiting_for_sequence: bool,
}

impl Default for ReceiveTracker {
    fn default() -> Self {
        ReceiveTracker { next_id: 1, latest: 0, waiting_for_sequence: false }
    }
}

impl ReceiveTracker {
    /// After a re-connect everything is ignored until the client's `Sequence` arrives.
    pub fn on_reconnect(&mut self) {
        self.waiting_for_sequence = true;
    }

    /// The highest id processed so far: what the next Ack carries.
    pub fn latest(&self) -> u64 {
        self.latest
    }

    /// Whether `message` is to be processed. `Sequence` is consumed here; an error means the
    /// client's Sequence points past what it has sent.
    pub fn accept(&mut self, message: &HubMessage) -> Result<bool, String> {
        if let HubMessage::Sequence { sequence_id } = message {
            self.waiting_for_sequence = false;
            if *sequence_id > self.next_id {
                return Err("Sequence ID greater than amount of messages we've received.".into());
            }
            self.next_id = *sequence_id;
            return Ok(false);
        }
        if self.waiting_for_sequence {
            return Ok(false);
        }
        if !message.is_trackable() {
            return Ok(true);
        }
        let id = self.next_id;
        self.next_id += 1;
        if id <= self.latest {
            return Ok(false);
        }
        self.latest = id;
        Ok(true)
    }
}
