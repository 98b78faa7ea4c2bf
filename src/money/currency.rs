//! ISO 4217 currencies, from the maintained `iso_currency` table (no hand-written table here).
//!
//! Only currencies with a defined minor unit (exponent 0–4) can hold an [`Amount`](super) in minor
//! units; metals, testing and "no currency" codes (XAU, XTS, XXX, ...) are refused with their own error.

use std::fmt;

/// An ISO 4217 currency that has a minor unit: alpha-3 code, numeric code and exponent.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    iso: iso_currency::Currency,
    exponent: u8,
}

/// Why a currency code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// The numeric code is not in ISO 4217.
    #[error("{0:03} is not an ISO 4217 numeric currency code")]
    UnknownNumeric(u16),
    /// The alphabetic code is not in ISO 4217.
    #[error("{0:?} is not an ISO 4217 alphabetic currency code")]
    UnknownCode(String),
    /// The currency exists but has no minor unit (precious metals, testing code, "no currency").
    #[error("{0} has no minor unit in ISO 4217 and cannot carry an amount")]
    NoMinorUnit(&'static str),
}

/// Every numeric code 000–999 looked up once (QR parsing looks one up per payload): the currency,
/// or the code of one without a minor unit, or `None` when ISO 4217 has no such number.
type NumericEntry = Option<Result<Currency, &'static str>>;
static BY_NUMERIC: std::sync::LazyLock<Vec<NumericEntry>> = std::sync::LazyLock::new(|| {
    (0..1000u16)
        .map(|n| {
            iso_currency::Currency::from_numeric(n)
                .map(|iso| Currency::from_iso(iso).map_err(|_| iso.code()))
        })
        .collect()
});

impl Currency {
    /// US dollar (840, exponent 2), usable in constant expressions.
    pub const USD: Currency = Currency {
        iso: iso_currency::Currency::USD,
        exponent: 2,
    };

    fn from_iso(iso: iso_currency::Currency) -> Result<Self, CurrencyError> {
        match iso.exponent() {
            Some(e) if e <= 4 => Ok(Currency {
                iso,
                exponent: e as u8,
            }),
            _ => Err(CurrencyError::NoMinorUnit(iso.code())),
        }
    }

    /// Looks a currency up by its ISO 4217 numeric code (764 → THB).
    pub fn from_numeric(numeric: u16) -> Result<Self, CurrencyError> {
        match BY_NUMERIC.get(numeric as usize) {
            Some(Some(Ok(c))) => Ok(*c),
            Some(Some(Err(code))) => Err(CurrencyError::NoMinorUnit(code)),
            _ => Err(CurrencyError::UnknownNumeric(numeric)),
        }
    }

    /// Looks a currency up by its ISO 4217 alphabetic code ("THB"); exact upper-case match.
    pub fn from_code(code: &str) -> Result<Self, CurrencyError> {
        match iso_currency::Currency::from_code(code) {
            Some(iso) => Self::from_iso(iso),
            None => Err(CurrencyError::UnknownCode(code.to_owned())),
        }
    }

    /// The alphabetic code, e.g. "THB".
    pub fn code(self) -> &'static str {
        self.iso.code()
    }

    /// The numeric code, e.g. 764.
    pub fn numeric(self) -> u16 {
        self.iso.numeric()
    }

    /// Digits after the decimal point of the minor unit: JPY 0, THB 2, KWD 3, CLF 4.
    pub fn exponent(self) -> u8 {
        self.exponent
    }

    /// The English name, e.g. "Thai baht".
    pub fn name(&self) -> &str {
        self.iso.name()
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({:03}, exp {})",
            self.code(),
            self.numeric(),
            self.exponent
        )
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_follow_iso_4217() {
        for (numeric, code, exp) in [
            (392, "JPY", 0),
            (764, "THB", 2),
            (414, "KWD", 3),
            (990, "CLF", 4),
        ] {
            let c = Currency::from_numeric(numeric).unwrap();
            assert_eq!((c.code(), c.exponent()), (code, exp));
            assert_eq!(Currency::from_code(code).unwrap(), c);
        }
    }

    #[test]
    fn the_numeric_table_agrees_with_iso_4217_and_usd_is_usd() {
        assert_eq!(Currency::from_code("USD").unwrap(), Currency::USD);
        assert_eq!(
            Currency::from_numeric(10_000),
            Err(CurrencyError::UnknownNumeric(10_000))
        );
        for n in 0..1000u16 {
            let want = match iso_currency::Currency::from_numeric(n) {
                None => Err(CurrencyError::UnknownNumeric(n)),
                Some(iso) => Currency::from_code(iso.code()),
            };
            assert_eq!(Currency::from_numeric(n), want, "{n:03}");
        }
    }

    #[test]
    fn refuses_unknown_and_unitless_currencies() {
        assert_eq!(
            Currency::from_numeric(1),
            Err(CurrencyError::UnknownNumeric(1))
        );
        assert_eq!(
            Currency::from_numeric(959),
            Err(CurrencyError::NoMinorUnit("XAU"))
        );
        assert!(matches!(
            Currency::from_code("thb"),
            Err(CurrencyError::UnknownCode(_))
        ));
    }
}
