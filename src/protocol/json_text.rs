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
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
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
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
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
