//! The wallet-facing server: hyper 1 (HTTP/1.1 and HTTP/2) over tokio-rustls (TLS 1.3, ECDSA,
//! optional mutual TLS), limits, health, and routing each request to the scheme that owns its
//! path. Transport only: the schemes authenticate, translate and call the gateway's
//! [`Pipeline`](crate::payment::Pipeline), which the server receives and hands on.
//!
//! In: TLS (or loopback plaintext) connections carrying wallet requests in any served scheme.
//! Out: each scheme's own response; transport refusals (413, 408, no such path) rendered by the
//! scheme that owns the path, or in the native form when none does.
//! Errors: transport refusals are [`ApiError`](crate::payment::ApiError)s; start-up problems are
//! [`ServerError`]. Malformed input is never a 5xx.
//! Spec: `spec/openapi.yaml` (routes and shapes), `spec/errors.md` (result codes),
//! `spec/auth.md` (the signature scheme, with a worked example).
//!
//! ```text
//! config     ServerConfig: listen address, Transport (TLS | loopback plaintext), Limits, AuthConfig
//! tls        rustls ServerConfig (TLS 1.3, ring, ALPN h2/http1.1), client certificate → client id
//! listener   accept loop, connection limit, hyper-util auto builder, graceful shutdown
//! router     one request: health, or the scheme owning the path; size/time limits; response
//! health     /healthz, /readyz (the gateway's Readiness predicate)
//! operator   the operator listener: GET /metrics, /healthz, /readyz apart from wallets
//! ```
//!
//! Imports `payment` (the seam's types), `scheme` (the schemes it routes to) and the `tls` leaf;
//! never `gateway` or `journal`.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use qrbridge::server::*;
//! # use qrbridge::scheme::native::auth;
//! # async fn run<G: qrbridge::payment::Pipeline>(gateway: Arc<G>) -> Result<(), Box<dyn std::error::Error>> {
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

pub mod config;
pub mod health;
mod listener;
pub mod operator;
pub(crate) mod router;
pub mod tls;

pub use config::{Identity, Limits, MutualTls, ServerConfig, TlsSettings, Transport};
pub use listener::{RunningServer, ServeOptions, ServerError, ShutdownReport};
