//! The JSON view of a message used by the CLI and the differential tests:
//! `{"mti":"0200","fields":{"3":"000000","4":"000000035000"}}`. Field numbers are strings, values are
//! the characters exactly as on the wire; `b` (raw binary) fields are shown as upper-case hex.
//! Bitmaps are not listed: the encoder computes them.

use serde_json::{Map, Value};

use super::bitmap::{from_hex, to_hex};
use super::message::{Message, Mti};
use super::spec::{Format, Spec};

/// Why a JSON object is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Top level is not `{"mti": "...", "fields": {...}}`.
    #[error("expected an object with \"mti\" (4 digits) and \"fields\" (an object)")]
    Shape,
    /// A field key that is not a number 2..=128.
    #[error("field key {0:?} is not a data element number 2..=128")]
    BadKey(String),
    /// A field value that is not a string (or not hex for a `b` field).
    #[error("field {0}: value must be a string (hex for binary fields)")]
    BadValue(u8),
}

impl JsonError {
    /// The field the error is about, as the CLI names it.
    pub fn field(&self) -> String {
        match self {
            JsonError::Shape => "mti".to_owned(),
            JsonError::BadKey(k) => k.clone(),
            JsonError::BadValue(n) => n.to_string(),
        }
    }
}

/// The JSON view of `message`.
pub fn to_json(message: &Message, spec: &Spec) -> Value {
    let mut fields = Map::new();
    for (n, v) in message.fields() {
        let binary = spec.field(n).is_some_and(|f| f.format == Format::B);
        let text = if binary {
            to_hex(v)
        } else {
            String::from_utf8_lossy(v).into_owned()
        };
        fields.insert(n.to_string(), Value::String(text));
    }
    let mut top = Map::new();
    top.insert(
        "mti".to_owned(),
        Value::String(message.mti().as_str().to_owned()),
    );
    top.insert("fields".to_owned(), Value::Object(fields));
    Value::Object(top)
}

/// A message from its JSON view (values are checked later by the encoder).
pub fn from_json(value: &Value, spec: &Spec) -> Result<Message, JsonError> {
    let mti = value
        .get("mti")
        .and_then(Value::as_str)
        .ok_or(JsonError::Shape)?;
    let digits: [u8; 4] = mti.as_bytes().try_into().map_err(|_| JsonError::Shape)?;
    let mti = Mti::new(digits).ok_or(JsonError::Shape)?;
    let fields = value
        .get("fields")
        .and_then(Value::as_object)
        .ok_or(JsonError::Shape)?;
    let mut message = Message::new(mti);
    for (key, v) in fields {
        let n: u8 = key
            .parse()
            .ok()
            .filter(|n| (2..=128).contains(n))
            .ok_or_else(|| JsonError::BadKey(key.clone()))?;
        let text = v.as_str().ok_or(JsonError::BadValue(n))?;
        let binary = spec.field(n).is_some_and(|f| f.format == Format::B);
        let bytes = if binary {
            from_hex(text).ok_or(JsonError::BadValue(n))?
        } else {
            text.as_bytes().to_vec()
        };
        message.set(n, bytes);
    }
    Ok(message)
}
