//! The wallet-facing server: hyper 1 (HTTP/1.1 and HTTP/2) over tokio-rustls (TLS 1.3, ECDSA,
//! optional mutual TLS), request authentication, limits, health, and the ONE error → response
//! mapping. The payment pipeline plugs in by implementing [`WalletApi`].
//!
//! In: TLS (or loopback plaintext) connections carrying Wallet API v1 requests (JSON, signed).
//! Out: JSON responses `{"result":{"resultStatus","resultCode","resultMessage"}, ...}`, signed
//! like requests; calls into the gateway's [`WalletApi`] with typed, validated requests.
//! Errors: every failure is an [`ApiError`] (knows its [`Side`]) and becomes a response in
//! [`error`] only; start-up problems are [`ServerError`]. Malformed input is never a 5xx.
//! Spec: `spec/openapi.yaml` (routes and shapes), `spec/errors.md` (result codes),
//! `spec/auth.md` (the signature scheme, with a worked example).
//!
//! ```text
//! config     ServerConfig: listen address, Transport (TLS | loopback plaintext), Limits, AuthConfig
//! tls        rustls ServerConfig (TLS 1.3, ring, ALPN h2/http1.1), client certificate → client id
//! listener   accept loop, connection limit, hyper-util auto builder, graceful shutdown
//! router     one request: route, size/time limits, authentication, JSON, handler task, response
//! api        Route, WalletApi (the seam), RequestContext, Answer
//! wire/      Wallet API v1 request/response types (camelCase, deny_unknown_fields, Money)
//! auth/      signatures (HMAC-SHA256, Ed25519), canonical string, replay guard, Secret
//! error      ApiError → ResultCode → HTTP status + result JSON (exhaustive)
//! health     /healthz, /readyz and the Readiness predicate
//! inflight   counters that shutdown waits on
//! notify/    the notice outbox's delivery worker: POST, backoff, acknowledgement, parking
//! ```
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use qrbridge::server::*;
//! # async fn run<G: WalletApi>(gateway: Arc<G>) -> Result<(), Box<dyn std::error::Error>> {
//! let config = ServerConfig {
//!     listen: "127.0.0.1:8443".parse()?,
//!     transport: Transport::Tls(TlsSettings::default()), // generated ECDSA certificate
//!     limits: Limits::default(),
//!     auth: auth::AuthConfig::off("demo-wallet"),        // demo only: say so in the banner
//! };
//! let server = RunningServer::start(config, gateway, health::always_ready()).await?;
//! let handlers = server.handlers();
//! // ... on SIGTERM: stop accepting, let requests in flight finish (10 s at most) ...
//! let report = server.shutdown(std::time::Duration::from_secs(10)).await;
//! // ... then let handler tasks that outlived their requests finish before closing the journal.
//! handlers.wait_idle().await;
//! # let _ = report;
//! # Ok(()) }
//! ```

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod health;
mod inflight;
mod listener;
pub mod notify;
pub(crate) mod router;
pub mod tls;
pub mod wire;

pub use api::{Answer, Handled, RequestContext, Route, WalletApi};
pub use config::{Identity, Limits, MutualTls, ServerConfig, TlsSettings, Transport};
pub use error::{ApiError, ResultCode, Side};
pub use inflight::InFlight;
pub use listener::{RunningServer, ServeOptions, ServerError, ShutdownReport};
pub use router::parse_json;
