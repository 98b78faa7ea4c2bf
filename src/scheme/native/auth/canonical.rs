//! The canonical string a signature covers (spec/auth.md §3). Six lines joined by `\n`, no trailing
//! newline:
//!
//! ```text
//! QRB1-REQUEST                      (or QRB1-RESPONSE, QRB1-NOTIFY)
//! POST                              the request method, upper case
//! /v1/payments                      the request path as sent (with ?query if any)
//! wallet-my-01                      the client-id header
//! 2026-11-21T10:40:00Z              request-time (or response-time) header, verbatim
//! 9f86d081884c7d65...               lower-case hex SHA-256 of the body bytes as sent
//! ```

use ring::digest::{SHA256, digest};

/// Which message is signed: a signature over a request can never pass as one over a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Wallet → gateway.
    Request,
    /// Gateway → wallet.
    Response,
    /// Gateway → wallet, unasked: a notification POSTed to the wallet's notify URL.
    Notify,
}

impl Direction {
    fn tag(self) -> &'static str {
        match self {
            Direction::Request => "QRB1-REQUEST",
            Direction::Response => "QRB1-RESPONSE",
            Direction::Notify => "QRB1-NOTIFY",
        }
    }
}

/// Lower-case hex SHA-256 of `body`.
pub fn body_digest(body: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(digest(&SHA256, body).as_ref())
}

/// The string to sign.
pub fn canonical_string(
    direction: Direction,
    method: &str,
    path: &str,
    client_id: &str,
    time: &str,
    body: &[u8],
) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        direction.tag(),
        method.to_ascii_uppercase(),
        path,
        client_id,
        time,
        body_digest(body)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_the_empty_body_is_the_known_sha256() {
        assert_eq!(
            body_digest(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn canonical_string_has_six_lines_and_no_trailing_newline() {
        let s = canonical_string(Direction::Request, "post", "/v1/quotes", "w", "t", b"{}");
        assert_eq!(s.lines().count(), 6);
        assert!(s.starts_with("QRB1-REQUEST\nPOST\n/v1/quotes\nw\nt\n"));
        assert!(!s.ends_with('\n'));
    }
}
