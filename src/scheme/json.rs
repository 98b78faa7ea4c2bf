//! Reading a JSON body into a typed request: the first problem becomes `PARAM_ILLEGAL` naming the
//! field's path (`amount.value`) or `body` for malformed JSON and trailing characters.

use serde::de::DeserializeOwned;

use crate::payment::ApiError;

/// Parses JSON into `T`, naming the offending field (`amount.value`) or `body`.
///
/// A well-formed body is read once without tracking the path (`serde_path_to_error` wraps every
/// visitor and seed, about half of a decode request's parse); a refused one is read again with the
/// path tracked, so the error is the same either way.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice(body) {
        Ok(value) => Ok(value),
        Err(_) => parse_tracked(body),
    }
}

/// [`parse_json`] with the path of the offending field tracked.
fn parse_tracked<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            let near = if path == "." {
                String::new()
            } else {
                format!(" (in {path})")
            };
            ApiError::param("body", format!("malformed JSON{near}: {inner}"))
        } else {
            ApiError::param(path, inner.to_string())
        }
    })?;
    de.end()
        .map_err(|e| ApiError::param("body", format!("trailing characters: {e}")))?;
    Ok(value)
}

/// The values of a flat JSON object of string members only, in the order of `keys`, when the
/// body is that and nothing harder: every key of `keys` exactly once, no other key, no escape
/// sequence in any key or value (a `\\` anywhere), no control character, nothing after the
/// object but whitespace. `None` for anything else, which the caller then reads with serde (and
/// its errors): a fast path for small requests that never changes what a body means.
pub fn flat_strings<'a, const N: usize>(body: &'a [u8], keys: [&str; N]) -> Option<[&'a str; N]> {
    fn ws(s: &str) -> &str {
        s.trim_start_matches([' ', '\t', '\n', '\r'])
    }
    /// A string literal without escapes or control characters at the start of `s`, and the rest.
    /// Eight bytes at a time (`str::find` with a set of characters decodes each character, and
    /// even a byte loop cost about as much as serde's whole parse).
    fn plain(s: &str) -> Option<(&str, &str)> {
        let s = s.strip_prefix('"')?;
        let end = crate::telemetry::json::special(s.as_bytes())?;
        if s.as_bytes().get(end) != Some(&b'"') {
            return None;
        }
        // `end` is at an ASCII quote: both slices end on character boundaries.
        Some((s.get(..end)?, s.get(end + 1..)?))
    }
    let text = std::str::from_utf8(body).ok()?;
    let mut found: [Option<&'a str>; N] = [None; N];
    let mut rest = ws(text).strip_prefix('{')?;
    loop {
        let (key, after) = plain(ws(rest))?;
        let (value, after) = plain(ws(ws(after).strip_prefix(':')?))?;
        let slot = found.get_mut(keys.iter().position(|k| *k == key)?)?;
        if slot.replace(value).is_some() {
            return None;
        }
        rest = ws(after);
        match rest.strip_prefix(',') {
            Some(more) => rest = more,
            None => {
                rest = rest.strip_prefix('}')?;
                break;
            }
        }
    }
    if !ws(rest).is_empty() {
        return None;
    }
    let mut out = [""; N];
    for (o, f) in out.iter_mut().zip(found) {
        *o = f?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        id: String,
        amount: Inner,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        value: u64,
    }

    fn refusal(body: &str) -> (String, String) {
        match parse_json::<Outer>(body.as_bytes()) {
            Err(ApiError::ParamIllegal { field, reason }) => (field, reason),
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn flat_string_objects_are_read_and_anything_harder_is_left_to_serde() {
        let keys = ["a", "b"];
        assert_eq!(
            flat_strings(br#" { "b" : "2" ,"a":"x y"}  "#, keys),
            Some(["x y", "2"])
        );
        assert_eq!(
            flat_strings("{\"a\":\"é\",\"b\":\"\"}".as_bytes(), keys),
            Some(["é", ""])
        );
        for hard in [
            &br#"{"a":"1"}"#[..],
            br#"{"a":"1","b":"2","c":"3"}"#,
            br#"{"a":"1","b":"2","a":"3"}"#,
            br#"{"a":"1","b":"\u0032"}"#,
            br#"{"a":"1","b":2}"#,
            br#"{"a":"1","b":"2",}"#,
            br#"{"a":"1","b":"2"} x"#,
            br#"{"a":"1","b":"2""#,
            b"{\"a\":\"1\",\"b\":\"tab\there\"}",
            b"{\"a\":\"\xff\",\"b\":\"2\"}",
            b"",
            b"[]",
        ] {
            assert_eq!(
                flat_strings(hard, keys),
                None,
                "{}",
                String::from_utf8_lossy(hard)
            );
        }
    }

    #[test]
    fn a_well_formed_body_parses_and_a_refused_one_names_its_field() {
        assert_eq!(
            parse_json::<Outer>(br#"{"id":"a","amount":{"value":7}}"#).ok(),
            Some(Outer {
                id: "a".to_owned(),
                amount: Inner { value: 7 }
            })
        );
        let (field, reason) = refusal(r#"{"id":"a","amount":{"value":"7"}}"#);
        assert_eq!(field, "amount.value");
        assert!(reason.contains("invalid type"), "{reason}");
        let (field, reason) = refusal(r#"{"id":"a","amount":{"value":7,"x":1}}"#);
        assert_eq!(field, "amount.x");
        assert!(reason.contains("unknown field"), "{reason}");
        let (field, reason) = refusal(r#"{"id":"a","amount":{"value":7}"#);
        assert_eq!(field, "body");
        assert!(reason.starts_with("malformed JSON"), "{reason}");
        let (field, reason) = refusal(r#"{"id":"a","amount":{"value":7}} x"#);
        assert_eq!(field, "body");
        assert!(reason.starts_with("trailing characters"), "{reason}");
    }
}
