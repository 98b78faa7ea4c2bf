//! `decode`: the scanned string → a domestic, routable merchant kept under a decode id.
//!
//! parse (EMVCo MPM in the default, real-world mode; refusals are QR_INVALID with kind, path and
//! offset; a code with warnings goes on) → payability (58 and 53 must be the deployment's, a fixed
//! amount must fit the currency's minor unit; else QR_NOT_SUPPORTED with the reason) → expiry →
//! routing (else MERCHANT_NOT_ROUTABLE, naming the templates seen) → kept in memory under a decode
//! id until it expires.

use std::sync::Arc;
use std::time::SystemTime;

use crate::emv::{self, Initiation, Role, Tip};
use crate::money::{Amount, Currency};
use crate::payment::{Answer, ApiError, Handled, RequestContext};
use crate::payment::{CodeType, DecodeRequest, DecodeResponse, Merchant, Money};
use crate::time::fields::UtcFields;
use crate::time::format_rfc3339;

use super::routing::{self, Routed};
use super::{Gateway, errors, ids};

/// A decoded, routable merchant code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The wallet client that decoded it (only it may quote it).
    pub client_id: String,
    /// STATIC or DYNAMIC (EMV 01).
    pub code_type: CodeType,
    /// Routing.
    pub routed: Routed,
    /// EMV 59.
    pub name: String,
    /// EMV 60.
    pub city: String,
    /// EMV 58.
    pub country: String,
    /// EMV 52, 4 digits (`0000` when absent).
    pub mcc: String,
    /// EMV 54: a fixed amount; `None` when the payer enters it.
    pub amount: Option<Amount>,
    /// EMV 62.05, when present.
    pub reference_label: Option<String>,
    /// EMV 55–57: a convenience fee the payer pays on top (a tip prompt is not offered: the API
    /// has no tip field).
    pub fee: Option<Tip>,
}

impl Decoded {
    /// The merchant as the code named it, as the payment record keeps it.
    pub fn merchant(&self) -> Merchant {
        Merchant {
            name: self.name.clone(),
            city: self.city.clone(),
            country: self.country.clone(),
            mcc: self.mcc.clone(),
            merchant_id: self.routed.merchant_id.clone(),
        }
    }

    /// `base` plus the code's convenience fee (fixed, or a percentage rounded half up).
    pub fn with_fee(&self, base: Amount) -> Result<Amount, ApiError> {
        let fee = match self.fee {
            Some(Tip::Fixed(minor)) => minor,
            Some(Tip::Percentage(hundredths)) => {
                let x = u128::from(base.minor()) * u128::from(hundredths);
                u64::try_from((x + 5_000) / 10_000)
                    .map_err(|_| errors::internal("convenience fee out of range"))?
            }
            Some(Tip::Prompt) | None => 0,
        };
        Amount::from_minor(fee, base.currency())
            .and_then(|f| base.checked_add(f))
            .map_err(|e| ApiError::ParamIllegal {
                field: "amount".to_owned(),
                reason: format!("with the code's convenience fee: {e}"),
            })
    }
}

/// The deployment's payability rules for a parsed code, each with a reason a wallet developer can
/// act on: the code's country (58) and currency (53) must be the deployment's, and a fixed amount
/// (54) must be representable in the currency's minor unit. Routing and expiry are checked after.
fn payable(qr: &emv::MerchantQr<'_>, country: &str, currency: Currency) -> Result<(), ApiError> {
    if qr.country() != country {
        return Err(ApiError::QrNotSupported {
            reason: format!(
                "the code is from {} (58); this gateway pays merchants in {country}",
                qr.country()
            ),
        });
    }
    if qr.currency() != currency {
        return Err(ApiError::QrNotSupported {
            reason: format!(
                "the code is in {} (53); this gateway pays {} merchants in {} only",
                qr.currency().code(),
                country,
                currency.code()
            ),
        });
    }
    if let Some((decimals, exponent)) = qr.amount_too_precise() {
        return Err(ApiError::QrNotSupported {
            reason: format!(
                "the amount {:?} (54) has {decimals} decimal places with non-zero digits below the minor unit of {} ({exponent} decimal places): it cannot be paid exactly; the merchant must issue a new code",
                qr.raw(54).unwrap_or_default(),
                qr.currency().code()
            ),
        });
    }
    Ok(())
}

/// EMV 52 as its four digits (`format!` cost a decode as much as the routing of its code).
fn mcc_digits(mcc: u16) -> String {
    if mcc > 9999 {
        return format!("{mcc:04}");
    }
    [1000, 100, 10, 1]
        .iter()
        .map(|unit| char::from(b'0' + u8::try_from(mcc / unit % 10).unwrap_or(0)))
        .collect()
}

impl Gateway {
    pub(super) async fn decode_code(
        &self,
        ctx: RequestContext,
        req: DecodeRequest,
    ) -> Handled<DecodeResponse> {
        self.policy(&ctx)?;
        let s = &self.inner.settings;
        let qr = emv::parse(req.code_value.as_str()).map_err(|e| errors::qr_invalid(&e))?;
        // Warnings (deviations from EMVCo v1.1) do not stop a payable code.
        payable(&qr, &s.country, s.currency)?;
        // Today's date (YYYYMMDD, UTC) only when the code carries an expiry date at all.
        let mut today: Option<[u8; 8]> = None;
        if let Some(expiry) = qr
            .accounts()
            .filter_map(|a| a.role(Role::Expiry))
            .filter(|e| e.len() == 8 && e.bytes().all(|b| b.is_ascii_digit()))
            .find(|e| {
                e.as_bytes() < &today.get_or_insert_with(|| UtcFields::now().yyyymmdd_digits())[..]
            })
        {
            return Err(ApiError::QrNotSupported {
                reason: format!("the code expired on {expiry} (YYYYMMDD)"),
            });
        }
        let routed = routing::route(&s.routes, &qr)
            .map_err(|reason| ApiError::MerchantNotRoutable { reason })?;
        let mid = &routed.merchant_id;
        if mid.len() > 15 || !mid.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
            return Err(ApiError::MerchantNotRoutable {
                reason: format!(
                    "merchant id {mid:?} ({}) does not fit the acquirer's DE42 (1 to 15 printable ASCII characters)",
                    routed.matched
                ),
            });
        }
        let amount = match qr.amount() {
            Some(minor) => Some(
                Amount::from_minor(minor, qr.currency())
                    .map_err(|e| errors::internal(format!("QR amount: {e}")))?,
            ),
            None => None,
        };
        let reference_label = qr
            .additional_data()
            .and_then(|a| a.get(5))
            .filter(|r| r.len() <= 99 && r.bytes().all(|b| (0x20..=0x7E).contains(&b)))
            .map(str::to_owned);
        let decoded = Decoded {
            client_id: ctx.client_id.clone(),
            code_type: match qr.initiation() {
                Some(Initiation::Dynamic) => CodeType::Dynamic,
                _ => CodeType::Static,
            },
            routed,
            name: qr.name().unwrap_or_default().to_owned(),
            city: qr.city().unwrap_or_default().to_owned(),
            country: qr.country().to_owned(),
            mcc: qr.mcc().map_or_else(|| "0000".to_owned(), mcc_digits),
            amount,
            reference_label,
            fee: qr.tip(),
        };
        let decode_id = ids::new_id()?;
        let expires_at = SystemTime::now() + s.decode_ttl;
        let body = DecodeResponse {
            decode_id: ids::wire(&decode_id)?,
            code_type: decoded.code_type,
            scheme: decoded.routed.scheme.clone(),
            merchant: Merchant {
                name: decoded.name.clone(),
                city: decoded.city.clone(),
                country: decoded.country.clone(),
                mcc: decoded.mcc.clone(),
                merchant_id: decoded.routed.merchant_id.clone(),
            },
            amount: decoded.amount.map(Money),
            expires_at: format_rfc3339(expires_at),
        };
        if self.shares() {
            self.share_decode(&decode_id, &decoded, expires_at).await?;
        }
        self.inner.decodes.insert(decode_id, Arc::new(decoded));
        Ok(Answer::ok(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mccs_are_four_digits() {
        for mcc in [0u16, 7, 42, 999, 5812, 9999, 10_000, u16::MAX] {
            assert_eq!(mcc_digits(mcc), format!("{mcc:04}"));
        }
    }
}
