//! The aplus scheme: the Alipay+ side of the Alipay+ MPP API for merchant-presented codes, so a
//! wallet (a Mobile Payment Provider, MPP) built to that API connects by changing its base URL to
//! `<gateway>/schemes/aplus` (not certified by, nor affiliated with, Alipay+).
//!
//! In (wallet → gateway): `POST /schemes/aplus/aps/api/v1/payments/userInitiatedPay` (the scanned
//! code → the order, the quote and a `paymentRequestId` we assign) and `.../notifyPayment` (the
//! wallet debited its user, or not: S sends the authorisation to the acquirer through the canonical
//! pay). JSON bodies whose values are all strings, signed RSA256 over
//! `"<METHOD> <path>\n<client-id>.<request-time>.<body>"`.
//! Out: `{"result":{resultStatus,resultCode,resultMessage}, ...}` signed the same way with our key
//! (`response-time`); and (gateway → wallet, through the journal's outbox and the `notify` room)
//! `cancelPayment` when the domestic side failed after the wallet debited its user, `refund` for a
//! merchant refund, `inquiryPayment`, each POSTed to the client's `wallet_api_url` + the API name,
//! signed like a request from us, the wallet's signed answer verified with its key.
//! Errors: every canonical [`ApiError`] has one Alipay+ result code (`transformers::code_of`);
//! HTTP 200 for business results, 401/403/404/405/408/413/415 for refusals.
//! Spec: `spec/schemes/aplus.md`, `spec/schemes/aplus.openapi.yaml`.
//!
//! ```text
//! mod.rs           configuration, routes, authentication, orders, the pipeline calls, outbound calls
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
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use serde::Serialize;

use super::{
    BoxFuture, Dispatch, Inbound, InquiryAnswer, Notice, NoticeEvent, NoticeMessage, Outbound,
    Peer, Scheme, SchemeConfigError, SchemeSettings, WalletCall,
};
use crate::money::{Amount, Currency};
use crate::payment::{Answer, RequestContext};
use crate::payment::{ApiError, Side};
use crate::payment::{
    CustomerId, DecodeRequest, Money, OrderRequest, OrderResultRequest, QuoteRequest, RequestId,
    ResultStatus, WalletResult,
};
use crate::scheme::native::auth::{AuthFault, ReplayGuard, Seen, body_digest};
use crate::scheme::parse_json;
use crate::telemetry::metrics;
use crate::time::format_rfc3339;
use sign::{
    AplusPublicKey, AplusSignatureHeader, AplusSigner, format_time, parse_time, string_to_sign,
};
use transformers::{
    AplusFault, AplusIds, AplusInquiryPaymentAnswer, AplusNotifyPaymentRequest, AplusPaymentCall,
    AplusRef, AplusRefundCall, AplusResult, AplusResultOnly, AplusRoute,
    AplusUserInitiatedPayRequest, AplusUserInitiatedPayResponse, AplusWalletApi, result_of,
    unknown_fields,
};

/// The registry name.
pub const NAME: &str = "aplus";
/// The path prefix: a wallet's base URL is `<gateway>/schemes/aplus`.
pub const PREFIX: &str = "/schemes/aplus/";
/// The official API paths live under this path.
pub const ROUTES: &str = "/schemes/aplus/aps/api/v1/payments/";
/// The JSON content type of requests, responses and calls.
pub const CONTENT_TYPE: &str = "application/json; charset=UTF-8";
/// Default `request-time` window (± this).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);
/// The longest an order made by userInitiatedPay is remembered (its quote's expiry ends it sooner).
pub const ORDER_MEMORY: Duration = Duration::from_secs(3600);
/// The byte bound of each of the two order memories (orders, scans).
pub const ORDER_BYTES: u64 = 64 * 1024 * 1024;
/// The demo client's wallet currency when `[schemes.aplus]` gives it none.
pub const DEMO_PAY_TO_CURRENCY: &str = "MYR";

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
    /// Its RSA public keys by `keyVersion` (its requests and its answers to our calls).
    pub keys: BTreeMap<u32, AplusPublicKey>,
    /// Where its APIs are (`https://wallet.example/aps/api/v1/payments/`): the API name is
    /// appended (`cancelPayment`, `refund`, `inquiryPayment`).
    pub wallet_api_url: Option<String>,
    /// Its wallet currency: what `payToAmount` is in.
    pub pay_to_currency: Option<Currency>,
    /// The id Alipay+ assigned to this wallet (`pspId`), sent in our answers and calls.
    pub psp_id: Option<String>,
    /// Where this wallet sends notifyPayment (`paymentNotifyUrl`), when not the gateway's.
    pub payment_notify_url: Option<String>,
}

/// A payment order userInitiatedPay handed out, until the wallet notifies its result (memory only,
/// bounded in bytes and time; see the spec for what a restart means for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AplusPendingOrder {
    /// Who scanned.
    pub client_id: String,
    /// The canonical quote behind it.
    pub quote_id: RequestId,
    /// The user.
    pub customer_id: CustomerId,
    /// Merchant currency.
    pub payment_amount: Amount,
    /// Wallet currency.
    pub pay_to_amount: Amount,
    /// The wallet's `passThroughInfo`, kept with the order.
    pub pass_through_info: Option<String>,
    /// Its key in the scan memory (a repeat scan of a paid order is refused).
    pub scan_key: String,
}

impl AplusPendingOrder {
    fn weight(&self) -> usize {
        128 + self.client_id.len()
            + self.quote_id.as_str().len()
            + self.customer_id.expose().len()
            + self.pass_through_info.as_ref().map_or(0, String::len)
            + self.scan_key.len()
    }
}

/// A scan answered with an order: a repeat within the code's validity gets the same answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AplusScan {
    /// Who scanned (a repeat by another user is REPEAT_REQ_INCONSISTENT).
    pub customer_id: String,
    /// The answer's body.
    pub answer: Vec<u8>,
    /// Until when (the order's expiry).
    pub until: SystemTime,
    /// The order it made (`paymentRequestId`), once the wallet notified S for it: a repeat is
    /// refused (`ORDER_IS_CLOSED`), the code was paid.
    pub paid: Option<String>,
}

impl AplusScan {
    fn weight(&self) -> usize {
        64 + self.customer_id.len() + self.answer.len()
    }
}

/// The aplus scheme.
pub struct Aplus {
    demo_client: Option<String>,
    /// The acquiring side's id (`acquirerId`), sent in our answers and calls when configured.
    acquirer_id: Option<String>,
    /// Where wallets send notifyPayment (`paymentNotifyUrl`), when configured.
    payment_notify_url: Option<String>,
    clients: BTreeMap<String, AplusClient>,
    signer: Option<(u32, AplusSigner)>,
    window: Duration,
    replay: ReplayGuard,
    /// Our `paymentRequestId` → the order, until the wallet's notification.
    orders: Cache<String, Arc<AplusPendingOrder>>,
    /// (client, code value[, user, amount]) → the answer, for repeats of userInitiatedPay.
    scans: Cache<String, Arc<AplusScan>>,
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

/// One of the order memories: at most `max_bytes` ([`ORDER_BYTES`]) by weight, the least recently used out
/// first once full (as the gateway's caches: a new order is always admitted, never refused by a
/// frequency estimate), each entry for at most [`ORDER_MEMORY`].
fn order_memory<V: Send + Sync + 'static>(
    max_bytes: u64,
    weight: fn(&V) -> usize,
) -> Cache<String, Arc<V>> {
    Cache::builder()
        .max_capacity(max_bytes)
        .weigher(move |k: &String, v: &Arc<V>| {
            u32::try_from(k.len() + weight(v)).unwrap_or(u32::MAX)
        })
        .eviction_policy(EvictionPolicy::lru())
        .time_to_live(ORDER_MEMORY)
        .build()
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

/// An id Alipay+ assigns (`acquirerId`, `pspId`): 1 to 64 visible ASCII characters.
fn alipay_id(key: &str, value: &toml::Value) -> Result<String, SchemeConfigError> {
    let id = value
        .as_str()
        .ok_or_else(|| config_error(key, "must be a string"))?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(config_error(
            key,
            format!("{id:?} is not an id of 1 to 64 visible ASCII characters"),
        ));
    }
    Ok(id.to_owned())
}

/// Where a wallet sends notifyPayment: an http(s) URL (≤ 1024 characters).
fn notify_url(key: &str, value: &toml::Value) -> Result<String, SchemeConfigError> {
    let url = value
        .as_str()
        .ok_or_else(|| config_error(key, "must be a URL (string)"))?;
    if url_path(url).is_none() || url.len() > 1024 {
        return Err(config_error(
            key,
            format!("{url:?} is not an http:// or https:// URL with a path"),
        ));
    }
    Ok(url.to_owned())
}

impl Aplus {
    /// `acquirerId` and `pspId` for `client`, as configured.
    fn ids(&self, client: &str) -> AplusIds {
        AplusIds {
            acquirer_id: self.acquirer_id.clone(),
            psp_id: self.clients.get(client).and_then(|c| c.psp_id.clone()),
        }
    }

    /// `paymentNotifyUrl` for `client`: its own, else the gateway's.
    fn notify_url_of(&self, client: &str) -> Option<String> {
        self.clients
            .get(client)
            .and_then(|c| c.payment_notify_url.clone())
            .or_else(|| self.payment_notify_url.clone())
    }

    /// Builds the scheme from `[schemes.aplus]` (see `spec/schemes/aplus.md` §Configuration).
    pub fn new(settings: &SchemeSettings) -> Result<Aplus, SchemeConfigError> {
        let base = settings.base_dir.as_path();
        let mut signer = None;
        let mut signing_version = None;
        let mut window = DEFAULT_WINDOW;
        let mut clients = BTreeMap::new();
        let mut acquirer_id = None;
        let mut payment_notify_url = None;
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
                "acquirer_id" => acquirer_id = Some(alipay_id(key, value)?),
                "payment_notify_url" => payment_notify_url = Some(notify_url(key, value)?),
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
                        "unknown key (signing_key_pem, signing_key_version, time_window_secs, \
                         acquirer_id, payment_notify_url, clients)",
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
        if let Some(demo) = &settings.demo_client {
            // The demo wallet pays in MYR unless its table says otherwise (the banner's
            // walkthrough sends the official body: codeValue and customerId only).
            let client = clients.entry(demo.clone()).or_insert_with(|| AplusClient {
                keys: BTreeMap::new(),
                wallet_api_url: None,
                pay_to_currency: None,
                psp_id: None,
                payment_notify_url: None,
            });
            if client.pay_to_currency.is_none() {
                client.pay_to_currency = Currency::from_code(DEMO_PAY_TO_CURRENCY).ok();
            }
        }
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
            if let Some((id, _)) = clients.iter().find(|(_, c)| c.pay_to_currency.is_none()) {
                return Err(config_error(
                    format!("clients.{id}.pay_to_currency"),
                    "missing: the wallet's currency (what payToAmount is in)",
                ));
            }
        }
        Ok(Aplus {
            demo_client: settings.demo_client.clone(),
            acquirer_id,
            payment_notify_url,
            clients,
            signer,
            window,
            replay: ReplayGuard::new(window, settings.replay_bytes, NAME),
            orders: order_memory(ORDER_BYTES, AplusPendingOrder::weight),
            scans: order_memory(ORDER_BYTES, AplusScan::weight),
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
            wallet_api_url: None,
            pay_to_currency: None,
            psp_id: None,
            payment_notify_url: None,
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
                "wallet_api_url" => {
                    let url = value
                        .as_str()
                        .ok_or_else(|| config_error(&name, "must be a URL (string)"))?;
                    if url_path(url).is_none() || !url.ends_with('/') {
                        return Err(config_error(
                            &name,
                            format!(
                                "{url:?} is not an http:// or https:// URL ending in / \
                                 (the API name is appended: .../cancelPayment)"
                            ),
                        ));
                    }
                    client.wallet_api_url = Some(url.to_owned());
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
                "psp_id" => client.psp_id = Some(alipay_id(&name, value)?),
                "payment_notify_url" => {
                    client.payment_notify_url = Some(notify_url(&name, value)?);
                }
                other => {
                    return Err(config_error(
                        format!("{prefix}.{other}"),
                        "unknown key (public_keys, wallet_api_url, pay_to_currency, psp_id, \
                         payment_notify_url)",
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
        match self.replay.first_use(client_id, &signature.signature) {
            Seen::First => {}
            Seen::Replay => return Err(AuthFault::Replayed.into()),
            Seen::Full => return Err(AuthFault::ReplayMemoryFull.into()),
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
        signer
            .signed_headers(*version, method, path, client_id, time_header, body)
            .unwrap_or_else(|| {
                tracing::error!("aplus: signing failed");
                Vec::new()
            })
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
            return unsigned(result_of(&e.into()));
        };
        if req.method != "POST" {
            let e = ApiError::MethodNotAllowed {
                method: req.method.to_owned(),
                path: req.path.to_owned(),
                allowed: "POST",
            };
            let mut refused = unsigned(result_of(&e.into()));
            refused.headers.push(("allow", "POST".to_owned()));
            return refused;
        }
        let (client_id, signed) = match self.authenticate(&req) {
            Ok(who) => who,
            Err(e) => {
                if e.side() != Side::Wallet {
                    tracing::warn!("aplus: {e}");
                }
                return unsigned(result_of(&e.into()));
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
        crate::telemetry::correlation::record_client_id(&ctx.client_id);
        let (status, body) = match self.answer(&req, route, ctx, dispatch).await {
            Ok(reply) => reply,
            Err(fault) => {
                let (status, result) = result_of(&fault);
                (status, json(&AplusResultOnly { result }))
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
        if let Some(ct) = req.header(&crate::scheme::CONTENT_TYPE)?
            && !ct
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        {
            return Err(AplusFault::MediaType { got: ct.to_owned() });
        }
        let value: serde_json::Value = parse_json(req.body)?;
        let unknown = unknown_fields(&value, route.known_fields());
        if !unknown.is_empty() {
            // Alipay+ adds fields over time: a wallet sending one must not be refused.
            tracing::info!(api = route.name(), fields = ?unknown, "aplus: unknown fields ignored");
        }
        match route {
            AplusRoute::UserInitiatedPay => {
                let r: AplusUserInitiatedPayRequest = parse_json(req.body)?;
                r.check()?;
                Ok(self.user_initiated_pay(ctx, r, &dispatch).await)
            }
            AplusRoute::NotifyPayment => {
                let r: AplusNotifyPaymentRequest = parse_json(req.body)?;
                r.check()?;
                self.notify_payment(ctx, r, &dispatch).await
            }
        }
    }

    /// The repeat keys of a scan: (client, code) for a dynamic code (the official idempotency:
    /// the code value within its validity), (client, code, user, amount) for a static one.
    fn scan_keys(client: &str, r: &AplusUserInitiatedPayRequest) -> (String, String) {
        let dynamic = format!("{client}\u{0}{}", r.code_value.as_str());
        let amount = r
            .order_amount
            .map(|a| a.amount().to_string())
            .unwrap_or_default();
        let fixed = format!("{dynamic}\u{0}{}\u{0}{amount}", r.customer_id.expose());
        (dynamic, fixed)
    }

    /// A repeat of a scan answered before, still valid: its answer, or REPEAT_REQ_INCONSISTENT
    /// for another user.
    fn repeat_scan(
        &self,
        client: &str,
        r: &AplusUserInitiatedPayRequest,
        now: SystemTime,
    ) -> Option<Result<Vec<u8>, AplusFault>> {
        let (dynamic, fixed) = Self::scan_keys(client, r);
        let scan = self
            .scans
            .get(&dynamic)
            .or_else(|| self.scans.get(&fixed))
            .filter(|s| s.until > now)?;
        if scan.customer_id != r.customer_id.expose() {
            return Some(Err(ApiError::RepeatRequestInconsistent {
                request_id: format!(
                    "codeValue (scanned by another customerId within the code's validity, {})",
                    format_rfc3339(scan.until)
                ),
            }
            .into()));
        }
        if let Some(id) = &scan.paid {
            return Some(Err(AplusFault::Closed {
                payment_request_id: id.clone(),
                reason: "the wallet already notified its result for this code's order".to_owned(),
            }));
        }
        Some(Ok(scan.answer.clone()))
    }

    /// Canonical decode, then canonical quote; the order gets our `paymentRequestId`.
    async fn user_initiated_pay(
        &self,
        ctx: RequestContext,
        r: AplusUserInitiatedPayRequest,
        dispatch: &Dispatch,
    ) -> (StatusCode, Vec<u8>) {
        let fail = |e: AplusFault| {
            let (status, result) = result_of(&e);
            (status, json(&AplusUserInitiatedPayResponse::failed(result)))
        };
        let now = SystemTime::now();
        match self.repeat_scan(&ctx.client_id, &r, now) {
            Some(Ok(answer)) => return (StatusCode::OK, answer),
            Some(Err(e)) => return fail(e),
            None => {}
        }
        let fail = |e: ApiError| fail(e.into());
        let Some(currency) = self
            .clients
            .get(&ctx.client_id)
            .and_then(|c| c.pay_to_currency)
        else {
            return fail(ApiError::Unavailable {
                reason: format!(
                    "client {} has no pay_to_currency configured in [schemes.aplus.clients]",
                    ctx.client_id
                ),
            });
        };
        // Fresh canonical ids for each new scan (a repeat was answered above).
        let seed = body_digest(format!("{}|{}|{now:?}", ctx.client_id, ctx.body_sha256).as_bytes());
        let seed = seed.get(..40).unwrap_or(&seed);
        let (Ok(decode_id), Ok(quote_id)) = (
            RequestId::new(format!("aplus-d-{seed}")),
            RequestId::new(format!("aplus-q-{seed}")),
        ) else {
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
        if decoded.amount.is_none() && r.order_amount.is_none() {
            // A static code without the amount: the order only (our extension; spec §3.1).
            return (
                StatusCode::OK,
                json(&AplusUserInitiatedPayResponse::order_only(&decoded)),
            );
        }
        let quote = QuoteRequest {
            quote_request_id: quote_id,
            decode_id: decoded.decode_id.clone(),
            amount: r.order_amount.map(|a| a.0),
            payer_currency: currency,
        };
        let client = ctx.client_id.clone();
        let order_ctx = ctx.clone();
        let quoted = match dispatch
            .run(|p| p.quote(ctx, quote))
            .await
            .and_then(Answer::into_success)
        {
            Ok(body) => body,
            Err(e) => return fail(e),
        };
        let digest = body_digest(quoted.quote_id.as_str().as_bytes());
        let Ok(payment_request_id) =
            RequestId::new(format!("APR{}", digest.get(..40).unwrap_or(&digest)))
        else {
            return fail(ApiError::Unknown {
                side: Side::Gateway,
                reason: "derived paymentRequestId refused".to_owned(),
            });
        };
        // The order is durable before the wallet sees it (spec §4): ORDERED in the journal, with
        // its inquiry due at paymentExpiryTime.
        let order = OrderRequest {
            payment_request_id: payment_request_id.clone(),
            quote_id: quoted.quote_id.clone(),
            customer_id: r.customer_id.clone(),
        };
        let mut order_ctx = order_ctx;
        order_ctx.scheme_ref = Some(
            AplusRef {
                payment_request_id: payment_request_id.clone(),
                payment_id: None,
            }
            .encode(),
        );
        if let Err(e) = dispatch
            .run(|p| p.order(order_ctx, order))
            .await
            .and_then(Answer::into_success)
        {
            return fail(e);
        }
        let answer = json(&AplusUserInitiatedPayResponse {
            ids: self.ids(&client),
            payment_notify_url: self.notify_url_of(&client),
            ..AplusUserInitiatedPayResponse::of(
                &decoded,
                &quoted,
                payment_request_id.clone(),
                format_time(now),
            )
        });
        let until = parse_time(&quoted.expires_at).unwrap_or(now + Duration::from_secs(60));
        let (dynamic, fixed) = Self::scan_keys(&client, &r);
        let key = if decoded.amount.is_some() {
            dynamic
        } else {
            fixed
        };
        self.orders.insert(
            payment_request_id.to_string(),
            Arc::new(AplusPendingOrder {
                client_id: client.clone(),
                quote_id: quoted.quote_id.clone(),
                customer_id: r.customer_id.clone(),
                payment_amount: quoted.merchant_amount.0,
                pay_to_amount: quoted.payer_amount.0,
                pass_through_info: r.pass_through_info.clone(),
                scan_key: key.clone(),
            }),
        );
        self.scans.insert(
            key,
            Arc::new(AplusScan {
                customer_id: r.customer_id.expose().to_owned(),
                answer: answer.clone(),
                until,
                paid: None,
            }),
        );
        (StatusCode::OK, answer)
    }

    /// The wallet's result for our order: S sends the authorisation (the canonical order
    /// result, from the journaled order: it survives a restart); F closes the order. Answered S
    /// once processed, whatever the acquirer said: a decline or a reversal reaches the wallet as
    /// our `cancelPayment` (spec §4).
    async fn notify_payment(
        &self,
        ctx: RequestContext,
        r: AplusNotifyPaymentRequest,
        dispatch: &Dispatch,
    ) -> Result<(StatusCode, Vec<u8>), AplusFault> {
        let id = r.payment_request_id.clone();
        let debited = r.payment_result.result_status == ResultStatus::S;
        let mut ctx = ctx;
        ctx.body_sha256 = r.digest();
        // The wallet's paymentId, kept with the payment for cancelPayment / refund.
        ctx.scheme_ref = r.payment_id.as_ref().map(|pid| {
            AplusRef {
                payment_request_id: id.clone(),
                payment_id: Some(pid.clone()),
            }
            .encode()
        });
        let result = if debited {
            WalletResult::Debited
        } else {
            WalletResult::NotDebited {
                reason: r.payment_result.result_code.clone(),
            }
        };
        let settle = OrderResultRequest {
            payment_request_id: id.clone(),
            result,
            merchant_amount: r.payment_amount.map(|a| Money(a.amount())),
            payer_amount: r.pay_to_amount.map(|a| Money(a.amount())),
            customer_id: r.customer_id.clone(),
        };
        let client = ctx.client_id.clone();
        let handled = dispatch.run(|p| p.order_result(ctx, settle)).await;
        let order = self
            .orders
            .get(id.as_str())
            .filter(|o| o.client_id == client);
        match handled {
            Ok(answer) => {
                if let Some(order) = &order {
                    self.remember_result(&id, order, debited);
                }
                if !debited {
                    tracing::info!(
                        payment_request_id = %id,
                        code = %r.payment_result.result_code,
                        "aplus: the wallet did not debit its user; order closed"
                    );
                } else {
                    match &answer.outcome {
                        None => tracing::info!(payment_request_id = %id, "aplus: authorised"),
                        Some(e) => tracing::info!(
                            payment_request_id = %id,
                            "aplus: not authorised ({e}); the wallet's payment is cancelled through cancelPayment"
                        ),
                    }
                }
                Ok(processed())
            }
            // Never issued, or closed (by an F, the wallet's answer to our inquiry, or our
            // cancel): nothing reaches the acquirer; a debited user must be given the money back.
            Err(ApiError::OrderNotFound { what, .. }) => {
                let why = if what == "payment order" {
                    "no payment order with this paymentRequestId was issued to this client"
                } else {
                    "the payment order is closed (the wallet's earlier result, its answer to our \
                     inquiryPayment, or our cancelPayment)"
                };
                Err(if debited {
                    refused_after_debit(&id, "not_open", why)
                } else {
                    closed(&id, why)
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Keeps the scan memory in step with the wallet's result: a paid code's repeat scan is
    /// refused; after an F the user may scan again.
    fn remember_result(&self, id: &RequestId, order: &AplusPendingOrder, debited: bool) {
        if !debited {
            self.orders.invalidate(id.as_str());
            self.scans.invalidate(&order.scan_key);
            return;
        }
        if let Some(scan) = self.scans.get(&order.scan_key) {
            self.scans.insert(
                order.scan_key.clone(),
                Arc::new(AplusScan {
                    paid: Some(id.to_string()),
                    ..(*scan).clone()
                }),
            );
        }
    }

    fn reference(notice: &Notice) -> Option<AplusRef> {
        if let Some(r) = notice.scheme_ref.as_deref().and_then(AplusRef::decode) {
            return Some(r);
        }
        match &notice.event {
            NoticeEvent::Payment(p) => Some(AplusRef {
                payment_request_id: p.payment_request_id.clone(),
                payment_id: None,
            }),
            NoticeEvent::Refund(_) => None,
        }
    }
}

/// `{"result": SUCCESS}`: the notification was processed.
fn processed() -> (StatusCode, Vec<u8>) {
    (
        StatusCode::OK,
        json(&AplusResultOnly {
            result: AplusResult::success(),
        }),
    )
}

/// F `ORDER_IS_CLOSED` for a notification we cannot act on.
fn closed(id: &RequestId, why: &str) -> AplusFault {
    AplusFault::Closed {
        payment_request_id: id.to_string(),
        reason: why.to_owned(),
    }
}

/// F `ORDER_IS_CLOSED` for a notification that the wallet debited its user (S) for an order we
/// do not authorise: nothing reached the acquirer and the wallet must give its user the money
/// back. Logged and counted (`qrbridge_debits_refused_total{scheme="aplus",reason}`, `reason`
/// `not_open` or `refused`).
fn refused_after_debit(id: &RequestId, reason: &'static str, why: &str) -> AplusFault {
    tracing::warn!(
        payment_request_id = %id,
        reason,
        "aplus: the wallet debited its user for an order we refuse ({why}): it must give the money back"
    );
    metrics::global().debit_refused(NAME, reason);
    closed(id, why)
}

/// JSON bytes; on the (impossible for these types) serialisation failure, an UNKNOWN_EXCEPTION.
fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|e| {
        tracing::error!("aplus: response not serialisable: {e}");
        br#"{"result":{"resultStatus":"U","resultCode":"UNKNOWN_EXCEPTION","resultMessage":"response not serialisable"}}"#.to_vec()
    })
}

fn unsigned((status, result): (StatusCode, AplusResult)) -> Outbound {
    Outbound {
        status,
        content_type: CONTENT_TYPE,
        headers: Vec::new(),
        body: json(&AplusResultOnly { result }),
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

/// The wallet's `result` in an answer to one of our calls.
fn answer_result(status: StatusCode, body: &[u8]) -> Option<AplusResult> {
    if status != StatusCode::OK {
        return None;
    }
    serde_json::from_slice::<AplusResultOnly>(body)
        .ok()
        .map(|a| a.result)
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

    fn refuse(&self, _req: &Inbound<'_>, error: &ApiError) -> Outbound {
        let (status, result) = (transformers::http_of(error), transformers::code_of(error));
        unsigned((status, result.result(error.to_string())))
    }

    fn calls(&self) -> &'static [WalletCall] {
        &[
            WalletCall::PaymentCancel,
            WalletCall::PaymentInquiry,
            WalletCall::RefundCredit,
        ]
    }

    fn notification(&self, notice: &Notice) -> Result<Option<NoticeMessage>, ApiError> {
        let internal = |reason: String| ApiError::Unknown {
            side: Side::Gateway,
            reason,
        };
        let (api, body) = match (notice.call, &notice.event) {
            (WalletCall::PaymentCancel | WalletCall::PaymentInquiry, NoticeEvent::Payment(_)) => {
                let of = Self::reference(notice)
                    .ok_or_else(|| internal("no paymentRequestId for the call".to_owned()))?;
                let api = if notice.call == WalletCall::PaymentCancel {
                    AplusWalletApi::CancelPayment
                } else {
                    AplusWalletApi::InquiryPayment
                };
                let call = AplusPaymentCall {
                    ids: self.ids(&notice.client_id),
                    payment_request_id: of.payment_request_id,
                    payment_id: of.payment_id,
                };
                (api, json(&call))
            }
            (WalletCall::RefundCredit, NoticeEvent::Refund(r)) => {
                let of = Self::reference(notice).ok_or_else(|| {
                    internal(format!(
                        "refund {}: the payment's aplus reference (scheme_ref) is missing",
                        r.refund_id
                    ))
                })?;
                let call = AplusRefundCall::of(
                    r,
                    &of,
                    self.ids(&notice.client_id),
                    format_time(SystemTime::now()),
                );
                (AplusWalletApi::Refund, json(&call))
            }
            (call, _) => {
                return Err(internal(format!(
                    "aplus makes no {call} call with this event"
                )));
            }
        };
        let base = self
            .clients
            .get(&notice.client_id)
            .and_then(|c| c.wallet_api_url.as_deref());
        let Some(base) = base else {
            return match notice.call {
                WalletCall::PaymentInquiry => Ok(None),
                _ => Err(internal(format!(
                    "client {} has no wallet_api_url: {} cannot be called (an operator must act)",
                    notice.client_id,
                    api.name()
                ))),
            };
        };
        let url = format!("{base}{}", api.name());
        let path = url_path(&url)
            .ok_or_else(|| internal(format!("wallet_api_url {base:?} has no path")))?;
        let headers = self.sign(
            "POST",
            path,
            &notice.client_id,
            headers::REQUEST_TIME,
            &body,
        );
        Ok(Some(NoticeMessage {
            url,
            content_type: CONTENT_TYPE,
            headers,
            body,
        }))
    }

    fn verify_answer(
        &self,
        notice: &Notice,
        message: &NoticeMessage,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), String> {
        if self.demo_client.is_some() {
            return Ok(());
        }
        let client = self
            .clients
            .get(&notice.client_id)
            .ok_or_else(|| format!("client {} is not configured", notice.client_id))?;
        let header = |name: &str| -> Result<&str, String> {
            headers
                .get(name)
                .ok_or_else(|| format!("the wallet's answer has no {name} header"))?
                .to_str()
                .map_err(|_| format!("the wallet's {name} header is not visible ASCII"))
        };
        let client_id = header(headers::CLIENT_ID)?;
        if client_id != notice.client_id {
            return Err(format!(
                "the wallet's answer is signed as {client_id:?}, not {:?}",
                notice.client_id
            ));
        }
        let time = header(headers::RESPONSE_TIME)?;
        let signature =
            AplusSignatureHeader::parse(header(headers::SIGNATURE)?).map_err(|e| e.to_string())?;
        let key = client
            .keys
            .get(&signature.key_version)
            .ok_or_else(|| format!("no key version {} for the wallet", signature.key_version))?;
        let path = url_path(&message.url).unwrap_or("/");
        let signed = string_to_sign("POST", path, client_id, time, body);
        if key.verify(&signed, &signature.signature) {
            Ok(())
        } else {
            Err("the wallet's answer signature does not verify".to_owned())
        }
    }

    fn inquiry_answer(
        &self,
        notice: &Notice,
        status: StatusCode,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Option<InquiryAnswer> {
        if status != StatusCode::OK {
            return None;
        }
        let answer: AplusInquiryPaymentAnswer = serde_json::from_slice(body).ok()?;
        let result = answer.wallet_result();
        let scheme_ref = match (&answer.payment_id, Self::reference(notice)) {
            (Some(pid), Some(of)) if result == WalletResult::Debited => Some(
                AplusRef {
                    payment_request_id: of.payment_request_id,
                    payment_id: Some(pid.clone()),
                }
                .encode(),
            ),
            _ => None,
        };
        Some(InquiryAnswer { result, scheme_ref })
    }

    fn acknowledged(&self, status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> bool {
        answer_result(status, body).is_some_and(|r| r.result_status == ResultStatus::S)
    }

    fn refused(&self, status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> Option<String> {
        answer_result(status, body)
            .filter(|r| r.result_status == ResultStatus::F)
            .map(|r| format!("{} {}", r.result_code, r.result_message))
    }

    fn demo_walkthrough(&self, base: &str, code: &str) -> Option<String> {
        if !self.is_demo() {
            return None;
        }
        let dynamic = dynamic_code(code, "12.50")?;
        let other = dynamic_code(code, "8.80")?;
        let ct = "-H 'content-type: application/json'";
        Some(format!(
            r#"
 The same merchant as an Alipay+ MPP wallet sees it (base URL {base}/schemes/aplus; unsigned in
 the demo; the demo wallet pays in MYR): it scans a dynamic code of SGD 12.50 (userInitiatedPay,
 answered with the order and our paymentRequestId), debits its user, and notifies (notifyPayment
 S), which sends the authorisation to the acquirer:

A={base}{ROUTES}
R=$(curl -s -X POST ${{A}}userInitiatedPay {ct} -d '{{"codeValue":"{dynamic}","customerId":"my-customer-1"}}'); echo "$R"; PRID=$(echo "$R" | sed -E 's/.*"paymentRequestId":"([^"]+)".*/\1/')
curl -s -X POST ${{A}}notifyPayment {ct} -d '{{"paymentRequestId":"'$PRID'","paymentId":"wallet-pay-'$RANDOM'","paymentResult":{{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}}}'; echo

 The same with the MPP wallet simulator, which keeps its user's ledger and takes the gateway's
 cancelPayment / refund on 127.0.0.1:8090 (the demo wallet's wallet_api_url):

qrbridge wallet-sim aplus serve --stop-after 600 & sleep 1
qrbridge wallet-sim aplus pay --gateway {base} --code '{other}'
qrbridge wallet-sim aplus ledger
qrbridge wallet-sim aplus stop
"#
        ))
    }
}

/// The dynamic form of an EMVCo static code: point of initiation `12`, amount `amount` (tag 54),
/// a new CRC. `None` when `code` is not a well-formed ASCII TLV string.
pub fn dynamic_code(code: &str, amount: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = code;
    while !rest.is_empty() {
        let id = rest.get(..2)?;
        let len: usize = rest.get(2..4)?.parse().ok()?;
        let value = rest.get(4..4 + len)?;
        rest = rest.get(4 + len..)?;
        match id {
            "01" => out.push_str("010212"),
            "54" | "63" => {}
            _ => out.push_str(&format!("{id}{len:02}{value}")),
        }
        if id == "53" {
            out.push_str(&format!("54{:02}{amount}", amount.len()));
        }
    }
    out.push_str("6304");
    let crc = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740).checksum(out.as_bytes());
    out.push_str(&format!("{crc:04X}"));
    Some(out)
}

/// Builds the aplus scheme (the registry's entry point).
pub fn build(settings: &SchemeSettings) -> Result<Arc<dyn Scheme>, SchemeConfigError> {
    Ok(Arc::new(Aplus::new(settings)?))
}

#[cfg(test)]
mod tests;
