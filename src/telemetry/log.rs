//! Structured logging on `tracing`.
//!
//! In: the `[log]` table ([`LogSettings`]) and the `RUST_LOG` variable (which wins over
//! `[log] filter`). Out: one global subscriber writing to stderr, human-readable when stderr is a
//! terminal, one JSON object per line otherwise or when `format = "json"`. Events of crates that
//! log through the `log` facade (rustls, ...) are bridged into it.
//!
//! Field names are stable (spec/operations.md §1): `request_id`, `trace_id`, `client_id`,
//! `scheme`, `route`, `payment_id`, `payment_request_id`, `stan`, `rrn`, `notice_id`, `action`.
//! Customer ids, keys and signatures are never logged.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use serde::Deserialize;
use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::{FmtSpan, Writer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human on a terminal, JSON otherwise.
    #[default]
    Auto,
    /// Always human-readable.
    Human,
    /// Always one JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(LogFormat::Auto),
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "must be \"auto\", \"human\" or \"json\", got {other:?}"
            )),
        }
    }
}

/// The `[log]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `auto` (default), `human` or `json`.
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter (`info`, `info,qrbridge::acquirer=debug`). `RUST_LOG` wins.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Auto,
            filter: DEFAULT_FILTER.to_owned(),
        }
    }
}

/// What is logged when nothing says otherwise.
pub const DEFAULT_FILTER: &str = "info";

/// Checks a filter directive string (`[log] filter`), naming what is wrong.
pub fn check_filter(filter: &str) -> Result<(), String> {
    EnvFilter::builder()
        .parse(filter)
        .map(|_| ())
        .map_err(|e| format!("not a valid filter ({e}): e.g. \"info,qrbridge::acquirer=debug\""))
}

/// Installs the global subscriber. `format_override` (the command line) wins over the table.
/// A second call (tests running several gateways in one process) changes nothing.
pub fn init(settings: &LogSettings, format_override: Option<LogFormat>) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::builder().parse_lossy(v),
        _ => EnvFilter::builder().parse_lossy(&settings.filter),
    };
    let format = format_override.unwrap_or(settings.format);
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .fmt_fields(SpanFieldsJson)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
    // Already installed (a second gateway in one test process): keep the first.
    let _ = result;
}

/// Span fields as one JSON object, written as they are recorded.
///
/// Every request opens a `request` span and records two more fields on it (scheme, client id).
/// tracing-subscriber's own `JsonFields` builds a `serde_json` map for each span and, for each
/// `record`, parses the object back and writes it again: a third of the server's instructions for a
/// `GET /healthz` (issue 16, defect 6, measured with `scripts/decode-cost`). This writes
/// `"name":value` pairs straight into the span's string and appends later ones before the closing
/// brace; the JSON event formatter reads the object back only when a line is actually written.
/// Strings are JSON-escaped; numbers and booleans are written bare; `Debug` values as strings.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpanFieldsJson;

/// Writes `"name":value` pairs, comma-separated.
struct Pairs<'a> {
    out: &'a mut String,
    first: bool,
}

impl Pairs<'_> {
    fn key(&mut self, field: &Field) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        escape_into(self.out, field.name());
        self.out.push(':');
    }
}

/// `s` as a JSON string literal.
fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    escape_chars(out, s);
    out.push('"');
}

/// Writes what it is given JSON-escaped into the string (no quotes): a `Debug` or `Display`
/// value is formatted straight into the span's text, without a string of its own first.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_chars(self.0, s);
        Ok(())
    }
}

/// The characters of `s`, JSON-escaped (no quotes). Runs of characters that need no escape are
/// copied whole (a request id, a path: most of them never need one).
fn escape_chars(out: &mut String, s: &str) {
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..0x20 => "",
            _ => continue,
        };
        // `i` is at an ASCII byte, so both slices end on character boundaries.
        out.push_str(s.get(plain..i).unwrap_or_default());
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escaped);
        }
        plain = i + 1;
    }
    out.push_str(s.get(plain..).unwrap_or_default());
}

impl Visit for Pairs<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        escape_into(self.out, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        self.out.push('"');
        let _ = write!(Escaping(self.out), "{value:?}");
        self.out.push('"');
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out.push_str(if value { "true" } else { "false" });
    }
}

/// The fields of `fields` as `"name":value` pairs (no braces).
fn pairs<R: RecordFields>(fields: R) -> String {
    // A request span's fields take about 120 bytes: one allocation instead of several.
    let mut out = String::with_capacity(128);
    fields.record(&mut Pairs {
        out: &mut out,
        first: true,
    });
    out
}

impl<'w> FormatFields<'w> for SpanFieldsJson {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        writer.write_char('{')?;
        writer.write_str(&pairs(fields))?;
        writer.write_char('}')
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        // Written straight into the span's object, before its closing brace.
        let text = &mut current.fields;
        if text.len() < 2 || !text.ends_with('}') {
            text.clear();
            text.push('{');
        } else {
            text.pop();
        }
        let first = text.ends_with('{');
        fields.record(&mut Pairs { out: text, first });
        text.push('}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn span_fields_recorded_later_and_awkward_strings_stay_one_json_object() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .fmt_fields(SpanFieldsJson)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "request",
                request_id = "r-1",
                path = "/v1/\"odd\"\n\\path\u{1}",
                n = 7u64,
                neg = -3i64,
                ok = true,
                scheme = tracing::field::Empty,
                client_id = tracing::field::Empty,
            );
            span.record("scheme", "native");
            span.record("client_id", tracing::field::display("wallet-my"));
            let _in = span.enter();
            tracing::info!(answer = 42u64, "answered");
        });
        let bytes = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
        let text = String::from_utf8(bytes).unwrap_or_default();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_default();
        let span = &line["spans"][0];
        assert_eq!(span["name"], "request", "{text}");
        assert_eq!(span["request_id"], "r-1");
        assert_eq!(span["path"], "/v1/\"odd\"\n\\path\u{1}");
        assert_eq!(span["n"], 7);
        assert_eq!(span["neg"], -3);
        assert_eq!(span["ok"], true);
        assert_eq!(span["scheme"], "native");
        assert_eq!(span["client_id"], "wallet-my");
        assert_eq!(line["answer"], 42);
    }
}
