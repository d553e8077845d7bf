//! Transports carry hub-protocol bytes between client and server. The connection code sees only
//! `TransportReader` (chunks in arrival order) and `TransportWriter` (batches of framed
//! messages); which transport runs behind them is decided here.
//!
//! Static dispatch through enums keeps the per-frame path free of boxing: each transport is a
//! variant of both enums and an arm of `connect`.

mod http_send;
mod long_polling;
mod server_sent_events;
mod websockets;

pub(crate) use server_sent_events::TEXT_ONLY as SSE_TEXT_ONLY;

/// An in-memory transport for unit tests of the connection loop (timers, batching): it records what
/// would have been written, with the time it was written.
#[cfg(test)]
pub(crate) mod memory {
    use bytes::Bytes;
    use tokio::sync::mpsc::UnboundedSender;
    use tokio::time::Instant;

    pub(crate) struct Writer {
        pub sent: UnboundedSender<(Instant, Vec<Bytes>)>,
    }
}

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use url::Url;

use crate::error::{Error, Result};
use crate::http::Bearer;
use crate::protocol::{Chunk, Format};

/// A transport the client may use (bit values as the official clients' `HttpTransportType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    WebSockets = 1,
    ServerSentEvents = 2,
    LongPolling = 4,
}

impl TransportKind {
    pub const ALL: [TransportKind; 3] =
        [TransportKind::WebSockets, TransportKind::ServerSentEvents, TransportKind::LongPolling];

    /// The name used in negotiate's `availableTransports` (exact match, T-1).
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::WebSockets => "WebSockets",
            TransportKind::ServerSentEvents => "ServerSentEvents",
            TransportKind::LongPolling => "LongPolling",
        }
    }

    /// From the official bit value of a single transport (1, 2 or 4).
    pub fn from_bits(bits: u8) -> Option<TransportKind> {
        TransportKind::ALL.into_iter().find(|t| *t as u8 == bits)
    }

    pub fn from_name(name: &str) -> Option<TransportKind> {
        TransportKind::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether the transport can carry the hub protocol's transfer format (S-1: SSE is text only).
    pub(crate) fn carries(self, format: Format) -> bool {
        self != TransportKind::ServerSentEvents || format == Format::Json
    }
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of transports; the default is all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportSet(u8);

impl TransportSet {
    pub const ALL: TransportSet = TransportSet(7);
    pub const NONE: TransportSet = TransportSet(0);

    pub fn only(kind: TransportKind) -> TransportSet {
        TransportSet(kind as u8)
    }

    pub fn with(self, kind: TransportKind) -> TransportSet {
        TransportSet(self.0 | kind as u8)
    }

    pub fn contains(self, kind: TransportKind) -> bool {
        self.0 & kind as u8 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// From the official clients' bit mask (WebSockets=1, ServerSentEvents=2, LongPolling=4);
    /// 0 means "any". Unknown bits are an error.
    pub fn from_bits(bits: u32) -> Result<TransportSet> {
        match bits {
            0 => Ok(TransportSet::ALL),
            1..=7 => Ok(TransportSet(bits as u8)),
            _ => Err(Error::InvalidArgument(format!("unknown transport bits in {bits:#x}"))),
        }
    }

    pub fn bits(self) -> u32 {
        self.0 as u32
    }
}

impl Default for TransportSet {
    fn default() -> Self {
        TransportSet::ALL
    }
}

/// Everything a transport needs to open.
pub(crate) struct ConnectRequest {
    /// The connect URL (`http(s)://…?id=…`); transports adapt the scheme.
    pub url: Url,
    /// Headers for every request of the transport (user headers, protocol headers, cookies);
    /// `Authorization` comes from `auth`.
    pub headers: Vec<(String, String)>,
    pub auth: Arc<Bearer>,
    /// The hub protocol's transfer format: JSON → text frames, MessagePack → binary (W-2).
    pub format: Format,
    pub tls: Arc<rustls::ClientConfig>,
    /// The shared HTTP client (Server-Sent Events and Long Polling).
    pub http: reqwest::Client,
    /// Timeout of the connect and of each HTTP send.
    pub timeout: Duration,
}

/// Opens `kind`. Errors here are start failures (eligible for fallback to the next transport).
pub(crate) async fn connect(
    kind: TransportKind,
    request: ConnectRequest,
) -> Result<(TransportReader, TransportWriter)> {
    Ok(match kind {
        TransportKind::WebSockets => {
            let (r, w) = websockets::connect(request).await?;
            (TransportReader::WebSockets(r), TransportWriter::WebSockets(w))
        }
        TransportKind::ServerSentEvents => {
            let (r, w) = server_sent_events::connect(request).await?;
            (TransportReader::ServerSentEvents(Box::new(r)), TransportWriter::ServerSentEvents(w))
        }
        TransportKind::LongPolling => {
            let (r, w) = long_polling::connect(request).await?;
            (TransportReader::LongPolling(r), TransportWriter::LongPolling(w))
        }
    })
}

/// The receiving half: chunks of protocol bytes in arrival order.
pub(crate) enum TransportReader {
    WebSockets(websockets::Reader),
    /// Boxed: the HTTP response and the parser are larger than the other readers.
    ServerSentEvents(Box<server_sent_events::Reader>),
    LongPolling(long_polling::Reader),
}

impl TransportReader {
    /// The next chunk; `None` when the server closed the transport cleanly; an error names why it
    /// broke (W-5). Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Chunk>> {
        match self {
            TransportReader::WebSockets(r) => r.recv().await,
            TransportReader::ServerSentEvents(r) => r.recv().await.map(|r| r.map(Chunk::from)),
            TransportReader::LongPolling(r) => r.recv().await.map(|r| r.map(Chunk::from)),
        }
    }

    /// Whether the transport keeps the connection alive by itself (Long Polling, K-5/L-6): then the
    /// client sends no pings and runs no server timeout.
    pub fn has_inherent_keep_alive(&self) -> bool {
        matches!(self, TransportReader::LongPolling(_))
    }
}

/// The sending half. Stateful reconnect will wrap this: every trackable outgoing message passes
/// through [`crate::connection`]'s writer loop before it reaches `send_batch`.
pub(crate) enum TransportWriter {
    WebSockets(websockets::Writer),
    ServerSentEvents(server_sent_events::Writer),
    LongPolling(long_polling::Writer),
    #[cfg(test)]
    Memory(memory::Writer),
}

impl TransportWriter {
    /// Sends the handshake request (always as text, W-2).
    pub async fn send_handshake(&mut self, bytes: Bytes) -> Result<()> {
        match self {
            TransportWriter::WebSockets(w) => w.send_text(bytes).await,
            TransportWriter::ServerSentEvents(w) => w.sender.send_handshake(bytes).await,
            TransportWriter::LongPolling(w) => w.sender.send_handshake(bytes).await,
            #[cfg(test)]
            TransportWriter::Memory(w) => {
                let _ = w.sent.send((tokio::time::Instant::now(), vec![bytes]));
                Ok(())
            }
        }
    }

    /// Sends framed messages (WebSockets: each as its own frame; HTTP transports: all in one
    /// POST), then flushes once. Cancel-safe: a frame leaves `frames` only once the transport has
    /// taken it, and a later call finishes the flush.
    pub async fn send_batch(&mut self, frames: &mut std::collections::VecDeque<Bytes>) -> Result<()> {
        match self {
            TransportWriter::WebSockets(w) => w.send_batch(frames).await,
            TransportWriter::ServerSentEvents(w) => w.sender.send_batch(frames).await,
            TransportWriter::LongPolling(w) => w.sender.send_batch(frames).await,
            #[cfg(test)]
            // A dropped receiver plays a broken connection (the frames stay unsent).
            TransportWriter::Memory(w) => match w.sent.is_closed() {
                true => Err(Error::Transport("memory transport closed".into())),
                false => {
                    let _ = w.sent.send((tokio::time::Instant::now(), frames.drain(..).collect()));
                    Ok(())
                }
            },
        }
    }

    /// Closes the transport (WebSockets: normal closure; SSE: ends the event stream; Long
    /// Polling: DELETE); errors are ignored: the connection is ending anyway.
    pub async fn close(&mut self) {
        match self {
            TransportWriter::WebSockets(w) => w.close().await,
            TransportWriter::ServerSentEvents(w) => w.close(),
            TransportWriter::LongPolling(w) => w.close().await,
            #[cfg(test)]
            TransportWriter::Memory(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_sets_follow_the_official_bit_mask() {
        assert_eq!(TransportSet::from_bits(0).unwrap(), TransportSet::ALL);
        let s = TransportSet::from_bits(5).unwrap();
        assert!(s.contains(TransportKind::WebSockets));
        assert!(!s.contains(TransportKind::ServerSentEvents));
        assert!(s.contains(TransportKind::LongPolling));
        assert!(TransportSet::from_bits(8).is_err());
        assert_eq!(TransportKind::from_name("WebSockets"), Some(TransportKind::WebSockets));
        assert_eq!(TransportKind::from_name("websockets"), None);
    }
}
