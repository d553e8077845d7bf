//! Writing JSON text pieces straight into an output buffer (no intermediate `String`s).
//!
//! Strings escape `"`, `\` and every control character; U+001E becomes `\u001e`, so a raw
//! record separator never appears inside a JSON message (F-2).

/// Appends `s` as a quoted JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        // Runs without anything to escape are copied whole.
        let i = special_byte(bytes, start);
        out.extend_from_slice(&bytes[start..i]);
        let Some(&b) = bytes.get(i) else { break };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xF)]);
            }
        }
        start = i + 1;
    }
    out.push(b'"');
}

/// The index of the first byte from `from` on that a JSON string cannot hold as it is (`"`, `\`,
/// a control character); `bytes.len()` when none is. Eight bytes at a time: the lowest flagged
/// byte of each test is exact, so is that of their union.
fn special_byte(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |w: u64| w.wrapping_sub(ONES) & !w & HIGH;
    let mut i = from;
    while let Some(word) = bytes.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let flagged = w.wrapping_sub(ONES * 0x20) & !w & HIGH // a byte below 0x20
            | zero_byte(w ^ (ONES * u64::from(b'"')))
            | zero_byte(w ^ (ONES * u64::from(b'\\')));
        if flagged != 0 {
            return i + (flagged.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + bytes[i..].iter().take_while(|&&b| b >= 0x20 && b != b'"' && b != b'\\').count()
}

/// Appends an unsigned integer.
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends a signed integer.
pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

/// Appends a float in shortest round-trip form; NaN and infinities have no JSON form and become
/// `null` (as .NET and serde_json write them).
pub fn write_f64(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        // `{:?}` is Rust's shortest round-trip form ("0.1", "1.0", "1e300"): all valid JSON numbers.
        out.extend_from_slice(format!("{f:?}").as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Appends a 32-bit float in its own shortest form ("0.1", not 0.10000000149011612).
pub fn write_f32(out: &mut Vec<u8>, f: f32) {
    if f.is_finite() {
        out.extend_from_slice(format!("{f:?}").as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_escape_controls_and_record_separator() {
        assert_eq!(text(|o| write_str(o, "a\u{1e}b")), r#""a\u001eb""#);
        assert_eq!(text(|o| write_str(o, "q\"b\\n\n\t\u{0}\u{1f}é€")), r#""q\"b\\n\n\t\u0000\u001fé€""#);
        // Same text as serde_json produces, and it parses back to the input.
        let s = "x\u{1e}\u{7}\u{8}\u{c}\r\"\\ \u{7f} ü 😀";
        let ours = text(|o| write_str(o, s));
        assert_eq!(ours, serde_json::to_string(s).unwrap());
        assert_eq!(serde_json::from_str::<String>(&ours).unwrap(), s);
        assert!(!ours.as_bytes().contains(&0x1E));
    }

    #[test]
    fn special_byte_finds_the_first_one() {
        // 21 bytes: two 8-byte words and a tail, so both paths are taken.
        let base = "abcdefghijklmnop\u{e9}stu".as_bytes().to_vec();
        assert_eq!(special_byte(&base, 0), base.len(), "non-ASCII needs no escape");
        for special in [b'"', b'\\', 0x00, 0x1f] {
            for at in 0..base.len() {
                let mut bytes = base.clone();
                bytes[at] = special;
                if at + 3 < bytes.len() {
                    bytes[at + 3] = b'"'; // a later special byte never hides the first
                }
                assert_eq!(special_byte(&bytes, 0), at, "byte {special:#x} at {at}");
                assert_eq!(special_byte(&bytes, at + 1), (at + 3).min(bytes.len()), "from {}", at + 1);
            }
        }
        assert_eq!(special_byte(&base, base.len()), base.len());
    }

    #[test]
    fn long_strings_are_escaped_like_serde_json() {
        let long = format!("{}\"{}\u{1}{}é{}", "a".repeat(37), "b".repeat(8), "c".repeat(15), "d".repeat(3));
        assert_eq!(text(|o| write_str(o, &long)), serde_json::to_string(&long).unwrap());
    }

    #[test]
    fn serde_json_escapes_record_separator_too() {
        // Payload::from_value relies on serde_json for F-2.
        assert_eq!(serde_json::to_string("\u{1e}").unwrap(), r#""\u001e""#);
    }

    #[test]
    fn numbers() {
        assert_eq!(text(|o| write_u64(o, 0)), "0");
        assert_eq!(text(|o| write_u64(o, u64::MAX)), "18446744073709551615");
        assert_eq!(text(|o| write_i64(o, i64::MIN)), "-9223372036854775808");
        assert_eq!(text(|o| write_i64(o, -5)), "-5");
        assert_eq!(text(|o| write_f64(o, 0.1)), "0.1");
        assert_eq!(text(|o| write_f64(o, 1.0)), "1.0");
        assert_eq!(text(|o| write_f64(o, f64::NAN)), "null");
        assert_eq!(text(|o| write_f64(o, f64::NEG_INFINITY)), "null");
        let big = text(|o| write_f64(o, 1e300));
        assert_eq!(serde_json::from_str::<f64>(&big).unwrap(), 1e300);
    }
}
