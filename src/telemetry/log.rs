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

use std::io::IsTerminal;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

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
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
    // Already installed (a second gateway in one test process): keep the first.
    let _ = result;
}
