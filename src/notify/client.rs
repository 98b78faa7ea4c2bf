//! One notification POST: HTTP/1.1 over TLS (webpki roots plus optional extra CAs) or, for tests and
//! local wallets only, plain HTTP to a loopback address. One connection per attempt; the whole
//! attempt (name lookup, connect, handshake, request, answer) is bounded by one timeout.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use crate::scheme::NoticeMessage;

/// The most of a wallet's answer that is read.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Where a notification goes, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https` (true) or loopback `http` (false).
    pub tls: bool,
    /// Host name or IP address (without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// `host[:port]` for the `host` header.
    pub authority: String,
    /// Path and query, as the request line carries it (and the signature covers).
    pub path: String,
}

/// Parses and checks a notify URL: `https://...`, or `http://` to a loopback address only.
pub fn target(url: &str) -> Result<Target, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("notify URL {url:?} is not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("notify URL {url:?} must start with https://")),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| format!("notify URL {url:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!(
            "notify URL {url:?} must not carry user information"
        ));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if host.is_empty() {
        return Err(format!("notify URL {url:?} has no host"));
    }
    if !tls && !is_loopback_name(&host) {
        return Err(format!(
            "notify URL {url:?}: plain http:// is allowed only to a loopback address \
             (127.0.0.1, ::1, localhost); use https://"
        ));
    }
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    Ok(Target {
        tls,
        host,
        port,
        authority: authority.as_str().to_owned(),
        path,
    })
}

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The wallet's answer.
#[derive(Debug, Clone)]
pub struct WalletAnswer {
    /// HTTP status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body (at most [`MAX_ANSWER_BYTES`]).
    pub body: Bytes,
}

/// Sends notifications.
#[derive(Clone)]
pub struct NotifyClient {
    tls: Arc<ClientConfig>,
}

impl std::fmt::Debug for NotifyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyClient").finish_non_exhaustive()
    }
}

impl NotifyClient {
    /// A client trusting the webpki roots and, if given, the CA certificates in `extra_ca_pem`.
    pub fn new(extra_ca_pem: Option<&Path>) -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = extra_ca_pem {
            let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("{}: no CERTIFICATE block", path.display()));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(NotifyClient {
            tls: Arc::new(config),
        })
    }

    /// POSTs `message` and reads the answer, all within `timeout`. `Err` says what failed, without
    /// the body (it may name the payer's amounts; the notice id is logged instead).
    pub async fn post(
        &self,
        message: &NoticeMessage,
        timeout: Duration,
    ) -> Result<WalletAnswer, String> {
        let t = target(&message.url)?;
        tokio::time::timeout(timeout, self.exchange(&t, message))
            .await
            .map_err(|_| {
                format!(
                    "no answer from {}:{} within {} ms",
                    t.host,
                    t.port,
                    timeout.as_millis()
                )
            })?
    }

    async fn exchange(&self, t: &Target, message: &NoticeMessage) -> Result<WalletAnswer, String> {
        let at =
            |what: &str, e: &dyn std::fmt::Display| format!("{}:{} ({what}): {e}", t.host, t.port);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((t.host.as_str(), t.port))
            .await
            .map_err(|e| at("name lookup", &e))?
            .collect();
        if addrs.is_empty() {
            return Err(at("name lookup", &"no address"));
        }
        if !t.tls && !addrs.iter().all(|a| a.ip().is_loopback()) {
            return Err(format!(
                "plain http:// is for loopback only and {} resolves elsewhere",
                t.host
            ));
        }
        let tcp = TcpStream::connect(addrs.as_slice())
            .await
            .map_err(|e| at("connect", &e))?;
        let _ = tcp.set_nodelay(true);
        let mut req = Request::builder()
            .method("POST")
            .uri(t.path.as_str())
            .header("host", t.authority.as_str())
            .header("content-type", message.content_type);
        for (name, value) in &message.headers {
            req = req.header(*name, value.as_str());
        }
        let req = req
            .body(Full::new(Bytes::from(message.body.clone())))
            .map_err(|e| format!("request not built: {e}"))?;
        let resp = if t.tls {
            let name = ServerName::try_from(t.host.clone()).map_err(|e| at("server name", &e))?;
            let stream = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
                .connect(name, tcp)
                .await
                .map_err(|e| at("TLS handshake", &chain(&e)))?;
            send(TokioIo::new(stream), req).await
        } else {
            send(TokioIo::new(tcp), req).await
        }
        .map_err(|e| at("HTTP", &e))?;
        Ok(resp)
    }
}

async fn send<T>(io: TokioIo<T>, req: Request<Full<Bytes>>) -> Result<WalletAnswer, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| chain(&e))?;
    // The connection task ends when the exchange is over (the sender is dropped) or on timeout.
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("no answer: {}", chain(&e)))?;
        let (parts, incoming) = resp.into_parts();
        let body = Limited::new(incoming, MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| format!("answer cut short: {e}"))?
            .to_bytes();
        Ok(WalletAnswer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
    .await;
    drop(sender);
    conn.abort();
    result
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_targets_keep_their_path_and_query() {
        let t = target("https://wallet.example:8443/notify/v1?x=1").unwrap();
        assert!(t.tls);
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("wallet.example", 8443, "/notify/v1?x=1")
        );
        assert_eq!(target("https://wallet.example").unwrap().port, 443);
    }

    #[test]
    fn plain_http_is_refused_unless_loopback() {
        for ok in [
            "http://127.0.0.1:9/n",
            "http://[::1]:9/n",
            "http://localhost/n",
        ] {
            assert!(!target(ok).unwrap().tls, "{ok}");
        }
        for bad in [
            "http://10.0.0.1/n",
            "http://wallet.example/n",
            "ftp://127.0.0.1/n",
            "/relative",
        ] {
            let e = target(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        assert!(
            target("http://wallet.example/n")
                .unwrap_err()
                .contains("loopback")
        );
    }
}
