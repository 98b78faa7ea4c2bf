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
