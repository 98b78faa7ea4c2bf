//! An ECB-format feed fetched over HTTPS through the outbound HTTP leaf (`crate::http_client`):
//! TLS 1.3 or 1.2 (rustls, ring), the server certificate verified against the webpki roots or a
//! configured CA bundle (PEM). One connection per fetch, no redirects, a body limit and a timeout.

use std::time::Duration;

use hyper::{Method, StatusCode};

use crate::fx::FxError;
use crate::fx::ecb::{self, MAX_FEED_BYTES};
use crate::fx::rate::RateTable;
use crate::http_client::{
    HttpClient, OutboundRequest, Roots, Target, TlsOptions, target, tls_config,
};

use super::RateSource;

/// The default time limit for one fetch: connect, handshake, request and body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An ECB-format feed at an `https://` URL.
#[derive(Debug, Clone)]
pub struct EcbHttps {
    name: String,
    target: Target,
    client: HttpClient,
}

impl EcbHttps {
    /// A source for `url`, trusting the public web PKI roots (webpki-roots).
    pub fn new(url: &str) -> Result<Self, FxError> {
        Self::with_roots(url, Roots::Web { extra_ca_pem: None })
    }

    /// A source for `url` trusting only the CA certificates in `pem` (a private CA, a test CA).
    pub fn with_ca_pem(url: &str, pem: &[u8]) -> Result<Self, FxError> {
        let ca_pem = std::str::from_utf8(pem).map_err(|_| FxError::SourceUnavailable {
            source_name: format!("ecb-https:{url}"),
            detail: "CA bundle: not PEM text (not UTF-8)".to_owned(),
        })?;
        Self::with_roots(url, Roots::Only { ca_pem })
    }

    fn with_roots(url: &str, roots: Roots<'_>) -> Result<Self, FxError> {
        let name = format!("ecb-https:{url}");
        let bad = |detail: String| FxError::SourceUnavailable {
            source_name: name.clone(),
            detail,
        };
        let target = target(url).map_err(&bad)?;
        if !target.tls {
            return Err(bad("only https:// URLs are supported".to_owned()));
        }
        let tls = tls_config(&TlsOptions {
            roots,
            tls13_only: false,
            client_cert: None,
        })
        .map_err(|e| bad(format!("TLS setup: {e}")))?;
        let client = HttpClient::new(Some(tls))
            .with_timeouts(DEFAULT_TIMEOUT, DEFAULT_TIMEOUT)
            .with_max_answer_bytes(MAX_FEED_BYTES);
        Ok(EcbHttps {
            target,
            client,
            name,
        })
    }

    /// Sets the time limit for one fetch (default 10 s): to connect, and again for the answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.client = self.client.with_timeouts(timeout, timeout);
        self
    }

    fn unavailable(&self, detail: impl std::fmt::Display) -> FxError {
        FxError::SourceUnavailable {
            source_name: self.name.clone(),
            detail: detail.to_string(),
        }
    }
}

impl RateSource for EcbHttps {
    fn name(&self) -> &str {
        &self.name
    }

    fn fetch(&self) -> Result<RateTable, FxError> {
        let answer = self
            .client
            .send_blocking(OutboundRequest {
                method: Method::GET,
                target: self.target.clone(),
                content_type: None,
                headers: vec![
                    (
                        "user-agent",
                        concat!("qrbridge/", env!("CARGO_PKG_VERSION")).to_owned(),
                    ),
                    ("accept", "application/xml, text/xml".to_owned()),
                ],
                body: Vec::new(),
            })
            .map_err(|e| self.unavailable(e))?;
        if answer.status != StatusCode::OK {
            return Err(self.unavailable(format!("HTTP status {}", answer.status)));
        }
        ecb::parse(&answer.body, &self.name)
    }
}
