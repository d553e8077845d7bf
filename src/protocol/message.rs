//! The hub message model shared by both protocols.
//!
//! Values (arguments, stream items, results) stay encoded in the wire format they arrived in
//! ([`Payload`]): the JSON protocol hands the caller the very bytes it read, with no re-encoding,
//! and MessagePack values are transcoded to JSON only when somebody asks for JSON.

use bytes::Bytes;

/// The wire format of an encoded value or of a whole protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// UTF-8 JSON text (transfer format `Text`).
    Json,
    /// MessagePack (transfer format `Binary`).
    MessagePack,
}

/// One encoded value, or one encoded array of values (`arguments`), in a known format.
///
/// `bytes` is exactly the encoding of the value: for JSON the value's text (`[1,"a"]`, `null`),
/// for MessagePack its msgpack bytes. Cloning is cheap (reference-counted bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub format: Format,
    pub bytes: Bytes,
}

/// `headers` of a message (M-1): kept as given, written only when non-empty.
pub type Headers = Vec<(String, String)>;

/// Type 1 (Invocation) and type 4 (StreamInvocation) share this body.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub headers: Headers,
    /// `None` for a fire-and-forget Invocation (M-2); always `Some` for StreamInvocation.
    pub invocation_id: Option<String>,
    pub target: String,
    /// The `arguments` array, encoded as one array value.
    pub arguments: Payload,
    /// Upload stream ids (U-1); empty when there are none (then not written).
    pub stream_ids: Vec<String>,
}

/// Type 2.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamItem {
    pub headers: Headers,
    pub invocation_id: String,
    pub item: Payload,
}

/// How a Completion (type 3) ends its invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionResult {
    /// No `result` (JSON) / kind 2 (MessagePack).
    Void,
    /// `result` present, possibly `null` (M-5) / kind 3.
    Value(Payload),
    /// `error` / kind 1.
    Error(String),
}

/// Type 3.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub headers: Headers,
    pub invocation_id: String,
    pub result: CompletionResult,
}

/// Type 7.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Close {
    pub error: Option<String>,
    pub allow_reconnect: bool,
}

/// Every hub message of the protocol (types 1 to 9).
#[derive(Debug, Clone, PartialEq)]
pub enum HubMessage {
    Invocation(Invocation),
    StreamItem(StreamItem),
    Completion(Completion),
    StreamInvocation(Invocation),
    CancelInvocation { headers: Headers, invocation_id: String },
    Ping,
    Close(Close),
    Ack { sequence_id: u64 },
    Sequence { sequence_id: u64 },
}

impl HubMessage {
    /// Messages counted, buffered and acknowledged by stateful reconnect (SR-2): types 1 to 5.
    pub fn is_trackable(&self) -> bool {
        !matches!(
            self,
            HubMessage::Ping | HubMessage::Close(_) | HubMessage::Ack { .. } | HubMessage::Sequence { .. }
        )
    }
}
