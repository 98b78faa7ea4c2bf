//! FX: reference-rate sources, the rate cache and locked single-use quotes.
//!
//! In: rate feeds (ECB-format XML, static table). Out: `Quote`. Errors: missing or stale rate,
//! expired or consumed quote. Spec: `spec/fx.md`.
//!
//! (Filled in by the Money and FX issue.)
