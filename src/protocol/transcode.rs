//! MessagePack <-> JSON transcoding of single values, without building a value tree.
//!
//! MessagePack -> JSON: nil/bool/int/float/str/array/map map directly; `bin` -> base64 string (as
//! .NET writes `byte[]` to JSON); map keys that are not strings -> their JSON text as the key;
//! timestamp extension (-1) -> ISO-8601 UTC string; other extensions -> `{"extType":n,"data":base64}`;
//! NaN/±Inf -> null.
//! JSON -> MessagePack: integers that fit i64/u64 as the smallest msgpack int, other numbers as f64.

use std::fmt;

use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::json_text;
use super::msgpack_decode::{utf8, Cursor, Token};
use super::msgpack_encode::{self as mp, PendingContainer};
use super::{ProtocolError, MAX_NESTING};

/// Appends the JSON text of the one MessagePack value in `src`.
pub fn msgpack_to_json(src: &[u8], out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    let start = out.len();
    let mut c = Cursor::new(src);
    let result = write_json_value(&mut c, out, 0).and_then(|()| {
        if c.is_at_end() {
            Ok(())
        } else {
            Err(ProtocolError::new("MessagePack payload has bytes after its value"))
        }
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_json_value(c: &mut Cursor<'_>, out: &mut Vec<u8>, depth: usize) -> Result<(), ProtocolError> {
    if depth > MAX_NESTING {
        return Err(ProtocolError::new(format!("MessagePack value is nested more than {MAX_NESTING} levels deep")));
    }
    match c.next_token()? {
        Token::Nil => out.extend_from_slice(b"null"),
        Token::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Token::UInt(n) => json_text::write_u64(out, n),
        Token::NegInt(n) => json_text::write_i64(out, n),
        Token::F32(f) => json_text::write_f32(out, f),
        Token::F64(f) => json_text::write_f64(out, f),
        Token::Str(bytes) => json_text::write_str(out, utf8(bytes)?),
        Token::Bin(bytes) => write_base64(out, bytes),
        Token::Array(n) => {
            out.push(b'[');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                write_json_value(c, out, depth + 1)?;
            }
            out.push(b']');
        }
        Token::Map(n) => {
            out.push(b'{');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                write_json_key(c, out, depth + 1)?;
                out.push(b':');
                write_json_value(c, out, depth + 1)?;
            }
            out.push(b'}');
        }
        Token::Ext(-1, data) => {
            out.push(b'"');
            write_timestamp(out, data)?;
            out.push(b'"');
        }
        Token::Ext(ty, data) => {
            out.extend_from_slice(b"{\"extType\":");
            json_text::write_i64(out, i64::from(ty));
            out.extend_from_slice(b",\"data\":");
            write_base64(out, data);
            out.push(b'}');
        }
    }
    Ok(())
}

/// A map key: strings as they are, anything else as its JSON text in a string.
fn write_json_key(c: &mut Cursor<'_>, out: &mut Vec<u8>, depth: usize) -> Result<(), ProtocolError> {
    let mut peek = c.clone();
    if let Token::Str(bytes) = peek.next_token()? {
        *c = peek;
        json_text::write_str(out, utf8(bytes)?);
        return Ok(());
    }
    let mut text = Vec::new();
    write_json_value(c, &mut text, depth)?;
    // Our own JSON output is UTF-8.
    json_text::write_str(out, &String::from_utf8_lossy(&text));
    Ok(())
}

fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(bytes).as_bytes());
    out.push(b'"');
}

/// The timestamp extension (-1) in its three sizes, as `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
fn write_timestamp(out: &mut Vec<u8>, data: &[u8]) -> Result<(), ProtocolError> {
    let (seconds, nanos): (i64, u32) = match *data {
        [a, b, c, d] => (i64::from(u32::from_be_bytes([a, b, c, d])), 0),
        [a, b, c, d, e, f, g, h] => {
            let n = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
            ((n & 0x3_FFFF_FFFF) as i64, (n >> 34) as u32)
        }
        [a, b, c, d, ref rest @ ..] if rest.len() == 8 => {
            let mut secs = [0; 8];
            secs.copy_from_slice(rest);
            (i64::from_be_bytes(secs), u32::from_be_bytes([a, b, c, d]))
        }
        _ => {
            return Err(ProtocolError::new(format!(
                "MessagePack timestamp has {} bytes (4, 8 or 12 expected)",
                data.len()
            )))
        }
    };
    if nanos >= 1_000_000_000 {
        return Err(ProtocolError::new("MessagePack timestamp has more than 999999999 nanoseconds"));
    }
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    );
    out.extend_from_slice(text.as_bytes());
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        out.push(b'.');
        out.extend_from_slice(fraction.trim_end_matches('0').as_bytes());
    }
    out.push(b'Z');
    Ok(())
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's days_from_civil inverse).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends the MessagePack encoding of the one JSON value in `src`.
pub fn json_to_msgpack(src: &[u8], out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    let start = out.len();
    let text =
        std::str::from_utf8(src).map_err(|e| ProtocolError::new(format!("JSON payload is not valid UTF-8 ({e})")))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let result = ToMsgpack { out: &mut *out }.deserialize(&mut de).and_then(|()| de.end());
    result.map_err(|e| {
        out.truncate(start);
        ProtocolError::new(format!("invalid JSON payload: {e}"))
    })
}

/// A serde visitor that writes each JSON token as MessagePack as it is read.
struct ToMsgpack<'o> {
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for ToMsgpack<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ToMsgpack<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        mp::write_nil(self.out);
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<(), E> {
        mp::write_bool(self.out, b);
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<(), E> {
        mp::write_uint(self.out, n);
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<(), E> {
        mp::write_int(self.out, n);
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<(), E> {
        mp::write_f64(self.out, f);
        Ok(())
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        mp::write_str(self.out, s);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let array = PendingContainer::array(self.out);
        let mut n: u32 = 0;
        while seq.next_element_seed(ToMsgpack { out: &mut *self.out })?.is_some() {
            n = n.checked_add(1).ok_or_else(|| de::Error::custom("array too long for MessagePack"))?;
        }
        array.finish(self.out, n);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let object = PendingContainer::map(self.out);
        let mut n: u32 = 0;
        while map.next_key_seed(ToMsgpack { out: &mut *self.out })?.is_some() {
            map.next_value_seed(ToMsgpack { out: &mut *self.out })?;
            n = n.checked_add(1).ok_or_else(|| de::Error::custom("object too large for MessagePack"))?;
        }
        object.finish(self.out, n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_json(src: &[u8]) -> Result<String, ProtocolError> {
        let mut out = Vec::new();
        msgpack_to_json(src, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn to_msgpack(src: &str) -> Result<Vec<u8>, ProtocolError> {
        let mut out = Vec::new();
        json_to_msgpack(src.as_bytes(), &mut out)?;
        Ok(out)
    }

    #[test]
    fn scalars_and_containers() {
        let json = r#"{"a":[1,-1,-200,300,70000,5000000000,18446744073709551615,-9223372036854775808,1.5,true,false,null,"s\u001e"],"b":{}}"#;
        let packed = to_msgpack(json).unwrap();
        assert_eq!(to_json(&packed).unwrap(), json);
        // Smallest integer encodings.
        assert_eq!(to_msgpack("[1,-1,-200,300]").unwrap(), [0x94, 0x01, 0xFF, 0xD1, 0xFF, 0x38, 0xCD, 0x01, 0x2C]);
        // Bigger than u64: a float.
        assert_eq!(to_msgpack("18446744073709551616").unwrap()[0], 0xCB);
        // Containers with 16+ elements get their 16-bit header.
        let long = format!("[{}]", vec!["0"; 20].join(","));
        let packed = to_msgpack(&long).unwrap();
        assert_eq!(packed[..3], [0xDC, 0, 20]);
        assert_eq!(to_json(&packed).unwrap(), long);
    }

    #[test]
    fn msgpack_only_values() {
        // bin -> base64
        assert_eq!(to_json(&[0xC4, 3, 1, 2, 3]).unwrap(), r#""AQID""#);
        // non-string keys -> their JSON text
        assert_eq!(to_json(&[0x82, 0x01, 0xA1, b'x', 0xC0, 0xC3]).unwrap(), r#"{"1":"x","null":true}"#);
        // float32, NaN, infinity
        assert_eq!(to_json(&[0xCA, 0x3D, 0xCC, 0xCC, 0xCD]).unwrap(), "0.1");
        let mut nan = vec![0xCB];
        nan.extend_from_slice(&f64::NAN.to_be_bytes());
        assert_eq!(to_json(&nan).unwrap(), "null");
        // other extension types
        assert_eq!(to_json(&[0xD4, 0x05, 0xFF]).unwrap(), r#"{"extType":5,"data":"/w=="}"#);
    }

    #[test]
    fn timestamps() {
        // 32-bit seconds: 2024-01-02T03:04:05Z = 1704164645
        let mut ts32 = vec![0xD6, 0xFF];
        ts32.extend_from_slice(&1_704_164_645u32.to_be_bytes());
        assert_eq!(to_json(&ts32).unwrap(), r#""2024-01-02T03:04:05Z""#);
        // 64-bit: nanos in the upper 30 bits
        let mut ts64 = vec![0xD7, 0xFF];
        ts64.extend_from_slice(&((123_400_000u64 << 34) | 1_704_164_645).to_be_bytes());
        assert_eq!(to_json(&ts64).unwrap(), r#""2024-01-02T03:04:05.1234Z""#);
        // 96-bit: negative seconds (before 1970)
        let mut ts96 = vec![0xC7, 12, 0xFF];
        ts96.extend_from_slice(&5u32.to_be_bytes());
        ts96.extend_from_slice(&(-86_401i64).to_be_bytes());
        assert_eq!(to_json(&ts96).unwrap(), r#""1969-12-30T23:59:59.000000005Z""#);
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert!(to_json(&[0xD5, 0xFF, 0, 0]).unwrap_err().message().contains("timestamp"));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(to_json(&[0x92, 0x01]).unwrap_err().message().contains("ends in the middle"));
        assert!(to_json(&[0x01, 0x02]).unwrap_err().message().contains("after its value"));
        assert!(to_json(&[0xA1, 0xFF]).unwrap_err().message().contains("UTF-8"));
        let deep = [vec![0x91; 200], vec![0xC0]].concat();
        assert!(to_json(&deep).unwrap_err().message().contains("nested"));
        assert!(to_msgpack("[1,").unwrap_err().message().starts_with("invalid JSON payload"));
        assert!(to_msgpack("1 2").is_err());
        let mut out = vec![7];
        assert!(json_to_msgpack(b"[1,2,{", &mut out).is_err());
        assert_eq!(out, [7], "output restored after an error");
    }
}
