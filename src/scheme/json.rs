//! Reading a JSON body into a typed request: the first problem becomes `PARAM_ILLEGAL` naming the
//! field's path (`amount.value`) or `body` for malformed JSON and trailing characters.

use serde::de::DeserializeOwned;

use crate::payment::ApiError;

/// Parses JSON into `T`, naming the offending field (`amount.value`) or `body`.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
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
