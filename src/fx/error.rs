//! The FX room's one error type.

use std::time::{Duration, SystemTime};

use crate::money::{AmountError, Currency, CurrencyError};

use super::rate::Pair;
use crate::time::format_rfc3339;

/// Everything that can go wrong fetching rates, pricing a quote or using one.
///
/// Callers ask predicates ([`FxError::is_stale`], ...) or [`FxError::code`], never the message.
/// The type is `Clone` so one failed fetch can be handed to every caller that waited on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FxError {
    /// A rate source could not be read (file, network, TLS, HTTP status).
    #[error("rate source {source_name}: {detail}")]
    SourceUnavailable {
        /// The source, e.g. `ecb-file:testdata/fx/eurofxref-daily.xml`.
        source_name: String,
        /// What failed, e.g. the I/O error or HTTP status.
        detail: String,
    },
    /// A rate source answered, but not with a well-formed feed.
    #[error("rate source {source_name}: malformed feed: {detail}")]
    MalformedFeed {
        /// The source.
        source_name: String,
        /// What is wrong and where.
        detail: String,
    },
    /// The source has no rate for a currency of the pair.
    #[error("no {currency} rate in {source_name} (needed for {pair})")]
    MissingRate {
        /// The pair asked for.
        pair: Pair,
        /// The currency without a rate.
        currency: Currency,
        /// The source that lacks it.
        source_name: String,
    },
    /// The best rate we have is older than the staleness limit: we refuse to quote from it.
    #[error(
        "rate {pair} from {source_name} is stale: as of {as_of}, {age_secs} s old, limit {limit_secs} s{}",
        last_error.as_ref().map(|e| format!(" (last refresh failed: {e})")).unwrap_or_default()
    )]
    RateStale {
        /// The pair.
        pair: Pair,
        /// The source.
        source_name: String,
        /// The rate's as-of time (RFC 3339).
        as_of: String,
        /// How old the rate is, in seconds.
        age_secs: u64,
        /// The staleness limit, in seconds.
        limit_secs: u64,
        /// Why the last refresh failed, if it did.
        last_error: Option<String>,
    },
    /// A currency code was refused.
    #[error(transparent)]
    Currency(#[from] CurrencyError),
    /// An amount was refused, or a converted amount is out of range.
    #[error(transparent)]
    Amount(#[from] AmountError),
    /// Nothing to quote: the merchant amount is zero.
    #[error("cannot quote a zero amount")]
    ZeroAmount,
    /// A markup above [`super::MAX_MARKUP_BPS`].
    #[error("markup of {bps} bps is above the limit of {max} bps", max = super::MAX_MARKUP_BPS)]
    MarkupTooHigh {
        /// The markup asked for.
        bps: u32,
    },
    /// A conversion exceeds the exact-arithmetic range (astronomical amount or rate).
    #[error("converting {amount} at {rate} gives an amount out of range")]
    ConversionOverflow {
        /// The amount, formatted.
        amount: String,
        /// The rate, formatted.
        rate: String,
    },
    /// A rate that is zero or negative.
    #[error("rate for {currency} in {source_name} must be positive, got {rate}")]
    NonPositiveRate {
        /// The currency.
        currency: Currency,
        /// The source.
        source_name: String,
        /// The rate as given.
        rate: String,
    },
    /// The operating system's random generator failed (quote ids cannot be made).
    #[error("the operating system's random generator failed; cannot make a quote id")]
    RandomUnavailable,
    /// No quote with this id (never issued, mistyped, or long expired and forgotten).
    #[error("quote {id} not found")]
    QuoteNotFound {
        /// The quote id.
        id: String,
    },
    /// The quote's lifetime is over.
    #[error("quote {id} expired at {expired_at}")]
    QuoteExpired {
        /// The quote id.
        id: String,
        /// When it expired (RFC 3339).
        expired_at: String,
    },
    /// The quote was already used.
    #[error("quote {id} was already used")]
    QuoteConsumed {
        /// The quote id.
        id: String,
    },
    /// A refund larger than what is left of the quoted amount.
    #[error("refund of {refund} exceeds the {left} left on quote {id}")]
    RefundExceedsQuote {
        /// The quote id.
        id: String,
        /// The refund asked for.
        refund: String,
        /// What was left to refund.
        left: String,
    },
}

impl FxError {
    /// A short stable code for logs and wire mappings: `rate_stale`, `quote_consumed`, ...
    pub fn code(&self) -> &'static str {
        match self {
            FxError::SourceUnavailable { .. } => "rate_source_unavailable",
            FxError::MalformedFeed { .. } => "rate_feed_malformed",
            FxError::MissingRate { .. } => "rate_missing",
            FxError::RateStale { .. } => "rate_stale",
            FxError::Currency(_) => "currency_invalid",
            FxError::Amount(_) => "amount_invalid",
            FxError::ZeroAmount => "amount_zero",
            FxError::MarkupTooHigh { .. } => "markup_too_high",
            FxError::ConversionOverflow { .. } => "amount_out_of_range",
            FxError::NonPositiveRate { .. } => "rate_invalid",
            FxError::RandomUnavailable => "internal_random_unavailable",
            FxError::QuoteNotFound { .. } => "quote_not_found",
            FxError::QuoteExpired { .. } => "quote_expired",
            FxError::QuoteConsumed { .. } => "quote_consumed",
            FxError::RefundExceedsQuote { .. } => "refund_exceeds_quote",
        }
    }

    /// The rate is older than the staleness limit.
    pub fn is_stale(&self) -> bool {
        matches!(self, FxError::RateStale { .. })
    }

    /// The rate source (our upstream) failed: unreadable, unreachable or malformed.
    pub fn is_source_failure(&self) -> bool {
        matches!(
            self,
            FxError::SourceUnavailable { .. } | FxError::MalformedFeed { .. }
        )
    }

    /// The quote's lifetime is over.
    pub fn is_expired(&self) -> bool {
        matches!(self, FxError::QuoteExpired { .. })
    }

    /// The quote was already used.
    pub fn is_consumed(&self) -> bool {
        matches!(self, FxError::QuoteConsumed { .. })
    }

    /// The caller's input was wrong (amount, currency, markup), as opposed to our rates or state.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            FxError::Currency(_)
                | FxError::Amount(_)
                | FxError::ZeroAmount
                | FxError::MarkupTooHigh { .. }
                | FxError::ConversionOverflow { .. }
                | FxError::RefundExceedsQuote { .. }
        )
    }

    pub(crate) fn stale(
        pair: Pair,
        source_name: &str,
        as_of: SystemTime,
        age: Duration,
        limit: Duration,
        last_error: Option<String>,
    ) -> Self {
        FxError::RateStale {
            pair,
            source_name: source_name.to_owned(),
            as_of: format_rfc3339(as_of),
            age_secs: age.as_secs(),
            limit_secs: limit.as_secs(),
            last_error,
        }
    }
}
