//! Who may call: per-client keys by version (HMAC-SHA256 secrets, Ed25519 public keys), demo mode,
//! and the authentication settings.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::Secret;
use super::header::Algorithm;
use crate::time::{Clock, SystemClock};

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
    pub(crate) fn algorithm(&self) -> Algorithm {
        match self {
            ClientKey::HmacSha256(_) => Algorithm::HmacSha256,
            ClientKey::Ed25519 { .. } => Algorithm::Ed25519,
        }
    }
}

/// Per-client credentials: client id → key version → key. Several versions allow key rotation.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub(crate) clients: BTreeMap<String, BTreeMap<u32, ClientKey>>,
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

    pub(crate) fn key(&self, client_id: &str, version: u32) -> Option<&ClientKey> {
        self.clients.get(client_id)?.get(&version)
    }

    pub(crate) fn knows(&self, client_id: &str) -> bool {
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
    /// Bytes the replay guard may hold (default 32 MiB, `[memory] replay_mib`); full, it refuses
    /// new signatures (503) rather than forget one inside its lifetime.
    pub replay_bytes: u64,
    /// The scheme this configuration authenticates for (labels the replay guard's log and metric).
    pub scheme: &'static str,
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
            .field("replay_bytes", &self.replay_bytes)
            .field("scheme", &self.scheme)
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
            replay_bytes: super::replay::DEFAULT_BYTES,
            scheme: "native",
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
