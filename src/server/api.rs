//! The handler seam: the routes of Wallet API v1 and the [`WalletApi`] trait the gateway implements.
//! The server has already routed, limited, authenticated and parsed the request when a method is
//! called; the method returns a typed answer or an [`ApiError`], and the server writes the response.
//!
//! Each call runs in its own task: a client that disconnects or a per-request timeout never
//! cancels the gateway's work midway (a payment being authorised runs to its end). The server
//! counts these tasks; see [`super::RunningServer::handlers`].

use std::future::Future;
use std::time::SystemTime;

use super::error::ApiError;
use super::wire::{
    CancelRequest, CancelResponse, DecodeRequest, DecodeResponse, PaymentInquiryRequest,
    PaymentRequest, PaymentResponse, QuoteRequest, QuoteResponse, RefundInquiryRequest,
    RefundRequest, RefundResponse,
};

/// Who is calling and what exactly they sent (for idempotency: client id + request id + body hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The authenticated client id (by signature, certificate, or the demo client).
    pub client_id: String,
    /// Lower-case hex SHA-256 of the body bytes as received.
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
    /// spec/operations.md §2): in the log span of the request and in the journal records it makes.
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

/// The Wallet API v1, one method per route. The gateway implements it.
pub trait WalletApi: Send + Sync + 'static {
    /// `POST /v1/qr/decode`.
    fn decode(
        &self,
        ctx: RequestContext,
        req: DecodeRequest,
    ) -> impl Future<Output = Handled<DecodeResponse>> + Send;
    /// `POST /v1/quotes`.
    fn quote(
        &self,
        ctx: RequestContext,
        req: QuoteRequest,
    ) -> impl Future<Output = Handled<QuoteResponse>> + Send;
    /// `POST /v1/payments`.
    fn pay(
        &self,
        ctx: RequestContext,
        req: PaymentRequest,
    ) -> impl Future<Output = Handled<PaymentResponse>> + Send;
    /// `POST /v1/payments/inquiry`.
    fn inquire_payment(
        &self,
        ctx: RequestContext,
        req: PaymentInquiryRequest,
    ) -> impl Future<Output = Handled<PaymentResponse>> + Send;
    /// `POST /v1/payments/cancel`.
    fn cancel(
        &self,
        ctx: RequestContext,
        req: CancelRequest,
    ) -> impl Future<Output = Handled<CancelResponse>> + Send;
    /// `POST /v1/refunds`.
    fn refund(
        &self,
        ctx: RequestContext,
        req: RefundRequest,
    ) -> impl Future<Output = Handled<RefundResponse>> + Send;
    /// `POST /v1/refunds/inquiry`.
    fn inquire_refund(
        &self,
        ctx: RequestContext,
        req: RefundInquiryRequest,
    ) -> impl Future<Output = Handled<RefundResponse>> + Send;
}

/// The Wallet API v1 routes (all `POST`, JSON in and out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `/v1/qr/decode`.
    Decode,
    /// `/v1/quotes`.
    Quote,
    /// `/v1/payments`.
    Pay,
    /// `/v1/payments/inquiry`.
    PaymentInquiry,
    /// `/v1/payments/cancel`.
    Cancel,
    /// `/v1/refunds`.
    Refund,
    /// `/v1/refunds/inquiry`.
    RefundInquiry,
}

impl Route {
    /// Every route the server registers.
    pub const ALL: [Route; 7] = [
        Route::Decode,
        Route::Quote,
        Route::Pay,
        Route::PaymentInquiry,
        Route::Cancel,
        Route::Refund,
        Route::RefundInquiry,
    ];

    /// The path.
    pub fn path(self) -> &'static str {
        match self {
            Route::Decode => "/v1/qr/decode",
            Route::Quote => "/v1/quotes",
            Route::Pay => "/v1/payments",
            Route::PaymentInquiry => "/v1/payments/inquiry",
            Route::Cancel => "/v1/payments/cancel",
            Route::Refund => "/v1/refunds",
            Route::RefundInquiry => "/v1/refunds/inquiry",
        }
    }

    /// The method (all routes are `POST`).
    pub fn method(self) -> &'static str {
        "POST"
    }

    /// The route at `path`, if any.
    pub fn from_path(path: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.path() == path)
    }
}
