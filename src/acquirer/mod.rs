//! Domestic acquirer link: ISO 8583:1987 ASCII codec, TLS link, reversals and the simulator.
//!
//! In: canonical authorisation requests. Out: outcomes (approved / declined / unknown).
//! Errors: codec errors naming field and offset; link errors that know which side failed.
//! Spec: `spec/acquirer-iso8583.md`.
//!
//! (Filled in by the acquirer-link issue.)
