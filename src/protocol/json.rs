//! The JSON hub protocol: one JSON object per message, camelCase properties, each record followed
//! by 0x1E (F-1, section 9 of the checklist).
//!
//! Parsing reads the record once with [`Cursor`]: property names and strings are borrowed unless
//! they hold escapes, and values (arguments, item, result) become zero-copy slices of the record.

use std::borrow::Cow;

use bytes::Bytes;

use super::json_read::{Cursor, Number};
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
/// become. `Ok(None)` = a message type this version does not know, to be skipped (M-4).
pub fn parse_message(owner: &Bytes, record: &[u8]) -> Result<Option<HubMessage>, ProtocolError> {
    let mut cursor = Cursor::new(record);
    if cursor.at_end() {
        return Err(ProtocolError::new("empty JSON hub message (nothing before the record separator)"));
    }
    let mut fields = Fields::default();
    cursor.object(|cursor, name| fields.read(cursor, &name))?;
    if !cursor.at_end() {
        return Err(cursor.error("trailing characters after the message"));
    }
    fields.into_message(owner)
}

/// Every property the protocol knows, as found in one message (any order, M-6; unknown ones
/// ignored, D-4; a repeated one counts with its last value).
#[derive(Default)]
struct Fields<'a> {
    /// 0 stands for a number that is not a non-negative integer: unknown type, skipped.
    message_type: Option<u64>,
    invocation_id: Option<Cow<'a, str>>,
    target: Option<Cow<'a, str>>,
    arguments: Option<&'a [u8]>,
    stream_ids: Vec<String>,
    headers: Headers,
    /// `Some` whenever the property is present, `null` included (M-5, edge case 13).
    item: Option<&'a [u8]>,
    result: Option<&'a [u8]>,
    error: Option<Cow<'a, str>>,
    allow_reconnect: bool,
    sequence_id: Option<u64>,
}

impl<'a> Fields<'a> {
    /// Reads the value of property `name` (case-sensitive, section 9).
    fn read(&mut self, cursor: &mut Cursor<'a>, name: &str) -> Result<(), ProtocolError> {
        match name {
            "type" => {
                self.message_type = Some(match cursor.number()? {
                    Some(Number::Unsigned(n)) => n,
                    Some(Number::Other) => 0,
                    None => return Err(cursor.error("expected a number for 'type'")),
                })
            }
            "invocationId" => self.invocation_id = optional_str(cursor, "invocationId")?,
            "target" => self.target = optional_str(cursor, "target")?,
            "error" => self.error = optional_str(cursor, "error")?,
            "arguments" => self.arguments = Some(cursor.value()?),
            "item" => self.item = Some(cursor.value()?),
            "result" => self.result = Some(cursor.value()?),
            "streamIds" => {
                self.stream_ids.clear();
                if !cursor.null()? {
                    if cursor.peek() != Some(b'[') {
                        return Err(cursor.error("expected an array of strings for 'streamIds'"));
                    }
                    let ids = &mut self.stream_ids;
                    cursor.array(|cursor| {
                        ids.push(owned_str(cursor, "a string as stream id")?);
                        Ok(())
                    })?;
                }
            }
            "headers" => {
                self.headers.clear();
                if !cursor.null()? {
                    if cursor.peek() != Some(b'{') {
                        return Err(cursor.error("expected an object of strings for 'headers'"));
                    }
                    let headers = &mut self.headers;
                    cursor.object(|cursor, name| {
                        headers.push((name.into_owned(), owned_str(cursor, "a string as header value")?));
                        Ok(())
                    })?;
                }
            }
            "allowReconnect" => {
                self.allow_reconnect = match cursor.boolean()? {
                    Some(b) => b,
                    None if cursor.null()? => false,
                    None => return Err(cursor.error("expected a boolean for 'allowReconnect'")),
                }
            }
            "sequenceId" => match cursor.number()? {
                Some(Number::Unsigned(n)) => self.sequence_id = Some(n),
                _ => return Err(cursor.error("expected a non-negative integer for 'sequenceId'")),
            },
            _ => {
                cursor.value()?;
            }
        }
        Ok(())
    }

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
        if arguments.first() != Some(&b'[') {
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
fn payload(owner: &Bytes, value: &[u8]) -> Payload {
    Payload { format: Format::Json, bytes: owner.slice_ref(value) }
}

/// A string property where `null` means absent.
fn optional_str<'a>(cursor: &mut Cursor<'a>, name: &str) -> Result<Option<Cow<'a, str>>, ProtocolError> {
    if cursor.null()? {
        return Ok(None);
    }
    match cursor.string_value()? {
        Some(s) => Ok(Some(s)),
        None => Err(cursor.error(&format!("expected a string for '{name}'"))),
    }
}

/// A string inside `headers` or `streamIds` (null not allowed).
fn owned_str(cursor: &mut Cursor<'_>, what: &str) -> Result<String, ProtocolError> {
    match cursor.string_value()? {
        Some(s) => Ok(s.into_owned()),
        None => Err(cursor.error(&format!("expected {what}"))),
    }
}
