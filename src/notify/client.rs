//! One notification POST, through the outbound HTTP leaf (`crate::http_client`): HTTP/1.1 over TLS
//! (webpki roots plus optional extra CAs) or, for tests and local wallets only, plain HTTP to a
//! loopback address. One connection per attempt; the whole attempt (name lookup, connect,
//! handshake, request, answer) is bounded by one timeout.

use std::path::Path;
use std::time::Duration;

use hyper::Method;

use crate::http_client::{
    HttpAnswer, HttpClient, OutboundRequest, Roots, TlsOptions, target, tls_config,
};
use crate::scheme::NoticeMessage;

/// The most of a wallet's answer that is read.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The wallet's answer.
pub type WalletAnswer = HttpAnswer;

/// Sends notifications.
#[derive(Clone, Debug)]
pub struct NotifyClient {
    http: HttpClient,
}

impl NotifyClient {
    /// A client trusting the webpki roots and, if given, the CA certificates in `extra_ca_pem`.
    pub fn new(extra_ca_pem: Option<&Path>) -> Result<Self, String> {
        let at = |e: &dyn std::fmt::Display| match extra_ca_pem {
            Some(path) => format!("{}: {e}", path.display()),
            None => format!("TLS: {e}"),
        };
        let pem = extra_ca_pem
            .map(std::fs::read_to_string)
            .transpose()
            .map_err(|e| at(&e))?;
        let tls = tls_config(&TlsOptions {
            roots: Roots::Web {
                extra_ca_pem: pem.as_deref(),
            },
            tls13_only: false,
            client_cert: None,
        })
        .map_err(|e| at(&e))?;
        Ok(NotifyClient {
            http: HttpClient::new(Some(tls)).with_max_answer_bytes(MAX_ANSWER_BYTES),
        })
    }

    /// POSTs `request` and reads the answer, all within `timeout`. `Err` says what failed, without
    /// the body (it may name the payer's amounts; the notice id is logged instead).
    pub async fn post(
        &self,
        request: OutboundRequest,
        timeout: Duration,
    ) -> Result<WalletAnswer, String> {
        let (host, port) = (request.target.host.clone(), request.target.port);
        let http = self.http.clone().with_timeouts(timeout, timeout);
        tokio::time::timeout(timeout, http.send(request))
            .await
            .map_err(|_| {
                format!(
                    "no answer within {} ms from {host}:{port}",
                    timeout.as_millis()
                )
            })?
            .map_err(|e| e.to_string())
    }
}

/// The plain request of a scheme's notification: its URL checked (`https://`, or `http://` to
/// loopback only), a POST of its content type, headers and body.
pub fn outbound(message: NoticeMessage) -> Result<OutboundRequest, String> {
    Ok(OutboundRequest {
        method: Method::POST,
        target: target(&message.url)?,
        content_type: Some(message.content_type),
        headers: message.headers,
        body: message.body,
    })
}
