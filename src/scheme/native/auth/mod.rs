//! Wallet authentication: per-client keys, request signatures over method, path, client id, time and
//! a body digest, a ± time window, replay refusal, and signed responses. Scheme: `spec/auth.md`.
//!
//! ```text
//! secret         Secret: key bytes with a redacted Debug
//! credentials    per-client keys (HMAC-SHA256, Ed25519) by version; AuthMode; AuthConfig
//! canonical      the string to sign (six lines) and the body digest
//! header         the `signature` header: algorithm, keyVersion, base64 signature
//! replay         accepted signatures, bounded by bytes and time (lifetime > the window)
//! authenticator  verifies requests, signs responses
//! wallet         the wallet's side: sign a request, verify a response or a notification
//! ```
//!
//! Verification order: headers present and well-formed → client and key known → request time in
//! the window → signature (constant time: `ring::hmac::verify`, `ring::signature` for Ed25519) →
//! first use of that signature. Every failure is an [`AuthFault`] (401 `INVALID_SIGNATURE`).

mod authenticator;
mod canonical;
mod credentials;
mod header;
mod replay;
mod wallet;

pub use crate::payment::AuthFault;
/// `request-time` / `response-time` text (spec/auth.md §4): written as RFC 3339 UTC with
/// milliseconds, read as RFC 3339 UTC with `Z` and an optional 1–9 digit fraction (the time leaf).
pub use crate::time::{
    format_rfc3339_millis as request_time, parse_rfc3339_utc as parse_request_time,
};
pub use crate::tls::Secret;
pub use authenticator::{Authenticated, Authenticator, ResponseSignature, SignedParts};
pub use canonical::{Direction, body_digest, canonical_string};
pub use credentials::{AuthConfig, AuthConfigError, AuthMode, ClientKey, Credentials};
pub use header::{Algorithm, SignatureHeader};
pub use replay::{
    DEFAULT_BYTES as REPLAY_DEFAULT_BYTES, ENTRY_BYTES as REPLAY_ENTRY_BYTES, ReplayGuard, Seen,
};
pub use wallet::{
    generate_ed25519_pkcs8, sign_request_ed25519, sign_request_hmac, verify_notification_ed25519,
    verify_notification_hmac, verify_response_ed25519, verify_response_hmac,
};

/// Header names (lower case; HTTP/2 requires it, HTTP/1.1 is case-insensitive).
pub mod headers {
    /// The wallet's client id.
    pub const CLIENT_ID: &str = "client-id";
    /// RFC 3339 UTC time the request was signed: `2026-11-21T10:40:00Z`.
    pub const REQUEST_TIME: &str = "request-time";
    /// RFC 3339 UTC time the response was signed.
    pub const RESPONSE_TIME: &str = "response-time";
    /// `algorithm=...,keyVersion=N,signature=<base64>`.
    pub const SIGNATURE: &str = "signature";

    use hyper::header::HeaderName;
    /// [`CLIENT_ID`] as a header name made once: a lookup by `&str` validates the name each time.
    pub static CLIENT_ID_NAME: HeaderName = HeaderName::from_static(CLIENT_ID);
    /// [`REQUEST_TIME`] as a header name made once.
    pub static REQUEST_TIME_NAME: HeaderName = HeaderName::from_static(REQUEST_TIME);
    /// [`SIGNATURE`] as a header name made once.
    pub static SIGNATURE_NAME: HeaderName = HeaderName::from_static(SIGNATURE);
}

#[cfg(test)]
mod tests;
