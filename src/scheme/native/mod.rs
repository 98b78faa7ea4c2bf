//! The native scheme: Wallet API v1 (`/v1/...`), our own dialect. JSON in and out, every answer in
//! the `{"result": ...}` envelope, requests and responses signed with HMAC-SHA256 or Ed25519 over
//! the six-line canonical string (`spec/auth.md`). Routes and shapes: `spec/openapi.yaml`;
//! mapping: `spec/schemes/native.md`.
//!
//! It is built by the server from `[server]` and `[[clients]]` (its credentials predate the
//! registry), and served through the same [`Scheme`] seam as every other scheme.

pub mod auth;
mod route;
pub mod transformers;

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::StatusCode;
use hyper::header::HeaderMap;

use super::{
    BoxFuture, Dispatch, Inbound, Notice, NoticeEvent, NoticeMessage, Outbound, Peer, Scheme,
};
use crate::payment::{ApiError, Side, WalletCall};
use crate::payment::{Handled, Pipeline, RequestContext};
use crate::scheme::native::auth::{
    AuthConfig, AuthConfigError, Authenticated, Authenticator, SignedParts, body_digest, headers,
};
use crate::scheme::parse_json;
pub use route::Route;
use transformers::{NativeReply, parse_decode, render, render_decode};

/// The registry name.
pub const NAME: &str = "native";

/// Wallet API v1.
pub struct Native {
    auth: Authenticator,
    /// client id → notify URL (clients without one resolve U by inquiry only).
    notify_urls: BTreeMap<String, String>,
}

impl std::fmt::Debug for Native {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Native")
            .field("auth", &self.auth)
            .field(
                "notify_clients",
                &self.notify_urls.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Native {
    /// The native scheme with these credentials.
    pub fn new(auth: AuthConfig) -> Result<Native, AuthConfigError> {
        Ok(Native {
            auth: Authenticator::new(auth)?,
            notify_urls: BTreeMap::new(),
        })
    }

    /// Notifies these clients (client id → notify URL, `https://...`, or `http://` to a loopback
    /// address) when a payment or refund reaches its final state after the answer
    /// (`spec/schemes/native.md`, notifications).
    pub fn with_notify_urls(mut self, urls: BTreeMap<String, String>) -> Self {
        self.notify_urls = urls;
        self
    }

    fn render_notice(&self, notice: &Notice, url: &str) -> Result<NoticeMessage, ApiError> {
        let internal = |reason: String| ApiError::Unknown {
            side: Side::Gateway,
            reason,
        };
        let (key, value) = match &notice.event {
            NoticeEvent::Payment(p) => (
                "payment",
                serde_json::to_value(p).map_err(|e| internal(format!("notice payment: {e}")))?,
            ),
            NoticeEvent::Refund(r) => (
                "refund",
                serde_json::to_value(r).map_err(|e| internal(format!("notice refund: {e}")))?,
            ),
        };
        // `notifyType` names the call: a result to take note of, or a credit to make.
        let kind = match (notice.call, key) {
            (WalletCall::PaymentResult, "payment") => "PAYMENT_RESULT",
            (WalletCall::RefundResult, "refund") => "REFUND_RESULT",
            (WalletCall::RefundCredit, "refund") => "REFUND_CREDIT",
            (call, _) => {
                return Err(internal(format!(
                    "the native scheme does not make the call {call} with a {key}"
                )));
            }
        };
        let mut body = serde_json::Map::new();
        body.insert("noticeId".to_owned(), notice.notice_id.clone().into());
        body.insert("notifyType".to_owned(), kind.into());
        body.insert(key.to_owned(), value);
        let body = serde_json::to_vec(&serde_json::Value::Object(body))
            .map_err(|e| internal(format!("notice body: {e}")))?;
        let target = url
            .parse::<hyper::Uri>()
            .ok()
            .and_then(|u| u.path_and_query().map(|p| p.as_str().to_owned()))
            .ok_or_else(|| {
                internal(format!(
                    "notify URL of client {:?} is not an absolute URL",
                    notice.client_id
                ))
            })?;
        let headers = self
            .auth
            .sign_notification(&notice.client_id, "POST", &target, &body)
            .map(crate::scheme::native::auth::ResponseSignature::headers)
            .unwrap_or_default();
        Ok(NoticeMessage {
            url: url.to_owned(),
            content_type: "application/json; charset=UTF-8",
            headers,
            body,
        })
    }

    async fn answer(
        &self,
        req: &Inbound<'_>,
        route: Route,
        ctx: RequestContext,
        dispatch: Dispatch,
    ) -> Result<NativeReply, ApiError> {
        if let Some(ct) = req.header(&crate::scheme::CONTENT_TYPE)?
            && !ct
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        {
            return Err(ApiError::param(
                "content-type",
                format!("must be application/json, got {ct:?}"),
            ));
        }
        let body = req.body;
        let d = (&dispatch, route.runs_inline());
        match route {
            Route::Decode => {
                call(
                    body,
                    ctx,
                    d,
                    <dyn Pipeline>::decode,
                    (parse_decode, render_decode),
                )
                .await
            }
            Route::Quote => call(body, ctx, d, <dyn Pipeline>::quote, (parse_json, render)).await,
            Route::Pay => call(body, ctx, d, <dyn Pipeline>::pay, (parse_json, render)).await,
            Route::PaymentInquiry => {
                call(
                    body,
                    ctx,
                    d,
                    <dyn Pipeline>::inquire_payment,
                    (parse_json, render),
                )
                .await
            }
            Route::Cancel => call(body, ctx, d, <dyn Pipeline>::cancel, (parse_json, render)).await,
            Route::Refund => call(body, ctx, d, <dyn Pipeline>::refund, (parse_json, render)).await,
            Route::RefundInquiry => {
                call(
                    body,
                    ctx,
                    d,
                    <dyn Pipeline>::inquire_refund,
                    (parse_json, render),
                )
                .await
            }
        }
    }

    async fn respond(&self, req: Inbound<'_>, dispatch: Dispatch) -> Outbound {
        let target = req.target();
        let Some(route) = Route::from_path(req.path) else {
            return reply(
                NativeReply::from(&ApiError::NotFound {
                    path: req.path.to_owned(),
                }),
                None,
            );
        };
        if req.method != route.method() {
            return reply(
                NativeReply::from(&ApiError::MethodNotAllowed {
                    method: req.method.to_owned(),
                    path: req.path.to_owned(),
                    allowed: route.method(),
                }),
                Some(vec![("allow", route.method().to_owned())]),
            );
        }
        let who = match authenticate(&self.auth, &req, &target) {
            Ok(who) => who,
            Err(e) => return reply(NativeReply::from(&e), None),
        };
        let ctx = RequestContext {
            client_id: who.client_id.clone(),
            body_sha256: if route.keeps_requests() {
                body_digest(req.body)
            } else {
                String::new()
            },
            received_at: req.received_at,
            unauthenticated_demo: self.auth.is_off(),
            scheme: NAME,
            scheme_ref: None,
            request_id: req.request_id.to_owned(),
        };
        crate::telemetry::correlation::record_client_id(&ctx.client_id);
        let native = match self.answer(&req, route, ctx, dispatch).await {
            Ok(r) => r,
            Err(e) => NativeReply::from(&e),
        };
        let signature = self
            .auth
            .sign_response(&who, req.method, &target, &native.body);
        let headers = signature
            .map(crate::scheme::native::auth::ResponseSignature::headers)
            .unwrap_or_default();
        reply(native, Some(headers))
    }
}

fn reply(native: NativeReply, headers: Option<Vec<(&'static str, String)>>) -> Outbound {
    Outbound {
        status: native.status,
        content_type: "application/json",
        headers: headers.unwrap_or_default(),
        body: native.body,
    }
}

impl Scheme for Native {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prefix(&self) -> &'static str {
        "/v1/"
    }

    fn is_demo(&self) -> bool {
        self.auth.is_off()
    }

    fn route_label(&self, path: &str) -> Option<&'static str> {
        Route::from_path(path).map(Route::path)
    }

    fn serve<'a>(&'a self, req: Inbound<'a>, dispatch: Dispatch) -> BoxFuture<'a, Outbound> {
        Box::pin(self.respond(req, dispatch))
    }

    fn refuse(&self, _req: &Inbound<'_>, error: &ApiError) -> Outbound {
        reply(NativeReply::from(error), None)
    }

    /// The two result notifications and the refund credit (a refund that started at the
    /// merchant: the wallet must credit its payer, `spec/schemes/native.md`).
    fn calls(&self) -> &'static [WalletCall] {
        &[
            WalletCall::PaymentResult,
            WalletCall::RefundResult,
            WalletCall::RefundCredit,
        ]
    }

    /// `POST <notify URL>` with `{"noticeId", "notifyType", "payment" | "refund"}`, signed with the
    /// client's key over the `QRB1-NOTIFY` canonical string; `None` for clients without a URL.
    fn notification(&self, notice: &Notice) -> Result<Option<NoticeMessage>, ApiError> {
        match self.notify_urls.get(&notice.client_id) {
            None => Ok(None),
            Some(url) => self.render_notice(notice, url).map(Some),
        }
    }

    /// A 2xx answer whose body is `{"result": {"resultStatus": "S", ...}, ...}`.
    fn acknowledged(&self, status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> bool {
        status.is_success()
            && serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .as_ref()
                .and_then(|v| v.pointer("/result/resultStatus"))
                .and_then(|s| s.as_str())
                == Some("S")
    }
}

/// Reads a route's request from its JSON body.
type Parse<R> = fn(&[u8]) -> Result<R, ApiError>;

/// Renders a route's answer.
type Render<T> = fn(Handled<T>) -> NativeReply;

/// A canonical operation of the pipeline (`<dyn Pipeline>::pay`, ...).
type Operation<R, T> = fn(Arc<dyn Pipeline>, RequestContext, R) -> BoxFuture<'static, Handled<T>>;

/// One native route: the JSON body parsed into the operation's request, the pipeline called
/// through `dispatch` (in the request's task when `inline`, [`Route::runs_inline`]), the
/// canonical answer rendered. `wire` reads and writes the JSON: serde ([`parse_json`],
/// [`render`]), or a route's own fast path that gives the same result (the decode's).
async fn call<R, T>(
    body: &[u8],
    ctx: RequestContext,
    (dispatch, inline): (&Dispatch, bool),
    op: Operation<R, T>,
    (parse, rendering): (Parse<R>, Render<T>),
) -> Result<NativeReply, ApiError>
where
    R: serde::de::DeserializeOwned,
    T: serde::Serialize + Send + 'static,
{
    let r = parse(body)?;
    let handled = if inline {
        dispatch.run_inline(|p| op(p, ctx, r)).await
    } else {
        dispatch.run(|p| op(p, ctx, r)).await
    };
    Ok(rendering(handled))
}

/// Builds the native scheme from its credentials, shared for the server.
pub fn shared(auth: AuthConfig) -> Result<Arc<dyn Scheme>, AuthConfigError> {
    Ok(Arc::new(Native::new(auth)?))
}

/// Verifies a request signed the native way (`spec/auth.md`: headers `client-id`, `request-time`,
/// `signature` over the six-line canonical string) and checks it against the TLS client certificate,
/// if any. Shared by every scheme that signs like the native one (`iso20022`).
pub fn authenticate(
    auth: &Authenticator,
    req: &Inbound<'_>,
    target: &str,
) -> Result<Authenticated, ApiError> {
    let certified = match req.peer {
        Peer::Anonymous => None,
        Peer::Certified(id) => Some(id.as_str()),
        Peer::Unmapped(fp) => {
            return Err(ApiError::AccessDenied {
                reason: format!("client certificate {fp} is not mapped to a client id"),
            });
        }
    };
    let header = |name: &'static hyper::header::HeaderName| {
        req.header(name).map_err(|_| {
            ApiError::InvalidSignature(crate::scheme::native::auth::AuthFault::MalformedHeader {
                header: name.as_str(),
                reason: "not visible ASCII".to_owned(),
            })
        })
    };
    let parts = SignedParts {
        method: req.method,
        path: target,
        client_id: header(&headers::CLIENT_ID_NAME)?,
        request_time: header(&headers::REQUEST_TIME_NAME)?,
        signature: header(&headers::SIGNATURE_NAME)?,
        body: req.body,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::native::auth::{ClientKey, Credentials, Secret};
    use crate::time::{ManualClock, parse_timestamp};

    /// spec/auth.md §9 (computed with Python's `hmac` and `hashlib`).
    const BODY: &[u8] = br#"{"noticeId":"N-019aa5e2-8c40-7000-8000-0000000000aa-REVERSED","notifyType":"PAYMENT_RESULT","payment":{"paymentId":"019aa5e2-8c40-7000-8000-0000000000aa","paymentRequestId":"PR-20261121-0002","paymentStatus":"REVERSED","merchantAmount":{"currency":"SGD","value":"7777"},"payerAmount":{"currency":"MYR","value":"25930"}}}"#;
    const SIGNATURE: &str =
        "algorithm=HMAC-SHA256,keyVersion=1,signature=oJM/yCwAXHk6layacMLsVLzO0rKIlOdfxsQ2ApsNslc=";

    fn native() -> Native {
        let key = Secret::from_base64("cXJicmlkZ2Utc3BlYy1leGFtcGxlLWtleS0wMDAxISE=").unwrap();
        let credentials = Credentials::new()
            .with_key("wallet-my-01", 1, ClientKey::HmacSha256(key.clone()))
            .with_key("wallet-quiet", 1, ClientKey::HmacSha256(key));
        let clock = Arc::new(ManualClock::new(
            parse_timestamp("2026-11-21T10:45:00Z").unwrap(),
        ));
        Native::new(AuthConfig {
            clock,
            ..AuthConfig::signatures(credentials)
        })
        .unwrap()
        .with_notify_urls(BTreeMap::from([(
            "wallet-my-01".to_owned(),
            "https://wallet.example/qrb/notify?v=1".to_owned(),
        )]))
    }

    fn notice(client: &str) -> Notice {
        let payment: serde_json::Value = serde_json::from_slice(BODY).unwrap();
        Notice {
            call: crate::payment::WalletCall::PaymentResult,
            scheme: NAME.to_owned(),
            client_id: client.to_owned(),
            scheme_ref: None,
            notice_id: "N-019aa5e2-8c40-7000-8000-0000000000aa-REVERSED".to_owned(),
            event: NoticeEvent::Payment(
                serde_json::from_value(payment["payment"].clone()).unwrap(),
            ),
        }
    }

    #[test]
    fn the_spec_notification_is_what_the_native_scheme_sends() {
        let m = native()
            .notification(&notice("wallet-my-01"))
            .unwrap()
            .unwrap();
        assert_eq!(m.url, "https://wallet.example/qrb/notify?v=1");
        assert_eq!(
            String::from_utf8(m.body).unwrap(),
            String::from_utf8_lossy(BODY)
        );
        assert_eq!(
            m.headers,
            vec![
                ("client-id", "wallet-my-01".to_owned()),
                ("response-time", "2026-11-21T10:45:00.000Z".to_owned()),
                ("signature", SIGNATURE.to_owned()),
            ]
        );
    }

    #[test]
    fn a_client_without_a_notify_url_takes_no_notifications() {
        assert_eq!(
            native().notification(&notice("wallet-quiet")).unwrap(),
            None
        );
    }

    #[test]
    fn only_a_2xx_with_result_status_s_acknowledges() {
        let n = native();
        let h = HeaderMap::new();
        let s = br#"{"result":{"resultStatus":"S","resultCode":"SUCCESS"}}"#;
        assert!(n.acknowledged(StatusCode::OK, &h, s));
        assert!(n.acknowledged(StatusCode::ACCEPTED, &h, s));
        assert!(!n.acknowledged(StatusCode::INTERNAL_SERVER_ERROR, &h, s));
        for body in [
            &br#"{"result":{"resultStatus":"F","resultCode":"PROCESS_FAIL"}}"#[..],
            br#"{"resultStatus":"S"}"#,
            b"OK",
            b"",
        ] {
            assert!(!n.acknowledged(StatusCode::OK, &h, body), "{body:?}");
        }
    }
}
