//! One request, start to end: health, or the scheme that owns the path → size limit → body
//! (bounded in size and time) → the scheme (route, authentication, parsing, pipeline, signed
//! response). Transport refusals (too large, too slow, no such scheme) are rendered by the owning
//! scheme in its own form, or as a native error when no scheme owns the path. Nothing here can
//! panic on input.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::watch;
use tokio::time::Instant;

use super::config::Limits;
use super::health::{self, Readiness};
use super::tls::PeerIdentity;
use crate::payment::ApiError;
use crate::payment::Pipeline;
use crate::scheme::InFlight;
use crate::scheme::native::transformers::NativeReply;
use crate::scheme::{Dispatch, Inbound, Outbound, Peer, Scheme};
use crate::telemetry::correlation::{self, REQUEST_ID_HEADER, RequestScope};
use crate::telemetry::metrics;

/// What every request needs, shared by all connections.
pub(crate) struct Shared<A> {
    pub(crate) api: Arc<A>,
    /// Every scheme served, the native one first; prefixes do not overlap.
    pub(crate) schemes: Vec<Arc<dyn Scheme>>,
    pub(crate) limits: Limits,
    pub(crate) readiness: Readiness,
    pub(crate) stopping: watch::Receiver<bool>,
    pub(crate) handlers: InFlight,
    /// Whether `GET /metrics` is served here (the demo; else the operator listener serves it).
    pub(crate) serve_metrics: bool,
}

type Reply = Response<Full<Bytes>>;

fn json_response(status: StatusCode, body: Vec<u8>) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn native_error(error: &ApiError) -> Reply {
    let r = NativeReply::from(error);
    json_response(r.status, r.body)
}

fn outbound(o: Outbound) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(o.body)));
    *r.status_mut() = o.status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(o.content_type));
    for (name, value) in o.headers {
        match (HeaderName::try_from(name), HeaderValue::from_str(&value)) {
            (Ok(n), Ok(v)) => {
                r.headers_mut().insert(n, v);
            }
            _ => tracing::error!("response header {name} not representable; dropped"),
        }
    }
    r
}

/// Handles one request. Never fails: every outcome is a response. Every response carries the
/// request's id as `x-request-id`; the request runs in its log context (request id, trace id,
/// method, path, scheme, client id: [`RequestScope`]) and is counted in the request metrics.
pub(crate) async fn handle<A: Pipeline>(
    shared: Arc<Shared<A>>,
    peer: Arc<PeerIdentity>,
    req: Request<Incoming>,
) -> Reply {
    let ids = correlation::from_headers(req.headers());
    let scope = Arc::new(RequestScope::new(
        ids,
        req.method().clone(),
        req.uri().path().to_owned(),
    ));
    let this = Arc::clone(&scope);
    correlation::scoped(scope, async move {
        let started = Instant::now();
        let (reply, scheme) = route(shared, &peer, req, &this).await;
        answered(&this, reply, scheme, started)
    })
    .await
}

/// The request's id on its answer, its metrics, and its access line (at `debug`).
fn answered(scope: &RequestScope, mut reply: Reply, scheme: Served, started: Instant) -> Reply {
    if let Ok(v) = HeaderValue::from_str(&scope.request_id) {
        reply.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let status = reply.status();
    // Labels borrow what they can: a known route's path and the result code are static text.
    let route: Cow<'static, str> = match scheme {
        Some(_) if status == StatusCode::NOT_FOUND => Cow::Borrowed("unmatched"),
        Some((_, Some(label))) => Cow::Borrowed(label),
        Some((_, None)) => Cow::Owned(scope.path.clone()),
        None => match scope.path.as_str() {
            "/healthz" => Cow::Borrowed("/healthz"),
            "/readyz" => Cow::Borrowed("/readyz"),
            "/metrics" => Cow::Borrowed("/metrics"),
            _ => Cow::Borrowed("unmatched"),
        },
    };
    let code = match scope.result_code() {
        Some(c) => Cow::Borrowed(c),
        None => http_code(status),
    };
    let elapsed = started.elapsed();
    let scheme = scheme.map_or("none", |(name, _)| name);
    tracing::debug!(
        status = status.as_u16(),
        route = %route,
        result_code = %code,
        elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "answered"
    );
    metrics::observe_request(scheme, route, code, elapsed);
    reply
}

/// `HTTP_<status>`: the result code of a request answered before the pipeline (static text for
/// the statuses the server and the schemes answer with).
fn http_code(status: StatusCode) -> Cow<'static, str> {
    Cow::Borrowed(match status.as_u16() {
        200 => "HTTP_200",
        400 => "HTTP_400",
        401 => "HTTP_401",
        403 => "HTTP_403",
        404 => "HTTP_404",
        405 => "HTTP_405",
        408 => "HTTP_408",
        413 => "HTTP_413",
        415 => "HTTP_415",
        429 => "HTTP_429",
        500 => "HTTP_500",
        503 => "HTTP_503",
        other => return Cow::Owned(format!("HTTP_{other}")),
    })
}

/// The scheme that served a request and its route's static label (both `None` for health,
/// metrics and unknown paths).
type Served = Option<(&'static str, Option<&'static str>)>;

async fn route<A: Pipeline>(
    shared: Arc<Shared<A>>,
    peer: &PeerIdentity,
    req: Request<Incoming>,
    scope: &RequestScope,
) -> (Reply, Served) {
    let path = scope.path.as_str();
    match path {
        "/healthz" | "/readyz" | "/metrics" => {
            if req.method() != Method::GET {
                let mut refused = native_error(&ApiError::MethodNotAllowed {
                    method: req.method().to_string(),
                    path: path.to_owned(),
                    allowed: "GET",
                });
                refused
                    .headers_mut()
                    .insert(hyper::header::ALLOW, HeaderValue::from_static("GET"));
                return (refused, None);
            }
            if path == "/healthz" {
                return (json_response(StatusCode::OK, health::alive_body()), None);
            }
            if path == "/metrics" {
                if !shared.serve_metrics {
                    return (
                        native_error(&ApiError::NotFound {
                            path: path.to_owned(),
                        }),
                        None,
                    );
                }
                return (metrics_response(), None);
            }
            let state = if *shared.stopping.borrow() {
                Err("shutting down".to_owned())
            } else {
                (shared.readiness)()
            };
            let status = if state.is_ok() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (json_response(status, health::ready_body(&state)), None)
        }
        _ => {
            let Some(scheme) = shared
                .schemes
                .iter()
                .find(|s| path.starts_with(s.prefix()))
                .cloned()
            else {
                return (
                    native_error(&ApiError::NotFound {
                        path: path.to_owned(),
                    }),
                    None,
                );
            };
            let name = scheme.name();
            correlation::record_scheme(name);
            let label = scheme.route_label(path);
            (
                to_scheme(shared, peer, scheme, req, scope).await,
                Some((name, label)),
            )
        }
    }
}

/// `GET /metrics`: the Prometheus text exposition.
pub(crate) fn metrics_response() -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(metrics::render())));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    r
}

async fn to_scheme<A: Pipeline>(
    shared: Arc<Shared<A>>,
    peer: &PeerIdentity,
    scheme: Arc<dyn Scheme>,
    req: Request<Incoming>,
    scope: &RequestScope,
) -> Reply {
    // request_timeout is at most a day (checked at start), so this cannot overflow in practice;
    // checked all the same.
    let start = Instant::now();
    let deadline = start
        .checked_add(shared.limits.request_timeout)
        .unwrap_or(start);
    let received_at = SystemTime::now();
    let (parts, body) = req.into_parts();
    let peer = match peer {
        PeerIdentity::None => Peer::Anonymous,
        PeerIdentity::Client(id) => Peer::Certified(id.clone()),
        PeerIdentity::Unmapped(fp) => Peer::Unmapped(fp.clone()),
    };
    let head = Inbound {
        method: parts.method.as_str(),
        path: &scope.path,
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &[],
        peer: &peer,
        received_at,
        request_id: &scope.request_id,
    };

    let max = shared.limits.max_body_bytes;
    if let Some(len) = parts.headers.get(CONTENT_LENGTH) {
        let declared = len.to_str().ok().and_then(|s| s.parse::<u64>().ok());
        match declared {
            Some(n) if n > max => {
                return outbound(scheme.refuse(&head, &ApiError::RequestTooLarge { limit: max }));
            }
            Some(_) => {}
            None => {
                return outbound(
                    scheme.refuse(&head, &ApiError::param("content-length", "not a number")),
                );
            }
        }
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let bytes = match tokio::time::timeout_at(deadline, Limited::new(body, limit).collect()).await {
        Err(_) => {
            let e = ApiError::RequestTimeout {
                after: shared.limits.request_timeout,
            };
            return outbound(scheme.refuse(&head, &e));
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return outbound(scheme.refuse(&head, &ApiError::RequestTooLarge { limit: max }));
        }
        Ok(Err(e)) => {
            let e = ApiError::param("body", format!("unreadable: {e}"));
            return outbound(scheme.refuse(&head, &e));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let inbound = Inbound {
        body: &bytes,
        ..head
    };
    let pipeline: Arc<dyn Pipeline> = shared.api.clone();
    let dispatch = Dispatch::new(
        pipeline,
        shared.handlers.clone(),
        deadline,
        shared.limits.request_timeout,
    );
    outbound(scheme.serve(inbound, dispatch).await)
}
