//! `POST /v1/refunds`, `/v1/refunds/inquiry`: partial and repeated refunds up to the original.

use serde::{Deserialize, Serialize};

use super::WireFields;
use super::fields::{Money, RequestId, Text};

/// Refund (part of) a payment, in the merchant currency, at the original quote's rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundRequest {
    /// The wallet's idempotent request id.
    pub refund_request_id: RequestId,
    /// The payment to refund.
    pub payment_id: RequestId,
    /// How much, in the merchant currency.
    pub refund_amount: Money,
    /// Why (free text, optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text>,
}

/// Which refund an inquiry is about: exactly one of the two ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundRef {
    /// The wallet's request id.
    RequestId(RequestId),
    /// Our refund id.
    RefundId(RequestId),
}

/// Refund inquiry: `{"refundRequestId": ...}` or `{"refundId": ...}`, exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "InquiryWire")]
pub struct RefundInquiryRequest {
    /// The refund asked about.
    pub refund: RefundRef,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InquiryWire {
    #[serde(default)]
    refund_request_id: Option<RequestId>,
    #[serde(default)]
    refund_id: Option<RequestId>,
}

impl TryFrom<InquiryWire> for RefundInquiryRequest {
    type Error = &'static str;
    fn try_from(w: InquiryWire) -> Result<Self, Self::Error> {
        let refund = match (w.refund_request_id, w.refund_id) {
            (Some(r), None) => RefundRef::RequestId(r),
            (None, Some(p)) => RefundRef::RefundId(p),
            _ => return Err("exactly one of refundRequestId, refundId is required"),
        };
        Ok(RefundInquiryRequest { refund })
    }
}

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    /// Refunded.
    Success,
    /// Refused: nothing refunded.
    Fail,
    /// Not known yet: query again.
    Processing,
}

/// Refund response (refund and inquiry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundResponse {
    /// Our refund id.
    pub refund_id: RequestId,
    /// The wallet's request id.
    pub refund_request_id: RequestId,
    /// The refunded payment.
    pub payment_id: RequestId,
    /// Where it stands.
    pub refund_status: RefundStatus,
    /// Merchant currency.
    pub refund_amount: Money,
    /// Payer currency, at the original quote's rate.
    pub payer_refund_amount: Money,
}

impl WireFields for RefundResponse {
    const FIELDS: &'static [&'static str] = &[
        "refundId",
        "refundRequestId",
        "paymentId",
        "refundStatus",
        "refundAmount",
        "payerRefundAmount",
    ];
}
