//! Operations: what an operator sees of a running gateway.
//!
//! ```text
//! log.rs          structured logging (tracing + tracing-subscriber): human on a terminal, JSON
//!                 lines otherwise or when configured; RUST_LOG-style filters; the `[log]` table
//! correlation.rs  request ids (x-request-id, W3C traceparent): accepted, generated, returned
//! metrics.rs      the Prometheus series served at GET /metrics (prometheus-client)
//! ```
//!
//! Spec: `spec/operations.md` (every log event that needs a human, every metric, the alerts).

pub mod correlation;
pub mod events;
pub mod listener;
pub mod log;
pub mod metrics;
