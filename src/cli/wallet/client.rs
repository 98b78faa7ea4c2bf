//! The wallet's HTTP side: one request per invocation over HTTP/1.1 (hyper 1 client connection),
//! plaintext to loopback or TLS 1.3 (rustls, ring), signed with the wallet's HMAC key exactly as
//! `spec/auth.md` says (`qrbridge::scheme::native::auth::sign_request_hmac`), and the response's
//! signature verified with the same key before anything is trusted.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{HeaderMap, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use qrbridge::payment::ResultStatus;
use qrbridge::scheme::native::auth::{
    AuthFault, Direction, Secret, canonical_string, headers, parse_request_time, request_time,
    sign_request_ed25519, sign_request_hmac, verify_response_ed25519, verify_response_hmac,
};
use ring::signature::Ed25519KeyPair;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use tokio::net::TcpStream;

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

/// Where the gateway is.
#[derive(Debug, Clone)]
pub struct Target {
    tls: bool,
    host: String,
    port: u16,
    authority: String,
    base_path: String,
}

impl Target {
    /// Parses `http://host:port[/prefix]` or `https://host[:port][/prefix]`.
    pub fn parse(url: &str) -> Result<Target, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("--url {url:?}: not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("--url {url:?}: use http:// (loopback) or https://")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("--url {url:?}: no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        if uri.query().is_some() {
            return Err(format!("--url {url:?}: no query string, please"));
        }
        Ok(Target {
            tls,
            host,
            port,
            authority: authority.as_str().to_owned(),
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The request target for `route_path` (what is signed).
    pub fn path(&self, route_path: &str) -> String {
        format!("{}{route_path}", self.base_path)
    }

    /// True for `https://`.
    pub fn is_tls(&self) -> bool {
        self.tls
    }
}

/// TLS 1.3 client settings: trust `ca` (PEM) or, without it, the public web PKI roots; present a
/// client certificate for mutual TLS when given.
pub fn tls_config(
    ca: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let certs = |p: &Path| -> Result<Vec<CertificateDer<'static>>, String> {
        let pem = read(p)?;
        let list = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", p.display()))?;
        if list.is_empty() {
            return Err(format!("{}: no CERTIFICATE block", p.display()));
        }
        Ok(list)
    };
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for c in certs(path)? {
                roots
                    .add(c)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let key_pem = read(key)?;
            let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| format!("{}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(certs(cert)?, key_der)
                .map_err(|e| format!("client certificate: {e}"))?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
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

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

impl Client {
    async fn connect(&self) -> Result<Sender, Failure> {
        let t = &self.target;
        let not_sent = |what: &str, e: &dyn std::fmt::Display| {
            Failure::NotSent(format!(
                "could not connect to {}:{} ({what}): {e}; nothing was sent (is the gateway \
                 running? `qrbridge serve` starts the demo on 127.0.0.1:8080)",
                t.host, t.port
            ))
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((t.host.as_str(), t.port))
            .await
            .map_err(|e| not_sent("name lookup", &e))?
            .collect();
        if addrs.is_empty() {
            return Err(not_sent("name lookup", &"no address"));
        }
        if !t.tls && !addrs.iter().all(|a| a.ip().is_loopback()) {
            return Err(Failure::NotSent(format!(
                "plain http:// is for loopback only ({} is not): use https://",
                t.host
            )));
        }
        let tcp = TcpStream::connect(addrs.as_slice())
            .await
            .map_err(|e| not_sent("TCP", &e))?;
        let _ = tcp.set_nodelay(true);
        let sender = match (&self.tls, t.tls) {
            (Some(config), true) => {
                let name = ServerName::try_from(t.host.clone())
                    .map_err(|e| not_sent("server name", &e))?;
                let stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| not_sent("TLS handshake", &chain(&e)))?;
                handshake(TokioIo::new(stream)).await
            }
            (None, true) => return Err(not_sent("TLS", &"no TLS settings")),
            (_, false) => handshake(TokioIo::new(tcp)).await,
        }
        .map_err(|e| not_sent("HTTP", &chain(&e)))?;
        Ok(sender)
    }

    /// Signs and sends `body` to `route_path`, reads the answer and checks its signature.
    pub async fn post(&self, route_path: &str, body: Vec<u8>) -> Result<Reply, Failure> {
        let path = self.target.path(route_path);
        let time = request_time(SystemTime::now());
        let signature = self
            .signer
            .as_ref()
            .map(|s| s.sign(&path, &self.client_id, &time, &body));
        let mut req = Request::builder()
            .method("POST")
            .uri(path.as_str())
            .header("host", self.target.authority.as_str())
            .header("content-type", "application/json")
            .header(headers::CLIENT_ID, self.client_id.as_str());
        if let Some(sig) = &signature {
            req = req
                .header(headers::REQUEST_TIME, time.as_str())
                .header(headers::SIGNATURE, sig.as_str());
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
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::NotSent(format!("request: {e}")))?;

        let mut sender = tokio::time::timeout(self.timeout, self.connect())
            .await
            .map_err(|_| {
                Failure::NotSent(format!(
                    "could not connect to {}:{} within {} s",
                    self.target.host,
                    self.target.port,
                    self.timeout.as_secs()
                ))
            })??;

        let exchange = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("no answer: {}", chain(&e)))?;
            let (parts, incoming) = resp.into_parts();
            let bytes = Limited::new(incoming, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| format!("answer cut short: {}", chain(e.as_ref())))?
                .to_bytes();
            Ok::<_, String>((parts.status, parts.headers, bytes))
        };
        let (status, resp_headers, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                Failure::Unknown(format!(
                    "no answer within {} s: the request may have been processed; \
                     query it (inquiry) or resend it with the same --request-id",
                    self.timeout.as_secs()
                ))
            })?
            .map_err(|e| {
                Failure::Unknown(format!(
                    "{e}: the request may have been processed; query it (inquiry) or resend it \
                     with the same --request-id"
                ))
            })?;
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

/// `e` and its sources: hyper's "connection error" alone does not say that TLS refused us.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn handshake<T>(io: TokioIo<T>) -> Result<Sender, hyper::Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_with_defaults_and_prefixes() {
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert!(!t.is_tls());
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 8080));
        assert_eq!(t.path("/v1/quotes"), "/v1/quotes");
        let t = Target::parse("https://gw.example.com/qr/").unwrap();
        assert!(t.is_tls());
        assert_eq!(t.port, 443);
        assert_eq!(t.path("/v1/quotes"), "/qr/v1/quotes");
        let t = Target::parse("https://[::1]:8443").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8443));
        for bad in ["ftp://x", "127.0.0.1:8080", "http://x/?a=1", "not a url"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
