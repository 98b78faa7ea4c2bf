//! Money: ISO 4217 currencies and amounts in integer minor units.
//!
//! In: currency codes (alpha-3 / numeric), decimal amount strings, EMV tag 54 and ISO 8583 `n12`
//! amounts, exact decimals to round. Out: [`Currency`], [`Amount`], [`Rounding`].
//! Errors: [`CurrencyError`] (unknown code, no minor unit), [`AmountError`] (syntax, precision
//! loss, overflow, field too short, currency mismatch). Spec: `spec/fx.md`.
//!
//! No floating point anywhere in this room: amounts are `u64` minor units, exact values are
//! `rust_decimal::Decimal`.
//!
//! ```
//! use qrbridge::money::{Amount, Currency};
//!
//! let thb = Currency::from_code("THB")?;
//! let price = Amount::parse("350.00", thb)?;
//! assert_eq!(price.minor(), 35000);
//! assert_eq!(price.to_n12()?, "000000035000");
//! assert_eq!(Amount::parse_emv("350.5", thb)?.to_decimal_string(), "350.50");
//! // more decimals than the currency has is an error, not a rounding
//! assert!(Amount::parse("350.001", thb).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(
    clippy::float_arithmetic,
    clippy::float_cmp,
    clippy::cast_precision_loss
)]

mod amount;
mod currency;
mod rounding;

pub use amount::{Amount, AmountError};
pub use currency::{Currency, CurrencyError};
pub use rounding::{ParseRoundingError, Rounding};
