//! The seam between the wallet schemes and the gateway: ONE trait, [`Pipeline`], with one method
//! per canonical operation. A scheme has already routed, authenticated and translated the wallet's
//! request when a method is called; the method returns a typed answer ([`Answer`]) or an
//! [`ApiError`], and the scheme translates it back into its own language.
//!
//! Object safe (schemes hold `Arc<dyn Pipeline>`); each future owns its receiver, so a scheme's
//! dispatcher can run a call in its own task: a client that disconnects or a per-request timeout
//! never cancels the gateway's work midway (a payment being authorised runs to its end).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use super::error::ApiError;
use super::ops::{
    CancelRequest, CancelResponse, DecodeRequest, DecodeResponse, OrderRequest, OrderResultRequest,
    PaymentInquiryRequest, PaymentRequest, PaymentResponse, QuoteRequest, QuoteResponse,
    RefundInquiryRequest, RefundRequest, RefundResponse,
};

/// Who is calling and what exactly they sent (for idempotency: client id + request id + body hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The authenticated client id (by signature, certificate, or the demo client).
    pub client_id: String,
    /// Lower-case hex SHA-256 of the body bytes as received, for the operations that keep
    /// requests by request id (pay, cancel, refund); a scheme may leave it empty for the others
    /// (decode, quote, inquiries), which never read it.
    pub body_sha256: String,
    /// When the server received the request.
    pub received_at: SystemTime,
    /// True when authentication is off (demo mode).
    pub unauthenticated_demo: bool,
    /// The scheme the request came in (`native`, `aplus`, `iso20022`): notifications go back in it.
    pub scheme: &'static str,
    /// What the scheme wants kept with a payment or refund for its notifications (e.g. the
    /// pacs.008 MsgId); opaque to the pipeline.
    pub scheme_ref: Option<String>,
    /// The HTTP request id (`x-request-id`, taken from the wallet or made by the server;
    /// spec/operations.md §2): in the log context of the request and in the journal records it makes.
    pub request_id: String,
}

/// A handler's answer: the response fields, and the error when the request was processed but the
/// business outcome is not success (a declined payment still has a payment id and an acquirer
/// response code: `Answer::failed(body, ApiError::AcquirerDeclined { .. })`).
#[derive(Debug)]
pub struct Answer<T> {
    /// The response fields.
    pub body: T,
    /// `None`: `SUCCESS`. `Some`: its result code, status and message, with `body` beside it.
    pub outcome: Option<ApiError>,
}

impl<T> Answer<T> {
    /// Success.
    pub fn ok(body: T) -> Self {
        Answer {
            body,
            outcome: None,
        }
    }

    /// The body of a success; the error of anything else (a processed non-success included).
    pub fn into_success(self) -> Result<T, ApiError> {
        match self.outcome {
            None => Ok(self.body),
            Some(e) => Err(e),
        }
    }

    /// Processed, with a non-success result that still carries the response fields.
    pub fn failed(body: T, error: ApiError) -> Self {
        Answer {
            body,
            outcome: Some(error),
        }
    }
}

/// What a handler returns.
pub type Handled<T> = Result<Answer<T>, ApiError>;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The canonical payment operations, one method per operation. The gateway implements it; tests
/// and benches implement it with stubs. Object safe: each future owns its receiver.
pub trait Pipeline: Send + Sync + 'static {
    /// Decode a scanned merchant code.
    fn decode(
        self: Arc<Self>,
        ctx: RequestContext,
        req: DecodeRequest,
    ) -> BoxFuture<'static, Handled<DecodeResponse>>;
    /// Lock a quote for a decoded code.
    fn quote(
        self: Arc<Self>,
        ctx: RequestContext,
        req: QuoteRequest,
    ) -> BoxFuture<'static, Handled<QuoteResponse>>;
    /// Pay a quote.
    fn pay(
        self: Arc<Self>,
        ctx: RequestContext,
        req: PaymentRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>>;
    /// A payment's status.
    fn inquire_payment(
        self: Arc<Self>,
        ctx: RequestContext,
        req: PaymentInquiryRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>>;
    /// Cancel a payment (a reversal before the cut-off).
    fn cancel(
        self: Arc<Self>,
        ctx: RequestContext,
        req: CancelRequest,
    ) -> BoxFuture<'static, Handled<CancelResponse>>;
    /// Refund a payment (where the scheme lets the wallet start one).
    fn refund(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RefundRequest,
    ) -> BoxFuture<'static, Handled<RefundResponse>>;
    /// A refund's status.
    fn inquire_refund(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RefundInquiryRequest,
    ) -> BoxFuture<'static, Handled<RefundResponse>>;
    /// Make a durable payment order for a quote (a wallet that debits its user first: Alipay+
    /// MPP). The answer is the order as a payment (PROCESSING). Default: refused (a pipeline
    /// without orders).
    fn order(
        self: Arc<Self>,
        _ctx: RequestContext,
        _req: OrderRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>> {
        Box::pin(std::future::ready(Err(no_orders())))
    }
    /// The wallet's result for an order: debited → authorise (as a pay does); not debited →
    /// the order closes; unknown → the order is cancelled on the wallet's side. A repeat is
    /// answered from the payment as it stands. Default: refused.
    fn order_result(
        self: Arc<Self>,
        _ctx: RequestContext,
        _req: OrderResultRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>> {
        Box::pin(std::future::ready(Err(no_orders())))
    }
}

fn no_orders() -> ApiError {
    ApiError::Unavailable {
        reason: "this pipeline takes no payment orders".to_owned(),
    }
}

/// The gateway's readiness predicate: `Ok(())` when ready, `Err(reason)` otherwise. Called on every
/// `/readyz`; keep it cheap (read flags, do not do I/O).
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// A predicate that is always ready.
pub fn always_ready() -> Readiness {
    Arc::new(|| Ok(()))
}
