//! `POST /v1/qr/decode`: the scanned code → merchant, amount (dynamic codes) and a decode id.

use serde::{Deserialize, Serialize};

use super::WireFields;
use super::fields::{CodeValue, CustomerId, Money, RequestId, currency_code};
use crate::money::Currency;

/// Decode request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecodeRequest {
    /// The wallet's idempotent request id.
    pub decode_request_id: RequestId,
    /// The payer at the wallet.
    pub customer_id: CustomerId,
    /// The scanned string, as scanned.
    pub code_value: CodeValue,
    /// The payer's currency (ISO 4217 alpha-3).
    #[serde(with = "currency_code")]
    pub payer_currency: Currency,
}

/// Static (payer enters the amount) or dynamic (amount in the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CodeType {
    /// EMV tag 01 = "11".
    Static,
    /// EMV tag 01 = "12".
    Dynamic,
}

/// The merchant as read from the code: answered at decode, and journaled with the payment so that
/// refunds, reversals, notifications and reports after a restart name the real merchant.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Merchant {
    /// Tag 59.
    pub name: String,
    /// Tag 60.
    pub city: String,
    /// Tag 58 (ISO 3166-1 alpha-2).
    pub country: String,
    /// Tag 52.
    pub mcc: String,
    /// The merchant id from the routed template.
    pub merchant_id: String,
}

/// Decode response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecodeResponse {
    /// Our id for this decode (quote with it).
    pub decode_id: RequestId,
    /// Static or dynamic.
    pub code_type: CodeType,
    /// The domestic scheme of the routed template (`SGQR`, `PAYNOW`, ...).
    pub scheme: String,
    /// The merchant.
    pub merchant: Merchant,
    /// The amount in the code (dynamic codes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    /// RFC 3339 UTC: quote before this.
    pub expires_at: String,
}

impl WireFields for DecodeResponse {
    const FIELDS: &'static [&'static str] = &[
        "decodeId",
        "codeType",
        "scheme",
        "merchant",
        "amount",
        "expiresAt",
    ];
}
