//! The Wallet API v1 routes (all `POST`, JSON in and out): `spec/openapi.yaml`.

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

    /// Whether the gateway keeps this route's requests by (client id, request id) and compares
    /// a repeat's body with the first one's (`RequestContext::body_sha256`): pay, cancel and
    /// refund. Decode, quote and the inquiries keep nothing by request id, so their body is not
    /// hashed (a SHA-256 of the body was a tenth of a decode's instructions).
    pub fn keeps_requests(self) -> bool {
        match self {
            Route::Pay | Route::Cancel | Route::Refund => true,
            Route::Decode | Route::Quote | Route::PaymentInquiry | Route::RefundInquiry => false,
        }
    }

    /// Whether the pipeline call runs in the request's own task ([`crate::scheme::Dispatch::run_inline`]):
    /// decode and quote, which only parse, price and remember in memory, with nothing to leave
    /// half done if the wallet goes away. Pay, cancel and refund change the journal and the
    /// acquirer's books, and an inquiry may settle a reversal: they run in a task of their own,
    /// to their end.
    pub fn runs_inline(self) -> bool {
        match self {
            Route::Decode | Route::Quote => true,
            Route::Pay
            | Route::PaymentInquiry
            | Route::Cancel
            | Route::Refund
            | Route::RefundInquiry => false,
        }
    }

    /// The route at `path`, if any.
    pub fn from_path(path: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.path() == path)
    }
}
