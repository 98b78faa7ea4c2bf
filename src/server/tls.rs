//! The listener's rustls configuration: TLS 1.3 only, ring only, ALPN `h2` and `http/1.1`, our
//! ECDSA certificate (configured, or generated with the acquirer room's private CA maker
//! [`Pki`]), and optional mutual TLS whose client certificate maps to a client id by fingerprint.
//! PEM parsing and the provider are the acquirer room's ([`crate::tls`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::CertificateDer;

use super::config::{Identity, MutualTls, TlsSettings};
use crate::tls::Secret;
use crate::tls::pki::{Pki, PkiError};
use crate::tls::{TlsConfigError, certs, key, provider, roots};

/// The TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ServerTlsError {
    /// Bad PEM or refused by rustls.
    #[error(transparent)]
    Config(#[from] TlsConfigError),
    /// Generating the default certificate failed.
    #[error(transparent)]
    Generate(#[from] PkiError),
    /// The configured key is not an ECDSA key.
    #[error("server key must be ECDSA (P-256 or P-384), got {0}")]
    NotEcdsa(String),
    /// A client-certificate fingerprint in the mapping is not 64 lower-case hex digits.
    #[error("mutual TLS: fingerprint {0:?} is not a lower-case hex SHA-256 (64 digits)")]
    Fingerprint(String),
}

/// The built configuration and what it was built from.
pub(crate) struct ServerTls {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) generated: Option<Pki>,
    pub(crate) clients: Option<BTreeMap<String, String>>,
}

/// Who the client certificate says the peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerIdentity {
    /// No client certificates in use (plaintext, or TLS without mTLS).
    None,
    /// A mapped certificate.
    Client(String),
    /// A certificate from the CA that the mapping does not list.
    Unmapped(String),
}

/// Lower-case hex SHA-256 of a certificate's DER: the key of the client mapping.
pub fn certificate_fingerprint(der: &[u8]) -> String {
    crate::scheme::native::auth::body_digest(der)
}

pub(crate) fn build(settings: &TlsSettings) -> Result<ServerTls, ServerTlsError> {
    let (identity, generated) = match &settings.identity {
        Some(id) => (id.clone(), None),
        None => {
            let pki = Pki::generate(&["localhost", "127.0.0.1"], "qrbridge-wallet")?;
            let id = Identity {
                cert_pem: pki.server_cert.clone(),
                key_pem: Secret::new(pki.server_key.clone().into_bytes()),
            };
            (id, Some(pki))
        }
    };
    let key_text = String::from_utf8_lossy(identity.key_pem.expose()).into_owned();
    let chain = certs("server certificate", &identity.cert_pem)?;
    let private = key("server key", &key_text)?;
    let algorithm = provider()
        .key_provider
        .load_private_key(private.clone_key())
        .map_err(TlsConfigError::from)?
        .algorithm();
    if algorithm != rustls::SignatureAlgorithm::ECDSA {
        return Err(ServerTlsError::NotEcdsa(format!("{algorithm:?}")));
    }
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsConfigError::from)?;
    let (mut config, clients) = match &settings.mutual {
        None => (
            builder
                .with_no_client_auth()
                .with_single_cert(chain, private)
                .map_err(TlsConfigError::from)?,
            None,
        ),
        Some(MutualTls {
            client_ca_pem,
            clients,
        }) => {
            for fp in clients.keys() {
                if fp.len() != 64 || !fp.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(ServerTlsError::Fingerprint(fp.clone()));
                }
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(client_ca_pem)?),
                provider(),
            )
            .build()
            .map_err(TlsConfigError::from)?;
            (
                builder
                    .with_client_cert_verifier(verifier)
                    .with_single_cert(chain, private)
                    .map_err(TlsConfigError::from)?,
                Some(clients.clone()),
            )
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        generated,
        clients,
    })
}

pub(crate) fn peer_identity(
    clients: Option<&BTreeMap<String, String>>,
    peer: Option<&[CertificateDer<'_>]>,
) -> PeerIdentity {
    let Some(clients) = clients else {
        return PeerIdentity::None;
    };
    match peer.and_then(|chain| chain.first()) {
        None => PeerIdentity::Unmapped("no certificate".to_owned()),
        Some(leaf) => {
            let fp = certificate_fingerprint(leaf.as_ref());
            match clients.get(&fp) {
                Some(id) => PeerIdentity::Client(id.clone()),
                None => PeerIdentity::Unmapped(fp),
            }
        }
    }
}
