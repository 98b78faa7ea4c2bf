//! `POST /v1/quotes`: merchant amount → payer amount at a locked, single-use rate.

use serde::{Deserialize, Serialize};

use super::WireFields;
use super::fields::{Money, RequestId, currency_code};
use crate::money::Currency;

/// Quote request. `amount` (merchant currency) is required for static codes and must be absent or
/// equal to the code's amount for dynamic codes (the gateway decides).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuoteRequest {
    /// The wallet's idempotent request id.
    pub quote_request_id: RequestId,
    /// From the decode response.
    pub decode_id: RequestId,
    /// The amount in the merchant's currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    /// The payer's currency.
    #[serde(with = "currency_code")]
    pub payer_currency: Currency,
}

/// Quote response. Rates are decimal strings (never floats): payer units per merchant unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuoteResponse {
    /// Single-use quote id (pay with it).
    pub quote_id: RequestId,
    /// The amount the merchant receives.
    pub merchant_amount: Money,
    /// The amount the payer is charged.
    pub payer_amount: Money,
    /// The applied rate (mid rate with the markup).
    pub rate: String,
    /// The reference mid rate.
    pub mid_rate: String,
    /// The wallet's markup in basis points.
    pub markup_bps: u32,
    /// payerAmount / merchantAmount after rounding.
    pub effective_rate: String,
    /// RFC 3339 UTC: pay before this.
    pub expires_at: String,
}

impl WireFields for QuoteResponse {
    const FIELDS: &'static [&'static str] = &[
        "quoteId",
        "merchantAmount",
        "payerAmount",
        "rate",
        "midRate",
        "markupBps",
        "effectiveRate",
        "expiresAt",
    ];
}
