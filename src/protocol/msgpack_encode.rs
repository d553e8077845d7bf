//! MessagePack primitives written straight into an output buffer, always in their smallest form.

pub fn write_nil(out: &mut Vec<u8>) {
    out.push(0xC0);
}

pub fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.push(if b { 0xC3 } else { 0xC2 });
}

pub fn write_uint(out: &mut Vec<u8>, n: u64) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= u64::from(u8::MAX) {
        out.extend_from_slice(&[0xCC, n as u8]);
    } else if n <= u64::from(u16::MAX) {
        out.push(0xCD);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(0xCE);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0xCF);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

pub fn write_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        write_uint(out, n as u64);
    } else if n >= -32 {
        out.push(n as u8); // negative fixint
    } else if n >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xD0, n as u8]);
    } else if n >= i64::from(i16::MIN) {
        out.push(0xD1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= i64::from(i32::MIN) {
        out.push(0xD2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xD3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

pub fn write_f64(out: &mut Vec<u8>, f: f64) {
    out.push(0xCB);
    out.extend_from_slice(&f.to_be_bytes());
}

pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        out.push(0xA0 | len as u8);
    } else if len <= usize::from(u8::MAX) {
        out.extend_from_slice(&[0xD9, len as u8]);
    } else if len <= usize::from(u16::MAX) {
        out.push(0xDA);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xDB);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

pub fn write_array_len(out: &mut Vec<u8>, len: u32) {
    write_container_len(out, len, 0x90, 0xDC);
}

/// How many bytes `write_array_len` writes for `len`.
pub fn array_len_size(len: u32) -> usize {
    container_header(len, 0x90, 0xDC).1
}

pub fn write_map_len(out: &mut Vec<u8>, len: u32) {
    write_container_len(out, len, 0x80, 0xDE);
}

/// fix form (`fix | len` for len < 16), else 16-bit (`marker16`) or 32-bit (`marker16 + 1`).
fn write_container_len(out: &mut Vec<u8>, len: u32, fix: u8, marker16: u8) {
    let (header, n) = container_header(len, fix, marker16);
    out.extend_from_slice(&header[..n]);
}

fn container_header(len: u32, fix: u8, marker16: u8) -> ([u8; MAX_HEADER], usize) {
    let mut header = [0; MAX_HEADER];
    if len < 16 {
        header[0] = fix | len as u8;
        (header, 1)
    } else if len <= u32::from(u16::MAX) {
        header[0] = marker16;
        header[1..3].copy_from_slice(&(len as u16).to_be_bytes());
        (header, 3)
    } else {
        header[0] = marker16 + 1;
        header[1..5].copy_from_slice(&len.to_be_bytes());
        (header, 5)
    }
}

/// An array or map whose length is known only after its elements are written: reserves the
/// largest header, then [`Self::finish`] writes the smallest one and closes the gap.
pub struct PendingContainer {
    header_at: usize,
    is_map: bool,
}

const MAX_HEADER: usize = 5;

impl PendingContainer {
    pub fn array(out: &mut Vec<u8>) -> Self {
        Self::start(out, false)
    }

    pub fn map(out: &mut Vec<u8>) -> Self {
        Self::start(out, true)
    }

    fn start(out: &mut Vec<u8>, is_map: bool) -> Self {
        let header_at = out.len();
        out.extend_from_slice(&[0; MAX_HEADER]);
        PendingContainer { header_at, is_map }
    }

    pub fn finish(self, out: &mut Vec<u8>, len: u32) {
        let (header, n) =
            if self.is_map { container_header(len, 0x80, 0xDE) } else { container_header(len, 0x90, 0xDC) };
        let body_at = self.header_at + MAX_HEADER;
        let new_body_at = self.header_at + n;
        out[self.header_at..new_body_at].copy_from_slice(&header[..n]);
        out.copy_within(body_at.., new_body_at);
        out.truncate(out.len() - (MAX_HEADER - n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    #[test]
    fn smallest_forms() {
        assert_eq!(enc(|o| write_uint(o, 42)), [0x2A]);
        assert_eq!(enc(|o| write_uint(o, 36)), [0x24]);
        assert_eq!(enc(|o| write_uint(o, 200)), [0xCC, 200]);
        assert_eq!(enc(|o| write_uint(o, 256)), [0xCD, 1, 0]);
        assert_eq!(enc(|o| write_uint(o, 1 << 16)), [0xCE, 0, 1, 0, 0]);
        assert_eq!(enc(|o| write_uint(o, 1 << 32)), [0xCF, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(enc(|o| write_int(o, -1)), [0xFF]);
        assert_eq!(enc(|o| write_int(o, -32)), [0xE0]);
        assert_eq!(enc(|o| write_int(o, -33)), [0xD0, 0xDF]);
        assert_eq!(enc(|o| write_int(o, -129)), [0xD1, 0xFF, 0x7F]);
        assert_eq!(enc(|o| write_int(o, i64::MIN))[0], 0xD3);
        assert_eq!(enc(|o| write_str(o, "xyz")), [0xA3, b'x', b'y', b'z']);
        assert_eq!(enc(|o| write_str(o, &"a".repeat(32)))[..2], [0xD9, 32]);
        assert_eq!(enc(|o| write_str(o, &"a".repeat(256)))[..3], [0xDA, 1, 0]);
        assert_eq!(enc(|o| write_array_len(o, 15)), [0x9F]);
        assert_eq!(enc(|o| write_array_len(o, 16)), [0xDC, 0, 16]);
        assert_eq!(enc(|o| write_map_len(o, 70_000)), [0xDF, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn pending_container_shrinks_its_header() {
        let out = enc(|o| {
            o.push(0xAA);
            let array = PendingContainer::array(o);
            write_uint(o, 1);
            write_uint(o, 2);
            array.finish(o, 2);
        });
        assert_eq!(out, [0xAA, 0x92, 1, 2]);
        let out = enc(|o| {
            let map = PendingContainer::map(o);
            for i in 0..20 {
                write_uint(o, i);
                write_nil(o);
            }
            map.finish(o, 20);
        });
        assert_eq!(out[..3], [0xDE, 0, 20]);
        assert_eq!(out.len(), 3 + 40);
    }
}
