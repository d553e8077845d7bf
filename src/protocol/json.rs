//! The JSON hub protocol: one JSON object per message, camelCase properties, each record followed
//! by 0x1E (F-1, section 9 of the checklist).
//!
//! Parsing borrows from the received record: property names and strings are `&str` unless they
//! hold escapes, and values (arguments, item, result) become zero-copy slices of the record.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::json_text::{write_str, write_u64};
use super::{
    Close, Completion, CompletionResult, Format, Headers, HubMessage, Invocation, Payload, ProtocolError, StreamItem,
};

pub const RECORD_SEPARATOR: u8 = 0x1E;

// ---------------------------------------------------------------------------------------------
// Writing

/// Appends `msg` and its record separator; on error `out` is left as it was.
pub fn write_message(msg: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    let start = out.len();
    match write_object(msg, out) {
        Ok(()) => {
            out.push(RECORD_SEPARATOR);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

fn write_object(msg: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    match msg {
        HubMessage::Invocation(inv) => write_invocation(out, 1, inv)?,
        HubMessage::StreamInvocation(inv) => write_invocation(out, 4, inv)?,
        HubMessage::StreamItem(StreamItem { headers, invocation_id, item }) => {
            open(out, 2, headers);
            string_field(out, "invocationId", invocation_id);
            key(out, "item");
            item.write_as(Format::Json, out).map_err(|e| e.context("StreamItem 'item'"))?;
        }
        HubMessage::Completion(Completion { headers, invocation_id, result }) => {
            open(out, 3, headers);
            string_field(out, "invocationId", invocation_id);
            match result {
                CompletionResult::Void => {}
                CompletionResult::Value(value) => {
                    key(out, "result");
                    value.write_as(Format::Json, out).map_err(|e| e.context("Completion 'result'"))?;
                }
                CompletionResult::Error(error) => string_field(out, "error", error),
            }
        }
        HubMessage::CancelInvocation { headers, invocation_id } => {
            open(out, 5, headers);
            string_field(out, "invocationId", invocation_id);
        }
        HubMessage::Ping => open(out, 6, &[]),
        HubMessage::Close(Close { error, allow_reconnect }) => {
            open(out, 7, &[]);
            if let Some(error) = error {
                string_field(out, "error", error);
            }
            if *allow_reconnect {
                key(out, "allowReconnect");
                out.extend_from_slice(b"true");
            }
        }
        HubMessage::Ack { sequence_id } => {
            open(out, 8, &[]);
            key(out, "sequenceId");
            write_u64(out, *sequence_id);
        }
        HubMessage::Sequence { sequence_id } => {
            open(out, 9, &[]);
            key(out, "sequenceId");
            write_u64(out, *sequence_id);
        }
    }
    out.push(b'}');
    Ok(())
}

fn write_invocation(out: &mut Vec<u8>, message_type: u8, inv: &Invocation) -> Result<(), ProtocolError> {
    let name = if message_type == 1 { "Invocation" } else { "StreamInvocation" };
    super::check_invocation_for_write(name, inv)?;
    open(out, message_type, &inv.headers);
    if let Some(id) = &inv.invocation_id {
        string_field(out, "invocationId", id);
    }
    string_field(out, "target", &inv.target);
    key(out, "arguments");
    inv.arguments.write_as(Format::Json, out).map_err(|e| e.context(&format!("{name} 'arguments'")))?;
    if !inv.stream_ids.is_empty() {
        key(out, "streamIds");
        out.push(b'[');
        for (i, id) in inv.stream_ids.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, id);
        }
        out.push(b']');
    }
    Ok(())
}

/// `{"type":N` and, when there are any, the headers (M-1).
fn open(out: &mut Vec<u8>, message_type: u8, headers: &[(String, String)]) {
    out.extend_from_slice(b"{\"type\":");
    write_u64(out, u64::from(message_type));
    if !headers.is_empty() {
        key(out, "headers");
        out.push(b'{');
        for (i, (name, value)) in headers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, name);
            out.push(b':');
            write_str(out, value);
        }
        out.push(b'}');
    }
}

/// `,"name":` — property names are fixed ASCII identifiers, no escaping needed.
fn key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

fn string_field(out: &mut Vec<u8>, name: &str, value: &str) {
    key(out, name);
    write_str(out, value);
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Parses one record (without its separator) lying inside `owner`, whose slices the payloads
/// become; `utf8` = the record is known to be UTF-8 (it came from a [`Chunk`] that promised so).
/// `Ok(None)` = a message type this version does not know, to be skipped (M-4).
///
/// [`Chunk`]: super::reader::Chunk
pub fn parse_message(owner: &Bytes, record: &[u8], utf8: bool) -> Result<Option<HubMessage>, ProtocolError> {
    if record.iter().all(u8::is_ascii_whitespace) {
        return Err(ProtocolError::new("empty JSON hub message (nothing before the record separator)"));
    }
    // Checked once up front (unless the transport already did), so serde_json's `&str` reader
    // need not check each string again.
    let text = if utf8 {
        // SAFETY: `utf8` is only set for records cut at character boundaries out of a chunk whose
        // creator vouched for it being UTF-8 (`Chunk::utf8_unchecked`).
        unsafe { std::str::from_utf8_unchecked(record) }
    } else {
        std::str::from_utf8(record)
            .map_err(|e| ProtocolError::new(format!("JSON hub message is not valid UTF-8 ({e})")))?
    };
    let mut fields = Fields::default();
    let mut de = serde_json::Deserializer::from_str(text);
    FieldsSeed(&mut fields)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| ProtocolError::new(format!("invalid JSON hub message: {e}")))?;
    fields.into_message(owner)
}

/// Every property the protocol knows, as found in one message (any order, M-6; unknown ones
/// ignored, D-4).
#[derive(Default)]
struct Fields<'a> {
    /// 0 stands for a number that is not a non-negative integer: unknown type, skipped.
    message_type: Option<u64>,
    invocation_id: Option<Cow<'a, str>>,
    target: Option<Cow<'a, str>>,
    arguments: Option<&'a RawValue>,
    stream_ids: Vec<String>,
    headers: Headers,
    /// `Some` whenever the property is present, `null` included (M-5, edge case 13).
    item: Option<&'a RawValue>,
    result: Option<&'a RawValue>,
    error: Option<Cow<'a, str>>,
    allow_reconnect: bool,
    sequence_id: Option<u64>,
}

impl<'a> Fields<'a> {
    fn into_message(self, owner: &Bytes) -> Result<Option<HubMessage>, ProtocolError> {
        let message_type =
            self.message_type.ok_or_else(|| ProtocolError::new("JSON hub message has no 'type' property"))?;
        let message = match message_type {
            1 => HubMessage::Invocation(self.invocation("Invocation", owner)?),
            4 => HubMessage::StreamInvocation(self.invocation("StreamInvocation", owner)?),
            2 => {
                let invocation_id = required_id("StreamItem", self.invocation_id)?;
                let item = self.item.ok_or_else(|| ProtocolError::new("StreamItem message has no 'item'"))?;
                HubMessage::StreamItem(StreamItem { headers: self.headers, invocation_id, item: payload(owner, item) })
            }
            3 => {
                let invocation_id = required_id("Completion", self.invocation_id)?;
                let result = match (self.result, self.error) {
                    (Some(_), Some(_)) => {
                        return Err(ProtocolError::new("Completion message carries both 'result' and 'error'"))
                    }
                    (Some(result), None) => CompletionResult::Value(payload(owner, result)),
                    (None, Some(error)) => CompletionResult::Error(error.into_owned()),
                    (None, None) => CompletionResult::Void,
                };
                HubMessage::Completion(Completion { headers: self.headers, invocation_id, result })
            }
            5 => HubMessage::CancelInvocation {
                headers: self.headers,
                invocation_id: required_id("CancelInvocation", self.invocation_id)?,
            },
            6 => HubMessage::Ping,
            7 => HubMessage::Close(Close {
                error: self.error.map(Cow::into_owned),
                allow_reconnect: self.allow_reconnect,
            }),
            8 => HubMessage::Ack { sequence_id: required_sequence_id("Ack", self.sequence_id)? },
            9 => HubMessage::Sequence { sequence_id: required_sequence_id("Sequence", self.sequence_id)? },
            _ => return Ok(None),
        };
        Ok(Some(message))
    }

    fn invocation(self, name: &str, owner: &Bytes) -> Result<Invocation, ProtocolError> {
        let invocation_id = if name == "Invocation" {
            // Absent, null or "" = fire-and-forget (M-2), as the official clients read it.
            self.invocation_id.filter(|id| !id.is_empty()).map(Cow::into_owned)
        } else {
            Some(required_id(name, self.invocation_id)?)
        };
        let target = match self.target {
            Some(target) if !target.is_empty() => target.into_owned(),
            Some(_) => return Err(ProtocolError::new(format!("{name} message has an empty 'target'"))),
            None => return Err(ProtocolError::new(format!("{name} message has no 'target'"))),
        };
        let arguments =
            self.arguments.ok_or_else(|| ProtocolError::new(format!("{name} message has no 'arguments'")))?;
        if !arguments.get().starts_with('[') {
            return Err(ProtocolError::new(format!("{name} 'arguments' must be an array")));
        }
        Ok(Invocation {
            headers: self.headers,
            invocation_id,
            target,
            arguments: payload(owner, arguments),
            stream_ids: self.stream_ids,
        })
    }
}

fn required_id(name: &str, id: Option<Cow<'_, str>>) -> Result<String, ProtocolError> {
    match id {
        Some(id) if !id.is_empty() => Ok(id.into_owned()),
        Some(_) => Err(ProtocolError::new(format!("{name} message has an empty 'invocationId'"))),
        None => Err(ProtocolError::new(format!("{name} message has no 'invocationId'"))),
    }
}

fn required_sequence_id(name: &str, id: Option<u64>) -> Result<u64, ProtocolError> {
    id.ok_or_else(|| ProtocolError::new(format!("{name} message has no 'sequenceId'")))
}

/// The value's own bytes, sliced out of the received chunk (no copy).
fn payload(owner: &Bytes, value: &RawValue) -> Payload {
    Payload { format: Format::Json, bytes: owner.slice_ref(value.get().as_bytes()) }
}

/// Fills a [`Fields`] in place (it is large: moving it through serde's return values costs).
struct FieldsSeed<'f, 'de>(&'f mut Fields<'de>);

impl<'de> DeserializeSeed<'de> for FieldsSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let fields = self.0;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => fields.message_type = Some(map.next_value_seed(TypeNumber)?),
                Key::InvocationId => fields.invocation_id = map.next_value_seed(OptionalStr("invocationId"))?,
                Key::Target => fields.target = map.next_value_seed(OptionalStr("target"))?,
                Key::Arguments => fields.arguments = Some(map.next_value()?),
                Key::StreamIds => fields.stream_ids = map.next_value_seed(StreamIds)?,
                Key::Headers => fields.headers = map.next_value_seed(HeadersSeed)?,
                Key::Item => fields.item = Some(map.next_value()?),
                Key::Result => fields.result = Some(map.next_value()?),
                Key::Error => fields.error = map.next_value_seed(OptionalStr("error"))?,
                Key::AllowReconnect => fields.allow_reconnect = map.next_value_seed(AllowReconnect)?,
                Key::SequenceId => fields.sequence_id = Some(map.next_value_seed(SequenceId)?),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Property names, matched without allocating (case-sensitive, section 9).
enum Key {
    Type,
    InvocationId,
    Target,
    Arguments,
    StreamIds,
    Headers,
    Item,
    Result,
    Error,
    AllowReconnect,
    SequenceId,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a property name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
        Ok(match name {
            "type" => Key::Type,
            "invocationId" => Key::InvocationId,
            "target" => Key::Target,
            "arguments" => Key::Arguments,
            "streamIds" => Key::StreamIds,
            "headers" => Key::Headers,
            "item" => Key::Item,
            "result" => Key::Result,
            "error" => Key::Error,
            "allowReconnect" => Key::AllowReconnect,
            "sequenceId" => Key::SequenceId,
            _ => Key::Other,
        })
    }
}

/// The seeds below are their own visitors: deserializing one hands it to `deserialize_any`, and
/// its `expecting` text names the property when the value has the wrong type.
macro_rules! seed_is_visitor {
    ($($seed:ty => $value:ty),* $(,)?) => {$(
        impl<'de> DeserializeSeed<'de> for $seed {
            type Value = $value;
            fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<$value, D::Error> {
                deserializer.deserialize_any(self)
            }
        }
    )*};
}

seed_is_visitor!(
    TypeNumber => u64,
    OptionalStr => Option<Cow<'de, str>>,
    OwnedStr => String,
    HeadersSeed => Headers,
    StreamIds => Vec<String>,
    AllowReconnect => bool,
    SequenceId => u64,
);

/// `type`: must be a number (M-3); a number that is not a non-negative integer is an unknown type.
struct TypeNumber;

impl Visitor<'_> for TypeNumber {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number for 'type'")
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
        Ok(n)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<u64, E> {
        Ok(0)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<u64, E> {
        Ok(0)
    }
}

/// A string property where `null` means absent; borrowed unless it holds escapes.
struct OptionalStr(&'static str);

impl<'de> Visitor<'de> for OptionalStr {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a string for '{}'", self.0)
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(s.to_owned())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A string inside `headers` or `streamIds` (null not allowed).
struct OwnedStr(&'static str);

impl Visitor<'_> for OwnedStr {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a string as {}", self.0)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        Ok(s.to_owned())
    }
}

/// `headers`: an object of strings (M-1); null = none.
struct HeadersSeed;

impl<'de> Visitor<'de> for HeadersSeed {
    type Value = Headers;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of strings for 'headers'")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Headers, E> {
        Ok(Headers::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
        let mut headers = Headers::new();
        while let Some(entry) = map.next_entry_seed(OwnedStr("header name"), OwnedStr("header value"))? {
            headers.push(entry);
        }
        Ok(headers)
    }
}

/// `streamIds`: an array of strings; null = none.
struct StreamIds;

impl<'de> Visitor<'de> for StreamIds {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of strings for 'streamIds'")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut ids = Vec::new();
        while let Some(id) = seq.next_element_seed(OwnedStr("stream id"))? {
            ids.push(id);
        }
        Ok(ids)
    }
}

/// `allowReconnect`: a boolean; null = false.
struct AllowReconnect;

impl Visitor<'_> for AllowReconnect {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a boolean for 'allowReconnect'")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<bool, E> {
        Ok(b)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// `sequenceId`: a non-negative integer (M-3).
struct SequenceId;

impl Visitor<'_> for SequenceId {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a non-negative integer for 'sequenceId'")
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
        Ok(n)
    }
}
