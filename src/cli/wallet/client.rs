//! The wallet's HTTP side: one request per invocation through the outbound HTTP leaf
//! (`qrbridge::http_client`: HTTP/1.1, plaintext to loopback or TLS 1.3 with rustls/ring), signed with the wallet's HMAC key exactly as
//! `spec/auth.md` says (`qrbridge::scheme::native::auth::sign_request_hmac`), and the response's
//! signature verified with the same key before anything is trusted.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::body::Bytes;
use hyper::{HeaderMap, Method, StatusCode};
use qrbridge::http_client::{self, HttpClient, HttpFailure, OutboundRequest, Roots, TlsOptions};
use qrbridge::payment::ResultStatus;
use qrbridge::scheme::native::auth::{
    AuthFault, Direction, Secret, canonical_string, headers, parse_request_time, request_time,
    sign_request_ed25519, sign_request_hmac, verify_response_ed25519, verify_response_hmac,
};
use ring::signature::Ed25519KeyPair;
use rustls::ClientConfig;
use serde::Deserialize;

/// How far a `response-time` may be from our clock (the gateway's request window, spec/auth.md §4).
const RESPONSE_TIME_WINDOW: Duration = Duration::from_secs(300);

/// Largest answer read (real ones are well under 4 KiB); a longer one is cut short: unknown outcome.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Result codes the gateway answers *before* authenticating a request, unsigned by design
/// (spec/auth.md §5, spec/errors.md): each is an F where nothing was done.
const UNSIGNED_REFUSALS: &[&str] = &[
    "INVALID_SIGNATURE",
    "ACCESS_DENIED",
    "REQUEST_TOO_LARGE",
    "REQUEST_TIMEOUT",
    "PARAM_ILLEGAL",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "SERVICE_UNAVAILABLE",
];

/// Why an invocation produced no trustworthy result. Each maps to one exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad options or files, or the gateway could not be reached: nothing was sent (exit 2).
    NotSent(String),
    /// The request may have been received but no usable answer came back (exit 3, like U).
    Unknown(String),
    /// An answer came back but its signature is missing, wrong or stale (exit 4, like U).
    Untrusted(String),
}

/// How the wallet signs requests and verifies responses. `Debug` never shows a key.
pub enum Signer {
    /// A shared HMAC-SHA256 key: signs requests and verifies responses.
    Hmac {
        /// The shared key.
        key: Secret,
        /// `keyVersion`.
        version: u32,
    },
    /// The wallet's Ed25519 key signs requests; the gateway's Ed25519 public key verifies responses.
    Ed25519 {
        /// The wallet's key pair.
        pair: Ed25519KeyPair,
        /// `keyVersion` of the wallet's key.
        version: u32,
        /// The gateway's response-signing public key (32 bytes).
        gateway_key: Vec<u8>,
    },
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signer::Hmac { version, .. } => write!(f, "Signer(HMAC-SHA256 v{version}, <redacted>)"),
            Signer::Ed25519 { version, .. } => write!(f, "Signer(Ed25519 v{version}, <redacted>)"),
        }
    }
}

impl Signer {
    fn sign(&self, path: &str, client_id: &str, time: &str, body: &[u8]) -> String {
        match self {
            Signer::Hmac { key, version } => {
                sign_request_hmac(key, *version, "POST", path, client_id, time, body)
            }
            Signer::Ed25519 { pair, version, .. } => {
                sign_request_ed25519(pair, *version, "POST", path, client_id, time, body)
            }
        }
    }

    fn verify(
        &self,
        path: &str,
        client_id: &str,
        time: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<(), AuthFault> {
        match self {
            Signer::Hmac { key, .. } => {
                verify_response_hmac(key, "POST", path, client_id, time, signature, body)
            }
            Signer::Ed25519 { gateway_key, .. } => {
                verify_response_ed25519(gateway_key, "POST", path, client_id, time, signature, body)
            }
        }
    }
}

/// Where the gateway is: a checked URL (https, or http to loopback) and its path prefix.
#[derive(Debug, Clone)]
pub struct Target {
    url: http_client::Target,
    base_path: String,
}

impl Target {
    /// Parses `http://host:port[/prefix]` (loopback only) or `https://host[:port][/prefix]`.
    pub fn parse(url: &str) -> Result<Target, String> {
        let t = http_client::target(url).map_err(|e| format!("--url: {e}"))?;
        if t.path.contains('?') {
            return Err(format!("--url {url:?}: no query string, please"));
        }
        Ok(Target {
            base_path: t.path.trim_end_matches('/').to_owned(),
            url: t,
        })
    }

    /// The request target for `route_path` (what is signed).
    pub fn path(&self, route_path: &str) -> String {
        format!("{}{route_path}", self.base_path)
    }

    /// True for `https://`.
    pub fn is_tls(&self) -> bool {
        self.url.tls
    }

    /// The checked URL with `path` as its request target.
    fn at(&self, path: String) -> http_client::Target {
        http_client::Target {
            path,
            ..self.url.clone()
        }
    }
}

/// TLS 1.3 client settings: trust `ca` (PEM) or, without it, the public web PKI roots; present a
/// client certificate for mutual TLS when given.
pub fn tls_config(
    ca: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let ca_pem = ca.map(read).transpose()?;
    let client_pem = match client {
        Some((cert, key)) => Some((read(cert)?, read(key)?)),
        None => None,
    };
    let roots = match &ca_pem {
        Some(ca_pem) => Roots::Only { ca_pem },
        None => Roots::Web { extra_ca_pem: None },
    };
    http_client::tls_config(&TlsOptions {
        roots,
        tls13_only: true,
        client_cert: client_pem
            .as_ref()
            .map(|(cert, key)| (cert.as_str(), key.as_str())),
    })
    .map_err(|e| format!("TLS settings: {e}"))
}

/// One configured client.
pub struct Client {
    /// The gateway.
    pub target: Target,
    /// TLS settings (https only).
    pub tls: Option<Arc<ClientConfig>>,
    /// `client-id`.
    pub client_id: String,
    /// The signing key; `None`: unsigned requests (demo mode).
    pub signer: Option<Signer>,
    /// Bound on connecting, and separately on the exchange.
    pub timeout: Duration,
    /// Print the request, the string to sign and the response headers on stderr.
    pub verbose: bool,
}

/// How far the response can be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Signed for this request, recently, verifiably (our HMAC key or the gateway's Ed25519 key).
    Verified,
    /// No key given: nothing to verify with.
    NoKey,
    /// Unsigned, as the gateway answers requests it refused before authenticating them (an F
    /// where nothing was done).
    UnsignedRefusal,
}

/// A Wallet API answer.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// The body as received.
    pub body: Bytes,
    /// `result.resultStatus`.
    pub result_status: ResultStatus,
    /// `result.resultCode`.
    pub result_code: String,
    /// `result.resultMessage`.
    pub result_message: String,
    /// Signature check outcome.
    pub trust: Trust,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultView {
    result_status: ResultStatus,
    result_code: String,
    #[serde(default)]
    result_message: String,
}

#[derive(Deserialize)]
struct Envelope {
    result: ResultView,
}

impl Client {
    /// Signs and sends `body` to `route_path`, reads the answer and checks its signature.
    pub async fn post(&self, route_path: &str, body: Vec<u8>) -> Result<Reply, Failure> {
        let path = self.target.path(route_path);
        let time = request_time(SystemTime::now());
        let signature = self
            .signer
            .as_ref()
            .map(|s| s.sign(&path, &self.client_id, &time, &body));
        let mut request_headers = vec![(headers::CLIENT_ID, self.client_id.clone())];
        if let Some(sig) = &signature {
            request_headers.push((headers::REQUEST_TIME, time.clone()));
            request_headers.push((headers::SIGNATURE, sig.clone()));
        }
        if self.verbose {
            eprintln!("> POST {path}");
            eprintln!("> {}: {}", headers::CLIENT_ID, self.client_id);
            if let Some(sig) = &signature {
                eprintln!("> {}: {time}", headers::REQUEST_TIME);
                eprintln!("> {}: {sig}", headers::SIGNATURE);
                let canonical = canonical_string(
                    Direction::Request,
                    "POST",
                    &path,
                    &self.client_id,
                    &time,
                    &body,
                );
                eprintln!("> string signed (spec/auth.md §3):");
                for line in canonical.lines() {
                    eprintln!(">   {line}");
                }
            }
            eprintln!("> {}", String::from_utf8_lossy(&body));
        }
        let answer = HttpClient::new(self.tls.clone())
            .with_timeouts(self.timeout, self.timeout)
            .with_max_answer_bytes(MAX_RESPONSE_BYTES)
            .send(OutboundRequest {
                method: Method::POST,
                target: self.target.at(path.clone()),
                content_type: Some("application/json"),
                headers: request_headers,
                body,
            })
            .await
            .map_err(|e| match e {
                HttpFailure::NotSent(why) => Failure::NotSent(format!(
                    "{why}; nothing was sent (is the gateway running? `qrbridge serve` starts \
                     the demo on 127.0.0.1:8080)"
                )),
                HttpFailure::NoAnswer(why) => Failure::Unknown(format!(
                    "{why}: the request may have been processed; query it (inquiry) or resend \
                     it with the same --request-id"
                )),
            })?;
        let (status, resp_headers, bytes) = (answer.status, answer.headers, answer.body);
        if self.verbose {
            eprintln!("< HTTP {status}");
            for name in [
                headers::CLIENT_ID,
                headers::RESPONSE_TIME,
                headers::SIGNATURE,
            ] {
                if let Some(v) = resp_headers.get(name).and_then(|v| v.to_str().ok()) {
                    eprintln!("< {name}: {v}");
                }
            }
        }
        self.reply(&path, status, &resp_headers, bytes)
    }

    fn reply(
        &self,
        path: &str,
        status: StatusCode,
        resp_headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Reply, Failure> {
        let envelope: Option<Envelope> = serde_json::from_slice(&body).ok();
        let signed = resp_headers.get(headers::SIGNATURE).is_some();
        let trust = match &self.signer {
            None => Trust::NoKey,
            Some(signer) if signed => {
                self.verify(signer, path, resp_headers, &body)
                    .map_err(|why| {
                        Failure::Untrusted(format!(
                            "response signature: {why}; the answer (HTTP {status}) is NOT \
                             trusted and the outcome is unknown: query it (inquiry)"
                        ))
                    })?;
                Trust::Verified
            }
            Some(_) => match &envelope {
                Some(e)
                    if e.result.result_status == ResultStatus::F
                        && UNSIGNED_REFUSALS.contains(&e.result.result_code.as_str()) =>
                {
                    Trust::UnsignedRefusal
                }
                _ => {
                    return Err(Failure::Untrusted(format!(
                        "the answer (HTTP {status}) is not signed, so it is NOT trusted and the \
                         outcome is unknown (is authentication off on the gateway? the embedded \
                         demo runs without it: leave out the key)"
                    )));
                }
            },
        };
        let Some(envelope) = envelope else {
            return Err(Failure::Unknown(format!(
                "HTTP {status} without a Wallet API result: {:?}; the outcome is unknown",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )));
        };
        Ok(Reply {
            status,
            body,
            result_status: envelope.result.result_status,
            result_code: envelope.result.result_code,
            result_message: envelope.result.result_message,
            trust,
        })
    }

    fn verify(
        &self,
        signer: &Signer,
        path: &str,
        h: &HeaderMap,
        body: &[u8],
    ) -> Result<(), String> {
        let text = |name: &'static str| {
            h.get(name)
                .ok_or_else(|| format!("header {name} missing"))?
                .to_str()
                .map_err(|_| format!("header {name} is not visible ASCII"))
        };
        let client_id = text(headers::CLIENT_ID)?;
        if client_id != self.client_id {
            return Err(format!(
                "signed for client {client_id:?}, we are {:?}",
                self.client_id
            ));
        }
        let time = text(headers::RESPONSE_TIME)?;
        let at = parse_request_time(time)
            .ok_or_else(|| format!("response-time {time:?} is not RFC 3339 UTC"))?;
        let now = SystemTime::now();
        let distance = at
            .duration_since(now)
            .unwrap_or_else(|behind| behind.duration());
        if distance > RESPONSE_TIME_WINDOW {
            return Err(format!(
                "response-time {time} is more than {} s from our clock",
                RESPONSE_TIME_WINDOW.as_secs()
            ));
        }
        let signature = text(headers::SIGNATURE)?;
        signer
            .verify(path, &self.client_id, time, signature, body)
            .map_err(|e| format!("does not verify: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_with_defaults_and_prefixes() {
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert!(!t.is_tls());
        assert_eq!((t.url.host.as_str(), t.url.port), ("127.0.0.1", 8080));
        assert_eq!(t.path("/v1/quotes"), "/v1/quotes");
        let t = Target::parse("https://gw.example.com/qr/").unwrap();
        assert!(t.is_tls());
        assert_eq!(t.url.port, 443);
        assert_eq!(t.path("/v1/quotes"), "/qr/v1/quotes");
        let t = Target::parse("https://[::1]:8443").unwrap();
        assert_eq!((t.url.host.as_str(), t.url.port), ("::1", 8443));
        for bad in ["ftp://x", "127.0.0.1:8080", "http://x/?a=1", "not a url"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
