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
//! base_one.rs: rates as ISO 20022 messages state them (BaseOneRate) and the amounts they give
//! ```
//!
//! ```
//! use std::sync::Arc;
//! use qrbridge::time::SystemClock;
//! use qrbridge::fx::{CacheConfig, EcbFile, Pricing, QuotePolicy, QuoteStore, Quoter, RateCache};
//! use qrbridge::money::{Amount, Currency};
//!
//! let clock = Arc::new(SystemClock);
//! // The bundled sample feed is dated; lift the staleness limit for this example.
//! let config = CacheConfig { max_age: std::time::Duration::MAX, ..CacheConfig::daily_feed() };
//! let rates = RateCache::new(EcbFile::new("testdata/fx/eurofxref-daily.xml"), clock.clone(), config);
//! let quoter = Quoter::new(rates, QuotePolicy::default(), clock.clone());
//! let store = QuoteStore::new(clock, 16 << 20); // bytes
//!
//! let thb = Currency::from_code("THB")?;
//! let jpy = Currency::from_code("JPY")?;
//! let quote = store.insert(quoter.quote(Amount::parse("350.00", thb)?, jpy, Pricing::markup(150))?);
//! assert_eq!(quote.payer_amount.currency(), jpy);
//! assert!(store.consume(&quote.id).is_ok());
//! assert!(store.consume(&quote.id).unwrap_err().is_consumed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Only `source/` does I/O. No floating point anywhere: rates are `rust_decimal::Decimal`, amounts
//! integer minor units, and conversions exact integer arithmetic with one final rounding.
#![deny(
    clippy::float_arithmetic,
    clippy::float_cmp,
    clippy::cast_precision_loss
)]

mod base_one;
mod cache;
mod ecb;
mod error;
mod quote;
mod rate;
pub mod source;
mod store;

pub use base_one::{
    BASE_ONE_FRACTION_DIGITS, BASE_ONE_TOTAL_DIGITS, base_one_rate, convert_at, fits_base_one_rate,
    message_rate,
};
pub use cache::{CacheConfig, RateCache};
pub use ecb::{MAX_FEED_BYTES, parse as parse_ecb};
pub use error::FxError;
pub use quote::{
    DEFAULT_QUOTE_LIFETIME, MAX_MARKUP_BPS, Pricing, Quote, QuoteId, QuotePolicy, Quoter,
};
pub use rate::{CrossRate, Pair, Rate, RateTable, display_rate};
pub use source::{EcbFile, EcbHttps, RateSource, StaticSource};
pub use store::{DEFAULT_GRACE, QuoteStore};
