//! A small JSON Schema checker for the schemas of an OpenAPI 3.1 document: enough of the
//! vocabulary for the documents in spec/ (`$ref` to `#/components/schemas/*`, `oneOf`, `type`
//! including `"null"`, `enum`, `required`, `properties`, `additionalProperties: false`,
//! `minLength` / `maxLength`, and the `pattern`s the documents use). A keyword or pattern it does
//! not know fails the check, so a document cannot grow past what is checked unnoticed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;

/// An OpenAPI document.
pub struct Doc(Value);

const KNOWN: &[&str] = &[
    "$ref",
    "oneOf",
    "type",
    "enum",
    "required",
    "properties",
    "additionalProperties",
    "minLength",
    "maxLength",
    "pattern",
    "description",
    "examples",
];

fn pattern_holds(pattern: &str, s: &str) -> bool {
    let upper3 = |t: &str| t.len() == 3 && t.bytes().all(|b| b.is_ascii_uppercase());
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    match pattern {
        "^[A-Z]{3}$" => upper3(s),
        "^[A-Z]{3}/[A-Z]{3}$" => s
            .split_once('/')
            .is_some_and(|(a, b)| upper3(a) && upper3(b)),
        "^(0|[1-9][0-9]{0,17})$" => digits(s) && s.len() <= 18 && (s == "0" || !s.starts_with('0')),
        "^[0-9]+(\\.[0-9]+)?$" => match s.split_once('.') {
            None => digits(s),
            Some((a, b)) => digits(a) && digits(b),
        },
        other => panic!("pattern {other:?} is not known to the checker: add it"),
    }
}

impl Doc {
    /// Reads a YAML document.
    pub fn load(path: &std::path::Path) -> Doc {
        let text = std::fs::read_to_string(path).unwrap();
        Doc(serde_yaml_ng::from_str(&text).unwrap())
    }

    /// The raw document.
    pub fn value(&self) -> &Value {
        &self.0
    }

    /// Checks `v` against `#/components/schemas/<name>`; every violation, with its JSON path.
    pub fn validate(&self, name: &str, v: &Value) -> Result<(), Vec<String>> {
        let schema = &self.0["components"]["schemas"][name];
        assert!(schema.is_object(), "no schema {name}");
        let mut errs = Vec::new();
        self.check(schema, v, "$", &mut errs);
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    fn check(&self, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
        let Some(obj) = schema.as_object() else {
            errs.push(format!("{at}: schema is not an object"));
            return;
        };
        for k in obj.keys() {
            assert!(
                KNOWN.contains(&k.as_str()),
                "keyword {k} is not known to the checker"
            );
        }
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            let name = r
                .strip_prefix("#/components/schemas/")
                .expect("local schema refs");
            let target = &self.0["components"]["schemas"][name];
            self.check(target, v, at, errs);
        }
        if let Some(alts) = obj.get("oneOf").and_then(Value::as_array) {
            let passing = alts
                .iter()
                .filter(|s| {
                    let mut e = Vec::new();
                    self.check(s, v, at, &mut e);
                    e.is_empty()
                })
                .count();
            if passing != 1 {
                errs.push(format!(
                    "{at}: {passing} of the oneOf alternatives hold for {v}"
                ));
            }
        }
        if let Some(t) = obj.get("type") {
            let types: Vec<&str> = match t {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let actual = match v {
                Value::Null => "null",
                Value::Bool(_) => "boolean",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            if !types.contains(&actual) {
                errs.push(format!("{at}: {actual} where {types:?} is expected"));
                return;
            }
        }
        if let Some(e) = obj.get("enum").and_then(Value::as_array)
            && !e.contains(v)
        {
            errs.push(format!("{at}: {v} is not one of {e:?}"));
        }
        if let Value::String(s) = v {
            let n = s.chars().count() as u64;
            if let Some(max) = obj.get("maxLength").and_then(Value::as_u64)
                && n > max
            {
                errs.push(format!("{at}: {n} characters, at most {max}"));
            }
            if let Some(min) = obj.get("minLength").and_then(Value::as_u64)
                && n < min
            {
                errs.push(format!("{at}: {n} characters, at least {min}"));
            }
            if let Some(p) = obj.get("pattern").and_then(Value::as_str)
                && !pattern_holds(p, s)
            {
                errs.push(format!("{at}: {s:?} does not match {p}"));
            }
        }
        if let Value::Object(fields) = v {
            if let Some(req) = obj.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !fields.contains_key(r) {
                        errs.push(format!("{at}: {r} is required"));
                    }
                }
            }
            let props = obj.get("properties").and_then(Value::as_object);
            for (k, fv) in fields {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => self.check(s, fv, &format!("{at}.{k}"), errs),
                    None if obj.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        errs.push(format!("{at}: {k} is not a field of this message"));
                    }
                    None => {}
                }
            }
        }
    }
}
