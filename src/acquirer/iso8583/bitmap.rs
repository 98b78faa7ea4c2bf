//! Bitmaps: bit 1 is the most significant bit of the first byte; bit 1 of the primary bitmap announces
//! the secondary bitmap (data elements 65..=128). The ASCII profile carries each bitmap as 16
//! upper-case hexadecimal characters.

use data_encoding::{HEXLOWER_PERMISSIVE, HEXUPPER};

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

/// Parses 16 upper-case hexadecimal characters (lower case is refused so decode → encode is exact).
pub(crate) fn parse_hex(text: &[u8]) -> Option<u64> {
    let mut bytes = [0u8; 8];
    if text.len() != 16 {
        return None;
    }
    HEXUPPER.decode_mut(text, &mut bytes).ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Appends `bitmap` as 16 upper-case hexadecimal characters.
pub(crate) fn write_hex(bitmap: u64, out: &mut Vec<u8>) {
    let mut text = [0u8; 16];
    HEXUPPER.encode_mut(&bitmap.to_be_bytes(), &mut text);
    out.extend_from_slice(&text);
}

/// Upper-case hex of arbitrary bytes (for `b` fields in the CLI and the peers).
pub fn to_hex(bytes: &[u8]) -> String {
    HEXUPPER.encode(bytes)
}

/// Bytes from hexadecimal text (either case); `None` on odd length or a non-hex character.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    HEXLOWER_PERMISSIVE.decode(text.as_bytes()).ok()
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
