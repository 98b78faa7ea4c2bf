//! The gateway's side: verify a request (headers, key, window, signature, replay) and sign the
//! response.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ring::hmac;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use super::canonical::{Direction, canonical_string};
use super::credentials::{AuthConfig, AuthConfigError, AuthMode, ClientKey};
use super::header::{Algorithm, SignatureHeader};
use super::replay::{ReplayGuard, Seen};
use super::{AuthFault, headers};
use super::{parse_request_time, request_time};
use crate::time::{Clock, format_rfc3339};

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

impl ResponseSignature {
    /// The three headers that carry it (`client-id`, `response-time`, `signature`).
    pub fn headers(self) -> Vec<(&'static str, String)> {
        vec![
            (super::headers::CLIENT_ID, self.client_id),
            (super::headers::RESPONSE_TIME, self.response_time),
            (super::headers::SIGNATURE, self.signature),
        ]
    }
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
            replay: ReplayGuard::new(config.window, config.replay_bytes, config.scheme),
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
        match self.replay.first_use(client_id, &header.signature) {
            Seen::First => {}
            Seen::Replay => return Err(AuthFault::Replayed),
            Seen::Full => return Err(AuthFault::ReplayMemoryFull),
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

    /// Signs a notification to `client_id` (`POST path`, spec/auth.md §9) with the client's newest
    /// key: its HMAC key itself, or for an Ed25519 client the gateway's response key. `None` in
    /// demo mode or for a client without keys.
    pub fn sign_notification(
        &self,
        client_id: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Option<ResponseSignature> {
        let (&(_, version), verifier) = self
            .keys
            .range((client_id.to_owned(), 0)..=(client_id.to_owned(), u32::MAX))
            .next_back()?;
        let response_time = request_time(self.clock.now());
        let message = canonical_string(
            Direction::Notify,
            method,
            path,
            client_id,
            &response_time,
            body,
        );
        let (algorithm, key_version, signature) = match verifier {
            Verifier::Hmac(k) => (
                Algorithm::HmacSha256,
                version,
                hmac::sign(k, message.as_bytes()).as_ref().to_vec(),
            ),
            Verifier::Ed25519(_) => {
                let (v, pair) = self.response_key.as_ref()?;
                (
                    Algorithm::Ed25519,
                    *v,
                    pair.sign(message.as_bytes()).as_ref().to_vec(),
                )
            }
        };
        Some(ResponseSignature {
            client_id: client_id.to_owned(),
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
