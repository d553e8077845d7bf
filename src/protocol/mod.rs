//! SignalR hub protocols: message model, JSON and MessagePack codecs, handshake, framing.
//!
//! Shared by both sides (the client and the test hub): every message type can be written and parsed.
//! Checklist references (`F-1`, `MP-5` …) point into `shared/docs/protocol-checklist.md`.

mod error;
mod handshake;
mod hub_protocol;
mod json;
mod json_text;
mod message;
mod msgpack;
mod msgpack_decode;
mod msgpack_encode;
mod payload;
mod reader;
mod transcode;
mod varint;

#[cfg(test)]
mod tests;

pub use error::ProtocolError;
pub use handshake::{HandshakeRequest, HandshakeResponse};
pub use hub_protocol::HubProtocol;
pub use message::*;
pub use reader::{Chunk, MessageReader};
pub(crate) use payload::{json_str, write_encoded};

/// Values nested deeper than this are refused when decoded or transcoded, so hostile input cannot
/// overflow the stack (serde_json's own limit is 128 too).
const MAX_NESTING: usize = 128;

/// What both writers refuse to put on the wire for an Invocation/StreamInvocation, because the
/// peer would reject it (M-3).
fn check_invocation_for_write(name: &str, inv: &Invocation) -> Result<(), ProtocolError> {
    if inv.target.is_empty() {
        return Err(ProtocolError::new(format!("{name} has an empty target")));
    }
    if name == "StreamInvocation" && inv.invocation_id.as_deref().is_none_or(str::is_empty) {
        return Err(ProtocolError::new("StreamInvocation needs an invocation id"));
    }
    if !inv.arguments.is_array() {
        return Err(ProtocolError::new(format!("{name} arguments must be an array")));
    }
    Ok(())
}
