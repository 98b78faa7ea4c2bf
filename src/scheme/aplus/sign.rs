//! RSA256 signatures of the aplus scheme: the string to sign, the `signature` header (with its
//! URL-encoded base64), PEM keys (PKCS#8 / PKCS#1 private, SPKI / PKCS#1 public), ISO 8601 times
//! with an offset. One crypto stack: `ring` (RSASSA-PKCS1-v1_5 with SHA-256).
//!
//! ```text
//! string to sign:  "<METHOD> <path>\n<client-id>.<request-time>.<body>"
//! header:          signature: algorithm=RSA256,keyVersion=1,signature=<percent-encoded base64>
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey,
};

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};

use crate::scheme::native::auth::AuthFault;

/// The only algorithm name the header may carry.
pub const ALGORITHM: &str = "RSA256";

/// `"<METHOD> <path>\n<client-id>.<time>.<body>"` as bytes (the body is taken as sent).
pub fn string_to_sign(
    method: &str,
    path: &str,
    client_id: &str,
    time: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut s = Vec::with_capacity(
        method.len() + path.len() + client_id.len() + time.len() + body.len() + 4,
    );
    s.extend_from_slice(method.as_bytes());
    s.push(b' ');
    s.extend_from_slice(path.as_bytes());
    s.push(b'\n');
    s.extend_from_slice(client_id.as_bytes());
    s.push(b'.');
    s.extend_from_slice(time.as_bytes());
    s.push(b'.');
    s.extend_from_slice(body);
    s
}

fn malformed(reason: impl Into<String>) -> AuthFault {
    AuthFault::MalformedHeader {
        header: "signature",
        reason: reason.into(),
    }
}

pub use crate::scheme::percent::{decode_unreserved as percent_decode, encode as percent_encode};

/// A parsed `signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AplusSignatureHeader {
    /// Which of the client's keys (or ours, on responses and notifications).
    pub key_version: u32,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

impl AplusSignatureHeader {
    /// Parses `algorithm=RSA256,keyVersion=N,signature=<url-encoded base64>`: the three pairs in any
    /// order, each once, spaces around pairs ignored; the signature percent-decoded strictly, then
    /// padded standard base64.
    pub fn parse(value: &str) -> Result<Self, AuthFault> {
        let (mut algorithm, mut key_version, mut signature) = (false, None, None);
        for pair in value.split(',') {
            let (name, val) = pair
                .trim()
                .split_once('=')
                .ok_or_else(|| malformed(format!("expected name=value, got {:?}", pair.trim())))?;
            let taken = match name {
                "algorithm" => {
                    if val != ALGORITHM {
                        return Err(malformed(format!(
                            "algorithm {val:?} is not supported (RSA256)"
                        )));
                    }
                    std::mem::replace(&mut algorithm, true)
                }
                "keyVersion" => {
                    if val.is_empty() || val.len() > 9 || !val.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(malformed(format!("keyVersion {val:?} is not a number")));
                    }
                    let v = val
                        .parse::<u32>()
                        .map_err(|_| malformed(format!("keyVersion {val:?} is not a number")))?;
                    key_version.replace(v).is_some()
                }
                "signature" => {
                    let text =
                        percent_decode(val).map_err(|e| malformed(format!("signature: {e}")))?;
                    let bytes = STANDARD.decode(&text).map_err(|e| {
                        malformed(format!("signature is not base64 after URL-decoding: {e}"))
                    })?;
                    if bytes.is_empty() {
                        return Err(malformed("signature is empty"));
                    }
                    signature.replace(bytes).is_some()
                }
                other => return Err(malformed(format!("unknown parameter {other:?}"))),
            };
            if taken {
                return Err(malformed(format!("{name} given twice")));
            }
        }
        if !algorithm {
            return Err(malformed("algorithm missing"));
        }
        Ok(AplusSignatureHeader {
            key_version: key_version.ok_or_else(|| malformed("keyVersion missing"))?,
            signature: signature.ok_or_else(|| malformed("signature missing"))?,
        })
    }

    /// The header value.
    pub fn format(&self) -> String {
        format!(
            "algorithm={ALGORITHM},keyVersion={},signature={}",
            self.key_version,
            percent_encode(&STANDARD.encode(&self.signature))
        )
    }
}

/// The DER of the first PEM block of type `T` (`rustls-pki-types`); `Ok(None)` when there is none.
fn pem<T: PemObject>(text: &str) -> Result<Option<T>, String> {
    match T::from_pem_slice(text.as_bytes()) {
        Ok(item) => Ok(Some(item)),
        Err(pem::Error::NoItemsFound) => Ok(None),
        Err(e) => Err(format!("PEM: {e}")),
    }
}

/// The PKCS#1 `RSAPublicKey` of a `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY`
/// (PKCS#1) PEM block.
fn public_pkcs1(text: &str) -> Result<Vec<u8>, String> {
    if let Some(spki) = pem::<SubjectPublicKeyInfoDer<'static>>(text)? {
        return spki_to_pkcs1(spki.as_ref());
    }
    // rustls-pki-types has no section kind for `RSA PUBLIC KEY`: read the block under the
    // `PUBLIC KEY` label; the DER check of `from_pem` tells a PKCS#1 key from anything else.
    let relabelled = text
        .replace(
            "-----BEGIN RSA PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----",
        )
        .replace("-----END RSA PUBLIC KEY-----", "-----END PUBLIC KEY-----");
    match pem::<SubjectPublicKeyInfoDer<'static>>(&relabelled)? {
        Some(pkcs1) if relabelled != text => Ok(pkcs1.as_ref().to_vec()),
        _ => Err("no PEM block \"PUBLIC KEY\" or \"RSA PUBLIC KEY\"".to_owned()),
    }
}

/// One DER element at the start of `input`: (tag, contents, rest). Definite lengths only.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (digits, after) = rest.split_at_checked(n)?;
        rest = after;
        digits
            .iter()
            .fold(0usize, |acc, &d| (acc << 8) | usize::from(d))
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// The `rsaEncryption` OID 1.2.840.113549.1.1.1, DER contents.
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The PKCS#1 `RSAPublicKey` inside an X.509 `SubjectPublicKeyInfo` (RSA only).
pub fn spki_to_pkcs1(spki: &[u8]) -> Result<Vec<u8>, String> {
    let (tag, seq, rest) = der(spki).ok_or("not DER")?;
    if tag != 0x30 || !rest.is_empty() {
        return Err("not a SubjectPublicKeyInfo SEQUENCE".to_owned());
    }
    let (tag, alg, rest) = der(seq).ok_or("algorithm identifier unreadable")?;
    if tag != 0x30 {
        return Err("algorithm identifier is not a SEQUENCE".to_owned());
    }
    let (tag, oid, _) = der(alg).ok_or("algorithm OID unreadable")?;
    if tag != 0x06 || oid != RSA_ENCRYPTION {
        return Err("not an RSA key (algorithm is not rsaEncryption)".to_owned());
    }
    let (tag, bits, rest) = der(rest).ok_or("subjectPublicKey unreadable")?;
    if tag != 0x03 || !rest.is_empty() {
        return Err("subjectPublicKey is not a BIT STRING".to_owned());
    }
    match bits.split_first() {
        Some((0, key)) => Ok(key.to_vec()),
        _ => Err("subjectPublicKey has unused bits".to_owned()),
    }
}

/// An RSA public key that verifies RSA256 signatures (2048 to 8192 bits).
#[derive(Clone)]
pub struct AplusPublicKey(UnparsedPublicKey<Vec<u8>>);

impl std::fmt::Debug for AplusPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AplusPublicKey(RSA)")
    }
}

impl AplusPublicKey {
    /// From PEM: `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let pkcs1 = public_pkcs1(text)?;
        // A PKCS#1 RSAPublicKey is a SEQUENCE of two INTEGERs.
        match der(&pkcs1) {
            Some((0x30, _, [])) => {}
            _ => return Err("the RSA public key is not a DER SEQUENCE".to_owned()),
        }
        Ok(AplusPublicKey(UnparsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            pkcs1,
        )))
    }

    /// True when `signature` is this key's RSA256 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify(message, signature).is_ok()
    }
}

/// Our RSA private key (responses and notifications).
pub struct AplusSigner {
    pair: RsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for AplusSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AplusSigner(<redacted>)")
    }
}

impl AplusSigner {
    /// From PEM: `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1), at least 2048 bits.
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let pair = if let Some(der) = pem::<PrivatePkcs8KeyDer<'static>>(text)? {
            RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
                .map_err(|e| format!("not a usable RSA PKCS#8 key: {e}"))?
        } else if let Some(der) = pem::<PrivatePkcs1KeyDer<'static>>(text)? {
            RsaKeyPair::from_der(der.secret_pkcs1_der())
                .map_err(|e| format!("not a usable RSA PKCS#1 key: {e}"))?
        } else {
            return Err("no PEM block \"PRIVATE KEY\" or \"RSA PRIVATE KEY\"".to_owned());
        };
        if pair.public().modulus_len() < 256 {
            return Err("the RSA key is shorter than 2048 bits".to_owned());
        }
        Ok(AplusSigner {
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// The RSA256 signature of `message` (`None` only if ring fails, which it does not for a
    /// key it accepted).
    pub fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
            .ok()?;
        Some(sig)
    }

    /// The three headers of a message signed now with this key as `key_version`: `client-id`,
    /// `time_header` (`request-time` on a request, `response-time` on an answer) and `signature`,
    /// over `"<method> <path>\n<client-id>.<time>.<body>"`. `None` only if signing fails.
    pub fn signed_headers(
        &self,
        key_version: u32,
        method: &str,
        path: &str,
        client_id: &str,
        time_header: &'static str,
        body: &[u8],
    ) -> Option<Vec<(&'static str, String)>> {
        let time = format_time(std::time::SystemTime::now());
        let signature = self.sign(&string_to_sign(method, path, client_id, &time, body))?;
        Some(vec![
            (super::headers::CLIENT_ID, client_id.to_owned()),
            (time_header, time),
            (
                super::headers::SIGNATURE,
                AplusSignatureHeader {
                    key_version,
                    signature,
                }
                .format(),
            ),
        ])
    }
}

/// Times of this scheme: read as ISO 8601 with seconds, an optional fraction (1–9 digits) and a
/// zone (`Z` or `±HH:MM`), written as UTC with milliseconds (the time leaf).
pub use crate::time::{format_rfc3339_millis as format_time, parse_iso_offset as parse_time};

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const WALLET_PRIVATE: &str =
        include_str!("../../../testdata/schemes/aplus/wallet-my-private.pem");
    const WALLET_PUBLIC: &str =
        include_str!("../../../testdata/schemes/aplus/wallet-my-public.pem");
    const WALLET_PUBLIC_PKCS1: &str =
        include_str!("../../../testdata/schemes/aplus/wallet-my-public-pkcs1.pem");
    const GATEWAY_PUBLIC: &str = include_str!("../../../testdata/schemes/aplus/gateway-public.pem");
    /// Made by `openssl dgst -sha256 -sign wallet-my-private.pem example-to-sign.txt | base64 -w0`.
    const OPENSSL_SIGNATURE: &str =
        include_str!("../../../testdata/schemes/aplus/example-signature.b64");
    /// The same, URL-encoded by Python's `urllib.parse.quote(s, safe='')`.
    const OPENSSL_URLENCODED: &str =
        include_str!("../../../testdata/schemes/aplus/example-signature.urlencoded");
    const EXAMPLE_TO_SIGN: &[u8] =
        include_bytes!("../../../testdata/schemes/aplus/example-to-sign.txt");
    const EXAMPLE_BODY: &[u8] = include_bytes!("../../../testdata/schemes/aplus/example-body.json");

    #[test]
    fn string_to_sign_matches_the_worked_example_file() {
        let s = string_to_sign(
            "POST",
            "/schemes/aplus/v1/payments/pay",
            "wallet-my",
            "2026-11-21T20:40:00+08:00",
            EXAMPLE_BODY,
        );
        assert_eq!(s, EXAMPLE_TO_SIGN);
    }

    #[test]
    fn verifies_a_signature_made_by_openssl_with_both_public_key_forms() {
        let sig = STANDARD.decode(OPENSSL_SIGNATURE.trim()).unwrap();
        for pem in [WALLET_PUBLIC, WALLET_PUBLIC_PKCS1] {
            let key = AplusPublicKey::from_pem(pem).unwrap();
            assert!(key.verify(EXAMPLE_TO_SIGN, &sig));
            let mut tampered = EXAMPLE_TO_SIGN.to_vec();
            tampered[0] = b'G';
            assert!(!key.verify(&tampered, &sig));
        }
        let other = AplusPublicKey::from_pem(GATEWAY_PUBLIC).unwrap();
        assert!(
            !other.verify(EXAMPLE_TO_SIGN, &sig),
            "another key must not verify"
        );
    }

    #[test]
    fn our_signature_equals_openssls_byte_for_byte() {
        // RSASSA-PKCS1-v1_5 is deterministic: same key and message → same signature.
        let signer = AplusSigner::from_pem(WALLET_PRIVATE).unwrap();
        let ours = signer.sign(EXAMPLE_TO_SIGN).unwrap();
        assert_eq!(STANDARD.encode(&ours), OPENSSL_SIGNATURE.trim());
        let header = AplusSignatureHeader {
            key_version: 1,
            signature: ours,
        }
        .format();
        assert_eq!(
            header,
            format!(
                "algorithm=RSA256,keyVersion=1,signature={}",
                OPENSSL_URLENCODED.trim()
            )
        );
        let back = AplusSignatureHeader::parse(&header).unwrap();
        assert_eq!(STANDARD.encode(back.signature), OPENSSL_SIGNATURE.trim());
    }

    #[test]
    fn header_errors_name_what_is_wrong() {
        let sig = OPENSSL_URLENCODED.trim();
        let cases = [
            (
                "algorithm=RSA256,keyVersion=1".to_owned(),
                "signature missing",
            ),
            (format!("keyVersion=1,signature={sig}"), "algorithm missing"),
            (
                format!("algorithm=RSA256,signature={sig}"),
                "keyVersion missing",
            ),
            (
                format!("algorithm=RSA,keyVersion=1,signature={sig}"),
                "not supported",
            ),
            (
                format!("algorithm=RSA256,keyVersion=x,signature={sig}"),
                "keyVersion \"x\"",
            ),
            (
                format!("algorithm=RSA256,keyVersion=+1,signature={sig}"),
                "keyVersion \"+1\"",
            ),
            (
                format!("algorithm=RSA256,keyVersion=1,keyVersion=1,signature={sig}"),
                "keyVersion given twice",
            ),
            (
                format!("algorithm=RSA256,keyVersion=1,signature={sig},x=1"),
                "unknown parameter \"x\"",
            ),
            (
                "algorithm=RSA256,keyVersion=1,signature=ab+c".to_owned(),
                "'+' at offset 2",
            ),
            (
                "algorithm=RSA256,keyVersion=1,signature=ab%2".to_owned(),
                "broken %-escape at offset 2",
            ),
            (
                "algorithm=RSA256,keyVersion=1,signature=abc".to_owned(),
                "not base64",
            ),
            (
                "algorithm=RSA256,keyVersion=1,signature=".to_owned(),
                "signature is empty",
            ),
            ("garbage".to_owned(), "expected name=value"),
        ];
        for (value, want) in cases {
            match AplusSignatureHeader::parse(&value) {
                Err(AuthFault::MalformedHeader { header, reason }) => {
                    assert_eq!(header, "signature");
                    assert!(reason.contains(want), "{value}: {reason}");
                }
                other => panic!("{value}: {other:?}"),
            }
        }
    }

    #[test]
    fn percent_coding_round_trips_and_is_strict() {
        assert_eq!(percent_encode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
        assert_eq!(percent_decode("a%2bb%2Fc%3D%3d").unwrap(), b"a+b/c==");
        assert!(percent_decode("a b").is_err());
        assert!(percent_decode("%zz").is_err());
        assert!(percent_decode("%").is_err());
    }

    #[test]
    fn times_with_offsets_mean_the_same_instant() {
        let a = parse_time("2026-11-21T20:40:00+08:00").unwrap();
        let b = parse_time("2026-11-21T12:40:00Z").unwrap();
        let c = parse_time("2026-11-21T07:10:00-05:30").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        // 2026-11-21T12:40:00Z is 1795264800 s after the epoch (`date -u -d 2026-11-21T12:40:00Z +%s`).
        assert_eq!(
            b.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            1_795_264_800
        );
        let d = parse_time("2026-11-21T12:40:00.250Z").unwrap();
        assert_eq!(d.duration_since(b).unwrap(), Duration::from_millis(250));
        for bad in [
            "2026-11-21T12:40:00",
            "2026-11-21 12:40:00Z",
            "2026-11-21T12:40:00+0800",
            "2026-11-21T12:40:00+8:00",
            "2026-11-21T12:40:00.Z",
            "2026-11-21T12:40:00+15:00",
            "2026-11-21T12:40:00+08:60",
            "2026-13-21T12:40:00Z",
            "2026-11-21T12:40:00Zjunk",
            "",
        ] {
            assert!(parse_time(bad).is_none(), "{bad}");
        }
        assert_eq!(parse_time(&format_time(b)), Some(b));
    }

    #[test]
    fn refuses_non_rsa_and_garbage_keys() {
        assert!(AplusPublicKey::from_pem("nothing").is_err());
        assert!(AplusSigner::from_pem(WALLET_PUBLIC).is_err());
        let ed = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        let e = AplusPublicKey::from_pem(ed).unwrap_err();
        assert!(e.contains("not an RSA key"), "{e}");
    }
}
