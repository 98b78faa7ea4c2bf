//! TLS leaf: rustls configurations for the acquirer link (client, with a client certificate) and
//! the simulator (server, requiring a client certificate from the same private CA), the PEM readers
//! the wallet listener shares, the private CA maker ([`pki`]) and [`Secret`] key material with a
//! redacted `Debug`. TLS 1.3 only, ring provider only, no public roots. PEM parsing via
//! `rustls-pki-types`. Imports no other room.

pub mod pki;
mod secret;

pub use secret::Secret;

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS configuration could not be built from the given PEM texts (ours: configuration).
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// PEM text without a usable certificate or key.
    #[error("{what}: {reason}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// rustls refused the material.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built.
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn certs(
    what: &'static str,
    pem: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::Pem {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::Pem {
            what,
            reason: "no CERTIFICATE block".to_owned(),
        });
    }
    Ok(certs)
}

pub(crate) fn key(what: &'static str, pem: &str) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| TlsConfigError::Pem {
        what,
        reason: e.to_string(),
    })
}

pub(crate) fn roots(ca_pem: &str) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    for c in certs("CA certificate", ca_pem)? {
        roots.add(c)?;
    }
    Ok(roots)
}

/// Client side: trusts only `ca_pem`, presents `cert_pem` + `key_pem`.
pub fn client_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(ca_pem)?)
        .with_client_auth_cert(
            certs("client certificate", cert_pem)?,
            key("client key", key_pem)?,
        )?;
    Ok(Arc::new(config))
}

/// Server side: presents `cert_pem` + `key_pem`, requires a client certificate issued by `ca_pem`.
pub fn server_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca_pem)?), provider())
            .build()?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            certs("server certificate", cert_pem)?,
            key("server key", key_pem)?,
        )?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::pki::Pki;

    #[test]
    fn generated_material_builds_both_configurations() {
        let pki = Pki::generate(&["localhost", "127.0.0.1"], "qrbridge").unwrap();
        client_config(&pki.ca_cert, &pki.client_cert, &pki.client_key).unwrap();
        server_config(&pki.ca_cert, &pki.server_cert, &pki.server_key).unwrap();
    }

    #[test]
    fn pem_without_a_certificate_is_refused() {
        let pki = Pki::generate(&["localhost"], "qrbridge").unwrap();
        let err = client_config("not pem", &pki.client_cert, &pki.client_key).unwrap_err();
        assert!(matches!(
            err,
            TlsConfigError::Pem {
                what: "CA certificate",
                ..
            }
        ));
    }
}
