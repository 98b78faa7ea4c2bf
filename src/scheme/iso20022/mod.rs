//! The `iso20022` scheme, shaped like the Nexus cross-border instant-payment model: quotes fetched
//! with `GET /schemes/iso20022/v1/quotes?...` (JSON, decimal amounts), a pacs.008 posted to
//! `/schemes/iso20022/v1/payments` answered with a pacs.002 (ACCC, RJCT with a reason code, PDNG
//! while unknown), a pacs.028 for the status, a camt.056 to cancel (camt.029 back), pushed pacs.002
//! notifications for final states, and pacs.004 returns *sent to* the wallet for refunds that
//! started at the merchant (the wallet acknowledges each with a pacs.002).
//!
//! In: [`Inbound`] under `/schemes/iso20022/`. Out: [`Outbound`] (XML or, for quotes, JSON),
//! signed like the native scheme's (`client-id`, `response-time`, `signature`).
//! Our extensions (spec "(extension)"): the quote route and its JSON, the `QUOTE/<quoteId>`
//! reference, the transport (routes, HTTP statuses, signatures), group-level pacs.002 refusals of
//! a pacs.028 or camt.056, and every `Rsn/Prtry` code; messages, elements and `Rsn/Cd` codes are
//! ISO 20022's.
//! Errors: a document that cannot be read is a 400 group-level pacs.002 (`FF01`, `CH16`); one
//! that disagrees with its quote a 422 (`AM09`, `AM03`, `AC03`, `BE01`); pipeline errors map to
//! status and reason codes in [`transformers::reason_for`].
//! Spec: `spec/schemes/iso20022.md`.
//!
//! Configuration, `[schemes.iso20022]`:
//!
//! ```toml
//! window_secs = 300                      # optional: request-time window
//! [schemes.iso20022.clients.wallet-my]
//! hmac_key_base64 = "..."                # HMAC-SHA256 key (at least 16 bytes)
//! key_version = 1                        # optional, default 1
//! notify_url = "https://wallet.example/iso20022/notify"   # optional
//! ```

mod codec;
pub mod transformers;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hyper::StatusCode;
use hyper::header::HeaderMap;
use serde::Deserialize;

use super::{
    BoxFuture, Dispatch, Inbound, Notice, NoticeEvent, NoticeMessage, Outbound, Scheme,
    SchemeConfigError, SchemeSettings, WalletCall,
};
use crate::payment::{Answer, Handled, RequestContext};
use crate::payment::{ApiError, Side};
use crate::payment::{
    CancelRequest, DecodeRequest, Money, PaymentInquiryRequest, PaymentRef, PaymentRequest,
    PaymentResponse, QuoteRequest, RequestId,
};
use crate::scheme::native::auth::{
    AuthConfig, Authenticated, Authenticator, ClientKey, Credentials, Secret, body_digest, headers,
};
use crate::time::format_rfc3339;
use transformers::{
    Iso20022Camt056, Iso20022CancelRequest, Iso20022Fault, Iso20022Original, Iso20022Pacs008,
    Iso20022Pacs028, Iso20022Payment, Iso20022Profile, Iso20022Quote, Iso20022QuoteQuery,
    Iso20022Reason, Iso20022Ref, Iso20022Resolution, Iso20022Status, Iso20022StatusRequest,
    Iso20022Terms, Iso20022TxSts,
};

/// The registry name.
pub const NAME: &str = "iso20022";
/// The path prefix.
pub const PREFIX: &str = "/schemes/iso20022/";

const XML: &str = "application/xml";
const JSON: &str = "application/json";

/// The routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iso20022Route {
    /// `GET  /schemes/iso20022/v1/quotes?...` → JSON quote (our extension: not an ISO 20022
    /// message, nor the Nexus quotes API).
    Quotes,
    /// `POST /schemes/iso20022/v1/payments` pacs.008 → pacs.002.
    Payments,
    /// `POST /schemes/iso20022/v1/payments/status` pacs.028 → pacs.002.
    Status,
    /// `POST /schemes/iso20022/v1/cancellations` camt.056 → camt.029.
    Cancellations,
}

impl Iso20022Route {
    /// The route for a path.
    pub fn from_path(path: &str) -> Option<Self> {
        match path.strip_prefix(PREFIX)? {
            "v1/quotes" => Some(Iso20022Route::Quotes),
            "v1/payments" => Some(Iso20022Route::Payments),
            "v1/payments/status" => Some(Iso20022Route::Status),
            "v1/cancellations" => Some(Iso20022Route::Cancellations),
            _ => None,
        }
    }

    /// Its method.
    pub fn method(self) -> &'static str {
        match self {
            Iso20022Route::Quotes => "GET",
            Iso20022Route::Payments | Iso20022Route::Status | Iso20022Route::Cancellations => {
                "POST"
            }
        }
    }

    /// The message identifier of the document it reads (`None`: the JSON route).
    pub fn message(self) -> Option<&'static str> {
        match self {
            Iso20022Route::Quotes => None,
            Iso20022Route::Payments => Some(transformers::MSG_PACS008),
            Iso20022Route::Status => Some(transformers::MSG_PACS028),
            Iso20022Route::Cancellations => Some(transformers::MSG_CAMT056),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[serde(default)]
    window_secs: Option<u64>,
    #[serde(default)]
    clients: BTreeMap<String, ClientTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientTable {
    #[serde(default)]
    hmac_key_base64: Option<String>,
    #[serde(default)]
    key_version: Option<u32>,
    #[serde(default)]
    notify_url: Option<String>,
    #[serde(default)]
    profile: Option<String>,
}

impl std::fmt::Debug for ClientTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTable")
            .field(
                "hmac_key_base64",
                &self.hmac_key_base64.as_ref().map(|_| "<redacted>"),
            )
            .field("key_version", &self.key_version)
            .field("notify_url", &self.notify_url)
            .field("profile", &self.profile)
            .finish()
    }
}

/// Where a client's notifications go, and which message profile it speaks.
#[derive(Debug, Clone)]
struct Client {
    notify_url: Option<String>,
    profile: Iso20022Profile,
}

/// The ISO 20022 scheme.
pub struct Iso20022 {
    auth: Authenticator,
    clients: BTreeMap<String, Client>,
    /// Quote id → the terms the quote gave (a pacs.008 naming it must agree): at most
    /// [`TERMS_BYTES`], least recently used out first, each for [`TERMS_TTL`] ([`terms_store`]).
    /// A quote not found here (restart, eviction) is left to the pipeline, with a warning.
    terms: moka::sync::Cache<String, Iso20022Terms>,
    sequence: AtomicU64,
}

impl std::fmt::Debug for Iso20022 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iso20022")
            .field("auth", &self.auth)
            .field("clients", &self.clients.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The byte bound of the quote-terms store: 16 MiB (the gateway's own quote store's default).
pub const TERMS_BYTES: u64 = 16 << 20;
/// How long a quote's terms are kept: an hour, longer than any quote lives by default.
pub const TERMS_TTL: Duration = Duration::from_secs(3600);
/// Bytes counted per terms entry for moka's own bookkeeping (as `gateway::caches`).
const TERMS_OVERHEAD: usize = 256;

/// What one entry weighs: its key, the terms with the strings they hold, and moka's bookkeeping.
fn terms_weight(quote_id: &String, terms: &Iso20022Terms) -> u32 {
    let bytes = quote_id.capacity()
        + std::mem::size_of::<Iso20022Terms>()
        + terms.account.capacity()
        + terms.name.capacity()
        + TERMS_OVERHEAD;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// The quote-terms store: bounded by bytes and by time, LRU so that a fresh quote's terms are
/// always admitted (moka's default TinyLFU admission may refuse a new key once the store is full,
/// and a pacs.008 would then go unchecked against its quote).
fn terms_store(max_bytes: u64, ttl: Duration) -> moka::sync::Cache<String, Iso20022Terms> {
    moka::sync::Cache::builder()
        .max_capacity(max_bytes)
        .weigher(terms_weight)
        .eviction_policy(moka::policy::EvictionPolicy::lru())
        .time_to_live(ttl)
        .build()
}

/// Builds the scheme from `[schemes.iso20022]` (the registry's constructor).
pub fn build(settings: &SchemeSettings) -> Result<Arc<dyn Scheme>, SchemeConfigError> {
    Ok(Arc::new(Iso20022::new(settings)?))
}

impl Iso20022 {
    /// The scheme from its settings.
    pub fn new(settings: &SchemeSettings) -> Result<Self, SchemeConfigError> {
        let error = |key: String, reason: String| SchemeConfigError {
            scheme: NAME,
            key,
            reason,
        };
        let table: Table = serde_path_to_error::deserialize(toml::Value::Table(
            settings.table.clone(),
        ))
        .map_err(|e| {
            let path = e.path().to_string();
            let key = if path.is_empty() || path == "." || path == "?" {
                "(table)".to_owned()
            } else {
                path
            };
            error(key, e.into_inner().message().to_owned())
        })?;
        let mut credentials = Credentials::new();
        let mut clients = BTreeMap::new();
        for (id, c) in &table.clients {
            let key = |k: &str| format!("clients.{id}.{k}");
            if let Some(url) = &c.notify_url {
                crate::http_client::target(url).map_err(|e| error(key("notify_url"), e))?;
            }
            let profile = match c.profile.as_deref() {
                None => Iso20022Profile::Cbpr,
                Some(p) => Iso20022Profile::parse(p).ok_or_else(|| {
                    error(
                        key("profile"),
                        format!("must be \"cbpr\" or \"nexus\", got {p:?}"),
                    )
                })?,
            };
            let version = c.key_version.unwrap_or(1);
            match &c.hmac_key_base64 {
                Some(b64) => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .map_err(|e| error(key("hmac_key_base64"), format!("not base64: {e}")))?;
                    if bytes.len() < 16 {
                        return Err(error(
                            key("hmac_key_base64"),
                            format!("at least 16 bytes are required, got {}", bytes.len()),
                        ));
                    }
                    credentials = credentials.with_key(
                        id.clone(),
                        version,
                        ClientKey::HmacSha256(Secret::new(bytes)),
                    );
                }
                None if settings.demo_client.as_deref() == Some(id.as_str()) => {}
                None => {
                    return Err(error(key("hmac_key_base64"), "missing".to_owned()));
                }
            }
            clients.insert(
                id.clone(),
                Client {
                    notify_url: c.notify_url.clone(),
                    profile,
                },
            );
        }
        // Without clients (an absent table is an empty one) every request is refused with
        // INVALID_SIGNATURE (unknown client): the scheme is served but nobody can call it.
        let mut auth = match &settings.demo_client {
            Some(demo) => AuthConfig::off(demo.clone()),
            None => AuthConfig::signatures(credentials),
        };
        if let Some(secs) = table.window_secs {
            auth.window = Duration::from_secs(secs);
        }
        auth.replay_bytes = settings.replay_bytes;
        auth.scheme = NAME;
        let auth =
            Authenticator::new(auth).map_err(|e| error("clients".to_owned(), e.to_string()))?;
        Ok(Iso20022 {
            auth,
            clients,
            terms: terms_store(TERMS_BYTES, TERMS_TTL),
            sequence: AtomicU64::new(0),
        })
    }

    /// The message profile of a client (CBPR+-style unless configured otherwise).
    fn profile(&self, client_id: &str) -> Iso20022Profile {
        self.clients
            .get(client_id)
            .map_or(Iso20022Profile::Cbpr, |c| c.profile)
    }

    fn context(
        &self,
        req: &Inbound<'_>,
        who: &Authenticated,
        body_sha256: String,
        scheme_ref: Option<String>,
    ) -> RequestContext {
        crate::telemetry::correlation::record_client_id(&who.client_id);
        RequestContext {
            client_id: who.client_id.clone(),
            body_sha256,
            received_at: req.received_at,
            unauthenticated_demo: self.auth.is_off(),
            scheme: NAME,
            scheme_ref,
            request_id: req.request_id.to_owned(),
        }
    }

    async fn respond(&self, req: Inbound<'_>, dispatch: Dispatch) -> Outbound {
        let Some(route) = Iso20022Route::from_path(req.path) else {
            return json_error(&ApiError::NotFound {
                path: req.path.to_owned(),
            });
        };
        if req.method != route.method() {
            let mut refused = json_error(&ApiError::MethodNotAllowed {
                method: req.method.to_owned(),
                path: req.path.to_owned(),
                allowed: route.method(),
            });
            refused.headers.push(("allow", route.method().to_owned()));
            return refused;
        }
        let target = req.target();
        let who = match super::native::authenticate(&self.auth, &req, &target) {
            Ok(who) => who,
            Err(e) => return self.refuse(&req, &e),
        };
        let mut out = match route {
            Iso20022Route::Quotes => self.quote(&req, &who, dispatch).await,
            Iso20022Route::Payments => self.pay(&req, &who, dispatch).await,
            Iso20022Route::Status => self.status(&req, &who, dispatch).await,
            Iso20022Route::Cancellations => self.cancel(&req, &who, dispatch).await,
        };
        if let Some(sig) = self
            .auth
            .sign_response(&who, req.method, &target, &out.body)
        {
            out.headers = vec![
                (headers::CLIENT_ID, sig.client_id),
                (headers::RESPONSE_TIME, sig.response_time),
                (headers::SIGNATURE, sig.signature),
            ];
        }
        out
    }

    /// A fresh request id for the decode and quote behind one GET (each GET is a new quote): a
    /// hash of the client, the query, the receipt time and a per-process sequence number.
    fn quote_ids(&self, req: &Inbound<'_>, who: &Authenticated) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let at = req
            .received_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let digest = body_digest(
            format!("{}\n{}\n{at}\n{n}", who.client_id, req.query.unwrap_or("")).as_bytes(),
        );
        digest[..32].to_owned()
    }

    async fn quote(&self, req: &Inbound<'_>, who: &Authenticated, dispatch: Dispatch) -> Outbound {
        let query = match Iso20022QuoteQuery::try_from(req.query.unwrap_or("")) {
            Ok(q) => q,
            Err(fault) => return json_fault(&fault),
        };
        let id = self.quote_ids(req, who);
        let ids = |tag: &str| {
            RequestId::new(format!("iso-{tag}-{id}")).map_err(|e| ApiError::Unknown {
                side: Side::Gateway,
                reason: format!("request id: {e}"),
            })
        };
        let result = async {
            let hash = body_digest(req.query.unwrap_or("").as_bytes());
            let decode_req = DecodeRequest {
                decode_request_id: ids("d")?,
                customer_id: query.customer_id.clone(),
                code_value: query.code_value.clone(),
                payer_currency: query.source_currency,
            };
            let ctx = self.context(req, who, hash.clone(), None);
            let decoded = answered(dispatch.run(|p| p.decode(ctx, decode_req)).await)?;
            let quote_req = QuoteRequest {
                quote_request_id: ids("q")?,
                decode_id: decoded.decode_id.clone(),
                amount: query.amount.map(Money),
                payer_currency: query.source_currency,
            };
            let ctx = self.context(req, who, hash, None);
            let quoted = answered(dispatch.run(|p| p.quote(ctx, quote_req)).await)?;
            let quote = Iso20022Quote::new(&decoded, &quoted, self.profile(&who.client_id))?;
            self.terms
                .insert(quoted.quote_id.to_string(), quote.terms(&quoted));
            Ok::<_, ApiError>(quote)
        }
        .await;
        match result.and_then(|q| {
            serde_json::to_vec(&q).map_err(|e| ApiError::Unknown {
                side: Side::Gateway,
                reason: format!("quote not serialisable: {e}"),
            })
        }) {
            Ok(body) => Outbound {
                status: StatusCode::OK,
                content_type: JSON,
                headers: Vec::new(),
                body,
            },
            Err(e) => json_error(&e),
        }
    }

    async fn pay(&self, req: &Inbound<'_>, who: &Authenticated, dispatch: Dispatch) -> Outbound {
        let profile = self.profile(&who.client_id);
        let payment = match read_document::<Iso20022Pacs008, Iso20022Payment>(
            req,
            profile.pacs008_message(),
            profile.pacs008_namespace(),
            "FIToFICstmrCdtTrf",
        ) {
            Ok(r) => r,
            Err(refused) => return refused,
        };
        let original = Iso20022Original {
            msg_id: payment.msg_id.clone(),
            msg_nm_id: profile.pacs008_message(),
            instr_id: None,
            end_to_end_id: Some(payment.end_to_end_id.clone()),
            uetr: Some(payment.uetr.to_string()),
        };
        let created_at = payment.accepted_at.clone();
        let ctx = self.context(
            req,
            who,
            body_digest(req.body),
            Some(payment.scheme_ref(profile)),
        );
        let terms = self.terms.get(payment.quote_id.as_str());
        if terms.is_none() {
            tracing::warn!(
                quote_id = payment.quote_id.as_str(),
                uetr = payment.uetr.as_str(),
                "iso20022: the quote's terms are not held (restart or eviction): the pacs.008 is \
                 not checked against them, the pipeline decides"
            );
        }
        if let Some(terms) = terms
            && let Err(fault) = payment.agrees_with(&terms, profile)
        {
            // A body that disagrees with its quote, under a UETR that was already paid, is
            // another body for the same request id: say so rather than what disagrees.
            let by = PaymentInquiryRequest {
                payment: PaymentRef::RequestId(payment.uetr.clone()),
            };
            let seen = dispatch
                .run(|p| p.inquire_payment(ctx.clone(), by))
                .await
                .is_ok();
            if seen {
                let e = ApiError::RepeatRequestInconsistent {
                    request_id: payment.uetr.to_string(),
                };
                return tx_error(&original, &e, &created_at);
            }
            let status = Iso20022Status {
                tx_sts: Iso20022TxSts::Rjct,
                reason: Some(Iso20022Reason::Code(fault.code)),
                info: Some(fault.message()),
                accepted_at: Some(created_at.clone()),
                reference: None,
                amount: None,
            };
            return xml(
                status_code(fault.http),
                transformers::render_pacs002(&original, &status, &created_at),
            );
        }
        let pay = PaymentRequest {
            payment_request_id: payment.uetr.clone(),
            quote_id: payment.quote_id.clone(),
            customer_id: payment.customer_id.clone(),
        };
        match dispatch.run(|p| p.pay(ctx, pay)).await {
            Ok(Answer { body, outcome }) => {
                let (tx_sts, reason) = transformers::payment_status(&body);
                let status = Iso20022Status {
                    tx_sts,
                    reason: outcome
                        .as_ref()
                        .map(|e| transformers::reason_for(e).1)
                        .or(reason),
                    info: outcome.as_ref().map(ToString::to_string),
                    accepted_at: Some(payment.accepted_at.clone()),
                    reference: Some(body.payment_id.to_string()),
                    amount: Some(settlement_amount(profile, &body)),
                };
                xml(
                    outcome.as_ref().map_or(StatusCode::OK, http_status),
                    transformers::render_pacs002(&original, &status, &created_at),
                )
            }
            Err(e) => tx_error(&original, &e, &created_at),
        }
    }

    async fn status(&self, req: &Inbound<'_>, who: &Authenticated, dispatch: Dispatch) -> Outbound {
        let request = match read_document::<Iso20022Pacs028, Iso20022StatusRequest>(
            req,
            transformers::MSG_PACS028,
            transformers::NS_PACS028,
            "FIToFIPmtStsReq",
        ) {
            Ok(r) => r,
            Err(refused) => return refused,
        };
        // What the wallet says the original was; once the payment is found, what we journaled
        // with its pacs.008 (so the answer names the original MsgId even when the pacs.028
        // leaves OrgnlGrpInf out).
        let mut original = Iso20022Original {
            msg_id: request
                .orgnl_msg_id
                .clone()
                .unwrap_or_else(|| transformers::NOT_PROVIDED.to_owned()),
            msg_nm_id: transformers::MSG_PACS008,
            instr_id: None,
            end_to_end_id: request.orgnl_end_to_end_id.clone(),
            uetr: Some(request.uetr.to_string()),
        };
        let created_at = format_rfc3339(req.received_at);
        let ctx = self.context(req, who, body_digest(req.body), None);
        let by = PaymentInquiryRequest {
            payment: PaymentRef::RequestId(request.uetr.clone()),
        };
        match dispatch.run(|p| p.inquire_payment(ctx, by)).await {
            Ok(Answer { body, .. }) => {
                if let Some(journaled) = Iso20022Ref::from_json(body.scheme_ref.as_deref())
                    .filter(|r| r.uetr == request.uetr.as_str())
                {
                    original.msg_nm_id =
                        Iso20022Profile::of_message(&journaled.msg_nm_id).pacs008_message();
                    original.msg_id = journaled.msg_id;
                    original.end_to_end_id = journaled.end_to_end_id.or(original.end_to_end_id);
                }
                let profile = Iso20022Profile::of_message(original.msg_nm_id);
                let (tx_sts, reason) = transformers::payment_status(&body);
                let status = Iso20022Status {
                    tx_sts,
                    reason,
                    info: None,
                    accepted_at: None,
                    reference: Some(body.payment_id.to_string()),
                    amount: Some(settlement_amount(profile, &body)),
                };
                xml(
                    StatusCode::OK,
                    transformers::render_pacs002(&original, &status, &created_at),
                )
            }
            Err(e) => tx_error(&original, &e, &created_at),
        }
    }

    async fn cancel(&self, req: &Inbound<'_>, who: &Authenticated, dispatch: Dispatch) -> Outbound {
        let request = match read_document::<Iso20022Camt056, Iso20022CancelRequest>(
            req,
            transformers::MSG_CAMT056,
            transformers::NS_CAMT056,
            "FIToFIPmtCxlReq",
        ) {
            Ok(r) => r,
            Err(refused) => return refused,
        };
        let created_at = format_rfc3339(req.received_at);
        let ctx = self.context(req, who, body_digest(req.body), None);
        let cancel = CancelRequest {
            payment_request_id: request.uetr.clone(),
        };
        let (status, result, info) = match dispatch.run(|p| p.cancel(ctx, cancel)).await {
            Ok(Answer { body, outcome }) => {
                let (result, why) = transformers::resolution(body.payment_status);
                let result = match (result, &outcome) {
                    (Iso20022Resolution::Rjcr(_), Some(e)) => {
                        Iso20022Resolution::Rjcr(transformers::cancellation_reason_for(e))
                    }
                    (r, _) => r,
                };
                (
                    outcome.as_ref().map_or(StatusCode::OK, http_status),
                    result,
                    outcome
                        .as_ref()
                        .map(ToString::to_string)
                        .or(why.map(str::to_owned)),
                )
            }
            Err(e) => (
                http_status(&e),
                Iso20022Resolution::Rjcr(transformers::cancellation_reason_for(&e)),
                Some(e.to_string()),
            ),
        };
        xml(
            status,
            transformers::render_camt029(&request, result, info, &created_at),
        )
    }

    fn render_notice(&self, notice: &Notice) -> Result<Vec<u8>, ApiError> {
        let r = Iso20022Ref::from_json(notice.scheme_ref.as_deref());
        let now = format_rfc3339(SystemTime::now());
        match (notice.call, &notice.event) {
            // A settled payment cancelled at the wallet's request: its funds go back as a return
            // (pacs.004 FOCR), not as a rejection of a payment the wallet saw settled.
            (WalletCall::PaymentResult, NoticeEvent::Payment(p))
                if p.payment_status == crate::payment::PaymentStatus::Cancelled =>
            {
                transformers::render_cancellation_return(p, r.as_ref(), &now)
            }
            (WalletCall::PaymentResult, NoticeEvent::Payment(p)) => {
                let (tx_sts, reason) = transformers::payment_status(p);
                let original = Iso20022Original::from_ref(
                    r,
                    p.payment_request_id.as_str(),
                    transformers::MSG_PACS008,
                );
                let status = Iso20022Status {
                    tx_sts,
                    reason,
                    info: None,
                    accepted_at: None,
                    reference: Some(p.payment_id.to_string()),
                    amount: Some(settlement_amount(
                        Iso20022Profile::of_message(original.msg_nm_id),
                        p,
                    )),
                };
                transformers::render_pacs002(&original, &status, &now)
            }
            (WalletCall::RefundCredit, NoticeEvent::Refund(refund)) => {
                transformers::render_pacs004(refund, r.as_ref(), None, &now)
            }
            (call, _) => Err(ApiError::Unknown {
                side: Side::Gateway,
                reason: format!("iso20022 does not make the call {call} with this event"),
            }),
        }
    }
}

/// The wallet's reply, when it is a pacs.002 rejecting our message: what it says.
fn rejection(body: &[u8]) -> Option<String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let report = transformers::parse_pacs002(body).ok()?.report;
    let (sts, why) = match &report.tx_inf_and_sts {
        Some(tx) => (tx.tx_sts.as_str(), tx.sts_rsn_inf.as_ref()),
        None => (
            report
                .orgnl_grp_inf_and_sts
                .grp_sts
                .as_deref()
                .unwrap_or(""),
            report.orgnl_grp_inf_and_sts.sts_rsn_inf.as_ref(),
        ),
    };
    (sts == "RJCT").then(|| {
        let code = why
            .and_then(|w| w.rsn.as_ref())
            .and_then(|r| r.code())
            .unwrap_or("no reason");
        let info = why.and_then(|w| w.addtl_inf.as_deref()).unwrap_or("");
        format!("the wallet rejected it (pacs.002 RJCT {code} {info})")
            .trim_end()
            .to_owned()
    })
}

fn answered<T>(handled: Handled<T>) -> Result<T, ApiError> {
    match handled? {
        Answer {
            body,
            outcome: None,
        } => Ok(body),
        Answer {
            outcome: Some(e), ..
        } => Err(e),
    }
}

fn status_code(http: u16) -> StatusCode {
    StatusCode::from_u16(http).unwrap_or(StatusCode::BAD_REQUEST)
}

fn http_status(e: &ApiError) -> StatusCode {
    e.code().http_status()
}

/// Reads an XML request: the content type, then the document (`root` in `namespace`) into its
/// wire type `W`, then into the scheme's request `T`. Any fault becomes the group-level refusal of
/// `route`, in the form the sender's message expects.
fn read_document<W, T>(
    req: &Inbound<'_>,
    msg_nm_id: &'static str,
    namespace: &str,
    root: &str,
) -> Result<T, Outbound>
where
    W: serde::de::DeserializeOwned,
    T: TryFrom<W, Error = Iso20022Fault>,
{
    check_xml_content_type(req)
        .and_then(|()| transformers::parse_document::<W>(req.body, namespace, root))
        .and_then(T::try_from)
        .map_err(|fault| group_fault(msg_nm_id, &fault, req.received_at))
}

/// `OrgnlTxRef/IntrBkSttlmAmt` of a pacs.002: the original's settlement amount, in the merchant's
/// currency (CBPR+) or the payer's (Nexus).
fn settlement_amount(profile: Iso20022Profile, p: &PaymentResponse) -> crate::money::Amount {
    match profile {
        Iso20022Profile::Cbpr => p.merchant_amount.0,
        Iso20022Profile::Nexus => p.payer_amount.0,
    }
}

fn check_xml_content_type(req: &Inbound<'_>) -> Result<(), Iso20022Fault> {
    let ct = req
        .header(&crate::scheme::CONTENT_TYPE)
        .map_err(|_| Iso20022Fault::format("content-type", "not visible ASCII"))?;
    match ct {
        None => Ok(()),
        Some(ct) => {
            let ct = ct.trim_start().to_ascii_lowercase();
            if ct.starts_with("application/xml") || ct.starts_with("text/xml") {
                Ok(())
            } else {
                Err(Iso20022Fault::format(
                    "content-type",
                    format!("must be application/xml, got {ct:?}"),
                ))
            }
        }
    }
}

fn xml(status: StatusCode, body: Result<Vec<u8>, ApiError>) -> Outbound {
    match body {
        Ok(body) => Outbound {
            status,
            content_type: XML,
            headers: Vec::new(),
            body,
        },
        Err(e) => {
            tracing::error!("iso20022: {e}");
            json_error(&e)
        }
    }
}

fn tx_error(original: &Iso20022Original, e: &ApiError, created_at: &str) -> Outbound {
    if e.side() != Side::Wallet {
        tracing::warn!("iso20022: {e}");
    }
    let (tx_sts, reason) = transformers::reason_for(e);
    let status = Iso20022Status {
        tx_sts,
        reason: Some(reason),
        info: Some(e.to_string()),
        accepted_at: None,
        reference: None,
        amount: None,
    };
    xml(
        http_status(e),
        transformers::render_pacs002(original, &status, created_at),
    )
}

fn group_fault(msg_nm_id: &'static str, fault: &Iso20022Fault, at: SystemTime) -> Outbound {
    xml(
        status_code(fault.http),
        transformers::render_group_refusal(
            msg_nm_id,
            Iso20022Reason::Code(fault.code),
            &fault.message(),
            &format_rfc3339(at),
        ),
    )
}

fn json_body(status: StatusCode, code: &str, message: &str) -> Outbound {
    Outbound {
        status,
        content_type: JSON,
        headers: Vec::new(),
        body: serde_json::json!({ "error": { "code": code, "message": message } })
            .to_string()
            .into_bytes(),
    }
}

fn json_error(e: &ApiError) -> Outbound {
    json_body(http_status(e), e.code().as_str(), &e.to_string())
}

fn json_fault(fault: &Iso20022Fault) -> Outbound {
    json_body(status_code(fault.http), fault.code, &fault.message())
}

impl Scheme for Iso20022 {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prefix(&self) -> &'static str {
        PREFIX
    }

    fn is_demo(&self) -> bool {
        self.auth.is_off()
    }

    fn serve<'a>(&'a self, req: Inbound<'a>, dispatch: Dispatch) -> BoxFuture<'a, Outbound> {
        Box::pin(self.respond(req, dispatch))
    }

    /// XML routes: a group-level pacs.002 (`GrpSts` RJCT) with the reason of
    /// [`transformers::reason_for`]; elsewhere the JSON error.
    fn refuse(&self, req: &Inbound<'_>, error: &ApiError) -> Outbound {
        match Iso20022Route::from_path(req.path).and_then(Iso20022Route::message) {
            Some(message) => {
                let (_, reason) = transformers::reason_for(error);
                xml(
                    http_status(error),
                    transformers::render_group_refusal(
                        message,
                        reason,
                        &error.to_string(),
                        &format_rfc3339(req.received_at),
                    ),
                )
            }
            None => json_error(error),
        }
    }

    fn notification(&self, notice: &Notice) -> Result<Option<NoticeMessage>, ApiError> {
        let Some(client) = self.clients.get(&notice.client_id) else {
            return Ok(None);
        };
        let Some(url) = &client.notify_url else {
            return Ok(None);
        };
        let target = crate::http_client::target(url).map_err(|e| ApiError::Unknown {
            side: Side::Gateway,
            reason: e,
        })?;
        let body = self.render_notice(notice)?;
        let headers = self
            .auth
            .sign_notification(&notice.client_id, "POST", &target.path, &body)
            .map(crate::scheme::native::auth::ResponseSignature::headers)
            .unwrap_or_default();
        Ok(Some(NoticeMessage {
            url: url.clone(),
            content_type: XML,
            headers,
            body,
        }))
    }

    fn demo_walkthrough(&self, base: &str, code: &str) -> Option<String> {
        if !self.is_demo() {
            return None;
        }
        let raw = code;
        let code = transformers::form_encode(code);
        let ns = "urn:iso:std:iso:20022:tech:xsd:";
        let xml = "-H 'content-type: application/xml' --data-binary";
        let field = |name: &str, pattern: &str| {
            format!("{name}=$(echo \"$R\" | sed -E 's/.*{pattern}.*/\\1/')")
        };
        Some(format!(
            r#"
 The same through the iso20022 scheme (Nexus-shaped: quote by GET, pacs.008 in, pacs.002 out;
 unsigned in the demo):

I={base}{PREFIX}v1
R=$(curl -s "$I/quotes?codeValue={code}&customerId=my-customer-1&sourceCurrency=MYR&amount=12.50&destinationCurrency=SGD"); echo "$R"
{quote_id}; {myr}; {rate}; {name}; {account}
UETR=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen | tr A-F a-f); NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
curl -s -X POST $I/payments {xml} "<Document xmlns='{ns}pacs.008.001.08'><FIToFICstmrCdtTrf><GrpHdr><MsgId>DEMO-$RANDOM</MsgId><CreDtTm>$NOW</CreDtTm><NbOfTxs>1</NbOfTxs><SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf></GrpHdr><CdtTrfTxInf><PmtId><EndToEndId>DEMO-E2E-1</EndToEndId><UETR>$UETR</UETR></PmtId><IntrBkSttlmAmt Ccy='SGD'>12.50</IntrBkSttlmAmt><AccptncDtTm>$NOW</AccptncDtTm><InstdAmt Ccy='MYR'>$MYR</InstdAmt><XchgRate>$RATE</XchgRate><ChrgBr>SLEV</ChrgBr><Dbtr><Nm>DEMO PAYER</Nm></Dbtr><DbtrAcct><Id><Othr><Id>my-customer-1</Id></Othr></Id></DbtrAcct><DbtrAgt><FinInstnId><BICFI>MYWLMYKLXXX</BICFI></FinInstnId></DbtrAgt><CdtrAgt><FinInstnId/></CdtrAgt><Cdtr><Nm>$NAME</Nm></Cdtr><CdtrAcct><Id><Othr><Id>$ACCOUNT</Id></Othr></Id></CdtrAcct><RmtInf><Strd><AddtlRmtInf>QUOTE/$QUOTE_ID</AddtlRmtInf></Strd></RmtInf></CdtTrfTxInf></FIToFICstmrCdtTrf></Document>"; echo
curl -s -X POST $I/payments/status {xml} "<Document xmlns='{ns}pacs.028.001.03'><FIToFIPmtStsReq><GrpHdr><MsgId>DEMO-STS-1</MsgId><CreDtTm>$NOW</CreDtTm></GrpHdr><TxInf><OrgnlUETR>$UETR</OrgnlUETR></TxInf></FIToFIPmtStsReq></Document>"; echo

 The same with the ISO 20022 wallet simulator, the payer's PSP: it asks the quote, debits its
 payer, sends the pacs.008 and reads the pacs.002, then asks the status (pacs.028) and cancels
 (camt.056 → camt.029 CNCL; the funds come back as our pacs.004 FOCR); it takes our pacs.002
 notifications and pacs.004 returns on 127.0.0.1:8091 (the demo wallet's notify_url):

qrbridge wallet-sim iso20022 serve --stop-after 600 & sleep 1
qrbridge wallet-sim iso20022 pay --gateway {base} --code '{raw}' --amount 12.50
qrbridge wallet-sim iso20022 status --gateway {base}
qrbridge wallet-sim iso20022 cancel --gateway {base}; sleep 1
qrbridge wallet-sim iso20022 ledger
qrbridge wallet-sim iso20022 stop
"#,
            quote_id = field("QUOTE_ID", r#""quoteId":"([^"]+)""#),
            myr = field(
                "MYR",
                r#""instructedAmount":\{"ccy":"MYR","value":"([0-9.]+)"\}"#
            ),
            rate = field("RATE", r#""exchangeRate":"([^"]+)""#),
            name = field("NAME", r#""creditor":\{"name":"([^"]+)""#),
            account = field("ACCOUNT", r#""account":"([^"]+)""#),
        ))
    }

    /// The calls: a payment's final state (pacs.002) and a refund credited to the payer
    /// (pacs.004, a payment return from us to the wallet).
    fn calls(&self) -> &'static [WalletCall] {
        &[WalletCall::PaymentResult, WalletCall::RefundCredit]
    }

    /// HTTP 200, 202 or 204, with no body or with a pacs.002 that does not reject it (`ACCC`,
    /// `ACSC`, `ACSP`, ...): the wallet has the message.
    fn acknowledged(&self, status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> bool {
        matches!(status.as_u16(), 200 | 202 | 204) && rejection(body).is_none()
    }

    /// A 2xx pacs.002 with `RJCT` (transaction or group level): the wallet will not take this
    /// message (a return it refuses); parked with its reason, never retried.
    fn refused(&self, status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> Option<String> {
        if !status.is_success() {
            return None;
        }
        rejection(body)
    }
}

#[cfg(test)]
mod tests;
