//! Turning received chunks (WebSocket frames, SSE events, poll bodies) into messages.
//!
//! Chunks are kept as they arrived. A message that lies inside one chunk is handed out as a slice
//! of it (no copy); only a message that spans chunks is joined into a new buffer, once, when it is
//! complete.
//!
//! A chunk may come with the promise that it is UTF-8 (a WebSocket text message, which the
//! WebSocket layer checked): JSON records inside it are then not checked a second time.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use super::json::RECORD_SEPARATOR;
use super::{varint, HandshakeRequest, HandshakeResponse, HubMessage, HubProtocol, ProtocolError};

/// Incremental reader for one connection: push what arrives, then pull messages until `None`.
///
/// After an error the connection must be closed: the reader stays at the faulty message.
#[derive(Debug)]
pub struct MessageReader {
    protocol: HubProtocol,
    max_message_bytes: usize,
    chunks: VecDeque<Chunk>,
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

    pub fn push(&mut self, chunk: impl Into<Chunk>) {
        let chunk = chunk.into();
        if !chunk.bytes.is_empty() {
            self.buffered += chunk.bytes.len();
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
            let frame = match self.protocol {
                HubProtocol::Json => self.locate_record()?,
                HubProtocol::MessagePack => self.locate_frame()?,
            };
            let Some(frame) = frame else { return Ok(None) };
            let protocol = self.protocol;
            let parsed = match self.chunks.front() {
                // The common case: parse in place, payloads become slices of the chunk. A JSON
                // record begins where the chunk does and ends before a 0x1E, both character
                // boundaries, so a chunk's UTF-8 promise holds for the record too.
                Some(Chunk { bytes: front, utf8 }) if front.len() >= frame.total() => {
                    let body = &front[frame.prefix..frame.prefix + frame.body];
                    let parsed = protocol.parse(front, body, *utf8);
                    self.discard(frame.total());
                    parsed
                }
                _ => {
                    self.discard(frame.prefix);
                    let joined = self.take(frame.body);
                    self.discard(frame.suffix);
                    protocol.parse(&joined, &joined, false)
                }
            };
            if let Some(message) = parsed? {
                return Ok(Some(message));
            }
        }
    }

    /// The next JSON record without its separator (F-1).
    fn next_record(&mut self) -> Result<Option<Bytes>, ProtocolError> {
        let Some(frame) = self.locate_record()? else { return Ok(None) };
        let record = self.take(frame.body);
        self.discard(frame.suffix);
        Ok(Some(record))
    }

    /// Where the next complete JSON record lies.
    fn locate_record(&mut self) -> Result<Option<Frame>, ProtocolError> {
        let mut offset = 0;
        let mut separator_at = None;
        for Chunk { bytes: chunk, .. } in &self.chunks {
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
        self.scanned = 0;
        Ok(Some(Frame { prefix: 0, body: len, suffix: 1 }))
    }

    /// Where the next complete MessagePack body lies (F-3, F-4).
    fn locate_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        let prefix = match self.chunks.front() {
            None => return Ok(None),
            Some(Chunk { bytes: front, .. }) if front.len() >= varint::MAX_LEN => varint::read(front)?,
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
        Ok(Some(Frame { prefix: prefix_len, body: len, suffix: 0 }))
    }

    /// Copies the first buffered bytes into `out`; returns how many.
    fn peek(&self, out: &mut [u8]) -> usize {
        let mut n = 0;
        for Chunk { bytes: chunk, .. } in &self.chunks {
            let k = chunk.len().min(out.len() - n);
            out[n..n + k].copy_from_slice(&chunk[..k]);
            n += k;
            if n == out.len() {
                break;
            }
        }
        n
    }

    /// Drops the first `n` buffered bytes (`n <= buffered`) without creating new `Bytes` handles.
    fn discard(&mut self, mut n: usize) {
        debug_assert!(n <= self.buffered);
        self.buffered -= n;
        while n > 0 {
            let Some(Chunk { bytes: front, .. }) = self.chunks.front_mut() else { break };
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
    }

    /// Removes the first `n` buffered bytes (`n <= buffered`): a slice of the front chunk when it
    /// holds them all, else one joined copy.
    fn take(&mut self, n: usize) -> Bytes {
        debug_assert!(n <= self.buffered);
        self.buffered -= n;
        if let Some(Chunk { bytes: front, .. }) = self.chunks.front_mut() {
            if front.len() > n {
                return front.split_to(n);
            }
            if front.len() == n {
                return self.chunks.pop_front().map(|c| c.bytes).unwrap_or_default();
            }
        }
        let mut joined = BytesMut::with_capacity(n);
        let mut rest = n;
        while rest > 0 {
            let Some(Chunk { bytes: front, .. }) = self.chunks.front_mut() else { break };
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

/// Received protocol bytes, with whether they are known to be UTF-8.
#[derive(Debug, Clone)]
pub struct Chunk {
    bytes: Bytes,
    utf8: bool,
}

impl Chunk {
    /// Bytes the caller vouches for as UTF-8 text.
    ///
    /// # Safety
    /// `bytes` must be valid UTF-8: JSON records in it are parsed without checking that again.
    pub unsafe fn utf8_unchecked(bytes: Bytes) -> Chunk {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Chunk { bytes, utf8: true }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Bytes of unknown content, checked where they are parsed.
impl From<Bytes> for Chunk {
    fn from(bytes: Bytes) -> Chunk {
        Chunk { bytes, utf8: false }
    }
}

/// A complete message in the buffer: `prefix` bytes (VarInt), `body`, `suffix` bytes (0x1E).
#[derive(Debug, Clone, Copy)]
struct Frame {
    prefix: usize,
    body: usize,
    suffix: usize,
}

impl Frame {
    fn total(&self) -> usize {
        self.prefix + self.body + self.suffix
    }
}
