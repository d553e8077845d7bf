//! The handshake (section 8): one JSON record each way, terminated by 0x1E, in either protocol.

use serde_json::{Map, Value};

use super::json::RECORD_SEPARATOR;
use super::json_text::{write_str, write_u64};
use super::ProtocolError;

/// What the client asks for: `{"protocol":"json"|"messagepack","version":N}` (H-1, D-1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRequest {
    pub protocol: String,
    pub version: u32,
}

/// What the server answers: `{}` on success, `{"error":"…"}` otherwise (H-2, H-4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeResponse {
    pub error: Option<String>,
}

impl HandshakeRequest {
    /// Appends the request record (JSON + 0x1E).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"protocol\":");
        write_str(out, &self.protocol);
        out.extend_from_slice(b",\"version\":");
        write_u64(out, u64::from(self.version));
        out.push(b'}');
        out.push(RECORD_SEPARATOR);
    }

    /// Parses a request record (without its separator). Unknown properties are ignored.
    pub(crate) fn parse(record: &[u8]) -> Result<Self, ProtocolError> {
        let object = parse_object(record, "handshake request")?;
        let protocol = match object.get("protocol") {
            Some(Value::String(protocol)) => protocol.clone(),
            Some(_) => return Err(ProtocolError::new("handshake request 'protocol' must be a string")),
            None => return Err(ProtocolError::new("handshake request has no 'protocol'")),
        };
        let version = match object.get("version") {
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
                ProtocolError::new(format!("handshake request 'version' must be a non-negative integer, found {n}"))
            })?,
            Some(_) => return Err(ProtocolError::new("handshake request 'version' must be a number")),
            None => return Err(ProtocolError::new("handshake request has no 'version'")),
        };
        Ok(HandshakeRequest { protocol, version })
    }
}

impl HandshakeResponse {
    /// Appends the response record (JSON + 0x1E).
    pub fn write(&self, out: &mut Vec<u8>) {
        match &self.error {
            None => out.extend_from_slice(b"{}"),
            Some(error) => {
                out.extend_from_slice(b"{\"error\":");
                write_str(out, error);
                out.push(b'}');
            }
        }
        out.push(RECORD_SEPARATOR);
    }

    /// Parses a response record (without its separator); extra properties such as `minorVersion`
    /// are ignored (H-2), but a `type` property means this is a hub message, not a response (H-5).
    pub(crate) fn parse(record: &[u8]) -> Result<Self, ProtocolError> {
        let object = parse_object(record, "handshake response")?;
        if object.contains_key("type") {
            return Err(ProtocolError::new(
                "expected a handshake response but received a hub message (it has a 'type' property)",
            ));
        }
        let error = match object.get("error") {
            None | Some(Value::Null) => None,
            Some(Value::String(error)) => Some(error.clone()),
            Some(_) => return Err(ProtocolError::new("handshake response 'error' must be a string")),
        };
        Ok(HandshakeResponse { error })
    }
}

fn parse_object(record: &[u8], what: &str) -> Result<Map<String, Value>, ProtocolError> {
    match serde_json::from_slice::<Value>(record) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ProtocolError::new(format!("{what} is not a JSON object"))),
        Err(e) => Err(ProtocolError::new(format!("{what} is not valid JSON: {e}"))),
    }
}
