//! An ECB-format feed fetched over HTTPS: hyper 1 (HTTP/1.1 client connection) over tokio-rustls,
//! rustls 0.23 with the ring provider, TLS 1.3 or 1.2, server certificate verified against the
//! webpki roots or a configured CA bundle (PEM). One connection per fetch, no redirects, a body
//! limit and a timeout over the whole exchange.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::fx::FxError;
use crate::fx::ecb::{self, MAX_FEED_BYTES};
use crate::fx::rate::RateTable;

use super::RateSource;

/// The default time limit for one fetch: connect, handshake, request and body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An ECB-format feed at an `https://` URL.
#[derive(Debug, Clone)]
pub struct EcbHttps {
    name: String,
    host: String,
    port: u16,
    authority: String,
    path: String,
    server_name: ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl EcbHttps {
    /// A source for `url`, trusting the public web PKI roots (webpki-roots).
    pub fn new(url: &str) -> Result<Self, FxError> {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Self::with_roots(url, roots)
    }

    /// A source for `url` trusting only the CA certificates in `pem` (a private CA, a test CA).
    pub fn with_ca_pem(url: &str, pem: &[u8]) -> Result<Self, FxError> {
        let name = format!("ecb-https:{url}");
        let bad = |detail: String| FxError::SourceUnavailable {
            source_name: name.clone(),
            detail,
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| bad(format!("CA bundle: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("CA bundle: {e}")))?;
        }
        if roots.is_empty() {
            return Err(bad("CA bundle has no certificate".into()));
        }
        Self::with_roots(url, roots)
    }

    fn with_roots(url: &str, roots: RootCertStore) -> Result<Self, FxError> {
        let name = format!("ecb-https:{url}");
        let bad = |detail: String| FxError::SourceUnavailable {
            source_name: name.clone(),
            detail,
        };
        let (host, port, authority, path) = split_url(url).map_err(|e| bad(e.to_owned()))?;
        let server_name = ServerName::try_from(host.clone())
            .map_err(|_| bad(format!("{host:?} is not a valid server name")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| bad(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(EcbHttps {
            host,
            port,
            authority,
            path,
            server_name,
            tls: Arc::new(tls),
            timeout: DEFAULT_TIMEOUT,
            name,
        })
    }

    /// Sets the time limit for one fetch (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn unavailable(&self, detail: impl std::fmt::Display) -> FxError {
        FxError::SourceUnavailable {
            source_name: self.name.clone(),
            detail: detail.to_string(),
        }
    }

    /// Runs one exchange on a private current-thread runtime.
    fn fetch_bytes(&self) -> Result<Bytes, FxError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| self.unavailable(format!("runtime: {e}")))?;
        runtime.block_on(async {
            match tokio::time::timeout(self.timeout, self.get()).await {
                Ok(result) => result,
                Err(_) => Err(self.unavailable(format!("no answer within {:?}", self.timeout))),
            }
        })
    }

    async fn get(&self) -> Result<Bytes, FxError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.unavailable(format!("connect {}: {e}", self.authority)))?;
        let tls = TlsConnector::from(self.tls.clone())
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| self.unavailable(format!("TLS handshake with {}: {e}", self.authority)))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| self.unavailable(format!("HTTP: {e}")))?;
        let driver = tokio::spawn(connection);
        let request = Request::get(self.path.as_str())
            .header(header::HOST, self.authority.as_str())
            .header(
                header::USER_AGENT,
                concat!("qrbridge/", env!("CARGO_PKG_VERSION")),
            )
            .header(header::ACCEPT, "application/xml, text/xml")
            .body(Empty::<Bytes>::new())
            .map_err(|e| self.unavailable(format!("request: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.unavailable(format!("HTTP: {e}")))?;
        let status = response.status();
        let result = if status == StatusCode::OK {
            Limited::new(response.into_body(), MAX_FEED_BYTES)
                .collect()
                .await
                .map(|body| body.to_bytes())
                .map_err(|e| self.unavailable(format!("reading body: {e}")))
        } else {
            Err(self.unavailable(format!("HTTP status {status}")))
        };
        driver.abort();
        result
    }
}

impl RateSource for EcbHttps {
    fn name(&self) -> &str {
        &self.name
    }

    fn fetch(&self) -> Result<RateTable, FxError> {
        // A runtime cannot be started inside another one: from async code, fetch on a helper thread.
        let bytes = if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(|| self.fetch_bytes()).join())
                .unwrap_or_else(|_| Err(self.unavailable("fetch thread failed")))
        } else {
            self.fetch_bytes()
        }?;
        ecb::parse(&bytes, &self.name)
    }
}

/// Splits `https://host[:port]/path` into host, port, authority (for the Host header) and path.
fn split_url(url: &str) -> Result<(String, u16, String, String), &'static str> {
    let rest = url
        .strip_prefix("https://")
        .ok_or("only https:// URLs are supported")?;
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], &rest[i..]),
        Some(_) => return Err("the URL needs a path after the host"),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or("/");
    if authority.contains('@') {
        return Err("user information in the URL is not supported");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err("unexpected text after ]"),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the URL has no host");
    }
    let port = match port {
        None => 443,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| "the port is not a number 0-65535")?,
    };
    Ok((host.to_owned(), port, authority.to_owned(), path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_https_urls() {
        let (h, p, a, path) =
            split_url("https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml").unwrap();
        assert_eq!(
            (h.as_str(), p, a.as_str()),
            ("www.ecb.europa.eu", 443, "www.ecb.europa.eu")
        );
        assert_eq!(path, "/stats/eurofxref/eurofxref-daily.xml");
        let (h, p, _, path) = split_url("https://127.0.0.1:8443").unwrap();
        assert_eq!((h.as_str(), p, path.as_str()), ("127.0.0.1", 8443, "/"));
        let (h, p, a, _) = split_url("https://[::1]:9000/x?y=1").unwrap();
        assert_eq!((h.as_str(), p, a.as_str()), ("::1", 9000, "[::1]:9000"));
        for bad in [
            "http://x/y",
            "https://",
            "https://:443/",
            "https://u:p@host/",
            "https://host:99999/",
            "https://[::1/",
            "https://host?x",
        ] {
            assert!(split_url(bad).is_err(), "{bad}");
        }
    }
}
