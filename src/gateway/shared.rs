//! Decodes and quotes any instance may use, when several instances share one journal
//! (PostgreSQL; spec/journal.md §12.3): each is written to the journal before it is answered, and
//! an instance that does not hold an id in memory looks it up there. A quote's single use is the
//! journal's: the payment's first write consumes it ([`OpenPayment::shared_quote`]).
//! On redb (one process) nothing here runs: the in-memory caches are the only store.
//!
//! [`OpenPayment::shared_quote`]: crate::journal::OpenPayment::shared_quote

use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::emv::Tip;
use crate::journal::{QuoteSnapshot, SharedKey};
use crate::money::{Amount, Currency};
use crate::payment::{ApiError, CodeType};

use super::decode::Decoded;
use super::routing::Routed;
use super::{Gateway, errors};

/// The stored form of a [`Decoded`] (ours; the in-memory type has no serde).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredDecoded {
    client_id: String,
    code_type: CodeType,
    acquirer: String,
    merchant_id: String,
    terminal_id: Option<String>,
    scheme: String,
    matched: String,
    name: String,
    city: String,
    country: String,
    mcc: String,
    /// (minor units, ISO 4217 code).
    amount: Option<(u64, String)>,
    reference_label: Option<String>,
    /// `prompt`, `fixed:<minor>` or `percent:<hundredths>`.
    fee: Option<String>,
}

impl StoredDecoded {
    fn of(d: &Decoded) -> Self {
        StoredDecoded {
            client_id: d.client_id.clone(),
            code_type: d.code_type,
            acquirer: d.routed.acquirer.clone(),
            merchant_id: d.routed.merchant_id.clone(),
            terminal_id: d.routed.terminal_id.clone(),
            scheme: d.routed.scheme.clone(),
            matched: d.routed.matched.clone(),
            name: d.name.clone(),
            city: d.city.clone(),
            country: d.country.clone(),
            mcc: d.mcc.clone(),
            amount: d
                .amount
                .map(|a| (a.minor(), a.currency().code().to_owned())),
            reference_label: d.reference_label.clone(),
            fee: d.fee.map(|t| match t {
                Tip::Prompt => "prompt".to_owned(),
                Tip::Fixed(m) => format!("fixed:{m}"),
                Tip::Percentage(h) => format!("percent:{h}"),
            }),
        }
    }

    fn into_decoded(self) -> Result<Decoded, String> {
        let amount = match self.amount {
            Some((minor, code)) => {
                let c = Currency::from_code(&code).map_err(|e| e.to_string())?;
                Some(Amount::from_minor(minor, c).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let fee = match self.fee.as_deref() {
            None => None,
            Some("prompt") => Some(Tip::Prompt),
            Some(f) => Some(
                match f.split_once(':') {
                    Some(("fixed", m)) => m.parse().ok().map(Tip::Fixed),
                    Some(("percent", h)) => h.parse().ok().map(Tip::Percentage),
                    _ => None,
                }
                .ok_or(format!("unknown fee {f:?}"))?,
            ),
        };
        Ok(Decoded {
            client_id: self.client_id,
            code_type: self.code_type,
            routed: Routed {
                acquirer: self.acquirer,
                merchant_id: self.merchant_id,
                terminal_id: self.terminal_id,
                scheme: self.scheme,
                matched: self.matched,
            },
            name: self.name,
            city: self.city,
            country: self.country,
            mcc: self.mcc,
            amount,
            reference_label: self.reference_label,
            fee,
        })
    }
}

/// A quote as another instance needs it to pay it: what the journal keeps of it, its expiry and
/// the merchant it prices.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredQuote {
    quote: QuoteSnapshot,
    expires_at_ms: u64,
    decoded: StoredDecoded,
}

/// A quote found in the journal (made on another instance).
pub(super) struct SharedQuote {
    pub(super) quote: QuoteSnapshot,
    pub(super) expires_at: SystemTime,
    pub(super) decoded: Arc<Decoded>,
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn corrupt(what: &str, id: &str, e: impl std::fmt::Display) -> ApiError {
    errors::internal(format!(
        "shared {what} {id} in the journal is unreadable: {e}"
    ))
}

impl Gateway {
    /// Whether decodes and quotes go through the journal (several instances share it).
    pub(super) fn shares(&self) -> bool {
        self.inner.journal.instance().is_some()
    }

    /// Writes a decode for the other instances (durable before the wallet is answered).
    pub(super) async fn share_decode(
        &self,
        id: &str,
        d: &Decoded,
        expires_at: SystemTime,
    ) -> Result<(), ApiError> {
        let payload = serde_json::to_vec(&StoredDecoded::of(d))
            .map_err(|e| errors::internal(format!("encoding decode {id}: {e}")))?;
        self.inner
            .journal
            .share(SharedKey::Decode(id.to_owned()), payload, ms(expires_at))
            .await
            .map_err(errors::journal)
    }

    /// A decode another instance made, if the journal has it and it has not expired.
    pub(super) async fn shared_decode(&self, id: &str) -> Result<Option<Arc<Decoded>>, ApiError> {
        let key = SharedKey::Decode(id.to_owned());
        let Some(bytes) = self
            .inner
            .journal
            .shared(&key, ms(SystemTime::now()))
            .await
            .map_err(errors::journal)?
        else {
            return Ok(None);
        };
        let stored: StoredDecoded =
            serde_json::from_slice(&bytes).map_err(|e| corrupt("decode", id, e))?;
        let decoded = Arc::new(
            stored
                .into_decoded()
                .map_err(|e| corrupt("decode", id, e))?,
        );
        self.inner
            .decodes
            .insert(id.to_owned(), Arc::clone(&decoded));
        Ok(Some(decoded))
    }

    /// Writes a quote for the other instances (durable before the wallet is answered).
    pub(super) async fn share_quote(
        &self,
        quote: &crate::fx::Quote,
        d: &Decoded,
    ) -> Result<(), ApiError> {
        let id = quote.id.to_string();
        let stored = StoredQuote {
            quote: QuoteSnapshot::of(quote),
            expires_at_ms: ms(quote.expires_at),
            decoded: StoredDecoded::of(d),
        };
        let payload = serde_json::to_vec(&stored)
            .map_err(|e| errors::internal(format!("encoding quote {id}: {e}")))?;
        self.inner
            .journal
            .share(SharedKey::Quote(id), payload, stored.expires_at_ms)
            .await
            .map_err(errors::journal)
    }

    /// A quote another instance made, if the journal still has it (not used, not expired).
    pub(super) async fn shared_quote(&self, id: &str) -> Result<Option<SharedQuote>, ApiError> {
        let key = SharedKey::Quote(id.to_owned());
        let Some(bytes) = self
            .inner
            .journal
            .shared(&key, ms(SystemTime::now()))
            .await
            .map_err(errors::journal)?
        else {
            return Ok(None);
        };
        if bytes.is_empty() {
            // Consumed by a payment (on any instance).
            return Err(ApiError::QuoteConsumed {
                quote_id: id.to_owned(),
            });
        }
        let stored: StoredQuote =
            serde_json::from_slice(&bytes).map_err(|e| corrupt("quote", id, e))?;
        Ok(Some(SharedQuote {
            quote: stored.quote,
            expires_at: SystemTime::UNIX_EPOCH
                + std::time::Duration::from_millis(stored.expires_at_ms),
            decoded: Arc::new(
                stored
                    .decoded
                    .into_decoded()
                    .map_err(|e| corrupt("quote", id, e))?,
            ),
        }))
    }
}
