//! The wallet's side of the scheme, for the wallet CLI, integrators' tests and ours: sign a request,
//! verify a response, make an Ed25519 key.

use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use ring::{hmac, rand};

use super::canonical::{Direction, canonical_string};
use super::header::{Algorithm, SignatureHeader};
use super::{AuthFault, Secret};

/// A fresh Ed25519 key pair as PKCS#8 (for the demo and tests).
pub fn generate_ed25519_pkcs8() -> Option<Secret> {
    Ed25519KeyPair::generate_pkcs8(&rand::SystemRandom::new())
        .ok()
        .map(|d| Secret::new(d.as_ref().to_vec()))
}

/// Signs a request the way a wallet must (for the wallet CLI and tests): the `signature` header
/// value for an HMAC-SHA256 key; send it with `client-id` and `request-time` set to the same values.
pub fn sign_request_hmac(
    key: &Secret,
    key_version: u32,
    method: &str,
    path: &str,
    client_id: &str,
    request_time: &str,
    body: &[u8],
) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key.expose());
    let message = canonical_string(
        Direction::Request,
        method,
        path,
        client_id,
        request_time,
        body,
    );
    SignatureHeader {
        algorithm: Algorithm::HmacSha256,
        key_version,
        signature: hmac::sign(&k, message.as_bytes()).as_ref().to_vec(),
    }
    .format()
}

/// Verifies a response signature with an HMAC key the way a wallet must (wallet CLI and tests).
pub fn verify_response_hmac(
    key: &Secret,
    method: &str,
    path: &str,
    client_id: &str,
    response_time: &str,
    signature: &str,
    body: &[u8],
) -> Result<(), AuthFault> {
    verify_hmac(
        key,
        Direction::Response,
        method,
        path,
        client_id,
        response_time,
        signature,
        body,
    )
}

/// Verifies a notification the gateway POSTed to the wallet's notify URL (spec/auth.md §9) with
/// the wallet's HMAC key: `path` is the notify URL's path (and query) as the wallet received it,
/// `client_id`, `response_time` and `signature` the headers of that name.
pub fn verify_notification_hmac(
    key: &Secret,
    path: &str,
    client_id: &str,
    response_time: &str,
    signature: &str,
    body: &[u8],
) -> Result<(), AuthFault> {
    verify_hmac(
        key,
        Direction::Notify,
        "POST",
        path,
        client_id,
        response_time,
        signature,
        body,
    )
}

/// Verifies a notification to an Ed25519 client with the gateway's Ed25519 public key.
pub fn verify_notification_ed25519(
    gateway_public_key: &[u8],
    path: &str,
    client_id: &str,
    response_time: &str,
    signature: &str,
    body: &[u8],
) -> Result<(), AuthFault> {
    verify_ed25519(
        gateway_public_key,
        Direction::Notify,
        "POST",
        path,
        client_id,
        response_time,
        signature,
        body,
    )
}

/// Signs a request with the wallet's Ed25519 key (spec/auth.md §3): the `signature` header value.
pub fn sign_request_ed25519(
    key: &Ed25519KeyPair,
    key_version: u32,
    method: &str,
    path: &str,
    client_id: &str,
    request_time: &str,
    body: &[u8],
) -> String {
    let message = canonical_string(
        Direction::Request,
        method,
        path,
        client_id,
        request_time,
        body,
    );
    SignatureHeader {
        algorithm: Algorithm::Ed25519,
        key_version,
        signature: key.sign(message.as_bytes()).as_ref().to_vec(),
    }
    .format()
}

/// Verifies a response to an Ed25519-signed request with the gateway's Ed25519 public key
/// (32 bytes, given to the wallet by the operator).
pub fn verify_response_ed25519(
    gateway_public_key: &[u8],
    method: &str,
    path: &str,
    client_id: &str,
    response_time: &str,
    signature: &str,
    body: &[u8],
) -> Result<(), AuthFault> {
    verify_ed25519(
        gateway_public_key,
        Direction::Response,
        method,
        path,
        client_id,
        response_time,
        signature,
        body,
    )
}

/// The one HMAC-SHA256 check behind the wallet-side verifiers: header, algorithm, canonical string
/// of `direction`, constant-time comparison.
#[allow(clippy::too_many_arguments)]
fn verify_hmac(
    key: &Secret,
    direction: Direction,
    method: &str,
    path: &str,
    client_id: &str,
    time: &str,
    signature: &str,
    body: &[u8],
) -> Result<(), AuthFault> {
    let header = SignatureHeader::parse(signature)?;
    if header.algorithm != Algorithm::HmacSha256 {
        return Err(AuthFault::Mismatch);
    }
    let k = hmac::Key::new(hmac::HMAC_SHA256, key.expose());
    let message = canonical_string(direction, method, path, client_id, time, body);
    hmac::verify(&k, message.as_bytes(), &header.signature).map_err(|_| AuthFault::Mismatch)
}

/// The one Ed25519 check behind the wallet-side verifiers, with the gateway's public key.
#[allow(clippy::too_many_arguments)]
fn verify_ed25519(
    gateway_public_key: &[u8],
    direction: Direction,
    method: &str,
    path: &str,
    client_id: &str,
    time: &str,
    signature: &str,
    body: &[u8],
) -> Result<(), AuthFault> {
    let header = SignatureHeader::parse(signature)?;
    if header.algorithm != Algorithm::Ed25519 {
        return Err(AuthFault::Mismatch);
    }
    let message = canonical_string(direction, method, path, client_id, time, body);
    UnparsedPublicKey::new(&ED25519, gateway_public_key)
        .verify(message.as_bytes(), &header.signature)
        .map_err(|_| AuthFault::Mismatch)
}
