//! Request correlation: every request gets one request id, taken from the wallet when it sends a
//! usable one, made here otherwise, returned as `x-request-id` on every response, carried in the
//! request's log context and into the journal records the request creates.
//!
//! Which id (spec/operations.md §2):
//! 1. `x-request-id`, when 1 to 128 visible ASCII characters (`!` to `~`);
//! 2. else the trace id of a valid W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, not all
//!    zeros), so the gateway's logs join the wallet's trace;
//! 3. else a new random UUID.
//!
//! A `traceparent` is also kept as `trace_id` in the request's log context whichever id wins.
//!
//! The log context of a request is a [`RequestScope`] held in a task-local for the request's
//! future (and handed to the handler task it spawns), not a `tracing` span: the log formatter
//! (`telemetry::log`) writes it into each line emitted inside the request, as the `request` entry
//! of `spans`. A span per request cost about a quarter of a `GET /healthz`'s instructions even
//! when no line was written (issue 16, defect 6, `scripts/decode-cost`); this costs one
//! allocation, and the formatting is paid only for lines actually written.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use hyper::header::{HeaderMap, HeaderName};

/// The request header and response header.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// W3C Trace Context.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Longest request id accepted from a wallet.
pub const MAX_REQUEST_ID_LEN: usize = 128;

tokio::task_local! {
    /// The request being served by the current task: the server scopes it around each request,
    /// [`crate::scheme::Dispatch`] hands it to the handler task it spawns.
    static REQUEST: Arc<RequestScope>;
}

/// One request's log context (the `request` entry of a log line's `spans`: request id, trace id,
/// method, path, then scheme and client id once known) and its result code for the metrics.
#[derive(Debug)]
pub struct RequestScope {
    /// The request id (returned as `x-request-id`).
    pub request_id: String,
    /// The W3C trace id, when a valid `traceparent` came in.
    pub trace_id: Option<String>,
    /// The HTTP method.
    pub method: hyper::Method,
    /// The request's path (no query).
    pub path: String,
    scheme: OnceLock<&'static str>,
    client_id: OnceLock<String>,
    result_code: Mutex<Option<&'static str>>,
}

impl RequestScope {
    /// A request with these ids, before routing.
    pub fn new(ids: Correlation, method: hyper::Method, path: String) -> Self {
        RequestScope {
            request_id: ids.request_id,
            trace_id: ids.trace_id,
            method,
            path,
            scheme: OnceLock::new(),
            client_id: OnceLock::new(),
            result_code: Mutex::new(None),
        }
    }

    /// The scheme serving it, once routed.
    pub fn scheme(&self) -> Option<&'static str> {
        self.scheme.get().copied()
    }

    /// The authenticated client, once known.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.get().map(String::as_str)
    }

    /// The result code of its pipeline call (the last one, if a scheme made several).
    pub fn result_code(&self) -> Option<&'static str> {
        self.result_code.lock().map_or(None, |c| *c)
    }
}

/// Runs `f` as the request `scope`: lines logged inside carry its context, and
/// [`set_result_code`] and the `record_*` functions reach it.
pub async fn scoped<F: Future>(scope: Arc<RequestScope>, f: F) -> F::Output {
    REQUEST.scope(scope, f).await
}

/// Runs `f` inside `scope` when there is one (a handler task spawned for a request).
pub async fn within<F: Future>(scope: Option<Arc<RequestScope>>, f: F) -> F::Output {
    match scope {
        Some(scope) => REQUEST.scope(scope, f).await,
        None => f.await,
    }
}

/// The request the current task serves, if any.
pub fn current() -> Option<Arc<RequestScope>> {
    REQUEST.try_with(Arc::clone).ok()
}

/// Calls `f` with the request the current task serves, if any (no reference count taken).
pub fn with_current<R>(f: impl FnOnce(&RequestScope) -> R) -> Option<R> {
    REQUEST.try_with(|s| f(s)).ok()
}

/// Records the current request's result code (nothing outside a request).
pub fn set_result_code(code: &'static str) {
    with_current(|s| {
        if let Ok(mut c) = s.result_code.lock() {
            *c = Some(code);
        }
    });
}

/// Records the scheme serving the current request (the first one recorded stays).
pub fn record_scheme(name: &'static str) {
    with_current(|s| {
        let _ = s.scheme.set(name);
    });
}

/// Records the authenticated client of the current request (the first one recorded stays).
pub fn record_client_id(id: &str) {
    with_current(|s| {
        if s.client_id.get().is_none() {
            let _ = s.client_id.set(id.to_owned());
        }
    });
}

/// The ids of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correlation {
    /// The request id (returned as `x-request-id`).
    pub request_id: String,
    /// The W3C trace id, when a valid `traceparent` came in.
    pub trace_id: Option<String>,
}

/// Whether a wallet's `x-request-id` value is usable as it is.
pub fn valid_request_id(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && v.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The trace id of a W3C `traceparent` header value, if it is valid (version 00 layout; later
/// versions are read by the same prefix, as the recommendation asks).
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let parent = parts.next()?;
    let flags = parts.next()?;
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(parent, 16) || !hex(flags, 2)
    {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    if trace.bytes().all(|b| b == b'0') || parent.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(trace)
}

/// A new random request id (UUID v4, hyphenated).
pub fn new_request_id() -> String {
    // From this thread's block of OS randomness (no system call per request).
    let bytes = super::random::random16().unwrap_or_else(|| {
        // The OS generator failing is not a reason to refuse a request: a time-based id is unique
        // enough to correlate logs.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        nanos.to_be_bytes()
    });
    super::random::uuid_v4_of(bytes)
}

/// The ids of a request, from its headers.
pub fn from_headers(headers: &HeaderMap) -> Correlation {
    // Names made once: a lookup by `&str` parses the name first, on every request.
    const REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);
    const TRACEPARENT: HeaderName = HeaderName::from_static(TRACEPARENT_HEADER);
    let header = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let trace_id = header(&TRACEPARENT).and_then(trace_id).map(str::to_owned);
    let request_id = match header(&REQUEST_ID).map(str::trim) {
        Some(v) if valid_request_id(v) => v.to_owned(),
        _ => trace_id.clone().unwrap_or_else(new_request_id),
    };
    Correlation {
        request_id,
        trace_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                *k,
                HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")),
            );
        }
        h
    }

    // The example of the W3C Trace Context recommendation, §3.2.
    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn wallet_id_wins_then_trace_id_then_new() {
        let c = from_headers(&headers(&[
            ("x-request-id", "abc-123"),
            ("traceparent", TP),
        ]));
        assert_eq!(c.request_id, "abc-123");
        assert_eq!(
            c.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let c = from_headers(&headers(&[("traceparent", TP)]));
        assert_eq!(c.request_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        let a = from_headers(&HeaderMap::new());
        let b = from_headers(&HeaderMap::new());
        assert_eq!(a.request_id.len(), 36);
        assert_ne!(a.request_id, b.request_id);
        assert_eq!(a.trace_id, None);
    }

    #[test]
    fn unusable_ids_are_replaced() {
        let long = "x".repeat(129);
        for bad in ["", "has space", long.as_str(), "tab\there"] {
            let c = from_headers(&headers(&[("x-request-id", bad)]));
            assert_ne!(c.request_id, bad, "{bad:?}");
            assert_eq!(c.request_id.len(), 36);
        }
        assert!(valid_request_id(&"x".repeat(128)));
    }

    #[test]
    fn traceparent_is_checked() {
        assert!(trace_id(TP).is_some());
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(trace_id(bad), None, "{bad}");
        }
    }
}
