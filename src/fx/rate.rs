//! Rates: a source's published table (units per one unit of its base currency), currency pairs,
//! and the exact cross rate between two currencies of a table.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use rust_decimal::Decimal;

use crate::money::{Amount, Currency, Rounding};

use super::FxError;

/// A conversion direction: amounts in `from` (the merchant's currency) are priced in `to` (the
/// payer's currency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pair {
    /// The merchant's currency: what the price is in.
    pub from: Currency,
    /// The payer's currency: what the price is converted to.
    pub to: Currency,
}

impl Pair {
    /// The pair `from` → `to`.
    pub fn new(from: Currency, to: Currency) -> Self {
        Pair { from, to }
    }
}

impl fmt::Display for Pair {
    /// `THB/JPY`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.from, self.to)
    }
}

/// One published snapshot of a rate source: how many units of each currency one unit of `base`
/// buys (the ECB's convention: `USD 1.0412` means 1 EUR = 1.0412 USD), as of one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateTable {
    base: Currency,
    as_of: SystemTime,
    source: Arc<str>,
    per_base: HashMap<Currency, Decimal>,
}

impl RateTable {
    /// An empty table of `source` with base currency `base`, as of `as_of`.
    pub fn new(base: Currency, as_of: SystemTime, source: impl Into<Arc<str>>) -> Self {
        RateTable {
            base,
            as_of,
            source: source.into(),
            per_base: HashMap::new(),
        }
    }

    /// Adds `currency`'s rate: units of `currency` per one unit of the base. Refuses rates that
    /// are not positive, and a rate other than 1 for the base itself.
    pub fn insert(&mut self, currency: Currency, per_base: Decimal) -> Result<(), FxError> {
        if per_base <= Decimal::ZERO {
            return Err(FxError::NonPositiveRate {
                currency,
                source_name: self.source.to_string(),
                rate: per_base.to_string(),
            });
        }
        if currency == self.base && per_base != Decimal::ONE {
            return Err(FxError::MalformedFeed {
                source_name: self.source.to_string(),
                detail: format!("the base {currency} must have rate 1, got {per_base}"),
            });
        }
        self.per_base.insert(currency, per_base.normalize());
        Ok(())
    }

    /// The base currency.
    pub fn base(&self) -> Currency {
        self.base
    }

    /// When the rates were published (or set).
    pub fn as_of(&self) -> SystemTime {
        self.as_of
    }

    /// The source's name.
    pub fn source(&self) -> &Arc<str> {
        &self.source
    }

    /// How many currencies have a rate (the base not counted unless listed).
    pub fn len(&self) -> usize {
        self.per_base.len()
    }

    /// Whether the table has no rates.
    pub fn is_empty(&self) -> bool {
        self.per_base.is_empty()
    }

    /// Units of `currency` per one unit of the base (1 for the base itself).
    pub fn per_base(&self, currency: Currency) -> Option<Decimal> {
        if currency == self.base {
            Some(Decimal::ONE)
        } else {
            self.per_base.get(&currency).copied()
        }
    }

    /// The rate for `pair`, crossed through the base when neither side is the base.
    pub fn rate(&self, pair: Pair) -> Result<Rate, FxError> {
        let missing = |currency| FxError::MissingRate {
            pair,
            currency,
            source_name: self.source.to_string(),
        };
        let (numer, denom) = if pair.from == pair.to {
            (Decimal::ONE, Decimal::ONE)
        } else {
            (
                self.per_base(pair.to).ok_or_else(|| missing(pair.to))?,
                self.per_base(pair.from).ok_or_else(|| missing(pair.from))?,
            )
        };
        let cross = CrossRate::new(numer, denom);
        Ok(Rate {
            pair,
            cross,
            mid: cross.value(0).unwrap_or(Decimal::ZERO),
            as_of: self.as_of,
            source: self.source.clone(),
        })
    }
}

/// An exact rate kept as a ratio `numer / denom` of two positive decimals, so that a cross rate
/// through a base (JPY-per-EUR ÷ THB-per-EUR) is never rounded before an amount is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossRate {
    numer: Decimal,
    denom: Decimal,
}

/// Basis points per whole: 10 000 bps = 100 %.
const BPS: u32 = 10_000;

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `n * factor`, first cancelling what `factor` shares with the denominator `d`.
fn mul_reduced(n: u128, factor: u128, d: &mut u128) -> Option<u128> {
    let g = gcd(factor, *d);
    let (factor, den) = if g > 1 {
        (factor / g, *d / g)
    } else {
        (factor, *d)
    };
    *d = den;
    n.checked_mul(factor)
}

impl CrossRate {
    /// The rate `numer / denom`; both must be positive (a [`RateTable`] guarantees it).
    pub fn new(numer: Decimal, denom: Decimal) -> Self {
        CrossRate {
            numer: numer.normalize(),
            denom: denom.normalize(),
        }
    }

    /// The numerator: units of the target currency per unit of the base.
    pub fn numer(&self) -> Decimal {
        self.numer
    }

    /// The denominator: units of the source currency per unit of the base.
    pub fn denom(&self) -> Decimal {
        self.denom
    }

    /// The rate with a markup of `markup_bps` applied, as one `Decimal` (28 significant digits):
    /// `numer × (10000 + markup_bps) / (denom × 10000)`. `None` only on out-of-range input.
    pub fn value(&self, markup_bps: u32) -> Option<Decimal> {
        let up = Decimal::from(BPS.checked_add(markup_bps)?);
        let n = self.numer.checked_mul(up)?;
        let d = self.denom.checked_mul(Decimal::from(BPS))?;
        n.checked_div(d)
    }

    /// Converts `amount` to `to` at this rate marked up by `markup_bps`, rounding once at `to`'s
    /// exponent under `rounding`. Exact: the whole computation is done on integers
    /// (`amount_minor × numer × (10000 + bps) × 10^e_to / (10^e_from × denom × 10000)`), so the
    /// only rounding is the final one. Returns the rounded amount and the exact quotient as a
    /// `Decimal` in major units (28 significant digits, for display and audit).
    pub fn convert(
        &self,
        amount: Amount,
        to: Currency,
        markup_bps: u32,
        rounding: Rounding,
    ) -> Result<(Amount, Decimal), FxError> {
        let overflow = || FxError::ConversionOverflow {
            amount: amount.to_string(),
            rate: format!("{}/{}", self.numer, self.denom),
        };
        let (m_num, s_num) = (self.numer.mantissa().unsigned_abs(), self.numer.scale());
        let (m_den, s_den) = (self.denom.mantissa().unsigned_abs(), self.denom.scale());
        // Powers of ten: numerator gets 10^(s_den + e_to), denominator 10^(s_num + e_from + 4).
        let up = i64::from(s_den) + i64::from(to.exponent());
        let down = i64::from(s_num) + i64::from(amount.currency().exponent()) + 4;
        let k = up - down;
        let pow = |e: i64| u32::try_from(e).ok().and_then(|e| 10u128.checked_pow(e));
        let mut d = if k < 0 {
            m_den.checked_mul(pow(-k).ok_or_else(overflow)?)
        } else {
            Some(m_den)
        }
        .ok_or_else(overflow)?;
        let mut n = 1u128;
        for factor in [
            u128::from(amount.minor()),
            m_num,
            u128::from(BPS) + u128::from(markup_bps),
            if k > 0 {
                pow(k).ok_or_else(overflow)?
            } else {
                1
            },
        ] {
            n = mul_reduced(n, factor, &mut d).ok_or_else(overflow)?;
        }
        let minor = rounding
            .divide(n, d)
            .and_then(|m| u64::try_from(m).ok())
            .filter(|m| *m <= Amount::MAX_MINOR)
            .ok_or_else(overflow)?;
        let rounded = Amount::from_minor(minor, to)?;
        Ok((rounded, exact_quotient(n, d, to.exponent())))
    }
}

/// `n / d / 10^exponent` as a `Decimal`, to 28 significant digits (display only).
fn exact_quotient(n: u128, mut d: u128, exponent: u8) -> Decimal {
    let q = n / d;
    let mut r = n % d;
    // Bring the remainder and divisor into Decimal's 96-bit range; precision beyond that is
    // below Decimal's resolution anyway.
    while d >> 96 != 0 {
        d >>= 1;
        r >>= 1;
    }
    let dec = |v: u128| {
        i128::try_from(v)
            .ok()
            .and_then(|v| Decimal::try_from_i128_with_scale(v, 0).ok())
    };
    let whole = dec(q).unwrap_or(Decimal::MAX);
    let frac = match (dec(r), dec(d)) {
        (Some(r), Some(d)) if !d.is_zero() => r.checked_div(d).unwrap_or(Decimal::ZERO),
        _ => Decimal::ZERO,
    };
    let minor = whole.checked_add(frac).unwrap_or(whole);
    let scale = Decimal::from_i128_with_scale(1, u32::from(exponent));
    minor.checked_mul(scale).unwrap_or(minor).normalize()
}

/// The rate for one pair as served by the cache: exact cross rate, mid rate, as-of time, source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    /// The pair.
    pub pair: Pair,
    /// The exact rate (ratio of the two base rates).
    pub cross: CrossRate,
    /// The mid rate: payer-currency units per one merchant-currency unit (28 significant digits).
    pub mid: Decimal,
    /// When the source published it.
    pub as_of: SystemTime,
    /// The source's name.
    pub source: Arc<str>,
}

/// A rate rounded for display: 12 significant digits, half-up, trailing zeros dropped.
pub fn display_rate(rate: Decimal) -> Decimal {
    rate.round_sf_with_strategy(12, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .unwrap_or(rate)
        .normalize()
}
