//! Server settings: where to listen, TLS (or explicit loopback plaintext), limits, authentication.
//! The gateway's TOML configuration maps onto these; defaults are production-safe.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::scheme::native::auth::{AuthConfig, Secret};

/// Everything the server needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// TLS, or plaintext on loopback only.
    pub transport: Transport,
    /// Size, count and time limits.
    pub limits: Limits,
    /// Request authentication.
    pub auth: AuthConfig,
}

/// How connections are carried.
#[derive(Debug, Clone)]
pub enum Transport {
    /// TLS 1.3 (the only production choice).
    Tls(TlsSettings),
    /// Plaintext HTTP. Refused at start unless `listen` is a loopback address.
    PlaintextLoopback,
}

/// TLS settings.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Our certificate chain and key (PEM). `None`: a private CA and an ECDSA P-256 certificate for
    /// `localhost` / `127.0.0.1` are generated at start (see `RunningServer::generated_pki`).
    pub identity: Option<Identity>,
    /// Require client certificates (mutual TLS) and map them to client ids.
    pub mutual: Option<MutualTls>,
}

/// A certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct Identity {
    /// PEM certificate chain, leaf first.
    pub cert_pem: String,
    /// PEM private key (ECDSA P-256 or P-384; anything else is refused at start).
    pub key_pem: Secret,
}

/// Mutual TLS for wallet clients.
#[derive(Debug, Clone)]
pub struct MutualTls {
    /// PEM CA certificate(s) that issue wallet client certificates.
    pub client_ca_pem: String,
    /// Lower-case hex SHA-256 fingerprint of a client certificate (DER) → client id. A certificate
    /// from the CA that is not listed gets `ACCESS_DENIED` on every request.
    pub clients: BTreeMap<String, String>,
}

/// Limits. Every one of them bounds what a single client can make the server hold or wait for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted body (default 64 KiB). A larger `content-length` is refused with 413
    /// before the body is read; a body that grows past it while read is refused the same way.
    pub max_body_bytes: u64,
    /// HTTP/1.1 read buffer and HTTP/2 header list size (default 16 KiB; at least 8 KiB).
    pub max_header_bytes: usize,
    /// Most header fields in an HTTP/1.1 request (default 64).
    pub max_headers: usize,
    /// Time for a client to complete the TLS handshake, and to send each HTTP/1.1 request head
    /// (the clock starts when the connection waits for a head, so idle keep-alive connections
    /// close after it too). Default 10 s.
    pub header_read_timeout: Duration,
    /// Time from the request head to our response: reading the body (408 past it) and the
    /// handler (past it: `UNKNOWN_EXCEPTION`, U, while the handler goes on to its end). Default 30 s
    /// — above the gateway's own payment budget (8 s), which answers PROCESSING in time.
    pub request_timeout: Duration,
    /// A connection with no request in progress for this long is closed (default 10 s): an
    /// HTTP/1.1 keep-alive connection, an HTTP/2 connection even while it answers PINGs, and a
    /// connection that sends nothing after its TLS handshake. HTTP/2 gets a GOAWAY first; whatever
    /// is still open 2 s later is dropped.
    pub idle_timeout: Duration,
    /// Most open connections (default 1024); further ones wait in the accept queue.
    pub max_connections: usize,
    /// Most concurrent HTTP/2 streams per connection (default 128).
    pub max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_concurrent_streams: 128,
        }
    }
}
