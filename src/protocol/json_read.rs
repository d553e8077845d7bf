//! Reading JSON text strictly (RFC 8259), in one pass over a received record.
//!
//! The JSON hub protocol reads its message envelope with this cursor: property names and strings
//! are borrowed unless they hold escapes, and values the client only hands on (arguments, item,
//! result) are validated and returned as slices, never built. UTF-8 is validated only inside
//! strings (the one place JSON allows non-ASCII), so a record needs no separate UTF-8 pass and a
//! slice that passed is valid UTF-8 as a whole.

use std::borrow::Cow;

use super::json_text::special_byte;
use super::{ProtocolError, MAX_NESTING};

/// A number as the protocol needs it: a non-negative integer that fits `u64`, or any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    Unsigned(u64),
    Other,
}

pub struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

type Result<T> = std::result::Result<T, ProtocolError>;

impl<'a> Cursor<'a> {
    pub fn new(text: &'a [u8]) -> Self {
        Cursor { text, at: 0 }
    }

    /// An error at the cursor's position.
    #[cold]
    pub fn error(&self, what: &str) -> ProtocolError {
        ProtocolError::new(format!("invalid JSON hub message: {what} at byte {}", self.at))
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.text.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.text.get(self.at).copied()
    }

    /// Consumes `byte` when it comes next (after whitespace).
    #[inline]
    pub fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        self.at += usize::from(next);
        next
    }

    /// Whether only whitespace is left.
    #[inline]
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Reads an object, handing each property's name to `field`, which must consume its value.
    pub fn object(&mut self, mut field: impl FnMut(&mut Self, Cow<'a, str>) -> Result<()>) -> Result<()> {
        if !self.eat(b'{') {
            return Err(self.error("expected a JSON object"));
        }
        if self.eat(b'}') {
            return Ok(());
        }
        loop {
            let name = self.key()?;
            field(self, name)?;
            if self.eat(b',') {
                continue;
            }
            if self.eat(b'}') {
                return Ok(());
            }
            return Err(self.error("expected ',' or '}' after a property"));
        }
    }

    /// Reads an array, calling `element` for each element, which must consume it.
    pub fn array(&mut self, mut element: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        if !self.eat(b'[') {
            return Err(self.error("expected a JSON array"));
        }
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            element(self)?;
            if self.eat(b',') {
                continue;
            }
            if self.eat(b']') {
                return Ok(());
            }
            return Err(self.error("expected ',' or ']' after an element"));
        }
    }

    /// A property name and its colon.
    #[inline]
    fn key(&mut self) -> Result<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a property name"));
        }
        let name = self.string()?;
        if !self.eat(b':') {
            return Err(self.error("expected ':' after a property name"));
        }
        Ok(name)
    }

    /// Consumes `null` when it comes next.
    #[inline]
    pub fn null(&mut self) -> Result<bool> {
        if self.peek() != Some(b'n') {
            return Ok(false);
        }
        self.literal(b"null")?;
        Ok(true)
    }

    /// A boolean, or `None` when the next value is not one (nothing consumed then).
    pub fn boolean(&mut self) -> Result<Option<bool>> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|()| Some(true)),
            Some(b'f') => self.literal(b"false").map(|()| Some(false)),
            _ => Ok(None),
        }
    }

    /// A number, or `None` when the next value is not one (nothing consumed then).
    #[inline]
    pub fn number(&mut self) -> Result<Option<Number>> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.read_number().map(Some),
            _ => Ok(None),
        }
    }

    /// A string, decoded; `None` when the next value is not one (nothing consumed then).
    #[inline]
    pub fn string_value(&mut self) -> Result<Option<Cow<'a, str>>> {
        match self.peek() {
            Some(b'"') => self.string().map(Some),
            _ => Ok(None),
        }
    }

    /// Validates the next value and returns its text (without surrounding whitespace).
    pub fn value(&mut self) -> Result<&'a [u8]> {
        self.skip_whitespace();
        let start = self.at;
        // Bit d: the container at depth d is an object. Iterative, so depth costs no stack.
        let mut objects: u128 = 0;
        let mut depth = 0;
        loop {
            // A value is due here.
            match self.peek() {
                Some(b'"') => {
                    self.skip_string()?;
                }
                Some(open @ (b'{' | b'[')) => {
                    if depth == MAX_NESTING {
                        return Err(self.error(&format!("value nested more than {MAX_NESTING} levels deep")));
                    }
                    self.at += 1;
                    let object = open == b'{';
                    objects = (objects & !(1 << depth)) | (u128::from(object) << depth);
                    depth += 1;
                    let close = if object { b'}' } else { b']' };
                    if self.eat(close) {
                        depth -= 1;
                    } else {
                        if object {
                            self.key()?;
                        }
                        continue;
                    }
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => {
                    self.read_number()?;
                }
                _ => return Err(self.error("expected a value")),
            }
            // A value ended: close the containers it completes, up to the next element.
            loop {
                if depth == 0 {
                    return Ok(&self.text[start..self.at]);
                }
                let object = objects >> (depth - 1) & 1 == 1;
                if self.eat(b',') {
                    if object {
                        self.key()?;
                    }
                    break;
                }
                if self.eat(if object { b'}' } else { b']' }) {
                    depth -= 1;
                    continue;
                }
                return Err(self.error(if object {
                    "expected ',' or '}' after a property"
                } else {
                    "expected ',' or ']' after an element"
                }));
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error("expected a value"))
        }
    }

    /// At a number's first byte: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn read_number(&mut self) -> Result<Number> {
        let negative = self.text.get(self.at) == Some(&b'-');
        self.at += usize::from(negative);
        let mut value: Option<u64> = Some(0);
        match self.text.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                while let Some(&d @ b'0'..=b'9') = self.text.get(self.at) {
                    value = value.and_then(|v| v.checked_mul(10)?.checked_add(u64::from(d - b'0')));
                    self.at += 1;
                }
            }
            _ => return Err(self.error("invalid number")),
        }
        let mut integer = true;
        if self.text.get(self.at) == Some(&b'.') {
            self.at += 1;
            self.digits()?;
            integer = false;
        }
        if let Some(b'e' | b'E') = self.text.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.text.get(self.at) {
                self.at += 1;
            }
            self.digits()?;
            integer = false;
        }
        Ok(match value {
            Some(n) if integer && !negative => Number::Unsigned(n),
            _ => Number::Other,
        })
    }

    fn digits(&mut self) -> Result<()> {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.text.get(self.at) {
            self.at += 1;
        }
        if self.at == start {
            return Err(self.error("invalid number"));
        }
        Ok(())
    }

    /// At a string's opening quote: the decoded string, borrowed unless it holds escapes.
    fn string(&mut self) -> Result<Cow<'a, str>> {
        let (raw, escaped) = self.skip_string()?;
        // SAFETY: skip_string returns only content that is ASCII or passed `from_utf8`.
        let raw = unsafe { std::str::from_utf8_unchecked(raw) };
        if !escaped {
            return Ok(Cow::Borrowed(raw));
        }
        unescape(raw).map(Cow::Owned).ok_or_else(|| self.error("string holds a lone surrogate escape"))
    }

    /// After `\u`: four hex digits.
    fn hex_digits_follow(&self) -> bool {
        self.text.get(self.at + 1..self.at + 5).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    }

    /// At a string's opening quote: consumes the string, returns its raw content and whether it
    /// holds escapes. Checks escapes, control characters and UTF-8.
    fn skip_string(&mut self) -> Result<(&'a [u8], bool)> {
        self.at += 1;
        let start = self.at;
        let mut escaped = false;
        let mut non_ascii = false;
        loop {
            self.at = special_byte(self.text, self.at, true);
            match self.text.get(self.at) {
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    self.at += 1;
                    match self.text.get(self.at) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.at += 1,
                        Some(b'u') if self.hex_digits_follow() => self.at += 5,
                        _ => return Err(self.error("invalid escape in string")),
                    }
                }
                Some(0x80..) => {
                    non_ascii = true;
                    self.at += 1;
                }
                Some(_) => return Err(self.error("control character in string")),
                None => return Err(self.error("unterminated string")),
            }
        }
        let raw = &self.text[start..self.at];
        self.at += 1;
        if non_ascii {
            if let Err(e) = std::str::from_utf8(raw) {
                return Err(self.error(&format!("string is not valid UTF-8 ({e})")));
            }
        }
        Ok((raw, escaped))
    }
}

/// Decodes the escapes of a string already checked by `skip_string`; `None` for a lone surrogate.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let escape = &rest[i + 1..];
        let (c, used) = match escape.as_bytes()[0] {
            b'b' => ('\u{8}', 1),
            b'f' => ('\u{c}', 1),
            b'n' => ('\n', 1),
            b'r' => ('\r', 1),
            b't' => ('\t', 1),
            b'u' => {
                let unit = hex4(&escape[1..5]);
                match unit {
                    0xD800..=0xDBFF => {
                        let low = escape.get(5..11).filter(|s| s.starts_with("\\u")).map(|s| hex4(&s[2..]))?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return None;
                        }
                        (char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))?, 11)
                    }
                    0xDC00..=0xDFFF => return None,
                    _ => (char::from_u32(unit)?, 5),
                }
            }
            other => (char::from(other), 1), // '"', '\\', '/'
        };
        out.push(c);
        rest = &escape[used..];
    }
    out.push_str(rest);
    Some(out)
}

fn hex4(digits: &str) -> u32 {
    u32::from_str_radix(digits, 16).expect("checked hex digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Result<String> {
        let mut c = Cursor::new(text.as_bytes());
        let v = c.value()?;
        if !c.at_end() {
            return Err(c.error("trailing characters"));
        }
        Ok(String::from_utf8(v.to_vec()).unwrap())
    }

    fn string(text: &[u8]) -> Result<String> {
        Cursor::new(text).string_value().map(|s| s.unwrap().into_owned())
    }

    #[test]
    fn values_are_returned_as_written() {
        for text in [
            "0", "-0", "12", "-3.5e+7", "1E2", "true", "false", "null", r#""""#, r#""a\"b""#, "[]", "{}",
            r#"[1,{"a":[[],{}],"b":"}"},null]"#, r#"{"k":"v","n":{"m":[true]}}"#, "\"\u{e9}\u{1F600}\"",
        ] {
            assert_eq!(value(text).unwrap(), text);
        }
        assert_eq!(value(" \t[ 1 , 2 ]\r\n").unwrap(), "[ 1 , 2 ]");
    }

    #[test]
    fn what_serde_json_refuses_is_refused() {
        for text in [
            "", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "[1 2]", "01x", "1.", ".5", "1e", "-", "+1",
            "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12G4\"", "\"a\u{1}b\"", "[", "{\"a\":", "]", "'a'", "NaN",
        ] {
            let json: std::result::Result<serde::de::IgnoredAny, _> = serde_json::from_str(text);
            assert!(json.is_err(), "{text:?} is invalid for serde_json too");
            assert!(value(text).is_err(), "{text:?} must be refused");
        }
    }

    #[test]
    fn accepts_exactly_what_serde_json_accepts() {
        // Every truncation and every one-byte change of a few varied documents.
        let seeds: [&[u8]; 3] = [
            br#"{"a":[1,-2.5e3,true,false,null],"b\u0041":{"c":"d\n\ud83d\ude00"},"e":[]}"#,
            "[0,{\"\u{e9}\":\"\u{1F600}\"},[[]],\"x\"]".as_bytes(),
            br#" { "k" : [ 10 , 0.1 , "\"" ] } "#,
        ];
        let replacements = b"\"\\{}[]:,0-.eE+tfn \n\x01\x1f\x80\xc3\xff";
        let agree = |doc: &[u8]| {
            let mut c = Cursor::new(doc);
            let ours = c.value().and_then(|_| if c.at_end() { Ok(()) } else { Err(c.error("trailing")) });
            // As the text the old parser saw: checked as UTF-8 as a whole first.
            let serde = std::str::from_utf8(doc).map(serde_json::from_str::<serde::de::IgnoredAny>);
            let text = String::from_utf8_lossy(doc);
            assert_eq!(ours.is_ok(), matches!(serde, Ok(Ok(_))), "{text:?}: ours {ours:?}, serde_json {serde:?}");
        };
        for seed in seeds {
            agree(seed);
            for at in 0..seed.len() {
                agree(&seed[..at]);
                for &b in replacements {
                    let mut doc = seed.to_vec();
                    doc[at] = b;
                    agree(&doc);
                }
            }
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = "[".repeat(MAX_NESTING) + &"]".repeat(MAX_NESTING);
        assert!(value(&ok).is_ok());
        let deep = "[".repeat(MAX_NESTING + 1) + &"]".repeat(MAX_NESTING + 1);
        assert!(value(&deep).unwrap_err().message().contains("nested more than 128"));
        // Far deeper input fails the same way, without recursion.
        assert!(value(&"[{\"a\":".repeat(100_000)).is_err());
    }

    #[test]
    fn numbers() {
        let number = |t: &str| Cursor::new(t.as_bytes()).number().unwrap().unwrap();
        assert_eq!(number("0"), Number::Unsigned(0));
        assert_eq!(number("18446744073709551615"), Number::Unsigned(u64::MAX));
        for other in ["18446744073709551616", "-1", "-0", "1.0", "1e0", "2E-3"] {
            assert_eq!(number(other), Number::Other, "{other}");
        }
        assert_eq!(Cursor::new(b"\"1\"").number().unwrap(), None);
    }

    #[test]
    fn strings_are_decoded() {
        assert_eq!(string(br#""plain""#).unwrap(), "plain");
        assert!(matches!(Cursor::new(br#""plain""#).string_value().unwrap(), Some(Cow::Borrowed("plain"))));
        assert_eq!(string(br#""a\"\\\/\b\f\n\r\tz""#).unwrap(), "a\"\\/\u{8}\u{c}\n\r\tz");
        assert_eq!(string(br#""Fl\u006fod \u00e9 \ud83d\ude00""#).unwrap(), "Flood \u{e9} \u{1F600}");
        let long = "caf\u{e9} \u{1F600} long enough for words";
        assert_eq!(string(format!("\"{long}\"").as_bytes()).unwrap(), long);
        for lone in [br#""\ud83d""#.as_slice(), br#""\ude00""#, br#""\ud83dx\ude00""#, br#""\ud83d\u0041""#] {
            assert!(string(lone).unwrap_err().message().contains("lone surrogate"));
        }
    }

    #[test]
    fn invalid_utf8_and_control_characters_are_refused() {
        for bad in [&b"\"\xff\""[..], b"\"\xc3\x28 and more text after it\"", b"\"\xed\xa0\x80\"", b"\"abc\xe2\x82\""] {
            assert!(string(bad).unwrap_err().message().contains("not valid UTF-8"), "{bad:?}");
            assert!(Cursor::new(bad).value().is_err());
        }
        for control in [&b"\"a\nb\""[..], b"\"0123456789\x1f\"", b"\"\x00\""] {
            assert!(string(control).unwrap_err().message().contains("control character"));
        }
        // Outside strings nothing but ASCII structure is allowed.
        assert!(Cursor::new(b"[1,\xc3\xa9]").value().is_err());
    }
}
