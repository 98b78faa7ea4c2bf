//! Foreign wallet schemes: each wallet network's own request language, translated to and from the
//! canonical payment operations the gateway implements ([`Pipeline`]).
//!
//! In: one HTTP request addressed to a scheme (method, path and query, headers, the body already
//! read within the server's limits, the TLS peer identity), and a [`Dispatch`] to call the pipeline.
//! Out: the scheme's own response ([`Outbound`]); for notifications, the scheme's own signed
//! message ([`NoticeMessage`]) and the test of its acknowledgement.
//! Errors: the pipeline's [`ApiError`]s, rendered by each scheme in its own form (result codes,
//! ISO 20022 reason codes); configuration problems are [`SchemeConfigError`].
//! Spec: `spec/schemes/README.md` (how to add a scheme), `spec/schemes/<name>.md` (each mapping).
//!
//! ```text
//! mod.rs      Scheme (the trait), Registry, Inbound / Outbound, Dispatch, Notice
//! native/     Wallet API v1: /v1/...  JSON envelope, HMAC-SHA256 / Ed25519 signatures
//! aplus/      the Alipay+ side of the Alipay+ MPP API: /schemes/aplus/aps/api/v1/payments/<name>, RSA256
//! iso20022/   Nexus-shaped: quotes (JSON), pacs.008 in, pacs.002 out (XML)
//! ```
//!
//! The canonical payment is the typed request/response set of `payment::ops` and the seam
//! `payment::Pipeline` (decode, quote, pay, inquiry, cancel, refund, refund inquiry). A scheme's
//! `transformers.rs` holds its wire types (prefixed with its name) and converts them with
//! `TryFrom`/`From`; its `mod.rs` holds its routes, credentials and signature check.
//!
//! Adding a scheme: one folder with `mod.rs` + `transformers.rs`, and one line in [`REGISTRY`].

pub mod aplus;
mod dispatch;
pub mod iso20022;
mod json;
pub mod native;
pub mod percent;

use std::sync::Arc;
use std::time::SystemTime;

use hyper::StatusCode;
use hyper::header::{HeaderMap, HeaderName};

pub use crate::payment::{BoxFuture, Pipeline};
pub use dispatch::{Dispatch, InFlight, InFlightGuard};
pub use json::parse_json;

use crate::payment::ApiError;
pub use crate::payment::{InquiryAnswer, Notice, NoticeEvent, WalletCall};

/// The registry: every scheme the gateway can speak, by name. Adding a scheme is one line here.
/// The native scheme (Wallet API v1) is not listed: the server builds it from `[server]` and
/// `[[clients]]`, and serves it through the same seam.
pub const REGISTRY: &[Entry] = &[
    Entry {
        name: aplus::NAME,
        build: aplus::build,
    },
    Entry {
        name: iso20022::NAME,
        build: iso20022::build,
    },
];

/// One registry line: a scheme's name and how to build it from its configuration table.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The scheme's name: the `[schemes.<name>]` table and the `/schemes/<name>/` path segment.
    pub name: &'static str,
    /// Builds the scheme from its configuration.
    pub build: fn(&SchemeSettings) -> Result<Arc<dyn Scheme>, SchemeConfigError>,
}

/// What a scheme is built from.
#[derive(Debug, Clone)]
pub struct SchemeSettings {
    /// The scheme's own configuration table (`[schemes.<name>]`), empty when absent.
    pub table: toml::Table,
    /// Demo mode: authentication off for this client id (the banner says so).
    pub demo_client: Option<String>,
    /// Where relative paths in `table` are resolved from.
    pub base_dir: std::path::PathBuf,
    /// The bound of the scheme's replay guard, bytes (`[memory] replay_mib`).
    pub replay_bytes: u64,
}

/// A scheme's configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[error("scheme {scheme}: {key}: {reason}")]
pub struct SchemeConfigError {
    /// Which scheme.
    pub scheme: &'static str,
    /// Which key (`clients.wallet-a.public_key_pem`).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// How the TLS layer identified the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// No client certificate in use (plaintext, or TLS without mTLS).
    Anonymous,
    /// A mapped client certificate: this client id.
    Certified(String),
    /// A certificate from the client CA that the mapping does not list (its fingerprint).
    Unmapped(String),
}

/// One request addressed to a scheme. The body has been read within the server's size and time
/// limits; everything else (method, route, authentication, parsing) is the scheme's to check.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path (`/schemes/aplus/aps/api/v1/payments/notifyPayment`).
    pub path: &'a str,
    /// The query string without `?`, if any.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The body bytes.
    pub body: &'a [u8],
    /// The TLS peer.
    pub peer: &'a Peer,
    /// When the server received the request.
    pub received_at: SystemTime,
    /// The request id (`x-request-id`; spec/operations.md §2), for the `RequestContext`.
    pub request_id: &'a str,
}

/// `content-type`, for [`Inbound::header`].
pub static CONTENT_TYPE: HeaderName = hyper::header::CONTENT_TYPE;

impl<'a> Inbound<'a> {
    /// The path with its query, as a signature covers it (the path itself, borrowed, when there
    /// is no query).
    pub fn target(&self) -> std::borrow::Cow<'a, str> {
        match self.query {
            Some(q) => std::borrow::Cow::Owned(format!("{}?{q}", self.path)),
            None => std::borrow::Cow::Borrowed(self.path),
        }
    }

    /// A header's value as visible ASCII; `Err` names the header when it is not. The name is a
    /// `HeaderName` made once (e.g. [`CONTENT_TYPE`]): looking up by `&str` would validate the
    /// name on every request.
    pub fn header(&self, name: &'static HeaderName) -> Result<Option<&str>, ApiError> {
        match self.headers.get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(Some)
                .map_err(|_| ApiError::param(name.as_str(), "not visible ASCII")),
        }
    }
}

/// A scheme's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// HTTP status.
    pub status: StatusCode,
    /// `application/json; charset=UTF-8`, `application/xml`, ...
    pub content_type: &'static str,
    /// Extra headers (signatures), name in lower case.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A wallet-facing scheme: routes, credentials, signature check, and the translation of its wire
/// types to and from the canonical operations.
pub trait Scheme: std::fmt::Debug + Send + Sync + 'static {
    /// The registry name (`native`, `aplus`, `iso20022`).
    fn name(&self) -> &'static str;

    /// The path prefix this scheme owns (`/v1/`, `/schemes/aplus/`). Prefixes never overlap.
    fn prefix(&self) -> &'static str;

    /// True when authentication is off for a demo client (the banner must say so).
    fn is_demo(&self) -> bool;

    /// The route's path as static text when `path` is one of this scheme's routes, so the
    /// request metrics find their series without building labels (`None`, the default: the
    /// server labels the request with a copy of its path).
    fn route_label(&self, _path: &str) -> Option<&'static str> {
        None
    }

    /// Serves one request under [`Scheme::prefix`]: routing (404/405 in the scheme's own form),
    /// authentication, parsing, the pipeline call through `dispatch`, the signed response.
    fn serve<'a>(&'a self, req: Inbound<'a>, dispatch: Dispatch) -> BoxFuture<'a, Outbound>;

    /// Renders a refusal the server decided before the scheme saw the body (too large, too slow),
    /// in the scheme's own form. Unsigned: the request was not authenticated.
    fn refuse(&self, req: &Inbound<'_>, error: &ApiError) -> Outbound;

    /// The calls this scheme can make to its wallets (the outbound half of the seam). A notice of
    /// another call is parked with that reason. Default: the two result notifications.
    fn calls(&self) -> &'static [WalletCall] {
        &[WalletCall::PaymentResult, WalletCall::RefundResult]
    }

    /// The signed message that makes `notice`'s call to the wallet, or `Ok(None)` when this client
    /// takes no such calls (no endpoint configured).
    fn notification(&self, notice: &Notice) -> Result<Option<NoticeMessage>, ApiError>;

    /// Checks the wallet's reply to `message` is authentic (a scheme whose wallets sign their
    /// answers verifies the signature here); `Err` says why not, and the attempt is retried.
    /// Default: nothing to check.
    fn verify_answer(
        &self,
        _notice: &Notice,
        _message: &NoticeMessage,
        _headers: &HeaderMap,
        _body: &[u8],
    ) -> Result<(), String> {
        Ok(())
    }

    /// True when the wallet's reply acknowledges the call (only then is it marked sent).
    fn acknowledged(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> bool;

    /// Why the wallet's reply, if it is not an acknowledgement, is a definite refusal that no retry
    /// will change (the wallet will not credit this refund, say): the notice is parked at once with
    /// the reason for an operator. `None` (the default): retried with backoff.
    fn refused(&self, _status: StatusCode, _headers: &HeaderMap, _body: &[u8]) -> Option<String> {
        None
    }

    /// What the wallet's authentic reply to a [`WalletCall::PaymentInquiry`] says became of the
    /// order (read only when the deliverer settles orders). `None` (the default): the reply says
    /// nothing usable, and the inquiry is asked again (up to the deliverer's bound).
    fn inquiry_answer(
        &self,
        _notice: &Notice,
        _status: StatusCode,
        _headers: &HeaderMap,
        _body: &[u8],
    ) -> Option<InquiryAnswer> {
        None
    }

    /// For the embedded demo's banner: pasteable requests that pay `code` through this scheme on
    /// the server at `base` (`http://127.0.0.1:8080`). `None`: nothing to show.
    fn demo_walkthrough(&self, _base: &str, _code: &str) -> Option<String> {
        None
    }
}

/// A notification ready to send: where, what, signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeMessage {
    /// `https://wallet.example/notify` (or `http://127.0.0.1:...` for loopback tests).
    pub url: String,
    /// `application/json; charset=UTF-8`, `application/xml`.
    pub content_type: &'static str,
    /// Signature headers, name in lower case.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}
