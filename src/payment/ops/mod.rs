//! Wallet API v1 wire types: JSON, camelCase, one struct per request and response.
//!
//! Requests are *parsed, not validated*: a request struct that exists has well-formed ids, a known
//! currency and an amount in integer minor units (`deny_unknown_fields` everywhere). Responses are
//! what the gateway returns; the server adds the `result` object (see [`Envelope`]).
//!
//! ```text
//! fields    RequestId, CustomerId (redacted Debug), CodeValue, Money {"currency","value"}
//! qr        POST /v1/qr/decode
//! quote     POST /v1/quotes
//! payment   POST /v1/payments, /v1/payments/inquiry, /v1/payments/cancel
//! order     payment orders of debits-first wallets (Alipay+ MPP): no wire form of their own
//! refund    POST /v1/refunds, /v1/refunds/inquiry
//! ```

mod fields;
mod order;
mod payment;
mod qr;
mod quote;
mod refund;

pub use fields::{CodeValue, CustomerId, Money, RequestId, Text};
pub use order::{OrderRequest, OrderResultRequest, WalletResult};
pub use payment::{
    AcquirerResult, CancelRequest, CancelResponse, PaymentInquiryRequest, PaymentRef,
    PaymentRequest, PaymentResponse, PaymentStatus,
};
pub use qr::{CodeType, DecodeRequest, DecodeResponse, Merchant};
pub use quote::{QuoteRequest, QuoteResponse};
pub use refund::{RefundInquiryRequest, RefundRef, RefundRequest, RefundResponse, RefundStatus};

use serde::{Deserialize, Serialize};

use super::error::ResultCode;

/// S / F / U.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResultStatus {
    /// Succeeded.
    S,
    /// Failed for certain.
    F,
    /// Unknown: query before retrying.
    U,
}

/// The `result` object every response carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultInfo {
    /// S / F / U.
    pub result_status: ResultStatus,
    /// The result code (`SUCCESS`, `PARAM_ILLEGAL`, ...).
    pub result_code: ResultCode,
    /// Human-readable detail: names the field or the reason.
    pub result_message: String,
}

impl Serialize for ResultCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResultCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ResultCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown result code {s:?}")))
    }
}

/// A response on the wire: `{"result": {...}, <body fields>}`.
#[derive(Debug, Serialize)]
pub struct Envelope<'a, T: Serialize> {
    /// The result object.
    pub result: &'a ResultInfo,
    /// The response fields, flattened beside `result`.
    #[serde(flatten)]
    pub body: &'a T,
}

/// The body of a response that has only a `result`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Empty {}

/// The response-field names of every response type, for the OpenAPI consistency test and clients.
pub trait WireFields {
    /// The camelCase top-level field names this type may emit (besides `result`).
    const FIELDS: &'static [&'static str];
}
