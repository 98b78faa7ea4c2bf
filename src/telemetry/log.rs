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
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{FmtSpan, Format, Full, Json, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::correlation::{self, RequestScope};
use super::json::{push_escaped as escape_chars, push_str as escape_into};

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
            .fmt_fields(SpanFieldsJson)
            .event_format(json_format())
            .try_init()
    } else {
        let ansi = std::io::stderr().is_terminal();
        builder
            .with_ansi(ansi)
            .event_format(human_format(ansi))
            .try_init()
    };
    // Already installed (a second gateway in one test process): keep the first.
    let _ = result;
}

/// The JSON line format: flattened event fields, the enclosing spans as a list (fields written by
/// [`SpanFieldsJson`]), and the request's context as the first span.
pub fn json_format() -> WithRequest<Format<Json>> {
    WithRequest {
        inner: tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true),
        json: true,
    }
}

/// The human line format, with the request's context in front.
pub fn human_format(ansi: bool) -> WithRequest<Format<Full>> {
    WithRequest {
        inner: tracing_subscriber::fmt::format().with_ansi(ansi),
        json: false,
    }
}

/// Adds the current request's context ([`RequestScope`]: request id, trace id, method, path,
/// scheme, client id) to each line logged inside a request, as a span would: in JSON as the first
/// (outermost) entry of `spans`, `{"request_id":...,"name":"request"}`; on human lines as a
/// `request{...}` prefix. The context is a task-local, not a `tracing` span (see
/// `telemetry::correlation`), so it costs nothing until a line is written.
#[derive(Debug, Clone)]
pub struct WithRequest<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithRequest<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(scope) = correlation::current() else {
            return self.inner.format_event(ctx, writer, event);
        };
        if !self.json {
            writer.write_str(&human_context(&scope))?;
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(512);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&with_request_span(&line, &scope))
    }
}

/// The request's context as a span object of the JSON format.
fn request_json(scope: &RequestScope) -> String {
    let mut out = String::with_capacity(192);
    out.push('{');
    let mut pair = |name: &str, value: &str| {
        if out.len() > 1 {
            out.push(',');
        }
        escape_into(&mut out, name);
        out.push(':');
        escape_into(&mut out, value);
    };
    pair("request_id", &scope.request_id);
    pair("trace_id", scope.trace_id.as_deref().unwrap_or(""));
    pair("method", scope.method.as_str());
    pair("path", &scope.path);
    if let Some(s) = scope.scheme() {
        pair("scheme", s);
    }
    if let Some(c) = scope.client_id() {
        pair("client_id", c);
    }
    pair("name", "request");
    out.push('}');
    out
}

/// A JSON line with the request's span put first in its `spans` (added when it has none).
fn with_request_span(line: &str, scope: &RequestScope) -> String {
    const KEY: &str = "\"spans\":[";
    let span = request_json(scope);
    // Inside a JSON string every quote is escaped, so `"spans":[` can only be the key; the
    // formatter writes it after the event's own fields, hence the last one.
    if let Some(at) = line.rfind(KEY).map(|i| i + KEY.len())
        && let (Some(head), Some(tail)) = (line.get(..at), line.get(at..))
    {
        let comma = if tail.starts_with(']') { "" } else { "," };
        return format!("{head}{span}{comma}{tail}");
    }
    if let Some(end) = line.rfind('}')
        && let (Some(head), Some(tail)) = (line.get(..end), line.get(end..))
    {
        return format!("{head},\"spans\":[{span}]{tail}");
    }
    line.to_owned()
}

/// The request's context in front of a human line.
fn human_context(scope: &RequestScope) -> String {
    let mut out = format!(
        "request{{request_id={} method={} path={}",
        scope.request_id, scope.method, scope.path
    );
    if let Some(t) = &scope.trace_id {
        let _ = write!(out, " trace_id={t}");
    }
    if let Some(s) = scope.scheme() {
        let _ = write!(out, " scheme={s}");
    }
    if let Some(c) = scope.client_id() {
        let _ = write!(out, " client_id={c}");
    }
    out.push_str("} ");
    out
}

/// Span fields as one JSON object, written as they are recorded.
///
/// A pay opens a `payment` span and records fields on it as they become known (payment id, STAN,
/// RRN). tracing-subscriber's own `JsonFields` builds a `serde_json` map for each span and, for
/// each `record`, parses the object back and writes it again (a third of a `GET /healthz`'s
/// instructions when every request had a span; issue 16, defect 6). This writes
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

/// Writes what it is given JSON-escaped into the string (no quotes): a `Debug` or `Display`
/// value is formatted straight into the span's text, without a string of its own first.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_chars(self.0, s);
        Ok(())
    }
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
    // A span's fields take about 120 bytes: one allocation instead of several.
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

    /// The subscriber `init` installs for JSON, writing into `buffer`.
    fn json_subscriber(buffer: &Buffer) -> impl Subscriber + Send + Sync + use<> {
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .fmt_fields(SpanFieldsJson)
            .event_format(json_format())
            .finish()
    }

    fn lines(buffer: &Buffer) -> Vec<serde_json::Value> {
        let bytes = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_default())
            .collect()
    }

    #[test]
    fn lines_inside_a_request_carry_its_context_as_the_outermost_span() {
        let buffer = Buffer::default();
        let subscriber = json_subscriber(&buffer);
        let ids = correlation::Correlation {
            request_id: "req-\"7\"".to_owned(),
            trace_id: None,
        };
        let scope = std::sync::Arc::new(RequestScope::new(
            ids,
            hyper::Method::POST,
            "/v1/payments".to_owned(),
        ));
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
            panic!("no runtime");
        };
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("before");
            rt.block_on(correlation::scoped(scope, async {
                tracing::warn!(n = 1u64, "routed, not yet known");
                correlation::record_scheme("native");
                correlation::record_client_id("wallet-my");
                let payment = tracing::info_span!("payment", payment_id = "p-1");
                let _in = payment.enter();
                tracing::info!("inside the payment");
            }));
            tracing::info!("after");
        });
        let lines = lines(&buffer);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[0].get("spans").is_none(), "{}", lines[0]);
        assert!(lines[3].get("spans").is_none(), "{}", lines[3]);
        let first = &lines[1]["spans"];
        assert_eq!(first.as_array().map(Vec::len), Some(1), "{}", lines[1]);
        assert_eq!(first[0]["name"], "request");
        assert_eq!(first[0]["request_id"], "req-\"7\"");
        assert_eq!(first[0]["method"], "POST");
        assert_eq!(first[0]["path"], "/v1/payments");
        assert!(first[0].get("scheme").is_none());
        assert_eq!(lines[1]["n"], 1);
        assert_eq!(lines[1]["level"], "WARN");
        let spans = &lines[2]["spans"];
        assert_eq!(spans[0]["name"], "request", "{}", lines[2]);
        assert_eq!(spans[0]["scheme"], "native");
        assert_eq!(spans[0]["client_id"], "wallet-my");
        assert_eq!(spans[1]["name"], "payment");
        assert_eq!(spans[1]["payment_id"], "p-1");
        assert_eq!(lines[2]["message"], "inside the payment");
    }

    #[test]
    fn span_fields_recorded_later_and_awkward_strings_stay_one_json_object() {
        let buffer = Buffer::default();
        let subscriber = json_subscriber(&buffer);
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
