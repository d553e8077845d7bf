//! The VarInt length prefix of MessagePack framing (F-3): 7 bits per byte, least significant group
//! first, high bit set = more bytes follow, 1 to 5 bytes, at most 2^31-1.

use super::ProtocolError;

/// Longest prefix in bytes.
pub const MAX_LEN: usize = 5;
/// Largest length a prefix may declare.
pub const MAX_VALUE: u32 = i32::MAX as u32;

/// The prefix for `value` (which must be <= [`MAX_VALUE`]): bytes and how many of them are used.
pub fn encode(value: u32) -> ([u8; MAX_LEN], usize) {
    debug_assert!(value <= MAX_VALUE);
    let mut bytes = [0; MAX_LEN];
    let mut rest = value;
    let mut n = 0;
    while rest >= 0x80 {
        bytes[n] = (rest as u8) | 0x80;
        rest >>= 7;
        n += 1;
    }
    bytes[n] = rest as u8;
    (bytes, n + 1)
}

/// Number of bytes [`write`] uses for `value`.
pub fn encoded_len(value: u32) -> usize {
    match value {
        0..=0x7F => 1,
        0x80..=0x3FFF => 2,
        0x4000..=0x1F_FFFF => 3,
        0x20_0000..=0xFFF_FFFF => 4,
        _ => 5,
    }
}

/// Decodes a prefix at the start of `buf`: `Some((value, prefix_len))`, or `None` when `buf` ends
/// before the prefix does.
pub fn read(buf: &[u8]) -> Result<Option<(u32, usize)>, ProtocolError> {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().take(MAX_LEN).enumerate() {
        if i == MAX_LEN - 1 {
            if byte & 0x80 != 0 {
                return Err(ProtocolError::new("VarInt length prefix is longer than 5 bytes"));
            }
            if byte > 0x07 {
                return Err(ProtocolError::new(
                    "VarInt length prefix declares more than 2147483647 bytes (5th byte > 0x07)",
                ));
            }
        }
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: u32) -> Vec<u8> {
        let (bytes, n) = super::encode(value);
        let out = bytes[..n].to_vec();
        assert_eq!(out.len(), encoded_len(value), "encoded_len({value})");
        out
    }

    #[test]
    fn checklist_examples_and_boundaries() {
        assert_eq!(encoded(0), [0x00]);
        assert_eq!(encoded(127), [0x7F]);
        assert_eq!(encoded(128), [0x80, 0x01]);
        assert_eq!(encoded(5248), [0x80, 0x29]);
        assert_eq!(encoded(0x3FFF), [0xFF, 0x7F]);
        assert_eq!(encoded(0x4000), [0x80, 0x80, 0x01]);
        assert_eq!(encoded(0xFFF_FFFF), [0xFF, 0xFF, 0xFF, 0x7F]);
        assert_eq!(encoded(0x1000_0000), [0x80, 0x80, 0x80, 0x80, 0x01]);
        assert_eq!(encoded(MAX_VALUE), [0xFF, 0xFF, 0xFF, 0xFF, 0x07]);
    }

    #[test]
    fn round_trips() {
        for value in
            [0, 1, 127, 128, 255, 300, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455, 268_435_456, MAX_VALUE]
        {
            let bytes = encoded(value);
            assert_eq!(read(&bytes).unwrap(), Some((value, bytes.len())));
            // Trailing body bytes do not change the prefix.
            let mut framed = bytes.clone();
            framed.extend_from_slice(&[0xFF, 0xFF]);
            assert_eq!(read(&framed).unwrap(), Some((value, bytes.len())));
        }
    }

    #[test]
    fn incomplete_prefix_needs_more() {
        assert_eq!(read(&[]).unwrap(), None);
        assert_eq!(read(&[0x80]).unwrap(), None);
        assert_eq!(read(&[0xFF, 0xFF, 0xFF, 0xFF]).unwrap(), None);
    }

    #[test]
    fn fifth_byte_over_7_is_an_error() {
        let err = read(&[0xFF, 0xFF, 0xFF, 0xFF, 0x08]).unwrap_err();
        assert!(err.message().contains("2147483647"), "{err}");
        let err = read(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).unwrap_err();
        assert_eq!(err.message(), "VarInt length prefix is longer than 5 bytes");
    }
}
