//! Building, reading and converting [`Payload`]s (encoded values in a known format).

use std::borrow::Cow;

use bytes::Bytes;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Serialize;
use serde_json::value::RawValue;

use super::json::RECORD_SEPARATOR;
use super::msgpack_decode::Cursor;
use super::msgpack_encode::{array_len_size, write_array_len};
use super::{transcode, Format, Payload, ProtocolError, MAX_NESTING};

impl Payload {
    /// A JSON value given as text; checked to be one valid JSON value.
    pub fn from_json(text: impl Into<Bytes>) -> Result<Payload, ProtocolError> {
        let bytes = text.into();
        let text = json_str(&bytes)?;
        serde_json::from_str::<IgnoredAny>(text)
            .map_err(|e| ProtocolError::new(format!("invalid JSON payload: {e}")))?;
        Ok(Payload { format: Format::Json, bytes })
    }

    /// A MessagePack value given as bytes; checked to be exactly one complete value.
    pub fn from_msgpack(bytes: impl Into<Bytes>) -> Result<Payload, ProtocolError> {
        let bytes = bytes.into();
        let mut c = Cursor::new(&bytes);
        c.skip_value().map_err(|e| e.context("invalid MessagePack payload"))?;
        if !c.is_at_end() {
            return Err(ProtocolError::new("invalid MessagePack payload: bytes after its value"));
        }
        Ok(Payload { format: Format::MessagePack, bytes })
    }

    /// Serializes `value` (structs become maps with field names in MessagePack, as .NET expects).
    pub fn from_value<T: Serialize + ?Sized>(value: &T, format: Format) -> Result<Payload, ProtocolError> {
        let bytes = match format {
            Format::Json => serde_json::to_vec(value)
                .map_err(|e| ProtocolError::new(format!("cannot encode value as JSON: {e}")))?,
            Format::MessagePack => rmp_serde::to_vec_named(value)
                .map_err(|e| ProtocolError::new(format!("cannot encode value as MessagePack: {e}")))?,
        };
        Ok(Payload { format, bytes: Bytes::from(bytes) })
    }

    /// Deserializes the value.
    pub fn to_value<T: DeserializeOwned>(&self) -> Result<T, ProtocolError> {
        match self.format {
            Format::Json => serde_json::from_slice(&self.bytes)
                .map_err(|e| ProtocolError::new(format!("JSON payload does not match the expected type: {e}"))),
            Format::MessagePack => {
                // rmp_serde's default depth (1024) overflows a 2 MiB thread stack on hostile input.
                let mut de = rmp_serde::Deserializer::from_read_ref(&self.bytes[..]);
                de.set_max_depth(MAX_NESTING);
                T::deserialize(&mut de).map_err(|e| {
                    ProtocolError::new(format!("MessagePack payload does not match the expected type: {e}"))
                })
            }
        }
    }

    /// The value as JSON text: borrowed for JSON, transcoded for MessagePack.
    pub fn to_json(&self) -> Result<Cow<'_, str>, ProtocolError> {
        match self.format {
            Format::Json => json_str(&self.bytes).map(Cow::Borrowed),
            Format::MessagePack => {
                let mut out = Vec::with_capacity(self.bytes.len() * 2);
                transcode::msgpack_to_json(&self.bytes, &mut out)?;
                String::from_utf8(out).map(Cow::Owned).map_err(|_| ProtocolError::new("transcoded JSON is not UTF-8"))
            }
        }
    }

    /// The value in `format`: a cheap clone when it already is, a transcoding otherwise.
    pub fn convert(&self, format: Format) -> Result<Payload, ProtocolError> {
        if self.format == format {
            return Ok(self.clone());
        }
        let mut out = Vec::with_capacity(self.bytes.len() + 8);
        self.write_as(format, &mut out)?;
        Ok(Payload { format, bytes: Bytes::from(out) })
    }

    /// The elements of an array value, each a zero-copy slice of this payload.
    pub fn array_items(&self) -> Result<Vec<Payload>, ProtocolError> {
        match self.format {
            Format::Json => {
                let items: Vec<&RawValue> = serde_json::from_slice(&self.bytes)
                    .map_err(|e| ProtocolError::new(format!("JSON payload is not an array: {e}")))?;
                Ok(items
                    .into_iter()
                    .map(|item| Payload { format: Format::Json, bytes: self.bytes.slice_ref(item.get().as_bytes()) })
                    .collect())
            }
            Format::MessagePack => {
                let mut c = Cursor::new(&self.bytes);
                let n = c.read_array_len().map_err(|e| e.context("MessagePack payload is not an array"))?;
                // The declared length is untrusted: never reserve more than the bytes could hold.
                let mut items = Vec::with_capacity((n as usize).min(self.bytes.len()));
                for _ in 0..n {
                    let item = c.read_value().map_err(|e| e.context("MessagePack array payload"))?;
                    items.push(Payload { format: Format::MessagePack, bytes: self.bytes.slice_ref(item) });
                }
                if !c.is_at_end() {
                    return Err(ProtocolError::new("MessagePack array payload has bytes after its value"));
                }
                Ok(items)
            }
        }
    }

    /// One array of `items` (converted to `format` where needed).
    pub fn array(items: &[Payload], format: Format) -> Result<Payload, ProtocolError> {
        // Exact when no item needs transcoding: a Vec filled to its capacity becomes `Bytes`
        // without a second allocation.
        let body = items.iter().map(|p| p.bytes.len()).sum::<usize>();
        let framing = match format {
            Format::Json => items.len().max(1) + 1,
            // Too many items for MessagePack fail below; the size is moot then.
            Format::MessagePack => u32::try_from(items.len()).map_or(0, array_len_size),
        };
        let mut out = Vec::with_capacity(body + framing);
        match format {
            Format::Json => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_as(format, &mut out)?;
                }
                out.push(b']');
            }
            Format::MessagePack => {
                let n = u32::try_from(items.len())
                    .map_err(|_| ProtocolError::new("too many array items for MessagePack"))?;
                write_array_len(&mut out, n);
                for item in items {
                    item.write_as(format, &mut out)?;
                }
            }
        }
        Ok(Payload { format, bytes: Bytes::from(out) })
    }

    pub fn null(format: Format) -> Payload {
        let bytes: &'static [u8] = match format {
            Format::Json => b"null",
            Format::MessagePack => &[0xC0],
        };
        Payload { format, bytes: Bytes::from_static(bytes) }
    }

    pub fn empty_array(format: Format) -> Payload {
        let bytes: &'static [u8] = match format {
            Format::Json => b"[]",
            Format::MessagePack => &[0x90],
        };
        Payload { format, bytes: Bytes::from_static(bytes) }
    }

    /// Whether the value is an array (judged from its first byte; the rest is not checked).
    pub fn is_array(&self) -> bool {
        match self.format {
            Format::Json => self.bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'['),
            Format::MessagePack => matches!(self.bytes.first(), Some(0x90..=0x9F | 0xDC | 0xDD)),
        }
    }

    /// Appends the value encoded in `format` (copied, or transcoded from the other format).
    pub(crate) fn write_as(&self, format: Format, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        write_encoded(self.format, &self.bytes, format, out)
    }
}

/// JSON text as a `&str`.
pub(crate) fn json_str(bytes: &[u8]) -> Result<&str, ProtocolError> {
    std::str::from_utf8(bytes).map_err(|e| ProtocolError::new(format!("JSON payload is not valid UTF-8 ({e})")))
}

/// [`Payload::write_as`] for encoded bytes in `from` format held elsewhere.
pub(crate) fn write_encoded(from: Format, bytes: &[u8], format: Format, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    match (from, format) {
        (Format::Json, Format::Json) => {
            // Valid JSON never holds a raw 0x1E; a hand-built payload that does would split
            // the record (F-2).
            if memchr::memchr(RECORD_SEPARATOR, bytes).is_some() {
                return Err(ProtocolError::new("JSON payload contains a raw 0x1E record separator"));
            }
            if bytes.is_empty() {
                return Err(ProtocolError::new("JSON payload is empty"));
            }
            out.extend_from_slice(bytes);
            Ok(())
        }
        (Format::MessagePack, Format::MessagePack) => {
            if bytes.is_empty() {
                return Err(ProtocolError::new("MessagePack payload is empty"));
            }
            out.extend_from_slice(bytes);
            Ok(())
        }
        (Format::MessagePack, Format::Json) => transcode::msgpack_to_json(bytes, out),
        (Format::Json, Format::MessagePack) => transcode::json_to_msgpack(bytes, out),
    }
}
