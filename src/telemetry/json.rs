//! JSON string literals written by hand, escaped exactly as `serde_json` escapes them (`\"`,
//! `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control characters as `\u00XX`; everything else,
//! non-ASCII included, as it is). Shared by the JSON log formatter and the answers the native
//! scheme renders without serde (the decode answer), so both stay byte for byte what serde_json
//! would write.

/// `s` as a JSON string literal, quotes included.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

/// The characters of `s`, JSON-escaped, without quotes. Runs that need no escape (most ids,
/// names and paths, entirely) are found eight bytes at a time ([`special`]) and copied whole.
pub fn push_escaped(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = s;
    while let Some(i) = special(rest.as_bytes()) {
        let Some(&b) = rest.as_bytes().get(i) else {
            break;
        };
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            _ => "",
        };
        // `i` is at an ASCII byte, so both slices end on character boundaries.
        out.push_str(rest.get(..i).unwrap_or_default());
        if escaped.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        } else {
            out.push_str(escaped);
        }
        rest = rest.get(i + 1..).unwrap_or_default();
    }
    out.push_str(rest);
}

/// Where the first byte that a JSON string cannot hold as it is (`"`, `\`, or a control
/// character below 0x20) is in `bytes`, if anywhere. Eight bytes at a time: byte by byte, this
/// scan was most of the cost of reading a decode request and of writing its answer.
pub fn special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `x` that is zero. A borrow can only mark bytes above the first
    // true one, so the lowest mark is exact, and it is the only one read.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // Bytes below 0x20: `b - 0x20` borrows and `b` has its high bit clear.
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let marks =
            zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\'))) | control;
        if marks != 0 {
            return Some(at + usize::try_from(marks.trailing_zeros() / 8).unwrap_or(0));
        }
        at += 8;
    }
    bytes
        .get(at..)?
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_special_byte_is_found_at_every_position() {
        for len in 0..40 {
            for at in 0..=len {
                for special_byte in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                    // Bytes close in value to the special ones, and a UTF-8 sequence
                    // (continuation bytes have the high bit set).
                    let mut bytes: Vec<u8> = (0..len)
                        .map(|i| [b'!', b'#', b'[', b']', b' ', 0xc3, 0xa9, b'~'][i % 8])
                        .collect();
                    if at < len {
                        bytes[at] = special_byte;
                        if at + 1 < len {
                            bytes[at + 1] = b'"';
                        }
                    }
                    let want = bytes
                        .iter()
                        .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
                    assert_eq!(special(&bytes), want, "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut every_control: String = (0u8..0x20).map(char::from).collect();
        every_control.push_str("\u{7f}\"\\/é€😀 plain");
        for s in [
            "",
            "plain",
            "KOPI \"STALL\"",
            "back\\slash",
            "tab\tnew\nline\r",
            every_control.as_str(),
        ] {
            let mut ours = String::new();
            push_str(&mut ours, s);
            assert_eq!(ours, serde_json::to_string(s).unwrap_or_default(), "{s:?}");
        }
    }
}
