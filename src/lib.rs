//! # qrbridge — a cross-border QR unified gateway
//!
//! A foreign wallet scans a domestic merchant's EMVCo QR code; qrbridge parses it, prices the payment
//! in the payer's currency, forwards the authorisation to the domestic acquirer and answers the wallet.
//!
//! ## Layout (one room per folder; dependencies point one way)
//!
//! ```text
//! emv/       EMVCo merchant-presented QR: TLV tokenizer (nom), CRC, profiles, typed MerchantQr, encoder
//! money/     ISO 4217 currencies and integer minor-unit amounts            (leaf)
//! fx/        rate sources, rate cache, quotes                              (uses money)
//! acquirer/  ISO 8583 codec, TLS link, reversals, simulator                (uses money)
//! journal/   durable payments, refunds, reversal queue, idempotency (redb)  (uses money, fx, acquirer)
//! server/    wallet HTTPS API: TLS listeners, limits, native signatures, the canonical
//!            operations (wire/, the WalletApi seam the gateway implements) and their one
//!            error -> result-code mapping; notify/ delivers wallet notifications
//!            (uses money, fx, acquirer, journal; hands each request to its scheme)
//! scheme/    wallet schemes: the Scheme seam and REGISTRY; native/ (Wallet API v1), aplus/
//!            (Alipay+-shaped, RSA256), iso20022/ (pacs.008 -> pacs.002). Each translates its wire
//!            types to the canonical operations in server::wire and back (uses server's types)
//! gateway/   the pipeline: decode → quote → pay → inquiry / cancel / refund, routing, recovery
//!            (implements server::WalletApi; uses emv, fx, journal, acquirer)
//! config     the TOML configuration of `qrbridge serve`, validated at load  (uses gateway, server)
//! fuzzing    hidden entry points for the cargo-fuzz targets in fuzz/
//! ```
//!
//! ## Flow (one payment)
//!
//! decode (emv) → quote (fx) → journal → authorise (acquirer) → journal → answer.
//! See `spec/` for the written specifications and `../shared/DESIGN.md` for the decisions.

#![forbid(unsafe_code)]

pub mod acquirer;
pub mod config;
pub mod emv;
pub mod fx;
pub mod gateway;
pub mod journal;
pub mod money;
pub mod ops;
pub mod scheme;
pub mod server;

#[doc(hidden)]
pub mod fuzzing;
