//! SignalR hub protocols: message model, JSON and MessagePack codecs, handshake, framing.
//!
//! Shared by both sides (the client and the test hub): every message type can be written and parsed.
//! Checklist references (`F-1`, `MP-5` …) point into `shared/docs/protocol-checklist.md`.

mod message;

pub use message::*;
