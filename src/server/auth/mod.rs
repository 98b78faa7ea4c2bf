//! Wallet authentication: per-client keys, request signatures over method, path, client id, time and
//! a body digest, a ± time window, replay refusal, and signed responses. Scheme: `spec/auth.md`.
//!
//! ```text
//! secret     Secret: key bytes with a redacted Debug
//! canonical  the string to sign (six lines) and the body digest
//! header     the `signature` header: algorithm, keyVersion, base64 signature
//! replay     moka cache of accepted signatures (lifetime > the window)
//! ```
//!
//! Verification order: headers present and well-formed → client and key known → request time in
//! the window → signature (constant time: `ring::hmac::verify`, `ring::signature` for Ed25519) →
//! first use of that signature. Every failure is an [`AuthFault`] (401 `INVALID_SIGNATURE`).

mod canonical;
mod header;
mod replay;
mod secret;

pub use canonical::{Direction, body_digest, canonical_string};
pub use header::{Algorithm, SignatureHeader};
pub use replay::ReplayGuard;
pub use secret::Secret;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use ring::{hmac, rand};

use crate::fx::time::{Clock, SystemClock, format_rfc3339, parse_timestamp};

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

/// One verification key of a client.
#[derive(Debug, Clone)]
pub enum ClientKey {
    /// Shared HMAC-SHA256 key (at least 32 bytes recommended).
    HmacSha256(Secret),
    /// The wallet's Ed25519 public key (32 bytes).
    Ed25519 {
        /// Raw public key.
        public_key: Vec<u8>,
    },
}

impl ClientKey {
    fn algorithm(&self) -> Algorithm {
        match self {
            ClientKey::HmacSha256(_) => Algorithm::HmacSha256,
            ClientKey::Ed25519 { .. } => Algorithm::Ed25519,
        }
    }
}

/// Per-client credentials: client id → key version → key. Several versions allow key rotation.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    clients: BTreeMap<String, BTreeMap<u32, ClientKey>>,
}

impl Credentials {
    /// No clients.
    pub fn new() -> Self {
        Credentials::default()
    }

    /// Adds (or replaces) `client_id`'s key `key_version`.
    pub fn with_key(
        mut self,
        client_id: impl Into<String>,
        key_version: u32,
        key: ClientKey,
    ) -> Self {
        self.clients
            .entry(client_id.into())
            .or_default()
            .insert(key_version, key);
        self
    }

    fn key(&self, client_id: &str, version: u32) -> Option<&ClientKey> {
        self.clients.get(client_id)?.get(&version)
    }

    fn knows(&self, client_id: &str) -> bool {
        self.clients.contains_key(client_id)
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// Signatures required (production).
    Signatures(Credentials),
    /// Authentication OFF: every request is treated as coming from `demo_client`, nothing is verified
    /// and responses are not signed. For the embedded demo only; the caller must say so loudly.
    Off {
        /// The client id requests are attributed to.
        demo_client: String,
    },
}

/// Authentication settings.
#[derive(Clone)]
pub struct AuthConfig {
    /// Signatures or demo mode.
    pub mode: AuthMode,
    /// Accepted distance between `request-time` and our clock (default 5 minutes).
    pub window: Duration,
    /// How many accepted signatures the replay guard can hold (default 1,000,000).
    pub replay_capacity: u64,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Our Ed25519 key for signing responses to Ed25519 clients (PKCS#8), and its version. HMAC
    /// clients' responses are signed with their own key. Required when any client uses Ed25519.
    pub response_key: Option<(u32, Secret)>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("mode", &self.mode)
            .field("window", &self.window)
            .field("replay_capacity", &self.replay_capacity)
            .field("response_key", &self.response_key.as_ref().map(|(v, _)| v))
            .finish()
    }
}

impl AuthConfig {
    /// Signatures required, ± 5 minutes, system clock.
    pub fn signatures(credentials: Credentials) -> Self {
        AuthConfig {
            mode: AuthMode::Signatures(credentials),
            window: Duration::from_secs(300),
            replay_capacity: 1_000_000,
            clock: Arc::new(SystemClock),
            response_key: None,
        }
    }

    /// Demo mode: authentication off, requests attributed to `demo_client`.
    pub fn off(demo_client: impl Into<String>) -> Self {
        AuthConfig {
            mode: AuthMode::Off {
                demo_client: demo_client.into(),
            },
            ..AuthConfig::signatures(Credentials::new())
        }
    }
}

/// The authentication settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// An Ed25519 public key is not 32 bytes.
    #[error("client {client_id}: Ed25519 public key must be 32 bytes, got {len}")]
    BadPublicKey {
        /// Client.
        client_id: String,
        /// Length given.
        len: usize,
    },
    /// The response key is not a PKCS#8 Ed25519 key.
    #[error("response signing key: not a PKCS#8 Ed25519 key")]
    BadResponseKey,
    /// Ed25519 clients but no response key.
    #[error("client {0} uses Ed25519: a response signing key (Ed25519, PKCS#8) is required")]
    MissingResponseKey(String),
    /// The time window is out of range.
    #[error("time window must be between 1 s and 1 h, got {0:?}")]
    Window(Duration),
    /// An HMAC key that is too short to be a key.
    #[error("client {client_id}: HMAC key must be at least 16 bytes, got {len}")]
    ShortHmacKey {
        /// Client.
        client_id: String,
        /// Length given.
        len: usize,
    },
}

enum Verifier {
    Hmac(hmac::Key),
    Ed25519(UnparsedPublicKey<Vec<u8>>),
}

/// Who a verified request came from, and how to sign the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The client id.
    pub client_id: String,
    /// The key the request was signed with (`None` in demo mode).
    pub key: Option<(Algorithm, u32)>,
}

/// What a request's authentication looks at.
#[derive(Debug, Clone, Copy)]
pub struct SignedParts<'a> {
    /// Method.
    pub method: &'a str,
    /// Path (and query) as sent.
    pub path: &'a str,
    /// `client-id` header.
    pub client_id: Option<&'a str>,
    /// `request-time` header.
    pub request_time: Option<&'a str>,
    /// `signature` header.
    pub signature: Option<&'a str>,
    /// The body bytes.
    pub body: &'a [u8],
}

/// Response headers to add: (`client-id`, `response-time`, `signature`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseSignature {
    /// The client id.
    pub client_id: String,
    /// `response-time`.
    pub response_time: String,
    /// `signature`.
    pub signature: String,
}

/// Verifies requests and signs responses.
pub struct Authenticator {
    mode: AuthMode,
    keys: BTreeMap<(String, u32), Verifier>,
    window: Duration,
    clock: Arc<dyn Clock>,
    replay: ReplayGuard,
    response_key: Option<(u32, Ed25519KeyPair)>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("mode", &self.mode)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Builds the verifiers; checks key sizes and that Ed25519 clients can be answered.
    pub fn new(config: AuthConfig) -> Result<Self, AuthConfigError> {
        if config.window < Duration::from_secs(1) || config.window > Duration::from_secs(3600) {
            return Err(AuthConfigError::Window(config.window));
        }
        let response_key = match &config.response_key {
            None => None,
            Some((v, pkcs8)) => Some((
                *v,
                Ed25519KeyPair::from_pkcs8(pkcs8.expose())
                    .map_err(|_| AuthConfigError::BadResponseKey)?,
            )),
        };
        let mut keys = BTreeMap::new();
        if let AuthMode::Signatures(credentials) = &config.mode {
            for (client_id, versions) in &credentials.clients {
                for (version, key) in versions {
                    let verifier = match key {
                        ClientKey::HmacSha256(secret) => {
                            if secret.expose().len() < 16 {
                                return Err(AuthConfigError::ShortHmacKey {
                                    client_id: client_id.clone(),
                                    len: secret.expose().len(),
                                });
                            }
                            Verifier::Hmac(hmac::Key::new(hmac::HMAC_SHA256, secret.expose()))
                        }
                        ClientKey::Ed25519 { public_key } => {
                            if public_key.len() != 32 {
                                return Err(AuthConfigError::BadPublicKey {
                                    client_id: client_id.clone(),
                                    len: public_key.len(),
                                });
                            }
                            if response_key.is_none() {
                                return Err(AuthConfigError::MissingResponseKey(client_id.clone()));
                            }
                            Verifier::Ed25519(UnparsedPublicKey::new(&ED25519, public_key.clone()))
                        }
                    };
                    keys.insert((client_id.clone(), *version), verifier);
                }
            }
        }
        Ok(Authenticator {
            replay: ReplayGuard::new(config.window, config.replay_capacity),
            mode: config.mode,
            keys,
            window: config.window,
            clock: config.clock,
            response_key,
        })
    }

    /// True when authentication is off (demo mode).
    pub fn is_off(&self) -> bool {
        matches!(self.mode, AuthMode::Off { .. })
    }

    /// Verifies a request. On success the signature is remembered (a second use is a replay).
    pub fn verify(&self, parts: &SignedParts<'_>) -> Result<Authenticated, AuthFault> {
        let credentials = match &self.mode {
            AuthMode::Off { demo_client } => {
                return Ok(Authenticated {
                    client_id: demo_client.clone(),
                    key: None,
                });
            }
            AuthMode::Signatures(c) => c,
        };
        let client_id = parts
            .client_id
            .ok_or(AuthFault::MissingHeader(headers::CLIENT_ID))?;
        let time = parts
            .request_time
            .ok_or(AuthFault::MissingHeader(headers::REQUEST_TIME))?;
        let header = SignatureHeader::parse(
            parts
                .signature
                .ok_or(AuthFault::MissingHeader(headers::SIGNATURE))?,
        )?;
        if !credentials.knows(client_id) {
            return Err(AuthFault::UnknownClient(client_id.to_owned()));
        }
        let unknown_key = || AuthFault::UnknownKey {
            client_id: client_id.to_owned(),
            algorithm: header.algorithm.as_str(),
            key_version: header.key_version,
        };
        let key = credentials
            .key(client_id, header.key_version)
            .ok_or_else(unknown_key)?;
        if key.algorithm() != header.algorithm {
            return Err(unknown_key());
        }
        self.check_time(time)?;
        let message = canonical_string(
            Direction::Request,
            parts.method,
            parts.path,
            client_id,
            time,
            parts.body,
        );
        let verifier = self
            .keys
            .get(&(client_id.to_owned(), header.key_version))
            .ok_or_else(unknown_key)?;
        let ok = match verifier {
            Verifier::Hmac(k) => hmac::verify(k, message.as_bytes(), &header.signature).is_ok(),
            Verifier::Ed25519(pk) => pk.verify(message.as_bytes(), &header.signature).is_ok(),
        };
        if !ok {
            return Err(AuthFault::Mismatch);
        }
        if !self.replay.first_use(client_id, &header.signature) {
            return Err(AuthFault::Replayed);
        }
        Ok(Authenticated {
            client_id: client_id.to_owned(),
            key: Some((header.algorithm, header.key_version)),
        })
    }

    fn check_time(&self, time: &str) -> Result<(), AuthFault> {
        let bad = |reason: &str| AuthFault::MalformedHeader {
            header: headers::REQUEST_TIME,
            reason: format!("{reason}, got {time:?}"),
        };
        let at = parse_request_time(time)
            .ok_or_else(|| bad("expected RFC 3339 UTC like 2026-11-21T10:40:00.123Z"))?;
        let now = self.clock.now();
        let distance = match at.duration_since(now) {
            Ok(ahead) => ahead,
            Err(behind) => behind.duration(),
        };
        if distance > self.window {
            return Err(AuthFault::StaleRequestTime {
                request_time: time.to_owned(),
                now: format_rfc3339(now),
                window: self.window,
            });
        }
        Ok(())
    }

    /// Signs a response to `who` for the request `method path`. `None` in demo mode.
    pub fn sign_response(
        &self,
        who: &Authenticated,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Option<ResponseSignature> {
        let (algorithm, version) = who.key?;
        let response_time = request_time(self.clock.now());
        let message = canonical_string(
            Direction::Response,
            method,
            path,
            &who.client_id,
            &response_time,
            body,
        );
        let (key_version, signature) = match algorithm {
            Algorithm::HmacSha256 => match self.keys.get(&(who.client_id.clone(), version))? {
                Verifier::Hmac(k) => (version, hmac::sign(k, message.as_bytes()).as_ref().to_vec()),
                Verifier::Ed25519(_) => return None,
            },
            Algorithm::Ed25519 => {
                let (v, pair) = self.response_key.as_ref()?;
                (*v, pair.sign(message.as_bytes()).as_ref().to_vec())
            }
        };
        Some(ResponseSignature {
            client_id: who.client_id.clone(),
            response_time,
            signature: SignatureHeader {
                algorithm,
                key_version,
                signature,
            }
            .format(),
        })
    }

    /// Our Ed25519 response-signing public key, for wallets that verify Ed25519 responses.
    pub fn response_public_key(&self) -> Option<&[u8]> {
        self.response_key
            .as_ref()
            .map(|(_, k)| k.public_key().as_ref())
    }
}

/// A fresh Ed25519 key pair as PKCS#8 (for the demo and tests).
pub fn generate_ed25519_pkcs8() -> Option<Secret> {
    Ed25519KeyPair::generate_pkcs8(&rand::SystemRandom::new())
        .ok()
        .map(|d| Secret::new(d.as_ref().to_vec()))
}

/// Signs a request the way a wallet must (for the wallet CLI and tests): the `signature` header
/// value for an HMAC-SHA256 key; send it with `client-id` and `request-time` set to the same values.
pub fn sign_request_hmac(
    key: &Secret,
    key_version: u32,
    method: &str,
    path: &str,
    client_id: &str,
    request_time: &str,
    body: &[u8],
) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key.expose());
    let message = canonical_string(
        Direction::Request,
        method,
        path,
        client_id,
        request_time,
        body,
    );
    SignatureHeader {
        algorithm: Algorithm::HmacSha256,
        key_version,
        signature: hmac::sign(&k, message.as_bytes()).as_ref().to_vec(),
    }
    .format()
}

/// Verifies a response signature with an HMAC key the way a wallet must (wallet CLI and tests).
pub fn verify_response_hmac(
    key: &Secret,
    method: &str,
    path: &str,
    client_id: &str,
    response_time: &str,
    signature: &str,
    body: &[u8],
) -> Result<(), AuthFault> {
    let header = SignatureHeader::parse(signature)?;
    if header.algorithm != Algorithm::HmacSha256 {
        return Err(AuthFault::Mismatch);
    }
    let k = hmac::Key::new(hmac::HMAC_SHA256, key.expose());
    let message = canonical_string(
        Direction::Response,
        method,
        path,
        client_id,
        response_time,
        body,
    );
    hmac::verify(&k, message.as_bytes(), &header.signature).map_err(|_| AuthFault::Mismatch)
}

/// `now` as a `request-time` / `response-time` value: RFC 3339 UTC with milliseconds,
/// `2026-11-21T10:40:00.123Z`.
pub fn request_time(now: SystemTime) -> String {
    let millis = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    let whole = format_rfc3339(now);
    match whole.strip_suffix('Z') {
        Some(base) => format!("{base}.{millis:03}Z"),
        None => whole,
    }
}

/// Parses a `request-time`: `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (UTC, 1–9 fraction digits).
pub fn parse_request_time(text: &str) -> Option<SystemTime> {
    let base = text.strip_suffix('Z')?;
    let (whole, nanos) = match base.split_once('.') {
        None => (base, 0u32),
        Some((whole, fraction)) => {
            if fraction.is_empty()
                || fraction.len() > 9
                || !fraction.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let scaled = format!("{fraction:0<9}");
            (whole, scaled.parse().ok()?)
        }
    };
    if whole.len() != 19 || !whole.contains('T') {
        return None;
    }
    parse_timestamp(&format!("{whole}Z"))?.checked_add(Duration::from_nanos(u64::from(nanos)))
}

#[cfg(test)]
mod tests;
