//! Bitmaps: bit 1 is the most significant bit of the first byte; bit 1 of the primary bitmap announces
//! the secondary bitmap (data elements 65..=128). The ASCII profile carries each bitmap as 16
//! upper-case hexadecimal characters.

/// Whether data element `n` (1..=64) is set in `bitmap`.
pub(crate) fn is_set(bitmap: u64, n: u8) -> bool {
    (1..=64).contains(&n) && (bitmap >> (64 - u32::from(n))) & 1 == 1
}

/// `bitmap` with data element `n` (1..=64) set.
pub(crate) fn with(bitmap: u64, n: u8) -> u64 {
    if (1..=64).contains(&n) {
        bitmap | 1 << (64 - u32::from(n))
    } else {
        bitmap
    }
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Parses 16 upper-case hexadecimal characters (lower case is refused so decode → encode is exact).
pub(crate) fn parse_hex(text: &[u8]) -> Option<u64> {
    if text.len() != 16 {
        return None;
    }
    text.iter().try_fold(0u64, |acc, &c| {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        Some(acc << 4 | u64::from(v))
    })
}

/// Appends `bitmap` as 16 upper-case hexadecimal characters.
pub(crate) fn write_hex(bitmap: u64, out: &mut Vec<u8>) {
    for i in (0..16).rev() {
        out.push(UPPER_HEX[((bitmap >> (i * 4)) & 0xF) as usize]);
    }
}

/// Lower-case-insensitive hex of arbitrary bytes (for `b` fields in the CLI and the peers).
pub fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(UPPER_HEX[usize::from(b >> 4)]));
        s.push(char::from(UPPER_HEX[usize::from(b & 0xF)]));
    }
    s
}

/// Bytes from hexadecimal text (either case); `None` on odd length or a non-hex character.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if !t.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'A'..=b'F' => Some(c - b'A' + 10),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    };
    t.chunks_exact(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_one_is_the_most_significant_bit() {
        assert_eq!(with(0, 1), 0x8000_0000_0000_0000);
        assert_eq!(with(0, 64), 1);
        assert!(is_set(0x7000_0000_0000_0000, 2));
        assert!(!is_set(0x7000_0000_0000_0000, 1));
    }

    #[test]
    fn hex_bitmap_is_upper_case_only() {
        let mut out = Vec::new();
        write_hex(0x7238_0000_08C0_0000, &mut out);
        assert_eq!(out, b"7238000008C00000");
        assert_eq!(parse_hex(b"7238000008C00000"), Some(0x7238_0000_08C0_0000));
        assert_eq!(parse_hex(b"7238000008c00000"), None);
    }

    #[test]
    fn hex_of_bytes_round_trips() {
        assert_eq!(to_hex(&[0x00, 0xAB, 0x7f]), "00AB7F");
        assert_eq!(from_hex("00ab7F"), Some(vec![0x00, 0xAB, 0x7F]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
    }
}
