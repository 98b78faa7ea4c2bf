//! One request, start to end: route → size limit → body (bounded in size and time) → peer
//! certificate → signature → JSON → handler task → response (signed when the request was). Every
//! failure becomes a response through [`ApiError::to_result`]; nothing here can panic on input.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::time::Instant;

use super::api::{Handled, RequestContext, Route, WalletApi};
use super::auth::{Authenticated, Authenticator, SignedParts, body_digest, headers};
use super::config::Limits;
use super::error::{ApiError, ResultCode, Side};
use super::health::{self, Readiness};
use super::inflight::InFlight;
use super::tls::PeerIdentity;
use super::wire::{Envelope, ResultInfo};

/// What every request needs, shared by all connections.
pub(crate) struct Shared<A> {
    pub(crate) api: Arc<A>,
    pub(crate) auth: Authenticator,
    pub(crate) limits: Limits,
    pub(crate) readiness: Readiness,
    pub(crate) stopping: watch::Receiver<bool>,
    pub(crate) handlers: InFlight,
}

type Reply = Response<Full<Bytes>>;

fn json_response(status: StatusCode, body: Vec<u8>) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn result_only(result: &ResultInfo) -> Vec<u8> {
    serde_json::json!({ "result": result })
        .to_string()
        .into_bytes()
}

/// An error response; signed when the request was authenticated.
fn error_reply(error: &ApiError) -> (StatusCode, Vec<u8>) {
    let (status, result) = error.to_result();
    (status, result_only(&result))
}

fn header<'a>(map: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, ApiError> {
    match map.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            ApiError::InvalidSignature(super::auth::AuthFault::MalformedHeader {
                header: name,
                reason: "not visible ASCII".to_owned(),
            })
        }),
    }
}

/// Handles one request. Never fails: every outcome is a response.
pub(crate) async fn handle<A: WalletApi>(
    shared: Arc<Shared<A>>,
    peer: Arc<PeerIdentity>,
    req: Request<Incoming>,
) -> Reply {
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/healthz" | "/readyz" => {
            if req.method() != Method::GET {
                let (s, b) = error_reply(&ApiError::MethodNotAllowed {
                    method: req.method().to_string(),
                    path,
                    allowed: "GET",
                });
                return json_response(s, b);
            }
            if path == "/healthz" {
                return json_response(StatusCode::OK, health::alive_body());
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
            json_response(status, health::ready_body(&state))
        }
        _ => {
            let Some(route) = Route::from_path(&path) else {
                let (s, b) = error_reply(&ApiError::NotFound { path });
                return json_response(s, b);
            };
            if req.method() != Method::POST {
                let (s, b) = error_reply(&ApiError::MethodNotAllowed {
                    method: req.method().to_string(),
                    path,
                    allowed: "POST",
                });
                return json_response(s, b);
            }
            wallet(shared, peer, route, req).await
        }
    }
}

async fn wallet<A: WalletApi>(
    shared: Arc<Shared<A>>,
    peer: Arc<PeerIdentity>,
    route: Route,
    req: Request<Incoming>,
) -> Reply {
    // request_timeout is at most a day (checked at start), so this cannot overflow in practice;
    // checked all the same.
    let start = Instant::now();
    let deadline = start
        .checked_add(shared.limits.request_timeout)
        .unwrap_or(start);
    let method = req.method().as_str().to_owned();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let (parts, body) = req.into_parts();

    let outcome = async {
        let max = shared.limits.max_body_bytes;
        if let Some(len) = parts.headers.get(CONTENT_LENGTH) {
            let declared = len.to_str().ok().and_then(|s| s.parse::<u64>().ok());
            match declared {
                Some(n) if n > max => return Err((ApiError::RequestTooLarge { limit: max }, None)),
                Some(_) => {}
                None => {
                    return Err((ApiError::param("content-length", "not a number"), None));
                }
            }
        }
        let limit = usize::try_from(max).unwrap_or(usize::MAX);
        let bytes = match tokio::time::timeout_at(deadline, Limited::new(body, limit).collect())
            .await
        {
            Err(_) => {
                return Err((
                    ApiError::RequestTimeout {
                        after: shared.limits.request_timeout,
                    },
                    None,
                ));
            }
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return Err((ApiError::RequestTooLarge { limit: max }, None));
            }
            Ok(Err(e)) => return Err((ApiError::param("body", format!("unreadable: {e}")), None)),
            Ok(Ok(collected)) => collected.to_bytes(),
        };

        let who = authenticate(
            &shared.auth,
            &peer,
            &parts.headers,
            &method,
            &target,
            &bytes,
        )
        .map_err(|e| (e, None))?;
        let signer = Some(who.clone());

        let content_type = match parts.headers.get(CONTENT_TYPE) {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| {
                (
                    ApiError::param("content-type", "not visible ASCII"),
                    signer.clone(),
                )
            })?),
        };
        if let Some(ct) = content_type
            && !ct
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        {
            return Err((
                ApiError::param(
                    "content-type",
                    format!("must be application/json, got {ct:?}"),
                ),
                signer,
            ));
        }
        let ctx = RequestContext {
            client_id: who.client_id.clone(),
            body_sha256: body_digest(&bytes),
            received_at: SystemTime::now(),
            unauthenticated_demo: shared.auth.is_off(),
        };
        dispatch(&shared, route, ctx, &bytes, deadline)
            .await
            .map(|ok| (ok, who.clone()))
            .map_err(|e| (e, signer))
    }
    .await;

    let (status, body, who) = match outcome {
        Ok(((status, body), who)) => (status, body, Some(who)),
        Err((e, who)) => {
            if e.side() != Side::Wallet {
                log::warn!("{method} {target}: {e}");
            }
            let (s, b) = error_reply(&e);
            (s, b, who)
        }
    };
    let signature = who.and_then(|w| shared.auth.sign_response(&w, &method, &target, &body));
    let mut reply = json_response(status, body);
    if let Some(sig) = signature {
        let h = reply.headers_mut();
        for (name, value) in [
            (headers::CLIENT_ID, sig.client_id),
            (headers::RESPONSE_TIME, sig.response_time),
            (headers::SIGNATURE, sig.signature),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(HeaderName::from_static(name), v);
            }
        }
    }
    reply
}

fn authenticate(
    auth: &Authenticator,
    peer: &PeerIdentity,
    map: &HeaderMap,
    method: &str,
    target: &str,
    body: &[u8],
) -> Result<Authenticated, ApiError> {
    let certified = match peer {
        PeerIdentity::None => None,
        PeerIdentity::Client(id) => Some(id.as_str()),
        PeerIdentity::Unmapped(fp) => {
            return Err(ApiError::AccessDenied {
                reason: format!("client certificate {fp} is not mapped to a client id"),
            });
        }
    };
    let parts = SignedParts {
        method,
        path: target,
        client_id: header(map, headers::CLIENT_ID)?,
        request_time: header(map, headers::REQUEST_TIME)?,
        signature: header(map, headers::SIGNATURE)?,
        body,
    };
    let mut who = auth.verify(&parts)?;
    match certified {
        Some(cert_id) if auth.is_off() => who.client_id = cert_id.to_owned(),
        Some(cert_id) if cert_id != who.client_id => {
            return Err(ApiError::AccessDenied {
                reason: format!(
                    "client-id {:?} does not match the client certificate ({cert_id:?})",
                    who.client_id
                ),
            });
        }
        _ => {}
    }
    Ok(who)
}

/// Parses JSON into `T`, naming the offending field (`amount.value`) or `body`.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            let near = if path == "." {
                String::new()
            } else {
                format!(" (in {path})")
            };
            ApiError::param("body", format!("malformed JSON{near}: {inner}"))
        } else {
            ApiError::param(path, inner.to_string())
        }
    })?;
    de.end()
        .map_err(|e| ApiError::param("body", format!("trailing characters: {e}")))?;
    Ok(value)
}

async fn dispatch<A: WalletApi>(
    shared: &Arc<Shared<A>>,
    route: Route,
    ctx: RequestContext,
    body: &[u8],
    deadline: Instant,
) -> Result<(StatusCode, Vec<u8>), ApiError> {
    match route {
        Route::Decode => {
            let req = parse_json(body)?;
            run(
                shared,
                deadline,
                |api| async move { api.decode(ctx, req).await },
            )
            .await
        }
        Route::Quote => {
            let req = parse_json(body)?;
            run(
                shared,
                deadline,
                |api| async move { api.quote(ctx, req).await },
            )
            .await
        }
        Route::Pay => {
            let req = parse_json(body)?;
            run(
                shared,
                deadline,
                |api| async move { api.pay(ctx, req).await },
            )
            .await
        }
        Route::PaymentInquiry => {
            let req = parse_json(body)?;
            run(shared, deadline, |api| async move {
                api.inquire_payment(ctx, req).await
            })
            .await
        }
        Route::Cancel => {
            let req = parse_json(body)?;
            run(
                shared,
                deadline,
                |api| async move { api.cancel(ctx, req).await },
            )
            .await
        }
        Route::Refund => {
            let req = parse_json(body)?;
            run(
                shared,
                deadline,
                |api| async move { api.refund(ctx, req).await },
            )
            .await
        }
        Route::RefundInquiry => {
            let req = parse_json(body)?;
            run(shared, deadline, |api| async move {
                api.inquire_refund(ctx, req).await
            })
            .await
        }
    }
}

/// Runs the handler in its own task (so neither a disconnect nor our deadline cancels it) and
/// renders its answer.
async fn run<A, T, F, Fut>(
    shared: &Arc<Shared<A>>,
    deadline: Instant,
    call: F,
) -> Result<(StatusCode, Vec<u8>), ApiError>
where
    A: WalletApi,
    T: Serialize + Send + 'static,
    F: FnOnce(Arc<A>) -> Fut,
    Fut: Future<Output = Handled<T>> + Send + 'static,
{
    let guard = shared.handlers.enter();
    let work = call(shared.api.clone());
    let task = tokio::spawn(async move {
        let _counted = guard;
        work.await
    });
    let answer = match tokio::time::timeout_at(deadline, task).await {
        Err(_) => {
            return Err(ApiError::Unknown {
                side: Side::Gateway,
                reason: format!(
                    "no answer within {} ms; processing goes on: query before retrying",
                    shared.limits.request_timeout.as_millis()
                ),
            });
        }
        Ok(Err(join)) => {
            log::error!("handler task failed: {join}");
            return Err(ApiError::Unknown {
                side: Side::Gateway,
                reason: "the handler stopped unexpectedly: query before retrying".to_owned(),
            });
        }
        Ok(Ok(handled)) => handled?,
    };
    let (status, result) = match &answer.outcome {
        None => (
            ResultCode::Success.http_status(),
            ResultCode::Success.result("success"),
        ),
        Some(e) => e.to_result(),
    };
    let json = serde_json::to_vec(&Envelope {
        result: &result,
        body: &answer.body,
    })
    .map_err(|e| ApiError::Unknown {
        side: Side::Gateway,
        reason: format!("response not serialisable: {e}"),
    })?;
    Ok((status, json))
}
