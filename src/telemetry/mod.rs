//! Telemetry: what an operator sees of a running gateway, as a leaf every room may use.
//!
//! ```text
//! log.rs          structured logging (tracing + tracing-subscriber): human on a terminal, JSON
//!                 lines otherwise or when configured; RUST_LOG-style filters; the `[log]` table
//! json.rs         JSON string literals written by hand, escaped as serde_json does
//! correlation.rs  request ids (x-request-id, W3C traceparent): accepted, generated, returned;
//!                 the current request's log context and result code (RequestScope)
//! metrics.rs      the Prometheus series served at GET /metrics (prometheus-client)
//! random.rs       random 16-byte ids (request ids, decode ids), OS randomness drawn in blocks
//! ```
//!
//! Imports no room (a leaf). The log lines of journaled state changes are `journal::events`; the
//! operator listener is `server::operator`.
//! Spec: `spec/operations.md` (every log event that needs a human, every metric, the alerts).

pub mod correlation;
pub mod json;
pub mod log;
pub mod metrics;
pub mod random;
