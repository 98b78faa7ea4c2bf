//! Money: ISO 4217 currencies and amounts in integer minor units.
//!
//! In: currency codes (alpha-3 / numeric), decimal amount strings. Out: `Currency`, `Amount`.
//! Errors: unknown currency, precision loss, overflow. Spec: `spec/fx.md`.
//!
//! (Filled in by the Money and FX issue.)

mod currency;

pub use currency::{Currency, CurrencyError};
