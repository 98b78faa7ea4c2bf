//! The aplus scheme: an interface shaped like the Alipay+ mobile-payment-provider API for
//! merchant-presented codes (not certified by, nor affiliated with, Alipay+).
//!
//! In: `POST /schemes/aplus/v1/payments/<name>` (`userInitiatedPay`, `pay`, `inquiryPayment`,
//! `cancelPayment`, `refund`, `inquiryRefund`), JSON bodies whose values are all strings, signed
//! RSA256 over `"<METHOD> <path>\n<client-id>.<request-time>.<body>"`.
//! Out: `{"result":{resultStatus,resultCode,resultMessage}, ...}` signed the same way with our key
//! (`response-time`); notifications `notifyPayment` / `notifyRefund` POSTed to the client's
//! `notify_url`, signed like a request from us.
//! Errors: every canonical [`ApiError`] has one aplus result code (`transformers::code_of`); HTTP 200
//! for business results, 401/403/404/405/408/413/415 for refusals.
//! Spec: `spec/schemes/aplus.md`.
//!
//! ```text
//! mod.rs           configuration, routes, authentication, the pipeline calls, notifications
//! transformers.rs  wire types (Aplus*), conversions, result codes
//! sign.rs          RSA256 (ring), the signature header, PEM keys, ISO 8601 times
//! ```

pub mod sign;
pub mod transformers;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::StatusCode;
use hyper::header::HeaderMap;
use moka::sync::Cache;
use serde::Serialize;

use super::{
    BoxFuture, Dispatch, Inbound, Notice, NoticeEvent, NoticeMessage, Outbound, Peer, Scheme,
    SchemeConfigError, SchemeSettings,
};
use crate::money::{Amount, Currency};
use crate::payment::{Answer, Handled, RequestContext};
use crate::payment::{ApiError, Side};
use crate::payment::{
    DecodeRequest, PaymentInquiryRequest, PaymentRef, PaymentStatus, QuoteRequest, RequestId,
    ResultStatus,
};
use crate::scheme::native::auth::{AuthFault, ReplayGuard, body_digest};
use crate::scheme::parse_json;
use crate::time::format_rfc3339;
use sign::{
    AplusPublicKey, AplusSignatureHeader, AplusSigner, format_time, parse_time, string_to_sign,
};
use transformers::{
    AplusCancelPaymentRequest, AplusCancelPaymentResponse, AplusFault, AplusInquiryPaymentRequest,
    AplusInquiryRefundRequest, AplusNotifyAck, AplusNotifyPayment, AplusNotifyRefund,
    AplusPayRequest, AplusPaymentResponse, AplusRefundRequest, AplusRefundResponse, AplusResult,
    AplusRoute, AplusUserInitiatedPayRequest, AplusUserInitiatedPayResponse, result_of,
};

/// The registry name.
pub const NAME: &str = "aplus";
/// The path prefix.
pub const PREFIX: &str = "/schemes/aplus/";
/// Routes live under this path.
pub const ROUTES: &str = "/schemes/aplus/v1/payments/";
/// The JSON content type of requests, responses and notifications.
pub const CONTENT_TYPE: &str = "application/json; charset=UTF-8";
/// Default `request-time` window (± this).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);
/// How long the amounts of a quote made by userInitiatedPay are kept for the pay check.
pub const QUOTE_MEMORY: Duration = Duration::from_secs(3600);

/// Header names.
pub mod headers {
    /// The wallet's client id.
    pub const CLIENT_ID: &str = "client-id";
    /// ISO 8601 with offset: when the request was signed.
    pub const REQUEST_TIME: &str = "request-time";
    /// ISO 8601: when the response was signed.
    pub const RESPONSE_TIME: &str = "response-time";
    /// `algorithm=RSA256,keyVersion=N,signature=<url-encoded base64>`.
    pub const SIGNATURE: &str = "signature";
}

/// One wallet client of the aplus scheme.
#[derive(Debug)]
pub struct AplusClient {
    /// Its RSA public keys by `keyVersion`.
    pub keys: BTreeMap<u32, AplusPublicKey>,
    /// Where its notifications go (none: it resolves by inquiry).
    pub notify_url: Option<String>,
    /// Its wallet currency when userInitiatedPay has no `payToCurrency`.
    pub pay_to_currency: Option<Currency>,
}

/// The aplus scheme.
pub struct Aplus {
    demo_client: Option<String>,
    clients: BTreeMap<String, AplusClient>,
    signer: Option<(u32, AplusSigner)>,
    window: Duration,
    replay: ReplayGuard,
    /// (client id, quote id) → (merchant amount, wallet amount) of quotes userInitiatedPay made.
    quotes: Cache<(String, String), (Amount, Amount)>,
}

impl std::fmt::Debug for Aplus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aplus")
            .field("demo_client", &self.demo_client)
            .field("clients", &self.clients.keys().collect::<Vec<_>>())
            .field(
                "signing_key_version",
                &self.signer.as_ref().map(|(v, _)| *v),
            )
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

fn config_error(key: impl Into<String>, reason: impl Into<String>) -> SchemeConfigError {
    SchemeConfigError {
        scheme: NAME,
        key: key.into(),
        reason: reason.into(),
    }
}

fn read_pem(base: &Path, key: &str, value: &toml::Value) -> Result<String, SchemeConfigError> {
    let rel = value
        .as_str()
        .ok_or_else(|| config_error(key, "must be a path (string)"))?;
    let path = base.join(rel);
    std::fs::read_to_string(&path)
        .map_err(|e| config_error(key, format!("cannot read {}: {e}", path.display())))
}

fn key_version(key: &str, text: &str) -> Result<u32, SchemeConfigError> {
    match text.parse::<u32>() {
        Ok(v) if v >= 1 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
        _ => Err(config_error(
            key,
            format!("{text:?} is not a key version (1, 2, ...)"),
        )),
    }
}

impl Aplus {
    /// Builds the scheme from `[schemes.aplus]` (see `spec/schemes/aplus.md` §Configuration).
    pub fn new(settings: &SchemeSettings) -> Result<Aplus, SchemeConfigError> {
        let base = settings.base_dir.as_path();
        let mut signer = None;
        let mut signing_version = None;
        let mut window = DEFAULT_WINDOW;
        let mut clients = BTreeMap::new();
        for (key, value) in &settings.table {
            match key.as_str() {
                "signing_key_pem" => {
                    let pem = read_pem(base, key, value)?;
                    signer = Some(AplusSigner::from_pem(&pem).map_err(|e| config_error(key, e))?);
                }
                "signing_key_version" => {
                    let v = value
                        .as_integer()
                        .and_then(|v| u32::try_from(v).ok())
                        .filter(|v| *v >= 1)
                        .ok_or_else(|| config_error(key, "must be an integer ≥ 1"))?;
                    signing_version = Some(v);
                }
                "time_window_secs" => {
                    let v = value
                        .as_integer()
                        .and_then(|v| u64::try_from(v).ok())
                        .filter(|v| (1..=3600).contains(v))
                        .ok_or_else(|| config_error(key, "must be an integer from 1 to 3600"))?;
                    window = Duration::from_secs(v);
                }
                "clients" => {
                    let table = value
                        .as_table()
                        .ok_or_else(|| config_error(key, "must be a table of clients"))?;
                    for (id, client) in table {
                        clients.insert(id.clone(), Self::client(base, id, client)?);
                    }
                }
                other => {
                    return Err(config_error(
                        other,
                        "unknown key (signing_key_pem, signing_key_version, time_window_secs, clients)",
                    ));
                }
            }
        }
        let signer = match (signer, signing_version) {
            (Some(s), Some(v)) => Some((v, s)),
            (Some(_), None) => return Err(config_error("signing_key_version", "missing")),
            (None, Some(_)) => return Err(config_error("signing_key_pem", "missing")),
            (None, None) => None,
        };
        if settings.demo_client.is_none() {
            if signer.is_none() {
                return Err(config_error(
                    "signing_key_pem",
                    "missing: responses and notifications must be signed",
                ));
            }
            if let Some((id, _)) = clients.iter().find(|(_, c)| c.keys.is_empty()) {
                return Err(config_error(
                    format!("clients.{id}.public_keys"),
                    "missing: at least one key",
                ));
            }
        }
        Ok(Aplus {
            demo_client: settings.demo_client.clone(),
            clients,
            signer,
            window,
            replay: ReplayGuard::new(window, 1_000_000),
            quotes: Cache::builder()
                .max_capacity(200_000)
                .time_to_live(QUOTE_MEMORY)
                .build(),
        })
    }

    fn client(
        base: &Path,
        id: &str,
        value: &toml::Value,
    ) -> Result<AplusClient, SchemeConfigError> {
        let prefix = format!("clients.{id}");
        let table = value
            .as_table()
            .ok_or_else(|| config_error(&prefix, "must be a table"))?;
        let mut client = AplusClient {
            keys: BTreeMap::new(),
            notify_url: None,
            pay_to_currency: None,
        };
        for (key, value) in table {
            let name = format!("{prefix}.{key}");
            match key.as_str() {
                "public_keys" => {
                    let keys = value.as_table().ok_or_else(|| {
                        config_error(&name, "must be a table { \"1\" = \"path.pem\" }")
                    })?;
                    for (version, path) in keys {
                        let entry = format!("{name}.{version}");
                        let v = key_version(&entry, version)?;
                        let pem = read_pem(base, &entry, path)?;
                        let key =
                            AplusPublicKey::from_pem(&pem).map_err(|e| config_error(&entry, e))?;
                        client.keys.insert(v, key);
                    }
                }
                "notify_url" => {
                    let url = value
                        .as_str()
                        .ok_or_else(|| config_error(&name, "must be a URL (string)"))?;
                    if url_path(url).is_none() {
                        return Err(config_error(
                            &name,
                            format!("{url:?} is not an http:// or https:// URL"),
                        ));
                    }
                    client.notify_url = Some(url.to_owned());
                }
                "pay_to_currency" => {
                    let code = value
                        .as_str()
                        .ok_or_else(|| config_error(&name, "must be an ISO 4217 code (string)"))?;
                    client.pay_to_currency = Some(
                        Currency::from_code(code)
                            .map_err(|e| config_error(&name, e.to_string()))?,
                    );
                }
                other => {
                    return Err(config_error(
                        format!("{prefix}.{other}"),
                        "unknown key (public_keys, notify_url, pay_to_currency)",
                    ));
                }
            }
        }
        Ok(client)
    }

    /// Who sent the request: its client id, and whether it was signed (then the answer is).
    fn authenticate(&self, req: &Inbound<'_>) -> Result<(String, bool), ApiError> {
        let certified = match req.peer {
            Peer::Anonymous => None,
            Peer::Certified(id) => Some(id.as_str()),
            Peer::Unmapped(fp) => {
                return Err(ApiError::AccessDenied {
                    reason: format!("client certificate {fp} is not mapped to a client id"),
                });
            }
        };
        if let Some(demo) = &self.demo_client {
            return Ok((certified.unwrap_or(demo).to_owned(), false));
        }
        let header = |name: &'static str| -> Result<&str, ApiError> {
            match req.headers.get(name) {
                None => Err(AuthFault::MissingHeader(name).into()),
                Some(v) => v.to_str().map_err(|_| {
                    AuthFault::MalformedHeader {
                        header: name,
                        reason: "not visible ASCII".to_owned(),
                    }
                    .into()
                }),
            }
        };
        let client_id = header(headers::CLIENT_ID)?;
        let time = header(headers::REQUEST_TIME)?;
        let signature = AplusSignatureHeader::parse(header(headers::SIGNATURE)?)?;
        let client = self
            .clients
            .get(client_id)
            .ok_or_else(|| AuthFault::UnknownClient(client_id.to_owned()))?;
        let key = client
            .keys
            .get(&signature.key_version)
            .ok_or_else(|| AuthFault::UnknownKey {
                client_id: client_id.to_owned(),
                algorithm: sign::ALGORITHM,
                key_version: signature.key_version,
            })?;
        let at = parse_time(time).ok_or_else(|| AuthFault::MalformedHeader {
            header: headers::REQUEST_TIME,
            reason: format!(
                "expected ISO 8601 with an offset like 2026-11-21T20:40:00+08:00, got {time:?}"
            ),
        })?;
        let distance = match at.duration_since(req.received_at) {
            Ok(ahead) => ahead,
            Err(behind) => behind.duration(),
        };
        if distance > self.window {
            return Err(AuthFault::StaleRequestTime {
                request_time: time.to_owned(),
                now: format_rfc3339(req.received_at),
                window: self.window,
            }
            .into());
        }
        let message = string_to_sign(req.method, &req.target(), client_id, time, req.body);
        if !key.verify(&message, &signature.signature) {
            return Err(AuthFault::Mismatch.into());
        }
        if let Some(cert) = certified
            && cert != client_id
        {
            return Err(ApiError::AccessDenied {
                reason: format!(
                    "client-id {client_id:?} does not match the client certificate ({cert:?})"
                ),
            });
        }
        if !self.replay.first_use(client_id, &signature.signature) {
            return Err(AuthFault::Replayed.into());
        }
        Ok((client_id.to_owned(), true))
    }

    /// Signature headers for a message from us (`time_header` is `response-time` or
    /// `request-time`); none without a signing key.
    fn sign(
        &self,
        method: &str,
        path: &str,
        client_id: &str,
        time_header: &'static str,
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        let Some((version, signer)) = &self.signer else {
            return Vec::new();
        };
        let time = format_time(SystemTime::now());
        let message = string_to_sign(method, path, client_id, &time, body);
        let Some(signature) = signer.sign(&message) else {
            tracing::error!("aplus: signing failed");
            return Vec::new();
        };
        vec![
            (headers::CLIENT_ID, client_id.to_owned()),
            (time_header, time),
            (
                headers::SIGNATURE,
                AplusSignatureHeader {
                    key_version: *version,
                    signature,
                }
                .format(),
            ),
        ]
    }

    async fn respond(&self, req: Inbound<'_>, dispatch: Dispatch) -> Outbound {
        let route = req
            .path
            .strip_prefix(ROUTES)
            .and_then(AplusRoute::from_name);
        let Some(route) = route else {
            let e = ApiError::NotFound {
                path: req.path.to_owned(),
            };
            return unsigned(result_of(&e.into(), AplusRoute::Pay));
        };
        if req.method != "POST" {
            let e = ApiError::MethodNotAllowed {
                method: req.method.to_owned(),
                path: req.path.to_owned(),
                allowed: "POST",
            };
            let mut refused = unsigned(result_of(&e.into(), route));
            refused.headers.push(("allow", "POST".to_owned()));
            return refused;
        }
        let (client_id, signed) = match self.authenticate(&req) {
            Ok(who) => who,
            Err(e) => {
                if e.side() != Side::Wallet {
                    tracing::warn!("aplus: {e}");
                }
                return unsigned(result_of(&e.into(), route));
            }
        };
        let ctx = RequestContext {
            client_id: client_id.clone(),
            body_sha256: body_digest(req.body),
            received_at: req.received_at,
            unauthenticated_demo: !signed,
            scheme: NAME,
            scheme_ref: None,
            request_id: req.request_id.to_owned(),
        };
        tracing::Span::current().record("client_id", ctx.client_id.as_str());
        let (status, body) = match self.answer(&req, route, ctx, dispatch).await {
            Ok(reply) => reply,
            Err(fault) => {
                let (status, result) = result_of(&fault, route);
                (status, json(&serde_json::json!({ "result": result })))
            }
        };
        let headers = if signed {
            self.sign(
                req.method,
                &req.target(),
                &client_id,
                headers::RESPONSE_TIME,
                &body,
            )
        } else {
            Vec::new()
        };
        Outbound {
            status,
            content_type: CONTENT_TYPE,
            headers,
            body,
        }
    }

    async fn answer(
        &self,
        req: &Inbound<'_>,
        route: AplusRoute,
        ctx: RequestContext,
        dispatch: Dispatch,
    ) -> Result<(StatusCode, Vec<u8>), AplusFault> {
        if let Some(ct) = req.header("content-type")?
            && !ct
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        {
            return Err(AplusFault::MediaType { got: ct.to_owned() });
        }
        let body = req.body;
        Ok(match route {
            AplusRoute::UserInitiatedPay => {
                let r: AplusUserInitiatedPayRequest = parse_json(body)?;
                self.user_initiated_pay(ctx, r, &dispatch).await
            }
            AplusRoute::Pay => {
                let r: AplusPayRequest = parse_json(body)?;
                self.pay(ctx, r, &dispatch).await?
            }
            AplusRoute::InquiryPayment => {
                let r: AplusInquiryPaymentRequest = parse_json(body)?;
                let r = PaymentInquiryRequest::try_from(r)?;
                let handled = dispatch.run(|p| p.inquire_payment(ctx, r)).await;
                render(handled, route, AplusPaymentResponse::failed, |a, result| {
                    AplusPaymentResponse::of(&a.body, result, true)
                })
            }
            AplusRoute::CancelPayment => {
                let r: AplusCancelPaymentRequest = parse_json(body)?;
                let r = r.into();
                let handled = dispatch.run(|p| p.cancel(ctx, r)).await;
                render(
                    handled,
                    route,
                    AplusCancelPaymentResponse::failed,
                    |a, result| AplusCancelPaymentResponse::of(&a.body, result),
                )
            }
            AplusRoute::Refund => {
                let r: AplusRefundRequest = parse_json(body)?;
                let r = r.into();
                let handled = dispatch.run(|p| p.refund(ctx, r)).await;
                render(handled, route, AplusRefundResponse::failed, |a, result| {
                    AplusRefundResponse::of(&a.body, result, false)
                })
            }
            AplusRoute::InquiryRefund => {
                let r: AplusInquiryRefundRequest = parse_json(body)?;
                let r = r.try_into()?;
                let handled = dispatch.run(|p| p.inquire_refund(ctx, r)).await;
                render(handled, route, AplusRefundResponse::failed, |a, result| {
                    AplusRefundResponse::of(&a.body, result, true)
                })
            }
        })
    }

    /// Canonical decode, then (when the amount is known) canonical quote. The canonical request
    /// ids are derived from the body hash: `aplus-d-<hash>` and `aplus-q-<hash>`.
    async fn user_initiated_pay(
        &self,
        ctx: RequestContext,
        r: AplusUserInitiatedPayRequest,
        dispatch: &Dispatch,
    ) -> (StatusCode, Vec<u8>) {
        let route = AplusRoute::UserInitiatedPay;
        let fail = |e: ApiError| {
            let (status, result) = result_of(&e.into(), route);
            (status, json(&AplusUserInitiatedPayResponse::failed(result)))
        };
        let currency = match r.pay_to_currency.map(|c| c.0).or_else(|| {
            self.clients
                .get(&ctx.client_id)
                .and_then(|c| c.pay_to_currency)
        }) {
            Some(c) => c,
            None => {
                return fail(ApiError::param(
                    "payToCurrency",
                    "missing, and no pay_to_currency is configured for this client",
                ));
            }
        };
        let hash = ctx
            .body_sha256
            .get(..40)
            .unwrap_or(&ctx.body_sha256)
            .to_owned();
        let ids = (
            RequestId::new(format!("aplus-d-{hash}")),
            RequestId::new(format!("aplus-q-{hash}")),
        );
        let (Ok(decode_id), Ok(quote_id)) = ids else {
            return fail(ApiError::Unknown {
                side: Side::Gateway,
                reason: "derived request id refused".to_owned(),
            });
        };
        let decode = DecodeRequest {
            decode_request_id: decode_id,
            customer_id: r.customer_id.clone(),
            code_value: r.code_value.clone(),
            payer_currency: currency,
        };
        let decode_ctx = ctx.clone();
        let decoded = match dispatch
            .run(|p| p.decode(decode_ctx, decode))
            .await
            .and_then(Answer::into_success)
        {
            Ok(body) => body,
            Err(e) => return fail(e),
        };
        let order_amount = r.order_amount.map(|a| a.amount());
        if decoded.amount.is_none() && order_amount.is_none() {
            // A static code: the payer enters the amount, the wallet asks again with orderAmount.
            return (
                StatusCode::OK,
                json(&AplusUserInitiatedPayResponse::of(&decoded, None, None)),
            );
        }
        let quote = QuoteRequest {
            quote_request_id: quote_id,
            decode_id: decoded.decode_id.clone(),
            amount: r.order_amount.map(|a| a.0),
            payer_currency: currency,
        };
        let client = ctx.client_id.clone();
        let quoted = match dispatch
            .run(|p| p.quote(ctx, quote))
            .await
            .and_then(Answer::into_success)
        {
            Ok(body) => body,
            Err(e) => return fail(e),
        };
        self.quotes.insert(
            (client, quoted.quote_id.to_string()),
            (quoted.merchant_amount.0, quoted.payer_amount.0),
        );
        let start = format_time(SystemTime::now());
        (
            StatusCode::OK,
            json(&AplusUserInitiatedPayResponse::of(
                &decoded,
                order_amount,
                Some((&quoted, start)),
            )),
        )
    }

    /// Checks the amounts against the quote, then canonical pay.
    async fn pay(
        &self,
        ctx: RequestContext,
        r: AplusPayRequest,
        dispatch: &Dispatch,
    ) -> Result<(StatusCode, Vec<u8>), AplusFault> {
        let key = (ctx.client_id.clone(), r.payment_quote.quote_id.to_string());
        match self.quotes.get(&key) {
            Some((merchant, payer)) => {
                let check = |field: &str, sent: Amount, quoted: Amount| {
                    if sent == quoted {
                        Ok(())
                    } else {
                        Err(ApiError::param(
                            field,
                            format!("{sent} is not the quote's {quoted} (quote {})", key.1),
                        ))
                    }
                };
                check("paymentAmount", r.payment_amount.amount(), merchant)?;
                check("payToAmount", r.pay_to_amount.amount(), payer)?;
            }
            None => {
                // Not a quote we remember: only a repeat of an existing payment may go on (the
                // pipeline replays it, or refuses a different body).
                let ask = PaymentInquiryRequest {
                    payment: PaymentRef::RequestId(r.payment_request_id.clone()),
                };
                let inquiry_ctx = ctx.clone();
                if dispatch
                    .run(|p| p.inquire_payment(inquiry_ctx, ask))
                    .await
                    .is_err()
                {
                    return Err(ApiError::param(
                        "paymentQuote.quoteId",
                        format!(
                            "quote {} was not issued to this client by userInitiatedPay in the last {} min",
                            key.1,
                            QUOTE_MEMORY.as_secs() / 60
                        ),
                    )
                    .into());
                }
            }
        }
        let canonical = (&r).into();
        let handled = dispatch.run(|p| p.pay(ctx, canonical)).await;
        Ok(render(
            handled,
            AplusRoute::Pay,
            AplusPaymentResponse::failed,
            |a, result| {
                // A replayed U whose payment has since reached its end says the end.
                let result = match (result.result_status, a.body.payment_status) {
                    (ResultStatus::U, s) if s != PaymentStatus::Processing => {
                        transformers::payment_result(&a.body)
                    }
                    _ => result,
                };
                AplusPaymentResponse::of(&a.body, result, false)
            },
        ))
    }

    fn notice_body(notice: &Notice) -> Vec<u8> {
        match &notice.event {
            NoticeEvent::Payment(p) => json(&AplusNotifyPayment::of(&notice.notice_id, p)),
            NoticeEvent::Refund(r) => json(&AplusNotifyRefund::of(&notice.notice_id, r)),
        }
    }
}

/// JSON bytes; on the (impossible for these types) serialisation failure, an UNKNOWN_EXCEPTION.
fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|e| {
        tracing::error!("aplus: response not serialisable: {e}");
        br#"{"result":{"resultStatus":"U","resultCode":"UNKNOWN_EXCEPTION","resultMessage":"response not serialisable"}}"#.to_vec()
    })
}

/// A handled canonical call as an aplus response: `ok` builds it from the answer and the result its
/// outcome means, `failed` from a result alone.
fn render<T, R: Serialize>(
    handled: Handled<T>,
    route: AplusRoute,
    failed: impl FnOnce(AplusResult) -> R,
    ok: impl FnOnce(&Answer<T>, AplusResult) -> R,
) -> (StatusCode, Vec<u8>) {
    match handled {
        Ok(answer) => {
            let (status, result) = match &answer.outcome {
                None => (StatusCode::OK, AplusResult::success()),
                Some(e) => {
                    if e.side() != Side::Wallet {
                        tracing::info!("aplus {}: {e}", route.name());
                    }
                    (
                        transformers::http_of(e),
                        transformers::code_of(e, route).result(e.to_string()),
                    )
                }
            };
            (status, json(&ok(&answer, result)))
        }
        Err(e) => {
            if e.side() != Side::Wallet {
                tracing::warn!("aplus {}: {e}", route.name());
            }
            let (status, result) = result_of(&AplusFault::Api(e), route);
            (status, json(&failed(result)))
        }
    }
}

fn unsigned((status, result): (StatusCode, AplusResult)) -> Outbound {
    Outbound {
        status,
        content_type: CONTENT_TYPE,
        headers: Vec::new(),
        body: json(&serde_json::json!({ "result": result })),
    }
}

/// The path (and query) of an `http://` or `https://` URL: what a signature covers.
pub fn url_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let at = rest.find('/')?;
    if at == 0 || rest.contains(char::is_whitespace) {
        return None;
    }
    rest.get(at..)
}

impl Scheme for Aplus {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prefix(&self) -> &'static str {
        PREFIX
    }

    fn is_demo(&self) -> bool {
        self.demo_client.is_some()
    }

    fn serve<'a>(&'a self, req: Inbound<'a>, dispatch: Dispatch) -> BoxFuture<'a, Outbound> {
        Box::pin(self.respond(req, dispatch))
    }

    fn refuse(&self, req: &Inbound<'_>, error: &ApiError) -> Outbound {
        let route = req
            .path
            .strip_prefix(ROUTES)
            .and_then(AplusRoute::from_name)
            .unwrap_or(AplusRoute::Pay);
        let (status, result) = (
            transformers::http_of(error),
            transformers::code_of(error, route),
        );
        unsigned((status, result.result(error.to_string())))
    }

    fn notification(&self, notice: &Notice) -> Result<Option<NoticeMessage>, ApiError> {
        let Some(url) = self
            .clients
            .get(&notice.client_id)
            .and_then(|c| c.notify_url.as_deref())
        else {
            return Ok(None);
        };
        let path = url_path(url).ok_or_else(|| ApiError::Unknown {
            side: Side::Gateway,
            reason: format!("notify_url {url:?} has no path"),
        })?;
        let body = Self::notice_body(notice);
        let headers = self.sign(
            "POST",
            path,
            &notice.client_id,
            headers::REQUEST_TIME,
            &body,
        );
        Ok(Some(NoticeMessage {
            url: url.to_owned(),
            content_type: CONTENT_TYPE,
            headers,
            body,
        }))
    }

    fn demo_walkthrough(&self, base: &str, code: &str) -> Option<String> {
        if !self.is_demo() {
            return None;
        }
        let ct = "-H 'content-type: application/json'";
        Some(format!(
            r#"
 The same through the aplus scheme (Alipay+-shaped; unsigned in the demo):

A={base}{ROUTES}
R=$(curl -s -X POST ${{A}}userInitiatedPay {ct} -d '{{"codeValue":"{code}","customerId":"my-customer-1","payToCurrency":"MYR","orderAmount":{{"currency":"SGD","value":"1250"}}}}'); echo "$R"; QUOTE_ID=$(echo "$R" | sed -E 's/.*"quoteId":"([^"]+)".*/\1/'); MYR=$(echo "$R" | sed -E 's/.*"payToAmount":\{{"currency":"MYR","value":"([0-9]+)"\}}.*/\1/')
PAY_ID=aplus-pay-$RANDOM; curl -s -X POST ${{A}}pay {ct} -d '{{"paymentRequestId":"'$PAY_ID'","paymentQuote":{{"quoteId":"'$QUOTE_ID'"}},"paymentAmount":{{"currency":"SGD","value":"1250"}},"payToAmount":{{"currency":"MYR","value":"'$MYR'"}},"customerId":"my-customer-1"}}'; echo
curl -s -X POST ${{A}}inquiryPayment {ct} -d '{{"paymentRequestId":"'$PAY_ID'"}}'; echo
"#
        ))
    }

    fn acknowledged(&self, status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> bool {
        status == StatusCode::OK
            && serde_json::from_slice::<AplusNotifyAck>(body)
                .is_ok_and(|a| a.result.result_status == ResultStatus::S)
    }
}

/// Builds the aplus scheme (the registry's entry point).
pub fn build(settings: &SchemeSettings) -> Result<Arc<dyn Scheme>, SchemeConfigError> {
    Ok(Arc::new(Aplus::new(settings)?))
}

#[cfg(test)]
mod tests;
