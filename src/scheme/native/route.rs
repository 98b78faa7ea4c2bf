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

    /// The route at `path`, if any.
    pub fn from_path(path: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.path() == path)
    }
}
