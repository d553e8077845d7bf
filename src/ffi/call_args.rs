//! The arguments of one queued handler call, as the callback thread will hand them to C.

use super::operation::lend_json_text;
use crate::protocol::{json_str, write_encoded, Format};
use crate::Payload;

/// Longest JSON arguments copied into the call itself.
const INLINE_MAX: usize = 119;

/// Small JSON arguments are copied into the call, NUL-terminated, so the receive loop and the
/// callback thread do not both update the received chunk's reference count for every message:
/// that shared counter cost more than the copy (interleaved `bench-c flood` runs, 100-byte
/// payloads). Larger or MessagePack arguments stay shared slices of the chunk.
pub(crate) enum CallArgs {
    Inline { len: u8, text: [u8; INLINE_MAX + 1] },
    Shared(Payload),
}

impl CallArgs {
    pub fn new(args: &Payload) -> CallArgs {
        let len = args.bytes.len();
        if args.format != Format::Json || len > INLINE_MAX {
            return CallArgs::Shared(args.clone());
        }
        let mut text = [0; INLINE_MAX + 1];
        text[..len].copy_from_slice(&args.bytes);
        CallArgs::Inline { len: len as u8, text }
    }

    /// The encoded arguments' length (a size hint).
    pub fn len(&self) -> usize {
        match self {
            CallArgs::Inline { len, .. } => usize::from(*len),
            CallArgs::Shared(p) => p.bytes.len(),
        }
    }

    /// Calls `lend` with the arguments as NUL-terminated JSON text (see [`lend_json_text`]).
    pub fn lend<R>(&self, lend: impl FnOnce(&[u8]) -> R) -> crate::Result<R> {
        match self {
            CallArgs::Inline { len, text } => {
                json_str(&text[..usize::from(*len)])?;
                Ok(lend(&text[..=usize::from(*len)]))
            }
            CallArgs::Shared(payload) => lend_json_text(payload, lend),
        }
    }

    /// Appends the arguments as JSON (as [`Payload::write_as`]).
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), crate::protocol::ProtocolError> {
        match self {
            CallArgs::Inline { len, text } => write_encoded(Format::Json, &text[..usize::from(*len)], Format::Json, out),
            CallArgs::Shared(payload) => payload.write_as(Format::Json, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lent(args: &CallArgs) -> crate::Result<Vec<u8>> {
        args.lend(|text| text.to_vec())
    }

    #[test]
    fn small_json_is_copied_and_lent_with_its_nul_larger_or_msgpack_stays_shared() {
        let small = Payload::from_json(r#"[1,"ü"]"#).unwrap();
        let args = CallArgs::new(&small);
        assert!(matches!(args, CallArgs::Inline { .. }));
        assert_eq!(lent(&args).unwrap(), b"[1,\"\xc3\xbc\"]\0");
        assert_eq!(args.len(), small.bytes.len());

        let edge = Payload::from_json(format!("[\"{}\"]", "x".repeat(INLINE_MAX - 4))).unwrap();
        assert_eq!(edge.bytes.len(), INLINE_MAX);
        assert!(matches!(CallArgs::new(&edge), CallArgs::Inline { .. }));
        let large = Payload::from_json(format!("[\"{}\"]", "x".repeat(INLINE_MAX - 3))).unwrap();
        assert!(matches!(CallArgs::new(&large), CallArgs::Shared(_)));
        assert_eq!(lent(&CallArgs::new(&large)).unwrap(), [&large.bytes[..], b"\0"].concat());

        let msgpack = Payload::from_value(&("m", 3), Format::MessagePack).unwrap();
        let args = CallArgs::new(&msgpack);
        assert!(matches!(args, CallArgs::Shared(_)));
        assert_eq!(lent(&args).unwrap(), b"[\"m\",3]\0");
    }

    #[test]
    fn inline_arguments_get_the_checks_shared_ones_get() {
        // Payload fields are public: a hand-built one can hold anything.
        let bad_utf8 = Payload { format: Format::Json, bytes: b"[\"\xff\"]"[..].into() };
        let args = CallArgs::new(&bad_utf8);
        assert!(matches!(args, CallArgs::Inline { .. }));
        assert!(lent(&args).unwrap_err().to_string().contains("not valid UTF-8"), "refused, never lent");

        let separator = Payload { format: Format::Json, bytes: b"[\"\x1e\"]"[..].into() };
        let mut out = Vec::new();
        assert!(CallArgs::new(&separator).write_json(&mut out).unwrap_err().message().contains("0x1E"));
        assert!(out.is_empty());
        CallArgs::new(&Payload::from_json("[2]").unwrap()).write_json(&mut out).unwrap();
        assert_eq!(out, b"[2]");
    }
}
