//! Wallet authentication: per-client keys, request signatures over method, path, client id, time and
//! a body digest, a ± time window, replay refusal, and signed responses. Scheme: `spec/auth.md`.
//!
//! ```text
//! secret         Secret: key bytes with a redacted Debug
//! credentials    per-client keys (HMAC-SHA256, Ed25519) by version; AuthMode; AuthConfig
//! canonical      the string to sign (six lines) and the body digest
//! header         the `signature` header: algorithm, keyVersion, base64 signature
//! time           request-time / response-time text (RFC 3339 UTC, optional fraction)
//! replay         moka cache of accepted signatures (lifetime > the window)
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
mod secret;
mod time;
mod wallet;

pub use authenticator::{Authenticated, Authenticator, ResponseSignature, SignedParts};
pub use canonical::{Direction, body_digest, canonical_string};
pub use credentials::{AuthConfig, AuthConfigError, AuthMode, ClientKey, Credentials};
pub use header::{Algorithm, SignatureHeader};
pub use replay::ReplayGuard;
pub use secret::Secret;
pub use time::{parse_request_time, request_time};
pub use wallet::{
    generate_ed25519_pkcs8, sign_request_ed25519, sign_request_hmac, verify_notification_ed25519,
    verify_notification_hmac, verify_response_ed25519, verify_response_hmac,
};

use std::time::Duration;

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
}

/// Why a request's authentication failed. Messages name the header and the reason, never a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFault {
    /// A required header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but not usable.
    #[error("header {header}: {reason}")]
    MalformedHeader {
        /// Which header.
        header: &'static str,
        /// Why.
        reason: String,
    },
    /// No credentials for this client id.
    #[error("unknown client id {0:?}")]
    UnknownClient(String),
    /// The client has no key with this version, or not for this algorithm.
    #[error("client {client_id:?} has no {algorithm} key with keyVersion {key_version}")]
    UnknownKey {
        /// Client.
        client_id: String,
        /// Algorithm claimed.
        algorithm: &'static str,
        /// Version claimed.
        key_version: u32,
    },
    /// `request-time` is further than the window from our clock.
    #[error(
        "request-time {request_time} is outside ±{} s of the gateway's clock ({now})",
        window.as_secs()
    )]
    StaleRequestTime {
        /// As sent.
        request_time: String,
        /// Our time.
        now: String,
        /// The window.
        window: Duration,
    },
    /// The signature does not verify.
    #[error("signature does not match the canonical request (see spec/auth.md)")]
    Mismatch,
    /// This exact signature was already accepted once.
    #[error("signature already used: a replayed request")]
    Replayed,
}

#[cfg(test)]
mod tests;
