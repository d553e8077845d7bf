//! Reading MessagePack without building values: a cursor that yields one token at a time and can
//! measure a whole value (for zero-copy payload slices) without recursion.

use super::ProtocolError;

/// One MessagePack token. Containers yield only their length; their elements follow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Token<'a> {
    Nil,
    Bool(bool),
    /// Any non-negative integer, whatever its encoding.
    UInt(u64),
    /// A negative integer.
    NegInt(i64),
    F32(f32),
    F64(f64),
    /// String bytes, not yet checked to be UTF-8 (see [`Cursor::read_str`]).
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(u32),
    Map(u32),
    Ext(i8, &'a [u8]),
}

impl Token<'_> {
    /// What the token is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Token::Nil => "nil",
            Token::Bool(_) => "a boolean",
            Token::UInt(_) | Token::NegInt(_) => "an integer",
            Token::F32(_) | Token::F64(_) => "a float",
            Token::Str(_) => "a string",
            Token::Bin(_) => "binary data",
            Token::Array(_) => "an array",
            Token::Map(_) => "a map",
            Token::Ext(..) => "an extension value",
        }
    }
}

fn truncated() -> ProtocolError {
    ProtocolError::new("MessagePack data ends in the middle of a value")
}

fn unexpected(expected: &str, found: Token<'_>) -> ProtocolError {
    ProtocolError::new(format!("expected {expected}, found {}", found.kind()))
}

#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub fn is_at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len()).ok_or_else(truncated)?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, ProtocolError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, ProtocolError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A big-endian length stored in `width` (1, 2 or 4) bytes.
    fn length(&mut self, width: usize) -> Result<usize, ProtocolError> {
        Ok(match width {
            1 => usize::from(self.u8()?),
            2 => usize::from(self.u16()?),
            _ => self.u32()? as usize,
        })
    }

    /// A length of `width` bytes followed by that many bytes (str, bin).
    fn sized(&mut self, width: usize) -> Result<&'a [u8], ProtocolError> {
        let n = self.length(width)?;
        self.take(n)
    }

    fn signed(n: i64) -> Token<'a> {
        if n >= 0 {
            Token::UInt(n as u64)
        } else {
            Token::NegInt(n)
        }
    }

    fn ext(&mut self, len: usize) -> Result<Token<'a>, ProtocolError> {
        let ty = self.u8()? as i8;
        Ok(Token::Ext(ty, self.take(len)?))
    }

    /// Reads the next token.
    pub fn next_token(&mut self) -> Result<Token<'a>, ProtocolError> {
        let marker = self.u8()?;
        Ok(match marker {
            0x00..=0x7F => Token::UInt(u64::from(marker)),
            0x80..=0x8F => Token::Map(u32::from(marker & 0x0F)),
            0x90..=0x9F => Token::Array(u32::from(marker & 0x0F)),
            0xA0..=0xBF => Token::Str(self.take(usize::from(marker & 0x1F))?),
            0xC0 => Token::Nil,
            0xC1 => return Err(ProtocolError::new("MessagePack data holds the never-used marker 0xc1")),
            0xC2 => Token::Bool(false),
            0xC3 => Token::Bool(true),
            0xC4 => Token::Bin(self.sized(1)?),
            0xC5 => Token::Bin(self.sized(2)?),
            0xC6 => Token::Bin(self.sized(4)?),
            0xC7 => {
                let n = self.length(1)?;
                self.ext(n)?
            }
            0xC8 => {
                let n = self.length(2)?;
                self.ext(n)?
            }
            0xC9 => {
                let n = self.length(4)?;
                self.ext(n)?
            }
            0xCA => Token::F32(f32::from_bits(self.u32()?)),
            0xCB => Token::F64(f64::from_bits(self.u64()?)),
            0xCC => Token::UInt(u64::from(self.u8()?)),
            0xCD => Token::UInt(u64::from(self.u16()?)),
            0xCE => Token::UInt(u64::from(self.u32()?)),
            0xCF => Token::UInt(self.u64()?),
            0xD0 => Self::signed(i64::from(self.u8()? as i8)),
            0xD1 => Self::signed(i64::from(self.u16()? as i16)),
            0xD2 => Self::signed(i64::from(self.u32()? as i32)),
            0xD3 => Self::signed(self.u64()? as i64),
            0xD4 => self.ext(1)?,
            0xD5 => self.ext(2)?,
            0xD6 => self.ext(4)?,
            0xD7 => self.ext(8)?,
            0xD8 => self.ext(16)?,
            0xD9 => Token::Str(self.sized(1)?),
            0xDA => Token::Str(self.sized(2)?),
            0xDB => Token::Str(self.sized(4)?),
            0xDC => Token::Array(u32::from(self.u16()?)),
            0xDD => Token::Array(self.u32()?),
            0xDE => Token::Map(u32::from(self.u16()?)),
            0xDF => Token::Map(self.u32()?),
            0xE0..=0xFF => Token::NegInt(i64::from(marker as i8)),
        })
    }

    /// Skips one whole value (containers included), iteratively: deep nesting cannot overflow the stack.
    pub fn skip_value(&mut self) -> Result<(), ProtocolError> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            match self.next_token()? {
                Token::Array(n) => pending += u64::from(n),
                Token::Map(n) => pending += 2 * u64::from(n),
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads one whole value and returns its encoded bytes.
    pub fn read_value(&mut self) -> Result<&'a [u8], ProtocolError> {
        let start = self.pos;
        self.skip_value()?;
        Ok(&self.buf[start..self.pos])
    }

    pub fn read_array_len(&mut self) -> Result<u32, ProtocolError> {
        match self.next_token()? {
            Token::Array(n) => Ok(n),
            other => Err(unexpected("an array", other)),
        }
    }

    pub fn read_map_len(&mut self) -> Result<u32, ProtocolError> {
        match self.next_token()? {
            Token::Map(n) => Ok(n),
            other => Err(unexpected("a map", other)),
        }
    }

    /// A non-negative integer of any width.
    pub fn read_uint(&mut self) -> Result<u64, ProtocolError> {
        match self.next_token()? {
            Token::UInt(n) => Ok(n),
            Token::NegInt(_) => Err(ProtocolError::new("expected a non-negative integer, found a negative one")),
            other => Err(unexpected("an integer", other)),
        }
    }

    pub fn read_str(&mut self) -> Result<&'a str, ProtocolError> {
        match self.next_token()? {
            Token::Str(bytes) => utf8(bytes),
            other => Err(unexpected("a string", other)),
        }
    }

    /// A string or nil.
    pub fn read_opt_str(&mut self) -> Result<Option<&'a str>, ProtocolError> {
        match self.next_token()? {
            Token::Str(bytes) => utf8(bytes).map(Some),
            Token::Nil => Ok(None),
            other => Err(unexpected("a string or nil", other)),
        }
    }
}

pub fn utf8(bytes: &[u8]) -> Result<&str, ProtocolError> {
    std::str::from_utf8(bytes).map_err(|e| ProtocolError::new(format!("string is not valid UTF-8 ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_every_width() {
        let cases: &[(&[u8], Token)] = &[
            (&[0x05], Token::UInt(5)),
            (&[0xCC, 0xFF], Token::UInt(255)),
            (&[0xCD, 0x01, 0x00], Token::UInt(256)),
            (&[0xCE, 0, 1, 0, 0], Token::UInt(65_536)),
            (&[0xCF, 0, 0, 0, 1, 0, 0, 0, 0], Token::UInt(1 << 32)),
            (&[0xD0, 0x05], Token::UInt(5)),
            (&[0xD0, 0xFB], Token::NegInt(-5)),
            (&[0xD1, 0xFF, 0xFB], Token::NegInt(-5)),
            (&[0xD2, 0, 0, 0, 9], Token::UInt(9)),
            (&[0xD3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], Token::NegInt(-1)),
            (&[0xE0], Token::NegInt(-32)),
        ];
        for (bytes, token) in cases {
            let mut c = Cursor::new(bytes);
            assert_eq!(c.next_token().unwrap(), *token, "{bytes:02x?}");
            assert!(c.is_at_end());
        }
    }

    #[test]
    fn values_are_measured_without_recursion() {
        // 100 000 nested arrays: no stack overflow, just a truncation error at the end.
        let deep = vec![0x91; 100_000];
        let err = Cursor::new(&deep).skip_value().unwrap_err();
        assert!(err.message().contains("ends in the middle"), "{err}");

        let mut bytes = vec![0x92, 0x81, 0xA1, b'k', 0xC0, 0xC7, 0x02, 0x05, 1, 2];
        bytes.push(0x2A);
        let mut c = Cursor::new(&bytes);
        assert_eq!(c.read_value().unwrap().len(), bytes.len() - 1);
        assert_eq!(c.read_uint().unwrap(), 42);
    }

    #[test]
    fn errors_name_what_was_expected() {
        assert_eq!(Cursor::new(&[0x01]).read_str().unwrap_err().message(), "expected a string, found an integer");
        assert_eq!(Cursor::new(&[0x90]).read_map_len().unwrap_err().message(), "expected a map, found an array");
        assert!(Cursor::new(&[0xA2, 0xFF, 0xFE]).read_str().unwrap_err().message().contains("UTF-8"));
        assert!(Cursor::new(&[0xC1]).next_token().unwrap_err().message().contains("0xc1"));
        assert!(Cursor::new(&[0xDB, 0xFF, 0xFF, 0xFF, 0xFF]).next_token().is_err());
        assert!(Cursor::new(&[0xFF]).read_uint().unwrap_err().message().contains("negative"));
    }
}
