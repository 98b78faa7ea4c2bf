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
/// names and paths, entirely) are copied whole.
pub fn push_escaped(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..0x20 => "",
            _ => continue,
        };
        // `i` is at an ASCII byte, so both slices end on character boundaries.
        out.push_str(s.get(plain..i).unwrap_or_default());
        if escaped.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        } else {
            out.push_str(escaped);
        }
        plain = i + 1;
    }
    out.push_str(s.get(plain..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

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
