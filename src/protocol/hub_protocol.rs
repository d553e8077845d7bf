//! The two hub protocols and what distinguishes them on the wire.

use bytes::Bytes;

use super::{json, msgpack, Format, HubMessage, ProtocolError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HubProtocol {
    Json,
    MessagePack,
}

impl HubProtocol {
    /// The name used in the handshake: "json" or "messagepack".
    pub fn name(self) -> &'static str {
        match self {
            HubProtocol::Json => "json",
            HubProtocol::MessagePack => "messagepack",
        }
    }

    /// The protocol with exactly this handshake name (case-sensitive, as the server matches it).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "json" => Some(HubProtocol::Json),
            "messagepack" => Some(HubProtocol::MessagePack),
            _ => None,
        }
    }

    pub fn format(self) -> Format {
        match self {
            HubProtocol::Json => Format::Json,
            HubProtocol::MessagePack => Format::MessagePack,
        }
    }

    /// The transfer format named in negotiate responses: "Text" or "Binary".
    pub fn transfer_format(self) -> &'static str {
        match self {
            HubProtocol::Json => "Text",
            HubProtocol::MessagePack => "Binary",
        }
    }

    /// Appends one framed message (JSON + 0x1E, or VarInt length + msgpack) to `out`. Payloads
    /// in the other format are transcoded (slow path). On error `out` is left as it was.
    pub fn write(self, msg: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        match self {
            HubProtocol::Json => json::write_message(msg, out),
            HubProtocol::MessagePack => msgpack::write_message(msg, out),
        }
    }

    /// Parses one unframed message (a JSON record without its separator, or a msgpack body
    /// without its length prefix); `body` lies inside `owner`, of which payloads become slices.
    /// `Ok(None)` = unknown message type, to be skipped (M-4).
    pub(crate) fn parse(self, owner: &Bytes, body: &[u8], utf8: bool) -> Result<Option<HubMessage>, ProtocolError> {
        match self {
            HubProtocol::Json => json::parse_message(owner, body, utf8),
            HubProtocol::MessagePack => msgpack::parse_message(owner, body),
        }
    }
}
