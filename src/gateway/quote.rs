//! `quote`: a decoded merchant + amount → a locked, single-use quote in the payer's currency, at
//! the mid rate plus the wallet client's markup. A code with an amount (EMV 54) fixes it; a code
//! without one needs the wallet's amount in the deployment's currency.

use std::sync::Arc;

use crate::fx::{Pricing, display_rate};
use crate::payment::{Answer, ApiError, Handled, RequestContext};
use crate::payment::{Money, QuoteRequest, QuoteResponse};
use crate::time::format_rfc3339;

use super::{Gateway, errors, ids};

impl Gateway {
    pub(super) async fn make_quote(
        &self,
        ctx: RequestContext,
        req: QuoteRequest,
    ) -> Handled<QuoteResponse> {
        let policy = self.policy(&ctx)?;
        let not_found = || ApiError::OrderNotFound {
            what: "decode",
            id: req.decode_id.to_string(),
        };
        let decoded = match self.inner.decodes.get(req.decode_id.as_str()) {
            Some(d) => Some(d),
            // Decoded on another instance of a shared journal.
            None if self.shares() => self.shared_decode(req.decode_id.as_str()).await?,
            None => None,
        }
        .filter(|d| d.client_id == ctx.client_id)
        .ok_or_else(not_found)?;
        let amount = match (decoded.amount, req.amount) {
            (Some(fixed), None) => fixed,
            (Some(fixed), Some(Money(asked))) if asked == fixed => fixed,
            (Some(fixed), Some(_)) => {
                return Err(ApiError::ParamIllegal {
                    field: "amount".to_owned(),
                    reason: format!("this code fixes the amount at {fixed}; omit amount"),
                });
            }
            (None, Some(Money(asked))) if asked.currency() == self.inner.settings.currency => asked,
            (None, Some(Money(asked))) => {
                return Err(ApiError::ParamIllegal {
                    field: "amount".to_owned(),
                    reason: format!(
                        "must be in the merchant's currency {}, got {}",
                        self.inner.settings.currency.code(),
                        asked.currency().code()
                    ),
                });
            }
            (None, None) => {
                return Err(ApiError::ParamIllegal {
                    field: "amount".to_owned(),
                    reason: "required for a code without an amount (static code)".to_owned(),
                });
            }
        };
        let amount = decoded.with_fee(amount)?;
        if let Some(max) = policy.max_per_transaction
            && amount.minor() > max
        {
            return Err(ApiError::AmountExceedLimit {
                limit: format!("per transaction: {amount} is above {max} minor units"),
            });
        }
        let quote = self
            .inner
            .quoter
            .quote(
                amount,
                req.payer_currency,
                Pricing::markup(policy.markup_bps),
            )
            .map_err(errors::fx)?;
        let age = std::time::SystemTime::now()
            .duration_since(quote.rate_as_of)
            .unwrap_or_default();
        crate::telemetry::metrics::global()
            .fx_rate_age
            .get_or_create(&crate::telemetry::metrics::CurrencyLabels {
                currency: req.payer_currency.code().to_owned(),
            })
            .set(age.as_secs_f64());
        if self.shares() {
            self.share_quote(&quote, &decoded).await?;
        }
        let quote = self.inner.quotes.insert(quote);
        let id = quote.id.to_string();
        self.inner.quoted.insert(id.clone(), Arc::clone(&decoded));
        Ok(Answer::ok(QuoteResponse {
            quote_id: ids::wire(&id)?,
            merchant_amount: Money(quote.merchant_amount),
            payer_amount: Money(quote.payer_amount),
            rate: display_rate(quote.rate).to_string(),
            mid_rate: display_rate(quote.mid_rate).to_string(),
            markup_bps: quote.markup_bps,
            effective_rate: display_rate(quote.effective_rate).to_string(),
            expires_at: format_rfc3339(quote.expires_at),
        }))
    }
}
