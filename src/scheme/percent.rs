//! Percent codecs of the schemes, on `percent-encoding`: encoding leaves only the RFC 3986
//! unreserved characters (`A-Z a-z 0-9 - . _ ~`) with upper-case hex; decoding is strict (a broken
//! `%` escape is refused with its offset, never passed through as the crate would).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, utf8_percent_encode};

/// Everything but the RFC 3986 unreserved characters.
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes everything but the unreserved characters: `a+b/c==` → `a%2Bb%2Fc%3D%3D`.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, RESERVED).to_string()
}

/// The offset of the first `%` that does not start a `%XX` escape (hex in either case).
fn broken_escape(b: &[u8]) -> Option<usize> {
    let hex = |i: usize| b.get(i).is_some_and(u8::is_ascii_hexdigit);
    (0..b.len()).find(|&i| b[i] == b'%' && !(hex(i + 1) && hex(i + 2)))
}

/// Strict decoding: only unreserved characters and `%XX` escapes; a raw `+`, `/`, `=`, space or
/// a broken escape is refused with its position.
pub fn decode_unreserved(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    if let Some(i) = broken_escape(b) {
        return Err(format!("broken %-escape at offset {i}"));
    }
    if let Some(i) = b.iter().position(|&c| c != b'%' && !unreserved(c)) {
        return Err(format!(
            "character {:?} at offset {i} must be percent-encoded",
            char::from(b[i])
        ));
    }
    Ok(percent_decode(b).collect())
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space, `%XX` a byte),
/// refusing a broken escape and text that is not UTF-8 once decoded.
pub fn decode_form(s: &str) -> Result<String, String> {
    if let Some(i) = broken_escape(s.as_bytes()) {
        return Err(format!("bad percent escape at character {i}"));
    }
    let spaced = s.replace('+', " ");
    percent_decode(spaced.as_bytes())
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| "not UTF-8 after percent-decoding".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_checked_before_the_crate_decodes() {
        assert_eq!(encode("a b*~é"), "a%20b%2A~%C3%A9");
        assert_eq!(decode_unreserved("%41%7e-").unwrap(), b"A~-");
        assert_eq!(
            decode_unreserved("ab%4").unwrap_err(),
            "broken %-escape at offset 2"
        );
        assert_eq!(
            decode_unreserved("a=b").unwrap_err(),
            "character '=' at offset 1 must be percent-encoded"
        );
        assert_eq!(decode_form("a+%C3%A9%2b").unwrap(), "a é+");
        assert_eq!(
            decode_form("x%g1").unwrap_err(),
            "bad percent escape at character 1"
        );
        assert!(decode_form("%FF").is_err());
    }
}
