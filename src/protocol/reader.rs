//! Turning received chunks (WebSocket frames, SSE events, poll bodies) into messages.
//!
//! Chunks are kept as they arrived. A message that lies inside one chunk is handed out as a slice
//! of it (no copy); only a message that spans chunks is joined into a new buffer, once, when it is
//! complete.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::json::RECORD_SEPARATOR;
use super::{varint, HandshakeRequest, HandshakeResponse, HubMessage, HubProtocol, ProtocolError};

/// Incremental reader for one connection: push what arrives, then pull messages until `None`.
///
/// After an error the connection must be closed: the reader stays at the faulty message.
#[derive(Debug)]
pub struct MessageReader {
    protocol: HubProtocol,
    max_message_bytes: usize,
    chunks: VecDeque<Bytes>,
    buffered: usize,
    /// JSON records: this many leading buffered bytes are known to hold no 0x1E (not searched again).
    scanned: usize,
}

impl MessageReader {
    /// `max_message_bytes` bounds one message: a MessagePack length prefix declaring more, or a
    /// JSON record (handshake included) growing past it without a separator, is an error.
    pub fn new(protocol: HubProtocol, max_message_bytes: usize) -> Self {
        MessageReader { protocol, max_message_bytes, chunks: VecDeque::new(), buffered: 0, scanned: 0 }
    }

    pub fn protocol(&self) -> HubProtocol {
        self.protocol
    }

    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.buffered += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// Bytes received but not yet returned as messages.
    pub fn buffered_len(&self) -> usize {
        self.buffered
    }

    /// The handshake request (JSON up to the first 0x1E, in either protocol); `None` = need more data.
    pub fn next_handshake_request(&mut self) -> Result<Option<HandshakeRequest>, ProtocolError> {
        self.next_record()?.map(|record| HandshakeRequest::parse(&record)).transpose()
    }

    /// The handshake response (JSON up to the first 0x1E, in either protocol; H-2). Bytes after it
    /// stay buffered as ordinary messages (H-3); `None` = need more data (H-6).
    pub fn next_handshake_response(&mut self) -> Result<Option<HandshakeResponse>, ProtocolError> {
        self.next_record()?.map(|record| HandshakeResponse::parse(&record)).transpose()
    }

    /// The next hub message; `None` = need more data. Unknown message types are skipped (M-4).
    pub fn next_message(&mut self) -> Result<Option<HubMessage>, ProtocolError> {
        loop {
            let body = match self.protocol {
                HubProtocol::Json => self.next_record()?,
                HubProtocol::MessagePack => self.next_frame()?,
            };
            let Some(body) = body else { return Ok(None) };
            if let Some(message) = self.protocol.parse(&body)? {
                return Ok(Some(message));
            }
        }
    }

    /// The next JSON record without its separator (F-1).
    fn next_record(&mut self) -> Result<Option<Bytes>, ProtocolError> {
        let mut offset = 0;
        let mut separator_at = None;
        for chunk in &self.chunks {
            let end = offset + chunk.len();
            if end > self.scanned {
                let from = self.scanned.saturating_sub(offset);
                if let Some(i) = memchr::memchr(RECORD_SEPARATOR, &chunk[from..]) {
                    separator_at = Some(offset + from + i);
                    break;
                }
            }
            offset = end;
        }
        let Some(len) = separator_at else {
            self.scanned = self.buffered;
            if self.buffered > self.max_message_bytes {
                return Err(ProtocolError::new(format!(
                    "JSON message exceeds the limit of {} bytes ({} bytes received without a record separator)",
                    self.max_message_bytes, self.buffered
                )));
            }
            return Ok(None);
        };
        if len > self.max_message_bytes {
            return Err(ProtocolError::new(format!(
                "JSON message of {len} bytes exceeds the limit of {} bytes",
                self.max_message_bytes
            )));
        }
        let record = self.take(len);
        self.take(1);
        self.scanned = 0;
        Ok(Some(record))
    }

    /// The next MessagePack body without its length prefix (F-3, F-4).
    fn next_frame(&mut self) -> Result<Option<Bytes>, ProtocolError> {
        let prefix = match self.chunks.front() {
            None => return Ok(None),
            Some(front) if front.len() >= varint::MAX_LEN => varint::read(front)?,
            Some(_) => {
                let mut head = [0; varint::MAX_LEN];
                let n = self.peek(&mut head);
                varint::read(&head[..n])?
            }
        };
        let Some((len, prefix_len)) = prefix else { return Ok(None) };
        let len = len as usize;
        if len == 0 {
            return Err(ProtocolError::new("MessagePack message has a length prefix of 0 (empty body)"));
        }
        if len > self.max_message_bytes {
            return Err(ProtocolError::new(format!(
                "MessagePack message of {len} bytes exceeds the limit of {} bytes",
                self.max_message_bytes
            )));
        }
        if self.buffered < prefix_len + len {
            return Ok(None);
        }
        self.take(prefix_len);
        Ok(Some(self.take(len)))
    }

    /// Copies the first buffered bytes into `out`; returns how many.
    fn peek(&self, out: &mut [u8]) -> usize {
        let mut n = 0;
        for chunk in &self.chunks {
            let k = chunk.len().min(out.len() - n);
            out[n..n + k].copy_from_slice(&chunk[..k]);
            n += k;
            if n == out.len() {
                break;
            }
        }
        n
    }

    /// Removes the first `n` buffered bytes (`n <= buffered`): a slice of the front chunk when it
    /// holds them all, else one joined copy.
    fn take(&mut self, n: usize) -> Bytes {
        debug_assert!(n <= self.buffered);
        self.buffered -= n;
        if let Some(front) = self.chunks.front_mut() {
            if front.len() > n {
                return front.split_to(n);
            }
            if front.len() == n {
                return self.chunks.pop_front().unwrap_or_default();
            }
        }
        let mut joined = BytesMut::with_capacity(n);
        let mut rest = n;
        while rest > 0 {
            let Some(front) = self.chunks.front_mut() else { break };
            if front.len() <= rest {
                rest -= front.len();
                joined.extend_from_slice(front);
                self.chunks.pop_front();
            } else {
                joined.extend_from_slice(&front.split_to(rest));
                rest = 0;
            }
        }
        joined.freeze()
    }
}
