//! A private certificate authority made at startup (rcgen, ECDSA P-256 via ring): one CA, a server
//! certificate for the acquirer side and a client certificate for our side of the mutual TLS link.
//! Used by the simulator, the embedded demo and the tests when no certificates are configured.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// PEM texts of a generated CA and the two leaf certificates it signed.
#[derive(Clone)]
pub struct Pki {
    /// The CA certificate (trust anchor for both sides).
    pub ca_cert: String,
    /// Server certificate (SAN: the names given) and its key.
    pub server_cert: String,
    /// Server private key (PKCS#8).
    pub server_key: String,
    /// Client certificate and key.
    pub client_cert: String,
    /// Client private key (PKCS#8).
    pub client_key: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pki { keys: <redacted> }")
    }
}

/// Certificate generation failed.
#[derive(Debug, thiserror::Error)]
#[error("certificate generation: {0}")]
pub struct PkiError(#[from] rcgen::Error);

impl Pki {
    /// A fresh CA, a server certificate for `server_names` (DNS names or IP addresses) and a client
    /// certificate named `client_name`.
    pub fn generate(server_names: &[&str], client_name: &str) -> Result<Pki, PkiError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "qrbridge private acquirer-link CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let names: Vec<String> = server_names.iter().map(|s| (*s).to_owned()).collect();
        let mut server = CertificateParams::new(names)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "acquirer");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate()?;
        let server_cert = server.signed_by(&server_key, &ca)?;

        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client
            .distinguished_name
            .push(DnType::CommonName, client_name);
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate()?;
        let client_cert = client.signed_by(&client_key, &ca)?;

        Ok(Pki {
            ca_cert: ca.pem(),
            server_cert: server_cert.pem(),
            server_key: server_key.serialize_pem(),
            client_cert: client_cert.pem(),
            client_key: client_key.serialize_pem(),
        })
    }
}
