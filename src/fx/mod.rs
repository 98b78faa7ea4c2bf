//! FX: reference-rate sources, the rate cache and locked single-use quotes.
//!
//! In: rate feeds (ECB-format XML from a file or HTTPS, a static table from config), merchant
//! amounts, payer currencies, pricing (markup, fee). Out: [`Quote`]s, held single-use in a
//! [`QuoteStore`]; refund conversions at a quote's rate.
//! Errors: [`FxError`] (source unavailable or malformed, missing or stale rate, zero or
//! out-of-range amount, markup too high, quote not found / expired / consumed).
//! Spec: `spec/fx.md`.
//!
//! ```text
//! source/ (I/O) ──RateTable──► cache (moka, per pair) ──Rate──► quote (Quoter) ──Quote──► store
//! ecb.rs: feed codec   rate.rs: tables, pairs, exact cross rates   time.rs: clock, dates
//! ```
//!
//! Only `source/` does I/O. No floating point anywhere: rates are `rust_decimal::Decimal`, amounts
//! integer minor units, and conversions exact integer arithmetic with one final rounding.
#![deny(
    clippy::float_arithmetic,
    clippy::float_cmp,
    clippy::cast_precision_loss
)]

mod cache;
mod ecb;
mod error;
mod quote;
mod rate;
pub mod source;
mod store;
pub mod time;

pub use cache::{CacheConfig, RateCache};
pub use ecb::{MAX_FEED_BYTES, parse as parse_ecb};
pub use error::FxError;
pub use quote::{
    DEFAULT_QUOTE_LIFETIME, MAX_MARKUP_BPS, Pricing, Quote, QuoteId, QuotePolicy, Quoter,
};
pub use rate::{CrossRate, Pair, Rate, RateTable, display_rate};
pub use source::{EcbFile, EcbHttps, RateSource, StaticSource};
pub use store::{DEFAULT_GRACE, QuoteStore};
