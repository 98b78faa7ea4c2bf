//! `/healthz` (the process is alive and serving) and `/readyz` (the gateway says it can take
//! payments: journal open, acquirer link signed on, rates fresh — whatever its predicate checks).

pub use crate::payment::{Readiness, always_ready};

pub(crate) fn alive_body() -> Vec<u8> {
    br#"{"status":"alive"}"#.to_vec()
}

pub(crate) fn ready_body(state: &Result<(), String>) -> Vec<u8> {
    let v = match state {
        Ok(()) => serde_json::json!({"status": "ready"}),
        Err(reason) => serde_json::json!({"status": "not ready", "reason": reason}),
    };
    v.to_string().into_bytes()
}
