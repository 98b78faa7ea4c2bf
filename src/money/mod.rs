//! Money: ISO 4217 currencies and amounts in integer minor units.
//!
//! In: currency codes (alpha-3 / numeric), decimal amount strings, EMV tag 54 and ISO 8583 `n12`
//! amounts, exact decimals to round. Out: [`Currency`], [`Amount`], [`Rounding`].
//! Errors: [`CurrencyError`] (unknown code, no minor unit), [`AmountError`] (syntax, precision
//! loss, overflow, field too short, currency mismatch). Spec: `spec/fx.md`.
//!
//! No floating point anywhere in this room: amounts are `u64` minor units, exact values are
//! `rust_decimal::Decimal`.
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
