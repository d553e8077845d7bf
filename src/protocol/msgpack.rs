//! The MessagePack hub protocol: each message is one msgpack array (MP-1..MP-10), framed by a
//! VarInt length prefix (F-3).
//!
//! Parsing reads the array in place; values (arguments, item, result) become zero-copy slices of
//! the received frame.

use bytes::Bytes;

use super::msgpack_decode::{Cursor, Token};
use super::msgpack_encode::{write_array_len, write_bool, write_map_len, write_nil, write_str, write_uint};
use super::{
    varint, Close, Completion, CompletionResult, Format, HubMessage, Invocation, Payload, ProtocolError, StreamItem,
};

/// Completion result kinds (MP-5).
const KIND_ERROR: u64 = 1;
const KIND_VOID: u64 = 2;
const KIND_VALUE: u64 = 3;

// ---------------------------------------------------------------------------------------------
// Writing

/// Appends the length prefix and `msg`; on error `out` is left as it was.
pub fn write_message(msg: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    let start = out.len();
    // The body length is known only once written: reserve the prefix size the estimate needs and
    // fix it up in the rare case the estimate was off.
    let guess = varint::encoded_len(estimate_body_len(msg).min(varint::MAX_VALUE as usize) as u32);
    out.resize(start + guess, 0);
    if let Err(e) = write_body(msg, out) {
        out.truncate(start);
        return Err(e);
    }
    let body_len = out.len() - start - guess;
    if body_len > varint::MAX_VALUE as usize {
        out.truncate(start);
        return Err(ProtocolError::new(format!(
            "MessagePack message of {body_len} bytes is longer than the length prefix allows (2147483647)"
        )));
    }
    let (prefix, len) = varint::encode(body_len as u32);
    if len > guess {
        out.splice(start..start, std::iter::repeat_n(0, len - guess));
    } else if len < guess {
        out.drain(start..start + (guess - len));
    }
    out[start..start + len].copy_from_slice(&prefix[..len]);
    Ok(())
}

fn estimate_body_len(msg: &HubMessage) -> usize {
    let headers = |h: &[(String, String)]| h.iter().map(|(k, v)| k.len() + v.len() + 10).sum::<usize>();
    16 + match msg {
        HubMessage::Invocation(inv) | HubMessage::StreamInvocation(inv) => {
            headers(&inv.headers)
                + inv.invocation_id.as_ref().map_or(0, String::len)
                + inv.target.len()
                + inv.arguments.bytes.len()
                + inv.stream_ids.iter().map(|id| id.len() + 5).sum::<usize>()
        }
        HubMessage::StreamItem(s) => headers(&s.headers) + s.invocation_id.len() + s.item.bytes.len(),
        HubMessage::Completion(c) => {
            headers(&c.headers)
                + c.invocation_id.len()
                + match &c.result {
                    CompletionResult::Void => 0,
                    CompletionResult::Value(p) => p.bytes.len(),
                    CompletionResult::Error(e) => e.len(),
                }
        }
        HubMessage::CancelInvocation { headers: h, invocation_id } => headers(h) + invocation_id.len(),
        HubMessage::Close(c) => c.error.as_ref().map_or(0, String::len),
        HubMessage::Ping | HubMessage::Ack { .. } | HubMessage::Sequence { .. } => 0,
    }
}

fn write_body(msg: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    match msg {
        HubMessage::Invocation(inv) => write_invocation(out, 1, inv)?,
        HubMessage::StreamInvocation(inv) => write_invocation(out, 4, inv)?,
        HubMessage::StreamItem(StreamItem { headers, invocation_id, item }) => {
            write_array_len(out, 4);
            write_uint(out, 2);
            write_headers(out, headers);
            write_str(out, invocation_id);
            item.write_as(Format::MessagePack, out).map_err(|e| e.context("StreamItem 'item'"))?;
        }
        HubMessage::Completion(Completion { headers, invocation_id, result }) => {
            let kind = match result {
                CompletionResult::Error(_) => KIND_ERROR,
                CompletionResult::Void => KIND_VOID,
                CompletionResult::Value(_) => KIND_VALUE,
            };
            write_array_len(out, if kind == KIND_VOID { 4 } else { 5 });
            write_uint(out, 3);
            write_headers(out, headers);
            write_str(out, invocation_id);
            write_uint(out, kind);
            match result {
                CompletionResult::Error(error) => write_str(out, error),
                CompletionResult::Void => {}
                CompletionResult::Value(value) => {
                    value.write_as(Format::MessagePack, out).map_err(|e| e.context("Completion 'result'"))?
                }
            }
        }
        HubMessage::CancelInvocation { headers, invocation_id } => {
            write_array_len(out, 3);
            write_uint(out, 5);
            write_headers(out, headers);
            write_str(out, invocation_id);
        }
        HubMessage::Ping => {
            write_array_len(out, 1);
            write_uint(out, 6);
        }
        HubMessage::Close(Close { error, allow_reconnect }) => {
            // Always 3 elements (as the .NET server writes them); no headers (MP-7).
            write_array_len(out, 3);
            write_uint(out, 7);
            match error {
                Some(error) => write_str(out, error),
                None => write_nil(out),
            }
            write_bool(out, *allow_reconnect);
        }
        HubMessage::Ack { sequence_id } => {
            write_array_len(out, 2);
            write_uint(out, 8);
            write_uint(out, *sequence_id);
        }
        HubMessage::Sequence { sequence_id } => {
            write_array_len(out, 2);
            write_uint(out, 9);
            write_uint(out, *sequence_id);
        }
    }
    Ok(())
}

/// Always 6 elements, an empty streamIds array when there are none (as the .NET server and the
/// spec examples do; MP-9 lets readers accept 5 or 6).
fn write_invocation(out: &mut Vec<u8>, message_type: u64, inv: &Invocation) -> Result<(), ProtocolError> {
    let name = if message_type == 1 { "Invocation" } else { "StreamInvocation" };
    super::check_invocation_for_write(name, inv)?;
    write_array_len(out, 6);
    write_uint(out, message_type);
    write_headers(out, &inv.headers);
    match &inv.invocation_id {
        Some(id) => write_str(out, id),
        None => write_nil(out),
    }
    write_str(out, &inv.target);
    inv.arguments.write_as(Format::MessagePack, out).map_err(|e| e.context(&format!("{name} 'arguments'")))?;
    write_array_len(out, len_u32(inv.stream_ids.len(), "streamIds")?);
    for id in &inv.stream_ids {
        write_str(out, id);
    }
    Ok(())
}

fn write_headers(out: &mut Vec<u8>, headers: &[(String, String)]) {
    // More than 2^32 headers cannot be built in memory; saturate rather than fail.
    write_map_len(out, headers.len().min(u32::MAX as usize) as u32);
    for (name, value) in headers {
        write_str(out, name);
        write_str(out, value);
    }
}

fn len_u32(len: usize, what: &str) -> Result<u32, ProtocolError> {
    u32::try_from(len).map_err(|_| ProtocolError::new(format!("too many {what} for MessagePack")))
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Parses one frame body (without its length prefix) lying inside `owner`, whose slices the
/// payloads become. `Ok(None)` = a message type this version does not know, to be skipped (M-4, MP-10).
pub fn parse_message(owner: &Bytes, body: &[u8]) -> Result<Option<HubMessage>, ProtocolError> {
    let mut c = Cursor::new(body);
    let count = c.read_array_len().map_err(|e| e.context("MessagePack hub message"))?;
    if count == 0 {
        return Err(ProtocolError::new("MessagePack hub message is an empty array (no message type)"));
    }
    let message_type = match c.next_token().map_err(|e| e.context("MessagePack message type"))? {
        Token::UInt(n) => n,
        Token::NegInt(_) => return Ok(None),
        other => {
            return Err(ProtocolError::new(format!(
                "MessagePack message type must be an integer, found {}",
                other.kind()
            )))
        }
    };
    let mut m = Elements { name: "", count, c, owner };
    let message = match message_type {
        1 => HubMessage::Invocation(m.named("Invocation").invocation()?),
        4 => HubMessage::StreamInvocation(m.named("StreamInvocation").invocation()?),
        2 => {
            m.named("StreamItem").need(4)?;
            let headers = m.headers()?;
            let invocation_id = m.required_id()?;
            let item = m.value("item")?;
            HubMessage::StreamItem(StreamItem { headers, invocation_id, item })
        }
        3 => {
            m.named("Completion").need(4)?;
            let headers = m.headers()?;
            let invocation_id = m.required_id()?;
            let kind = m.c.read_uint().map_err(|e| e.context("Completion result kind"))?;
            let result = match kind {
                KIND_ERROR => {
                    m.need_for(5, "an error result")?;
                    CompletionResult::Error(m.c.read_str().map_err(|e| e.context("Completion 'error'"))?.to_owned())
                }
                KIND_VOID => CompletionResult::Void,
                KIND_VALUE => {
                    m.need_for(5, "a value result")?;
                    CompletionResult::Value(m.value("result")?)
                }
                other => {
                    return Err(ProtocolError::new(format!(
                        "Completion result kind {other} is not 1 (error), 2 (void) or 3 (value)"
                    )))
                }
            };
            HubMessage::Completion(Completion { headers, invocation_id, result })
        }
        5 => {
            m.named("CancelInvocation").need(3)?;
            let headers = m.headers()?;
            HubMessage::CancelInvocation { headers, invocation_id: m.required_id()? }
        }
        6 => HubMessage::Ping,
        7 => {
            m.named("Close").need(2)?;
            let error = m.c.read_opt_str().map_err(|e| e.context("Close 'error'"))?.map(str::to_owned);
            let allow_reconnect = if m.count >= 3 {
                match m.c.next_token().map_err(|e| e.context("Close 'allowReconnect'"))? {
                    Token::Bool(b) => b,
                    Token::Nil => false,
                    other => {
                        return Err(ProtocolError::new(format!(
                            "Close 'allowReconnect': expected a boolean, found {}",
                            other.kind()
                        )))
                    }
                }
            } else {
                false
            };
            HubMessage::Close(Close { error, allow_reconnect })
        }
        8 => HubMessage::Ack { sequence_id: m.named("Ack").sequence_id()? },
        9 => HubMessage::Sequence { sequence_id: m.named("Sequence").sequence_id()? },
        _ => return Ok(None),
    };
    // Elements beyond the ones read are ignored (MP-9).
    Ok(Some(message))
}

/// The elements of one message array after its type, read in order.
struct Elements<'a> {
    name: &'static str,
    count: u32,
    c: Cursor<'a>,
    owner: &'a Bytes,
}

impl<'a> Elements<'a> {
    fn named(&mut self, name: &'static str) -> &mut Self {
        self.name = name;
        self
    }

    fn need(&self, min: u32) -> Result<(), ProtocolError> {
        if self.count < min {
            return Err(ProtocolError::new(format!(
                "MessagePack {} message has {} elements, at least {min} are required",
                self.name, self.count
            )));
        }
        Ok(())
    }

    fn need_for(&self, min: u32, what: &str) -> Result<(), ProtocolError> {
        if self.count < min {
            return Err(ProtocolError::new(format!(
                "MessagePack {} message with {what} has {} elements, {min} are required",
                self.name, self.count
            )));
        }
        Ok(())
    }

    /// Adds "<message> '<field>'" to an error; formats only when there is one (hot path).
    fn context(&self, field: &'static str) -> impl FnOnce(ProtocolError) -> ProtocolError {
        let name = self.name;
        move |e| e.context(&format!("{name} '{field}'"))
    }

    /// Headers must be a map of strings (MP-10).
    fn headers(&mut self) -> Result<Vec<(String, String)>, ProtocolError> {
        let name = self.name;
        let at = |e: ProtocolError| e.context(&format!("{name} 'headers'"));
        let n = self.c.read_map_len().map_err(at)?;
        let mut headers = Vec::new();
        for _ in 0..n {
            let key = self.c.read_str().map_err(at)?.to_owned();
            let value = self.c.read_str().map_err(at)?.to_owned();
            headers.push((key, value));
        }
        Ok(headers)
    }

    fn required_id(&mut self) -> Result<String, ProtocolError> {
        let name = self.name;
        match self.c.read_opt_str().map_err(|e| e.context(&format!("{name} 'invocationId'")))? {
            Some(id) if !id.is_empty() => Ok(id.to_owned()),
            Some(_) => Err(ProtocolError::new(format!("{name} message has an empty 'invocationId'"))),
            None => Err(ProtocolError::new(format!("{name} message has a nil 'invocationId'"))),
        }
    }

    /// One whole value, as a zero-copy slice of the received chunk.
    fn value(&mut self, field: &str) -> Result<Payload, ProtocolError> {
        let bytes = self.c.read_value().map_err(|e| e.context(&format!("{} '{field}'", self.name)))?;
        Ok(Payload { format: Format::MessagePack, bytes: self.owner.slice_ref(bytes) })
    }

    fn invocation(&mut self) -> Result<Invocation, ProtocolError> {
        self.need(5)?;
        let headers = self.headers()?;
        let invocation_id = if self.name == "Invocation" {
            // nil or "" = fire-and-forget (M-2), as the .NET reader normalises it.
            let id = self.c.read_opt_str().map_err(self.context("invocationId"))?;
            id.filter(|id| !id.is_empty()).map(str::to_owned)
        } else {
            Some(self.required_id()?)
        };
        let target = self.c.read_str().map_err(self.context("target"))?;
        if target.is_empty() {
            return Err(ProtocolError::new(format!("{} message has an empty 'target'", self.name)));
        }
        let target = target.to_owned();
        let arguments = self.value("arguments")?;
        if !arguments.is_array() {
            let found = Cursor::new(&arguments.bytes).next_token().map(|t| t.kind()).unwrap_or("nothing");
            return Err(ProtocolError::new(format!("{} 'arguments': expected an array, found {found}", self.name)));
        }
        let mut stream_ids = Vec::new();
        if self.count >= 6 {
            let n = self.c.read_array_len().map_err(self.context("streamIds"))?;
            for _ in 0..n {
                stream_ids.push(self.c.read_str().map_err(self.context("streamIds"))?.to_owned());
            }
        }
        Ok(Invocation { headers, invocation_id, target, arguments, stream_ids })
    }

    fn sequence_id(&mut self) -> Result<u64, ProtocolError> {
        self.need(2)?;
        self.c.read_uint().map_err(self.context("sequenceId"))
    }
}
