//! `Amount`: a whole number of minor units of one currency.
//!
//! Conversions are exact or fail: a decimal string with more digits after the point than the
//! currency's ISO 4217 exponent, a value beyond [`Amount::MAX_MINOR`] and a field too short for the
//! value are errors, never rounded or truncated silently.
//!
//! Wire forms:
//! - decimal major units, `"350.00"` THB ⇄ 35000 minor units ([`Amount::parse`], [`Amount::to_decimal_string`]);
//! - EMVCo MPM tag 54 (Transaction Amount): up to 13 characters, digits and an optional `.`
//!   ([`Amount::parse_emv`], [`Amount::to_emv`]);
//! - ISO 8583 `n12` (DE4 and friends): exactly 12 digits of minor units, zero-padded
//!   ([`Amount::parse_n12`], [`Amount::to_n12`]).

use std::cmp::Ordering;
use std::fmt;

use rust_decimal::Decimal;

use super::{Currency, Rounding};

/// A non-negative amount: whole minor units (cents, satang, fils, ...) of one currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amount {
    minor: u64,
    currency: Currency,
}

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The input string is empty.
    #[error("empty amount")]
    Empty,
    /// A sign was given: amounts are never negative (a refund is its own operation).
    #[error("amount {input:?} is negative; amounts are never negative")]
    Negative {
        /// The input, cut to 40 characters.
        input: String,
    },
    /// A character other than a digit or one decimal point.
    #[error(
        "amount {input:?} has {found:?} at character {position}; expected digits and at most one '.'"
    )]
    InvalidCharacter {
        /// The input, cut to 40 characters.
        input: String,
        /// The offending character.
        found: char,
        /// Its offset, counted in characters from 0.
        position: usize,
    },
    /// A decimal point without digits on both sides (`".5"`, `"5."`).
    #[error("amount {input:?} needs digits on both sides of the decimal point")]
    MissingDigits {
        /// The input, cut to 40 characters.
        input: String,
    },
    /// More digits after the point than the currency's minor unit has: precision would be lost.
    #[error("amount {input:?} has {found} decimals but {currency} has {exponent}")]
    TooManyDecimals {
        /// The input, cut to 40 characters.
        input: String,
        /// The currency the amount is in.
        currency: Currency,
        /// The currency's ISO 4217 exponent.
        exponent: u8,
        /// Decimals in the input.
        found: usize,
    },
    /// The value exceeds [`Amount::MAX_MINOR`] minor units (or a result would).
    #[error("amount {what} is out of range (at most {max} minor units)", max = Amount::MAX_MINOR)]
    Overflow {
        /// What overflowed: the input or the operation.
        what: String,
    },
    /// The value does not fit a fixed-size wire field.
    #[error("amount {value} does not fit {field} (at most {max_len} characters)")]
    TooLong {
        /// The field, e.g. "EMV tag 54".
        field: &'static str,
        /// Its maximum length in characters.
        max_len: usize,
        /// The value that did not fit.
        value: String,
    },
    /// An `n12` field is not exactly 12 ASCII digits.
    #[error("ISO 8583 n12 amount {input:?} must be exactly 12 digits")]
    BadN12 {
        /// The input, cut to 40 characters.
        input: String,
    },
    /// Two amounts of different currencies were combined.
    #[error("cannot combine {left} and {right} amounts")]
    CurrencyMismatch {
        /// The left operand's currency.
        left: Currency,
        /// The right operand's currency.
        right: Currency,
    },
    /// A subtraction would go below zero.
    #[error("{left} minus {right} would be negative")]
    Underflow {
        /// The left operand, formatted.
        left: String,
        /// The right operand, formatted.
        right: String,
    },
}

/// Cuts outside input for error messages, so a megabyte of garbage does not end up in a log line.
fn excerpt(input: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = input.chars().take(MAX).collect();
    if input.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// 10^0 ..= 10^19: every power of ten that fits a u64.
const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

impl Amount {
    /// The largest amount, in minor units: 10^18 − 1 (eighteen nines). Large enough for any real
    /// payment in any currency, small enough that exact conversion arithmetic never overflows u128.
    pub const MAX_MINOR: u64 = 999_999_999_999_999_999;

    /// EMVCo MPM tag 54 is at most 13 characters long.
    pub const EMV_MAX_LEN: usize = 13;

    /// An amount of `minor` minor units; refuses values above [`Amount::MAX_MINOR`].
    pub fn from_minor(minor: u64, currency: Currency) -> Result<Self, AmountError> {
        if minor > Self::MAX_MINOR {
            return Err(AmountError::Overflow {
                what: format!("{minor} minor units of {currency}"),
            });
        }
        Ok(Amount { minor, currency })
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Amount { minor: 0, currency }
    }

    /// The value in minor units.
    pub fn minor(self) -> u64 {
        self.minor
    }

    /// The currency.
    pub fn currency(self) -> Currency {
        self.currency
    }

    /// Whether the amount is zero.
    pub fn is_zero(self) -> bool {
        self.minor == 0
    }

    /// Parses a decimal amount in major units: `"350.00"`, `"350.5"` or `"350"` THB → 35000,
    /// 35050, 35000 minor units. Digits, at most one `.` with digits on both sides, at most the
    /// currency's exponent of decimals. No sign, spaces, grouping or exponent notation.
    pub fn parse(input: &str, currency: Currency) -> Result<Self, AmountError> {
        if input.is_empty() {
            return Err(AmountError::Empty);
        }
        let mut int_part = input;
        let mut frac_part: Option<&str> = None;
        for (position, (i, c)) in input.char_indices().enumerate() {
            match c {
                '0'..='9' => {}
                '.' if frac_part.is_none() => {
                    int_part = &input[..i];
                    frac_part = Some(&input[i + 1..]);
                }
                '-' if position == 0 => {
                    return Err(AmountError::Negative {
                        input: excerpt(input),
                    });
                }
                found => {
                    return Err(AmountError::InvalidCharacter {
                        input: excerpt(input),
                        found,
                        position,
                    });
                }
            }
        }
        let frac = frac_part.unwrap_or("");
        if int_part.is_empty() || frac_part.is_some_and(str::is_empty) {
            return Err(AmountError::MissingDigits {
                input: excerpt(input),
            });
        }
        let exponent = currency.exponent();
        if frac.len() > usize::from(exponent) {
            return Err(AmountError::TooManyDecimals {
                input: excerpt(input),
                currency,
                exponent,
                found: frac.len(),
            });
        }
        let overflow = || AmountError::Overflow {
            what: format!("{:?} {currency}", excerpt(input)),
        };
        // Only ASCII digits are left, so byte lengths are digit counts.
        let int_digits = int_part.trim_start_matches('0');
        if int_digits.len() > 18 {
            return Err(overflow());
        }
        let int_value = digits_value(int_digits);
        let frac_value = digits_value(frac);
        let scale = POW10[usize::from(exponent)];
        let frac_scale = POW10[usize::from(exponent) - frac.len()];
        let minor = int_value
            .checked_mul(scale)
            .and_then(|v| v.checked_add(frac_value * frac_scale))
            .ok_or_else(overflow)?;
        if minor > Self::MAX_MINOR {
            return Err(overflow());
        }
        Ok(Amount { minor, currency })
    }

    /// The amount as a decimal string in major units with exactly the currency's exponent of
    /// decimals: 35000 THB → `"350.00"`, 1626 JPY → `"1626"`, 1 KWD → `"0.001"`.
    /// [`Amount::parse`] reads it back to the same amount.
    pub fn to_decimal_string(self) -> String {
        let exponent = usize::from(self.currency.exponent());
        if exponent == 0 {
            return self.minor.to_string();
        }
        let scale = POW10[exponent];
        format!(
            "{}.{:0width$}",
            self.minor / scale,
            self.minor % scale,
            width = exponent
        )
    }

    /// Parses EMVCo MPM tag 54 (Transaction Amount): the decimal form of [`Amount::parse`], at most
    /// 13 characters.
    pub fn parse_emv(input: &str, currency: Currency) -> Result<Self, AmountError> {
        let len = input.chars().count();
        if len > Self::EMV_MAX_LEN {
            return Err(AmountError::TooLong {
                field: "EMV tag 54",
                max_len: Self::EMV_MAX_LEN,
                value: excerpt(input),
            });
        }
        Self::parse(input, currency)
    }

    /// The value for EMVCo MPM tag 54: the decimal form with the currency's exponent of decimals;
    /// an error when that is longer than 13 characters.
    pub fn to_emv(self) -> Result<String, AmountError> {
        let s = self.to_decimal_string();
        if s.len() > Self::EMV_MAX_LEN {
            return Err(AmountError::TooLong {
                field: "EMV tag 54",
                max_len: Self::EMV_MAX_LEN,
                value: s,
            });
        }
        Ok(s)
    }

    /// Parses an ISO 8583 `n12` amount: exactly 12 ASCII digits of minor units ("000000035000").
    pub fn parse_n12(input: &str, currency: Currency) -> Result<Self, AmountError> {
        if input.len() != 12 || !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::BadN12 {
                input: excerpt(input),
            });
        }
        Ok(Amount {
            minor: digits_value(input),
            currency,
        })
    }

    /// The ISO 8583 `n12` form: 12 digits of minor units, zero-padded; an error above
    /// 999 999 999 999 minor units.
    pub fn to_n12(self) -> Result<String, AmountError> {
        if self.minor >= POW10[12] {
            return Err(AmountError::TooLong {
                field: "ISO 8583 n12",
                max_len: 12,
                value: self.minor.to_string(),
            });
        }
        Ok(format!("{:012}", self.minor))
    }

    /// The amount in major units as an exact `Decimal` (35000 THB → 350.00).
    pub fn to_decimal(self) -> Decimal {
        Decimal::from_i128_with_scale(i128::from(self.minor), u32::from(self.currency.exponent()))
    }

    /// The amount nearest to `value` major units under `rounding`, at the currency's exponent.
    /// Negative values and values above [`Amount::MAX_MINOR`] are errors.
    pub fn from_decimal(
        value: Decimal,
        currency: Currency,
        rounding: Rounding,
    ) -> Result<Self, AmountError> {
        let exponent = u32::from(currency.exponent());
        let rounded = value.round_dp_with_strategy(exponent, rounding.strategy());
        if rounded.is_sign_negative() && !rounded.is_zero() {
            return Err(AmountError::Negative {
                input: value.to_string(),
            });
        }
        // After rounding, the scale is at most `exponent`.
        let shift = exponent.saturating_sub(rounded.scale());
        let minor = rounded
            .mantissa()
            .unsigned_abs()
            .checked_mul(10u128.pow(shift))
            .and_then(|m| u64::try_from(m).ok())
            .filter(|m| *m <= Self::MAX_MINOR)
            .ok_or_else(|| AmountError::Overflow {
                what: format!("{value} {currency}"),
            })?;
        Ok(Amount { minor, currency })
    }

    /// `self + other`; both must be in the same currency and the sum within range.
    pub fn checked_add(self, other: Amount) -> Result<Amount, AmountError> {
        self.same_currency(other)?;
        let sum = self.minor.saturating_add(other.minor);
        Amount::from_minor(sum, self.currency).map_err(|_| AmountError::Overflow {
            what: format!("{self} + {other}"),
        })
    }

    /// `self - other`; both must be in the same currency and the result not negative.
    pub fn checked_sub(self, other: Amount) -> Result<Amount, AmountError> {
        self.same_currency(other)?;
        match self.minor.checked_sub(other.minor) {
            Some(minor) => Ok(Amount {
                minor,
                currency: self.currency,
            }),
            None => Err(AmountError::Underflow {
                left: self.to_string(),
                right: other.to_string(),
            }),
        }
    }

    fn same_currency(self, other: Amount) -> Result<(), AmountError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(AmountError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

/// The value of a string of at most 19 ASCII digits (callers check length and content).
fn digits_value(digits: &str) -> u64 {
    digits
        .bytes()
        .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'))
}

impl PartialOrd for Amount {
    /// Amounts compare only within one currency.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (self.currency == other.currency).then(|| self.minor.cmp(&other.minor))
    }
}

impl fmt::Display for Amount {
    /// `350.00 THB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    #[test]
    fn parses_decimal_strings_at_every_exponent() {
        let cases = [
            ("350.00", "THB", 35000),
            ("350.5", "THB", 35050),
            ("350", "THB", 35000),
            ("0.01", "THB", 1),
            ("1626", "JPY", 1626),
            ("1.234", "KWD", 1234),
            ("0.001", "KWD", 1),
            ("1.2345", "CLF", 12345),
            ("0.0001", "CLF", 1),
            ("007.50", "USD", 750),
            ("1", "BHD", 1000),
            ("26000", "VND", 26000),
        ];
        for (s, code, minor) in cases {
            let a = Amount::parse(s, cur(code)).unwrap();
            assert_eq!(a.minor(), minor, "{s} {code}");
        }
    }

    #[test]
    fn formats_with_exactly_the_currency_exponent() {
        let cases = [
            (35000, "THB", "350.00"),
            (1, "THB", "0.01"),
            (1626, "JPY", "1626"),
            (1, "KWD", "0.001"),
            (10000, "CLF", "1.0000"),
            (0, "CLF", "0.0000"),
        ];
        for (minor, code, s) in cases {
            let a = Amount::from_minor(minor, cur(code)).unwrap();
            assert_eq!(a.to_decimal_string(), s);
            assert_eq!(Amount::parse(s, cur(code)).unwrap(), a);
        }
    }

    #[test]
    fn refuses_more_decimals_than_the_currency_has() {
        for (s, code) in [
            ("350.0", "JPY"),
            ("1.001", "THB"),
            ("1.000", "THB"),
            ("1.2345", "KWD"),
            ("1.00001", "CLF"),
        ] {
            assert!(
                matches!(
                    Amount::parse(s, cur(code)),
                    Err(AmountError::TooManyDecimals { .. })
                ),
                "{s} {code}"
            );
        }
    }

    #[test]
    fn refuses_malformed_strings() {
        let thb = cur("THB");
        assert_eq!(Amount::parse("", thb), Err(AmountError::Empty));
        assert!(matches!(
            Amount::parse("-1.00", thb),
            Err(AmountError::Negative { .. })
        ));
        for s in [".5", "5.", "."] {
            assert!(
                matches!(
                    Amount::parse(s, thb),
                    Err(AmountError::MissingDigits { .. })
                ),
                "{s}"
            );
        }
        for (s, found, position) in [
            ("+1", '+', 0),
            ("1,000", ',', 1),
            ("1.0.0", '.', 3),
            (" 1", ' ', 0),
            ("1e3", 'e', 1),
            ("١٢", '١', 0),
            ("1-", '-', 1),
            ("ab٣x", 'a', 0),
        ] {
            assert_eq!(
                Amount::parse(s, thb),
                Err(AmountError::InvalidCharacter {
                    input: s.to_owned(),
                    found,
                    position
                }),
                "{s}"
            );
        }
    }

    #[test]
    fn huge_amounts_are_errors_not_panics() {
        let jpy = cur("JPY");
        let thb = cur("THB");
        assert_eq!(
            Amount::parse("999999999999999999", jpy).unwrap().minor(),
            Amount::MAX_MINOR
        );
        assert!(matches!(
            Amount::parse("1000000000000000000", jpy),
            Err(AmountError::Overflow { .. })
        ));
        assert!(matches!(
            Amount::parse("99999999999999999999999999", jpy),
            Err(AmountError::Overflow { .. })
        ));
        // fits as integer digits but not once scaled to minor units
        assert!(matches!(
            Amount::parse("99999999999999999.99", thb),
            Err(AmountError::Overflow { .. })
        ));
        assert!(matches!(
            Amount::from_minor(u64::MAX, thb),
            Err(AmountError::Overflow { .. })
        ));
        // many leading zeros are still a small number
        let zeros = format!("{}1", "0".repeat(100));
        assert_eq!(Amount::parse(&zeros, jpy).unwrap().minor(), 1);
        let max = Amount::from_minor(Amount::MAX_MINOR, jpy).unwrap();
        assert!(matches!(
            max.checked_add(Amount::from_minor(1, jpy).unwrap()),
            Err(AmountError::Overflow { .. })
        ));
    }

    #[test]
    fn emv_tag_54_is_at_most_13_characters() {
        let thb = cur("THB");
        assert_eq!(
            Amount::parse_emv("9999999999.99", thb).unwrap().minor(),
            999_999_999_999
        );
        assert!(matches!(
            Amount::parse_emv("99999999999.99", thb),
            Err(AmountError::TooLong { .. })
        ));
        assert_eq!(
            Amount::from_minor(999_999_999_999, thb)
                .unwrap()
                .to_emv()
                .unwrap(),
            "9999999999.99"
        );
        assert!(
            Amount::from_minor(1_000_000_000_000, thb)
                .unwrap()
                .to_emv()
                .is_err()
        );
    }

    #[test]
    fn iso8583_n12_is_exactly_twelve_digits() {
        let thb = cur("THB");
        let a = Amount::parse_n12("000000035000", thb).unwrap();
        assert_eq!(a.to_decimal_string(), "350.00");
        assert_eq!(a.to_n12().unwrap(), "000000035000");
        for bad in [
            "35000",
            "0000000350000",
            "00000003500x",
            "+00000035000",
            "٠٠٠٠٠٠٠٠٠٠٠٠",
        ] {
            assert!(
                matches!(Amount::parse_n12(bad, thb), Err(AmountError::BadN12 { .. })),
                "{bad}"
            );
        }
        assert!(
            Amount::from_minor(999_999_999_999, thb)
                .unwrap()
                .to_n12()
                .is_ok()
        );
        assert!(
            Amount::from_minor(1_000_000_000_000, thb)
                .unwrap()
                .to_n12()
                .is_err()
        );
    }

    #[test]
    fn from_decimal_rounds_at_every_exponent_under_each_rule() {
        use std::str::FromStr;
        // (value, currency, [HalfUp, HalfEven, Down, Up]) in minor units
        let cases = [
            ("2.5", "JPY", [3, 2, 2, 3]),
            ("3.5", "JPY", [4, 4, 3, 4]),
            ("1.005", "THB", [101, 100, 100, 101]),
            ("1.015", "THB", [102, 102, 101, 102]),
            ("1.0049", "THB", [100, 100, 100, 101]),
            ("0.0005", "KWD", [1, 0, 0, 1]),
            ("0.0015", "KWD", [2, 2, 1, 2]),
            ("1.00005", "CLF", [10001, 10000, 10000, 10001]),
            ("1.00015", "CLF", [10002, 10002, 10001, 10002]),
            ("7", "CLF", [70000, 70000, 70000, 70000]),
        ];
        for (v, code, want) in cases {
            for (rule, w) in Rounding::ALL.into_iter().zip(want) {
                let a =
                    Amount::from_decimal(Decimal::from_str(v).unwrap(), cur(code), rule).unwrap();
                assert_eq!(a.minor(), w, "{v} {code} {rule}");
            }
        }
        assert!(
            Amount::from_decimal(
                Decimal::from_str("-0.01").unwrap(),
                cur("THB"),
                Rounding::HalfUp
            )
            .is_err()
        );
        assert!(Amount::from_decimal(Decimal::MAX, cur("THB"), Rounding::HalfUp).is_err());
        // a tiny negative value that rounds to zero is zero, not an error
        assert_eq!(
            Amount::from_decimal(
                Decimal::from_str("-0.001").unwrap(),
                cur("THB"),
                Rounding::HalfUp
            )
            .unwrap()
            .minor(),
            0
        );
    }

    #[test]
    fn arithmetic_stays_in_one_currency() {
        let thb = Amount::from_minor(100, cur("THB")).unwrap();
        let jpy = Amount::from_minor(100, cur("JPY")).unwrap();
        assert!(matches!(
            thb.checked_add(jpy),
            Err(AmountError::CurrencyMismatch { .. })
        ));
        assert!(matches!(
            Amount::zero(cur("THB")).checked_sub(thb),
            Err(AmountError::Underflow { .. })
        ));
        assert_eq!(thb.checked_add(thb).unwrap().minor(), 200);
        assert_eq!(thb.partial_cmp(&jpy), None);
        assert_eq!(thb.to_decimal().to_string(), "1.00");
        assert_eq!(thb.to_string(), "1.00 THB");
    }
}
