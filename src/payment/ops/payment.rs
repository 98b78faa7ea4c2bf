//! `POST /v1/payments`, `/v1/payments/inquiry`, `/v1/payments/cancel`.

use serde::{Deserialize, Serialize};

use super::WireFields;
use super::fields::{CustomerId, Money, RequestId};
use super::qr::Merchant;

/// Pay with a quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentRequest {
    /// The wallet's idempotent request id.
    pub payment_request_id: RequestId,
    /// From the quote response.
    pub quote_id: RequestId,
    /// The payer (must be the one who decoded).
    pub customer_id: CustomerId,
}

/// Which payment an inquiry is about: exactly one of the two ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentRef {
    /// The wallet's request id.
    RequestId(RequestId),
    /// Our payment id.
    PaymentId(RequestId),
}

/// Payment inquiry: `{"paymentRequestId": ...}` or `{"paymentId": ...}`, exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "InquiryWire")]
pub struct PaymentInquiryRequest {
    /// The payment asked about.
    pub payment: PaymentRef,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InquiryWire {
    #[serde(default)]
    payment_request_id: Option<RequestId>,
    #[serde(default)]
    payment_id: Option<RequestId>,
}

impl TryFrom<InquiryWire> for PaymentInquiryRequest {
    type Error = &'static str;
    fn try_from(w: InquiryWire) -> Result<Self, Self::Error> {
        let payment = match (w.payment_request_id, w.payment_id) {
            (Some(r), None) => PaymentRef::RequestId(r),
            (None, Some(p)) => PaymentRef::PaymentId(p),
            _ => return Err("exactly one of paymentRequestId, paymentId is required"),
        };
        Ok(PaymentInquiryRequest { payment })
    }
}

/// Cancel a payment (a reversal before the cut-off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelRequest {
    /// The wallet's request id of the payment to cancel.
    pub payment_request_id: RequestId,
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// Approved by the acquirer.
    Success,
    /// Declined or refused: nothing charged.
    Fail,
    /// Not known yet (acquirer timeout, reversal running): query again.
    Processing,
    /// Reversed after an unknown outcome: nothing charged.
    Reversed,
    /// Cancelled by the wallet before the cut-off: nothing charged.
    Cancelled,
}

/// What the acquirer answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcquirerResult {
    /// DE11.
    pub stan: String,
    /// DE37.
    pub rrn: String,
    /// DE38 (approvals only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_code: Option<String>,
    /// DE39.
    pub response_code: String,
}

/// Payment response (pay and inquiry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResponse {
    /// Our payment id.
    pub payment_id: RequestId,
    /// The wallet's request id.
    pub payment_request_id: RequestId,
    /// Where it stands.
    pub payment_status: PaymentStatus,
    /// Merchant currency.
    pub merchant_amount: Money,
    /// Payer currency.
    pub payer_amount: Money,
    /// Refunded so far in the merchant currency (inquiry, when any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_amount: Option<Money>,
    /// The acquirer's answer, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquirer: Option<AcquirerResult>,
    /// The merchant paid, as the code named it (from the journaled payment record, so the same
    /// after a restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant: Option<Merchant>,
    /// What the scheme journaled with the original request (`RequestContext::scheme_ref`; the
    /// iso20022 scheme's pacs.008 identifiers, for its pacs.028 answer). Opaque to the gateway and
    /// never serialised: a scheme's own reference is not part of any wire answer.
    #[serde(skip)]
    pub scheme_ref: Option<String>,
}

impl WireFields for PaymentResponse {
    const FIELDS: &'static [&'static str] = &[
        "paymentId",
        "paymentRequestId",
        "paymentStatus",
        "merchantAmount",
        "payerAmount",
        "refundedAmount",
        "acquirer",
        "merchant",
    ];
}

/// Cancel response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelResponse {
    /// Our payment id.
    pub payment_id: RequestId,
    /// The wallet's request id.
    pub payment_request_id: RequestId,
    /// `CANCELLED`, or `PROCESSING` while the reversal is not yet acknowledged.
    pub payment_status: PaymentStatus,
}

impl WireFields for CancelResponse {
    const FIELDS: &'static [&'static str] = &["paymentId", "paymentRequestId", "paymentStatus"];
}
