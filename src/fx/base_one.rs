//! Rates as ISO 20022 messages carry them: `BaseOneRate` (an `xs:decimal` with at most 11 digits
//! in all and at most 10 after the point), and the rule that ties such a rate to two amounts.
//!
//! A quote's amounts come from the exact cross rate with one rounding (`quote.rs`); the rate a
//! message states is derived *from those amounts*, rounded half-up to the BaseOneRate grid, and
//! kept only if it gives the amount back: `round(from × rate, exponent of to) = to`. See
//! `spec/fx.md` §4 ("Rates in messages").

use rust_decimal::{Decimal, RoundingStrategy};

use crate::money::{Amount, Rounding};

/// The most digits a BaseOneRate has.
pub const BASE_ONE_TOTAL_DIGITS: u32 = 11;
/// The most digits after the point a BaseOneRate has.
pub const BASE_ONE_FRACTION_DIGITS: u32 = 10;

/// The number of digits of the integer part (0 for `0.xxx`).
fn integer_digits(d: Decimal) -> u32 {
    let int = d.trunc().abs().normalize();
    if int.is_zero() {
        0
    } else {
        int.mantissa().unsigned_abs().to_string().len() as u32
    }
}

/// True when `rate` (compared as a number: trailing zeros after the point do not count) has at
/// most 11 digits and at most 10 after the point, and is positive.
pub fn fits_base_one_rate(rate: Decimal) -> bool {
    let n = rate.normalize();
    if n.is_sign_negative() || n.is_zero() {
        return false;
    }
    let digits = n.mantissa().unsigned_abs().to_string().len() as u32;
    // `0.05` has mantissa 5 and scale 2: 2 digits in all as the schema counts them (0.05 → "05"
    // after the point), so the total is the larger of the mantissa's digits and the scale.
    let total = digits.max(n.scale());
    n.scale() <= BASE_ONE_FRACTION_DIGITS && total <= BASE_ONE_TOTAL_DIGITS
}

/// `rate` rounded half-up to the BaseOneRate grid: `min(10, 11 − integer digits)` decimals,
/// trailing zeros dropped. `None` when the integer part alone has more than 11 digits or the rate
/// rounds to zero.
pub fn base_one_rate(rate: Decimal) -> Option<Decimal> {
    if rate.is_sign_negative() {
        return None;
    }
    let int = integer_digits(rate);
    if int > BASE_ONE_TOTAL_DIGITS {
        return None;
    }
    let scale = BASE_ONE_FRACTION_DIGITS.min(BASE_ONE_TOTAL_DIGITS - int);
    let r = rate
        .round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero)
        .normalize();
    (!r.is_zero() && fits_base_one_rate(r)).then_some(r)
}

/// `amount × rate` in `to`'s currency, rounded half-up to its exponent
/// ([`Amount::from_decimal`]). `None` on overflow or when the result is not a valid amount.
pub fn convert_at(amount: Amount, rate: Decimal, to: crate::money::Currency) -> Option<Amount> {
    let product = amount.to_decimal().checked_mul(rate)?;
    Amount::from_decimal(product, to, Rounding::HalfUp).ok()
}

/// The BaseOneRate that converts `from` into `to` in a message: `to / from` rounded to the grid,
/// provided `convert_at(from, rate) = to`. `None` when no such rate is found (a zero amount, or
/// `from` so large that the 11th digit cannot pin the amount down to its minor unit).
pub fn message_rate(from: Amount, to: Amount) -> Option<Decimal> {
    if from.is_zero() {
        return None;
    }
    let exact = to.to_decimal().checked_div(from.to_decimal())?;
    let rate = base_one_rate(exact)?;
    (convert_at(from, rate, to.currency()) == Some(to)).then_some(rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn amount(s: &str, code: &str) -> Amount {
        Amount::parse(s, Currency::from_code(code).unwrap()).unwrap()
    }

    #[test]
    fn base_one_rates_have_at_most_eleven_digits_and_ten_decimals() {
        for ok in [
            "3.2336",
            "3.23360",
            "0.0000000001",
            "12345678901",
            "1.2345678901",
            "0.05",
        ] {
            assert!(fits_base_one_rate(d(ok)), "{ok}");
        }
        for bad in [
            "3.23357142857",
            "123456789012",
            "0.00000000001",
            "12.3456789012",
            "0",
            "-1",
        ] {
            assert!(!fits_base_one_rate(d(bad)), "{bad}");
        }
    }

    #[test]
    fn rates_round_half_up_onto_the_grid() {
        assert_eq!(
            base_one_rate(d("3.233571428571428571")),
            Some(d("3.2335714286"))
        );
        assert_eq!(
            base_one_rate(d("820.804900786123")),
            Some(d("820.80490079"))
        );
        assert_eq!(
            base_one_rate(d("0.00945851644693")),
            Some(d("0.0094585164"))
        );
        assert_eq!(base_one_rate(d("0.00000000004")), None);
        assert_eq!(base_one_rate(d("123456789012.5")), None);
    }

    #[test]
    fn the_message_rate_gives_the_amount_back() {
        // 45.27 MYR for 14.00 SGD: 3.2335714285714… → 3.2335714286; 14.00 × it = 45.2700000004.
        let sgd = amount("14.00", "SGD");
        let myr = amount("45.27", "MYR");
        assert_eq!(message_rate(sgd, myr), Some(d("3.2335714286")));
        assert_eq!(message_rate(myr, sgd), Some(d("0.3092555776")));
        assert_eq!(
            convert_at(myr, d("0.3092555776"), sgd.currency()),
            Some(sgd)
        );
        // 40.42 / 12.50 is exact: 3.2336.
        assert_eq!(
            message_rate(amount("12.50", "SGD"), amount("40.42", "MYR")),
            Some(d("3.2336"))
        );
        // A huge JPY amount priced in IDR: the rate's 11 digits cannot pin down 0.01 IDR.
        let jpy = amount("99999999999", "JPY");
        let idr = amount("10834892346789.13", "IDR");
        assert_eq!(message_rate(jpy, idr), None);
    }
}
