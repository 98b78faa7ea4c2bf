//! # qrbridge — a cross-border QR unified gateway
//!
//! A foreign wallet scans a domestic merchant's EMVCo QR code; qrbridge parses it, prices the payment
//! in the payer's currency, forwards the authorisation to the domestic acquirer and answers the wallet.
//!
//! ## Layout (one room per folder; dependencies point one way)
//!
//! ```text
//! config     the TOML configuration of `qrbridge serve`, validated at load     (wiring: uses all)
//! server/    wallet-facing listeners: TLS, limits, health, routing to the scheme owning a path
//!            (uses payment, scheme, tls)
//! scheme/    wallet schemes: the Scheme seam, REGISTRY, Dispatch; native/ (Wallet API v1 and its
//!            signatures, auth/), aplus/ (Alipay+-shaped, RSA256), iso20022/ (pacs.008 -> pacs.002).
//!            Each translates its wire types to the canonical operations and back (uses payment)
//! gateway/   the pipeline: decode → quote → pay → inquiry / cancel / refund, routing, recovery
//!            (implements payment::Pipeline; uses emv, fx, journal, acquirer, payment)
//! notify/    durable delivery of the journal's outbox to wallets, in each scheme's form
//!            (uses journal, scheme, payment, http_client)
//! journal/   durable payments, refunds, reversal queue, idempotency, outbox (redb)
//!            (uses payment, acquirer, fx, money, time)
//! acquirer/  ISO 8583 codec, TLS link, reversals, simulator                (uses money, time, tls)
//! payment/   the canonical operations, ids, errors and result codes, the Pipeline seam
//!            (uses leaves only)
//! telemetry/ leaf: logging set-up (tracing), request ids, the Prometheus metrics registry; every
//!            room may log and count through it
//! emv/ fx/ money/ time/ tls/   leaves: QR parser, FX rates and quotes, ISO 4217 amounts, clocks
//!            and calendar fields, rustls configurations and the private CA
//! http_client/  the one outbound HTTP client (TLS or loopback http, timeouts, size bound) for
//!            notify, the fx feed, iso20022's notify URL check and the wallet CLI (uses tls only)
//! fuzzing    hidden entry points for the cargo-fuzz targets in fuzz/
//! ```
//!
//! Dependencies point one way, downwards; `tests/architecture.rs` fails on a wrong arrow.
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
pub mod http_client;
pub mod journal;
pub mod money;
pub mod notify;
pub mod payment;
pub mod scheme;
pub mod server;
pub mod telemetry;
pub mod time;
pub mod tls;

#[doc(hidden)]
pub mod fuzzing;
