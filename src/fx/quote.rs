//! Quotes: a merchant amount priced in the payer's currency, locked for a short lifetime.
//!
//! ```text
//! mid_rate       = payer-per-base / merchant-per-base          (payer units per merchant unit)
//! rate           = mid_rate × (10000 + markup_bps) / 10000     (the payer pays more)
//! payer_amount   = round(merchant_amount × rate, payer exponent, rounding)   — one rounding, exact
//! payer_total    = payer_amount + fees
//! effective_rate = payer_total / merchant_amount                (what the payer really paid per unit)
//! ```
//!
//! See `spec/fx.md` for the rules and worked examples.

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::money::{Amount, Currency, Rounding};

use super::FxError;
use super::cache::RateCache;
use super::rate::{CrossRate, Pair};
use crate::time::Clock;

/// The highest markup accepted: 10 000 bps (100 %). Anything above is a configuration mistake.
pub const MAX_MARKUP_BPS: u32 = 10_000;

/// How long a quote holds by default: 120 s.
pub const DEFAULT_QUOTE_LIFETIME: Duration = Duration::from_secs(120);

/// A quote's id: a UUIDv7 (48-bit millisecond timestamp, so ids sort by time) whose other 74 bits
/// all come from the operating system's CSPRNG (no counter), so an id cannot be guessed from
/// another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuoteId(Uuid);

/// Random bytes from the operating system, fetched a block at a time: one `getrandom` call per
/// 128 ids instead of one per id (the call costs more than the rest of a quote).
struct RandomPool {
    bytes: [u8; 1280],
    used: usize,
}

thread_local! {
    static RANDOM: RefCell<RandomPool> = const {
        RefCell::new(RandomPool { bytes: [0; 1280], used: 1280 })
    };
}

fn random_10(rng: &SystemRandom) -> Result<[u8; 10], FxError> {
    RANDOM.with_borrow_mut(|pool| {
        if pool.used + 10 > pool.bytes.len() {
            rng.fill(&mut pool.bytes)
                .map_err(|_| FxError::RandomUnavailable)?;
            pool.used = 0;
        }
        let mut out = [0u8; 10];
        let taken = &mut pool.bytes[pool.used..pool.used + 10];
        out.copy_from_slice(taken);
        // Handed-out bytes do not stay in the pool.
        taken.fill(0);
        pool.used += 10;
        Ok(out)
    })
}

impl QuoteId {
    fn generate(now: SystemTime, rng: &SystemRandom) -> Result<Self, FxError> {
        let random = random_10(rng)?;
        let millis = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Ok(QuoteId(
            uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid(),
        ))
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for QuoteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for QuoteId {
    type Err = FxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s)
            .map(QuoteId)
            .map_err(|_| FxError::QuoteNotFound {
                id: s.chars().take(40).collect(),
            })
    }
}

/// What a quote charges on top of the mid rate: a markup in basis points built into the rate,
/// and a fixed fee in the payer's currency added to the converted amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pricing {
    /// Markup over the mid rate, in basis points (1 bp = 0.01 %).
    pub markup_bps: u32,
    /// A fixed fee in minor units of the payer's currency.
    pub fee_minor: u64,
}

impl Pricing {
    /// A markup alone, no fee.
    pub fn markup(bps: u32) -> Self {
        Pricing {
            markup_bps: bps,
            fee_minor: 0,
        }
    }
}

/// Quoting rules of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotePolicy {
    /// How long a quote holds (default 120 s).
    pub lifetime: Duration,
    /// How the payer amount is rounded (default half-up).
    pub rounding: Rounding,
}

impl Default for QuotePolicy {
    fn default() -> Self {
        QuotePolicy {
            lifetime: DEFAULT_QUOTE_LIFETIME,
            rounding: Rounding::HalfUp,
        }
    }
}

/// A priced, time-limited offer. Built only by [`Quoter::quote`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// Unique, unguessable id.
    pub id: QuoteId,
    /// Merchant currency → payer currency.
    pub pair: Pair,
    /// Payer units per merchant unit at the source's mid rate (28 significant digits).
    pub mid_rate: Decimal,
    /// Markup over the mid rate, basis points.
    pub markup_bps: u32,
    /// `mid_rate` marked up: what the payer is charged per merchant unit (28 significant digits;
    /// amounts are computed from the exact ratio, not from this value).
    pub rate: Decimal,
    /// What the merchant is paid.
    pub merchant_amount: Amount,
    /// `merchant_amount × rate`, rounded once at the payer currency's exponent.
    pub payer_amount: Amount,
    /// `merchant_amount × rate` before rounding, in payer major units (28 significant digits).
    pub payer_amount_unrounded: Decimal,
    /// Fixed fees in the payer's currency, charged on top of `payer_amount`.
    pub fees: Amount,
    /// `payer_amount + fees`: what the payer is charged in all.
    pub payer_total: Amount,
    /// `payer_total / merchant_amount`: the all-in rate the payer really gets.
    pub effective_rate: Decimal,
    /// The rounding rule applied.
    pub rounding: Rounding,
    /// When the quote was made.
    pub created_at: SystemTime,
    /// When it stops being usable.
    pub expires_at: SystemTime,
    /// The rate source's name.
    pub rate_source: Arc<str>,
    /// The rate's as-of time (the feed's publication time).
    pub rate_as_of: SystemTime,
    cross: CrossRate,
}

impl Quote {
    /// Whether the quote is past its lifetime at `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        now >= self.expires_at
    }

    /// Converts another merchant amount at this quote's rate, markup and rounding.
    pub fn convert(&self, merchant_amount: Amount) -> Result<Amount, FxError> {
        self.check_currency(merchant_amount)?;
        let (payer, _) = self.cross.convert(
            merchant_amount,
            self.pair.to,
            self.markup_bps,
            self.rounding,
        )?;
        Ok(payer)
    }

    /// The payer-currency refund for refunding `refund` of the merchant amount when
    /// `refunded_so_far` was refunded before, at this quote's rate. Computed as
    /// `convert(so_far + refund) − convert(so_far)`, so partial refunds add up to exactly
    /// `payer_amount` however the merchant amount is split; fees are not refunded.
    pub fn refund(&self, refunded_so_far: Amount, refund: Amount) -> Result<Amount, FxError> {
        self.check_currency(refunded_so_far)?;
        self.check_currency(refund)?;
        let total = refunded_so_far.checked_add(refund)?;
        if total.minor() > self.merchant_amount.minor() {
            return Err(FxError::RefundExceedsQuote {
                id: self.id.to_string(),
                refund: refund.to_string(),
                left: self
                    .merchant_amount
                    .checked_sub(refunded_so_far)
                    .map_or_else(|_| "nothing".to_owned(), |a| a.to_string()),
            });
        }
        let after = self.convert(total)?;
        let before = self.convert(refunded_so_far)?;
        Ok(after.checked_sub(before)?)
    }

    fn check_currency(&self, amount: Amount) -> Result<(), FxError> {
        if amount.currency() == self.pair.from {
            Ok(())
        } else {
            Err(crate::money::AmountError::CurrencyMismatch {
                left: self.pair.from,
                right: amount.currency(),
            }
            .into())
        }
    }
}

/// Makes quotes from a [`RateCache`] under a [`QuotePolicy`].
pub struct Quoter {
    rates: RateCache,
    policy: QuotePolicy,
    clock: Arc<dyn Clock>,
    rng: SystemRandom,
}

impl Quoter {
    /// A quoter over `rates`.
    pub fn new(rates: RateCache, policy: QuotePolicy, clock: Arc<dyn Clock>) -> Self {
        Quoter {
            rates,
            policy,
            clock,
            rng: SystemRandom::new(),
        }
    }

    /// The rate cache.
    pub fn rates(&self) -> &RateCache {
        &self.rates
    }

    /// The policy in force.
    pub fn policy(&self) -> &QuotePolicy {
        &self.policy
    }

    /// Prices `merchant_amount` in `payer_currency` with `pricing`. Errors: zero amount, markup
    /// above [`MAX_MARKUP_BPS`], no or stale rate, result out of range.
    pub fn quote(
        &self,
        merchant_amount: Amount,
        payer_currency: Currency,
        pricing: Pricing,
    ) -> Result<Quote, FxError> {
        if merchant_amount.is_zero() {
            return Err(FxError::ZeroAmount);
        }
        let markup_bps = pricing.markup_bps;
        if markup_bps > MAX_MARKUP_BPS {
            return Err(FxError::MarkupTooHigh { bps: markup_bps });
        }
        let pair = Pair::new(merchant_amount.currency(), payer_currency);
        let rate = self.rates.rate(pair)?;
        let rounding = self.policy.rounding;
        let (payer_amount, payer_amount_unrounded) =
            rate.cross
                .convert(merchant_amount, payer_currency, markup_bps, rounding)?;
        let fees = Amount::from_minor(pricing.fee_minor, payer_currency)?;
        let payer_total = payer_amount.checked_add(fees)?;
        let overflow = || FxError::ConversionOverflow {
            amount: merchant_amount.to_string(),
            rate: rate.mid.to_string(),
        };
        // The mid rate is already held to 28 significant digits; one multiplication by
        // 1.xxxx is as good as the exact ratio for a rate that is displayed, never computed with
        // (amounts come from `convert`), and skips a 96-bit division on the hot path.
        let marked_up = if markup_bps == 0 {
            rate.mid
        } else {
            rate.mid
                .checked_mul(Decimal::new(i64::from(10_000 + markup_bps), 4))
                .ok_or_else(overflow)?
        };
        let effective_rate = payer_total
            .to_decimal()
            .checked_div(merchant_amount.to_decimal())
            .ok_or_else(overflow)?;
        let now = self.clock.now();
        Ok(Quote {
            id: QuoteId::generate(now, &self.rng)?,
            pair,
            mid_rate: rate.mid,
            markup_bps,
            rate: marked_up,
            merchant_amount,
            payer_amount,
            payer_amount_unrounded,
            fees,
            payer_total,
            effective_rate,
            rounding,
            created_at: now,
            expires_at: now.checked_add(self.policy.lifetime).unwrap_or(now),
            rate_source: rate.source,
            rate_as_of: rate.as_of,
            cross: rate.cross,
        })
    }
}
