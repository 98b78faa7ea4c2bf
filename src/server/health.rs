//! `/healthz` (the process is alive and serving) and `/readyz` (the gateway says it can take
//! payments: journal open, acquirer link signed on, rates fresh — whatever its predicate checks).

use std::sync::Arc;

/// The gateway's readiness predicate: `Ok(())` when ready, `Err(reason)` otherwise. Called on every
/// `/readyz`; keep it cheap (read flags, do not do I/O).
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// A predicate that is always ready.
pub fn always_ready() -> Readiness {
    Arc::new(|| Ok(()))
}

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
