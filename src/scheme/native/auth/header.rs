//! The `signature` header: `algorithm=HMAC-SHA256,keyVersion=1,signature=<base64>` (spec/auth.md §2).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::AuthFault;

/// Signature algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA256 with a shared per-client key (ring::hmac).
    HmacSha256,
    /// Ed25519: the wallet holds the private key, we hold its public key.
    Ed25519,
}

impl Algorithm {
    /// The name in the header.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "HMAC-SHA256",
            Algorithm::Ed25519 => "Ed25519",
        }
    }
}

/// A parsed `signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The algorithm claimed.
    pub algorithm: Algorithm,
    /// Which of the client's keys.
    pub key_version: u32,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

fn malformed(reason: impl Into<String>) -> AuthFault {
    AuthFault::MalformedHeader {
        header: "signature",
        reason: reason.into(),
    }
}

impl SignatureHeader {
    /// Parses the header value: three `name=value` pairs separated by commas, in any order, each
    /// exactly once; spaces around pairs are ignored; the signature is padded standard base64.
    pub fn parse(value: &str) -> Result<SignatureHeader, AuthFault> {
        let (mut algorithm, mut key_version, mut signature) = (None, None, None);
        for pair in value.split(',') {
            let (name, val) = pair
                .trim()
                .split_once('=')
                .ok_or_else(|| malformed(format!("expected name=value, got {:?}", pair.trim())))?;
            let slot_taken = match name {
                "algorithm" => {
                    let a = match val {
                        "HMAC-SHA256" => Algorithm::HmacSha256,
                        "Ed25519" => Algorithm::Ed25519,
                        other => {
                            return Err(malformed(format!(
                                "unknown algorithm {other:?} (HMAC-SHA256 or Ed25519)"
                            )));
                        }
                    };
                    algorithm.replace(a).is_some()
                }
                "keyVersion" => {
                    let v = val
                        .parse::<u32>()
                        .map_err(|_| malformed(format!("keyVersion {val:?} is not a number")))?;
                    key_version.replace(v).is_some()
                }
                "signature" => {
                    let s = STANDARD
                        .decode(val)
                        .map_err(|e| malformed(format!("signature is not base64: {e}")))?;
                    signature.replace(s).is_some()
                }
                other => return Err(malformed(format!("unknown parameter {other:?}"))),
            };
            if slot_taken {
                return Err(malformed(format!("{name} given twice")));
            }
        }
        Ok(SignatureHeader {
            algorithm: algorithm.ok_or_else(|| malformed("algorithm missing"))?,
            key_version: key_version.ok_or_else(|| malformed("keyVersion missing"))?,
            signature: signature.ok_or_else(|| malformed("signature missing"))?,
        })
    }

    /// The header value.
    pub fn format(&self) -> String {
        format!(
            "algorithm={},keyVersion={},signature={}",
            self.algorithm.as_str(),
            self.key_version,
            STANDARD.encode(&self.signature)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_in_any_order_and_formats_back() {
        let h =
            SignatureHeader::parse("keyVersion=2, signature=AAEC, algorithm=HMAC-SHA256").unwrap();
        assert_eq!(h.key_version, 2);
        assert_eq!(h.signature, vec![0, 1, 2]);
        assert_eq!(
            h.format(),
            "algorithm=HMAC-SHA256,keyVersion=2,signature=AAEC"
        );
    }

    #[test]
    fn refuses_duplicates_unknowns_and_missing_parts() {
        for bad in [
            "algorithm=HMAC-SHA256,algorithm=HMAC-SHA256,keyVersion=1,signature=AA==",
            "algorithm=RSA,keyVersion=1,signature=AA==",
            "algorithm=HMAC-SHA256,keyVersion=x,signature=AA==",
            "algorithm=HMAC-SHA256,keyVersion=1",
            "algorithm=HMAC-SHA256,keyVersion=1,signature=!!",
            "algorithm=HMAC-SHA256,keyVersion=1,signature=AA==,extra=1",
            "",
        ] {
            assert!(SignatureHeader::parse(bad).is_err(), "{bad}");
        }
    }
}
