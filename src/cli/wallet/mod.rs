//! `qrbridge wallet ...`: the reference wallet-side client of Wallet API v1. It builds each request
//! from the server's own wire types, signs it exactly as a wallet backend must (`spec/auth.md`,
//! `qrbridge::scheme::native::auth::sign_request_hmac` or `sign_request_ed25519`), verifies the response
//! signature, prints the JSON response on stdout and a one-line summary on stderr. The HTTP side
//! (plaintext loopback or TLS 1.3, signing, verification) is in [`client`].
//!
//! Exit codes (the contract scripts rely on):
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | `resultStatus` S (and, with a key, the response signature verified) |
//! | 1 | `resultStatus` F: failed for certain, nothing was done (or it was undone) |
//! | 2 | usage error, unreadable file, or the gateway could not be reached: nothing was sent |
//! | 3 | `resultStatus` U, or the request was sent but no usable answer came back: **unknown** |
//! | 4 | an answer came back but its signature is missing, wrong or stale: **unknown**, not trusted |
//!
//! 3 and 4 are never "failed": resolve them with `inquiry` (or resend with the same
//! `--request-id`), never by paying again with a new id.
//!
//! Amounts on the command line are decimal major units of `--currency` (`12.50` SGD), converted
//! exactly to integer minor units on the wire (`"1250"`); more decimals than the currency has is a
//! usage error.

mod client;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use qrbridge::money::{Amount, Currency};
use qrbridge::payment::{
    CancelRequest, CodeValue, CustomerId, DecodeRequest, Money, PaymentRequest, QuoteRequest,
    RefundRequest, RequestId, ResultStatus, Text,
};
use qrbridge::scheme::native::Route;
use qrbridge::scheme::native::auth::Secret;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::Ed25519KeyPair;
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;

use client::{Client, Failure, Signer, Target, Trust};

/// Environment variable read for the HMAC key (base64) when neither `--key-base64` nor
/// `--key-file` is given.
const KEY_ENV: &str = "QRBRIDGE_WALLET_KEY";

/// `qrbridge wallet`.
#[derive(clap::Args)]
#[command(
    args_override_self = true,
    about = "Call a gateway's Wallet API v1 as a wallet backend does: signed requests, verified \
             responses",
    after_help = "Exit codes: 0 S; 1 F (failed for certain); 2 usage error or gateway unreachable \
                  (nothing sent); 3 U or no answer (unknown: inquire); 4 response signature \
                  missing/invalid (unknown: inquire). Amounts are decimal major units of \
                  --currency (12.50 = SGD 12.50). See docs/integration-wallets.md."
)]
pub struct Args {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: WalletCommand,
}

#[derive(clap::Args)]
struct Connection {
    /// Gateway base URL: `http://` (loopback only) or `https://`.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// CA certificate(s), PEM, to trust for `https://` (default: the public web PKI roots).
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// TLS client certificate, PEM (mutual TLS; with --key).
    #[arg(long = "cert", global = true, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// TLS client private key, PEM (mutual TLS; with --cert). Not the HMAC key.
    #[arg(long = "key", global = true, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// The wallet's client id (`client-id` header).
    #[arg(long, global = true, default_value = "demo-wallet")]
    client_id: String,
    /// HMAC-SHA256 key, standard base64 (visible to other local users in the process list:
    /// prefer --key-file or the QRBRIDGE_WALLET_KEY environment variable).
    #[arg(long, global = true, value_name = "BASE64")]
    key_base64: Option<String>,
    /// File holding the HMAC-SHA256 key in standard base64.
    #[arg(long, global = true, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The wallet's Ed25519 private key, PKCS#8 (PEM `PRIVATE KEY` or DER), instead of an HMAC
    /// key. Needs --gateway-public-key.
    #[arg(long, global = true, value_name = "FILE")]
    ed25519_key_file: Option<PathBuf>,
    /// The gateway's Ed25519 response-signing public key (32 bytes, standard base64), to verify
    /// responses to Ed25519-signed requests.
    #[arg(long, global = true, value_name = "BASE64")]
    gateway_public_key: Option<String>,
    /// Version of the wallet's key (`keyVersion`), HMAC or Ed25519.
    #[arg(long, global = true, default_value_t = 1)]
    key_version: u32,
    /// Seconds allowed to connect, and then to get the answer.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS")]
    timeout: u64,
    /// Print the request headers, the string signed and the response headers on stderr
    /// (never the key).
    #[arg(short, long, global = true)]
    verbose: bool,
}

#[derive(clap::Subcommand)]
enum WalletCommand {
    /// POST /v1/qr/decode: the scanned code → merchant, amount (dynamic codes), decode id.
    Decode {
        /// The scanned QR payload, as scanned (`-` reads one line from stdin).
        #[arg(long)]
        code: String,
        /// The payer's currency (ISO 4217 alpha-3).
        #[arg(long)]
        payer_currency: String,
        /// The payer's id at the wallet.
        #[arg(long, default_value = "demo-customer")]
        customer: String,
        /// decodeRequestId (default: a fresh UUIDv7, printed on stderr).
        #[arg(long)]
        request_id: Option<String>,
    },
    /// POST /v1/quotes: the merchant amount → the payer amount at a locked rate.
    Quote {
        /// decodeId from the decode response.
        #[arg(long)]
        decode_id: String,
        /// Amount in the merchant's currency, decimal major units (`12.50`); required for static
        /// codes, optional for dynamic ones.
        #[arg(long)]
        amount: Option<String>,
        /// The merchant's currency of --amount.
        #[arg(long, default_value = "SGD")]
        currency: String,
        /// The payer's currency (ISO 4217 alpha-3).
        #[arg(long)]
        payer_currency: String,
        /// quoteRequestId (default: a fresh UUIDv7, printed on stderr).
        #[arg(long)]
        request_id: Option<String>,
    },
    /// POST /v1/payments: pay with a quote.
    Pay {
        /// quoteId from the quote response.
        #[arg(long)]
        quote_id: String,
        /// The payer's id at the wallet (the one who decoded).
        #[arg(long, default_value = "demo-customer")]
        customer: String,
        /// paymentRequestId (default: a fresh UUIDv7, printed on stderr). Resending the same
        /// request with the same id returns the original answer.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// POST /v1/payments/inquiry: where a payment stands.
    Inquiry(PaymentRefArgs),
    /// POST /v1/payments/cancel: reverse a payment before the cut-off.
    Cancel {
        /// The payment's paymentRequestId.
        #[arg(long)]
        payment_request_id: String,
    },
    /// POST /v1/refunds: refund (part of) a payment.
    Refund {
        /// paymentId of the payment.
        #[arg(long)]
        payment_id: String,
        /// Amount in the merchant's currency, decimal major units (`2.50`).
        #[arg(long)]
        amount: String,
        /// The merchant's currency of --amount.
        #[arg(long, default_value = "SGD")]
        currency: String,
        /// Why (free text).
        #[arg(long)]
        reason: Option<String>,
        /// refundRequestId (default: a fresh UUIDv7, printed on stderr).
        #[arg(long)]
        request_id: Option<String>,
    },
    /// POST /v1/refunds/inquiry: where a refund stands.
    RefundInquiry(RefundRefArgs),
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct PaymentRefArgs {
    /// Our paymentId.
    #[arg(long)]
    payment_id: Option<String>,
    /// The wallet's paymentRequestId.
    #[arg(long)]
    payment_request_id: Option<String>,
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct RefundRefArgs {
    /// Our refundId.
    #[arg(long)]
    refund_id: Option<String>,
    /// The wallet's refundRequestId.
    #[arg(long)]
    refund_request_id: Option<String>,
}

/// Runs `qrbridge wallet ...`; see the module documentation for the exit codes.
pub fn run(args: Args) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(Failure::NotSent(why)) => {
            eprintln!("error: {why}");
            ExitCode::from(2)
        }
        Err(Failure::Unknown(why)) => {
            eprintln!("error: {why}");
            ExitCode::from(3)
        }
        Err(Failure::Untrusted(why)) => {
            eprintln!("error: {why}");
            ExitCode::from(4)
        }
    }
}

fn usage(why: impl Into<String>) -> Failure {
    Failure::NotSent(why.into())
}

fn run_inner(args: Args) -> Result<ExitCode, Failure> {
    let c = args.connection;
    let target = Target::parse(&c.url).map_err(usage)?;
    let client_pair = match (&c.tls_cert, &c.tls_key) {
        (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
        (None, None) => None,
        _ => return Err(usage("--cert and --key (mutual TLS) go together")),
    };
    let tls = if target.is_tls() {
        Some(client::tls_config(c.ca.as_deref(), client_pair).map_err(usage)?)
    } else {
        if c.ca.is_some() || client_pair.is_some() {
            return Err(usage("--ca, --cert and --key need an https:// --url"));
        }
        None
    };
    let hmac = hmac_key(c.key_base64.as_deref(), c.key_file.as_ref())?;
    let signer = match (hmac, &c.ed25519_key_file, &c.gateway_public_key) {
        (Some(_), Some(_), _) => {
            return Err(usage("give an HMAC key or --ed25519-key-file, not both"));
        }
        (Some(key), None, None) => Some(Signer::Hmac {
            key,
            version: c.key_version,
        }),
        (_, None, Some(_)) => {
            return Err(usage("--gateway-public-key goes with --ed25519-key-file"));
        }
        (None, Some(_), None) => {
            return Err(usage(
                "--ed25519-key-file needs --gateway-public-key (the gateway's Ed25519 \
                 response-signing key) to verify the answers",
            ));
        }
        (None, Some(file), Some(public)) => Some(Signer::Ed25519 {
            pair: ed25519_key(file)?,
            version: c.key_version,
            gateway_key: gateway_key(public)?,
        }),
        (None, None, None) => None,
    };
    if c.client_id.is_empty() || !c.client_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(usage("--client-id: printable ASCII without spaces, please"));
    }
    let (route, body) = request(args.command)?;
    if signer.is_none() {
        eprintln!(
            "note: no key (--key-file, --key-base64, {KEY_ENV} or --ed25519-key-file): sending an UNSIGNED \
             request, as the embedded demo (authentication off) accepts; responses are not verified"
        );
    }
    let client = Client {
        target,
        tls,
        client_id: c.client_id,
        signer,
        timeout: Duration::from_secs(c.timeout.max(1)),
        verbose: c.verbose,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| usage(format!("runtime: {e}")))?;
    let reply = rt.block_on(client.post(route.path(), body))?;

    match serde_json::from_slice::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
    {
        Some(pretty) => println!("{pretty}"),
        None => println!("{}", String::from_utf8_lossy(&reply.body)),
    }
    let trust = match reply.trust {
        Trust::Verified => "response signature verified",
        Trust::NoKey => "response not verified: no key",
        Trust::UnsignedRefusal => "unsigned: refused before authentication",
    };
    let status = match reply.result_status {
        ResultStatus::S => "S",
        ResultStatus::F => "F",
        ResultStatus::U => "U",
    };
    eprintln!(
        "{status} {} (HTTP {}, {trust}): {}",
        reply.result_code,
        reply.status.as_u16(),
        reply.result_message
    );
    Ok(match reply.result_status {
        ResultStatus::S => ExitCode::SUCCESS,
        ResultStatus::F => ExitCode::from(1),
        ResultStatus::U => {
            eprintln!(
                "outcome unknown: query it with `qrbridge wallet inquiry` (or resend with the \
                 same --request-id); never pay again with a new id"
            );
            ExitCode::from(3)
        }
    })
}

/// The HMAC key from `--key-base64`, `--key-file` or the environment; `None`: unsigned.
fn hmac_key(base64: Option<&str>, file: Option<&PathBuf>) -> Result<Option<Secret>, Failure> {
    let (text, from) = match (base64, file) {
        (Some(_), Some(_)) => return Err(usage("give --key-base64 or --key-file, not both")),
        (Some(t), None) => (t.to_owned(), "--key-base64".to_owned()),
        (None, Some(path)) => (
            std::fs::read_to_string(path)
                .map_err(|e| usage(format!("--key-file {}: {e}", path.display())))?,
            format!("--key-file {}", path.display()),
        ),
        (None, None) => match std::env::var(KEY_ENV) {
            Ok(t) if !t.trim().is_empty() => (t, KEY_ENV.to_owned()),
            _ => return Ok(None),
        },
    };
    let key = Secret::from_base64(&text)
        .map_err(|e| usage(format!("{from}: not standard base64: {e}")))?;
    if key.expose().len() < 16 {
        return Err(usage(format!(
            "{from}: an HMAC key is at least 16 bytes, this one has {}",
            key.expose().len()
        )));
    }
    Ok(Some(key))
}

/// The wallet's Ed25519 key pair from a PKCS#8 file (PEM or DER; v1 as `openssl genpkey
/// -algorithm ed25519` writes it, or v2).
fn ed25519_key(path: &PathBuf) -> Result<Ed25519KeyPair, Failure> {
    let what = || format!("--ed25519-key-file {}", path.display());
    let bytes = Secret::new(std::fs::read(path).map_err(|e| usage(format!("{}: {e}", what())))?);
    let der = if bytes.expose().starts_with(b"-----BEGIN") {
        let der = PrivatePkcs8KeyDer::from_pem_slice(bytes.expose())
            .map_err(|e| usage(format!("{}: {e}", what())))?;
        Secret::new(der.secret_pkcs8_der().to_vec())
    } else {
        bytes
    };
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.expose())
        .map_err(|_| usage(format!("{}: not a PKCS#8 Ed25519 private key", what())))
}

/// The gateway's Ed25519 public key: 32 bytes in standard base64.
fn gateway_key(text: &str) -> Result<Vec<u8>, Failure> {
    let key = Secret::from_base64(text)
        .map_err(|e| usage(format!("--gateway-public-key: not standard base64: {e}")))?;
    if key.expose().len() != 32 {
        return Err(usage(format!(
            "--gateway-public-key: an Ed25519 public key is 32 bytes, this one has {}",
            key.expose().len()
        )));
    }
    Ok(key.expose().to_vec())
}

/// A fresh request id: a UUIDv7 (time-ordered, 74 random bits from the OS).
fn new_request_id() -> Result<String, Failure> {
    let mut random = [0u8; 10];
    SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| usage("the operating system's random generator failed"))?;
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Ok(uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .to_string())
}

/// `--request-id` or a fresh one (announced on stderr so the request can be resent).
fn request_id(given: Option<String>, field: &str) -> Result<RequestId, Failure> {
    let text = match given {
        Some(t) => t,
        None => {
            let t = new_request_id()?;
            eprintln!("{field}: {t}");
            t
        }
    };
    id("--request-id", text)
}

fn id(option: &str, text: String) -> Result<RequestId, Failure> {
    RequestId::new(text).map_err(|e| usage(format!("{option}: {e}")))
}

fn currency(option: &str, code: &str) -> Result<Currency, Failure> {
    Currency::from_code(&code.to_ascii_uppercase()).map_err(|e| usage(format!("{option}: {e}")))
}

/// Decimal major units → exact minor units of `currency` (`12.50` SGD → 1250).
fn money(amount: &str, code: &str) -> Result<Money, Failure> {
    let c = currency("--currency", code)?;
    Amount::parse(amount, c)
        .map(Money)
        .map_err(|e| usage(format!("--amount {amount:?} {}: {e}", c.code())))
}

fn customer(text: String) -> Result<CustomerId, Failure> {
    CustomerId::new(text).map_err(|e| usage(format!("--customer: {e}")))
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, Failure> {
    serde_json::to_vec(value).map_err(|e| usage(format!("request body: {e}")))
}

fn code_value(code: String) -> Result<CodeValue, Failure> {
    let text = if code == "-" {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| usage(format!("--code - (stdin): {e}")))?;
        let trimmed = line.strip_suffix('\n').unwrap_or(&line);
        trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned()
    } else {
        code
    };
    CodeValue::try_from(text).map_err(|e| usage(format!("--code: {e}")))
}

/// The route and the exact body bytes to sign and send.
fn request(command: WalletCommand) -> Result<(Route, Vec<u8>), Failure> {
    Ok(match command {
        WalletCommand::Decode {
            code,
            payer_currency,
            customer: c,
            request_id: r,
        } => {
            let req = DecodeRequest {
                decode_request_id: request_id(r, "decodeRequestId")?,
                customer_id: customer(c)?,
                code_value: code_value(code)?,
                payer_currency: currency("--payer-currency", &payer_currency)?,
            };
            (Route::Decode, json(&req)?)
        }
        WalletCommand::Quote {
            decode_id,
            amount,
            currency: code,
            payer_currency,
            request_id: r,
        } => {
            let req = QuoteRequest {
                quote_request_id: request_id(r, "quoteRequestId")?,
                decode_id: id("--decode-id", decode_id)?,
                amount: amount.map(|a| money(&a, &code)).transpose()?,
                payer_currency: currency("--payer-currency", &payer_currency)?,
            };
            (Route::Quote, json(&req)?)
        }
        WalletCommand::Pay {
            quote_id,
            customer: c,
            request_id: r,
        } => {
            let req = PaymentRequest {
                payment_request_id: request_id(r, "paymentRequestId")?,
                quote_id: id("--quote-id", quote_id)?,
                customer_id: customer(c)?,
            };
            (Route::Pay, json(&req)?)
        }
        WalletCommand::Inquiry(which) => {
            let body = match (which.payment_id, which.payment_request_id) {
                (Some(p), None) => {
                    serde_json::json!({ "paymentId": id("--payment-id", p)? })
                }
                (None, Some(r)) => {
                    serde_json::json!({ "paymentRequestId": id("--payment-request-id", r)? })
                }
                _ => return Err(usage("give --payment-id or --payment-request-id")),
            };
            (Route::PaymentInquiry, json(&body)?)
        }
        WalletCommand::Cancel { payment_request_id } => {
            let req = CancelRequest {
                payment_request_id: id("--payment-request-id", payment_request_id)?,
            };
            (Route::Cancel, json(&req)?)
        }
        WalletCommand::Refund {
            payment_id,
            amount,
            currency: code,
            reason,
            request_id: r,
        } => {
            let req = RefundRequest {
                refund_request_id: request_id(r, "refundRequestId")?,
                payment_id: id("--payment-id", payment_id)?,
                refund_amount: money(&amount, &code)?,
                reason: reason
                    .map(|t| Text::try_from(t).map_err(|e| usage(format!("--reason: {e}"))))
                    .transpose()?,
            };
            (Route::Refund, json(&req)?)
        }
        WalletCommand::RefundInquiry(which) => {
            let body = match (which.refund_id, which.refund_request_id) {
                (Some(p), None) => serde_json::json!({ "refundId": id("--refund-id", p)? }),
                (None, Some(r)) => {
                    serde_json::json!({ "refundRequestId": id("--refund-request-id", r)? })
                }
                _ => return Err(usage("give --refund-id or --refund-request-id")),
            };
            (Route::RefundInquiry, json(&body)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_decimal_major_units_converted_exactly() {
        assert_eq!(money("12.50", "SGD").unwrap().0.minor(), 1250);
        assert_eq!(money("12", "sgd").unwrap().0.minor(), 1200);
        assert_eq!(money("1500", "JPY").unwrap().0.minor(), 1500);
        assert_eq!(money("0.005", "KWD").unwrap().0.minor(), 5);
        for (bad, code) in [
            ("12.505", "SGD"),
            ("1.5", "JPY"),
            ("-1", "SGD"),
            ("1e3", "SGD"),
            ("1", "XXQ"),
        ] {
            assert!(money(bad, code).is_err(), "{bad} {code}");
        }
    }

    #[test]
    fn request_ids_are_uuid_v7_and_valid_wire_ids() {
        let a = new_request_id().unwrap();
        let b = new_request_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'7', "{a}");
        RequestId::new(a).unwrap();
    }

    #[test]
    fn the_same_arguments_give_the_same_body_bytes() {
        let pay = || WalletCommand::Pay {
            quote_id: "Q-1".into(),
            customer: "cust-42".into(),
            request_id: Some("PR-1".into()),
        };
        let (route, a) = request(pay()).unwrap();
        let (_, b) = request(pay()).unwrap();
        assert_eq!(route, Route::Pay);
        assert_eq!(a, b);
        assert_eq!(
            String::from_utf8(a).unwrap(),
            r#"{"paymentRequestId":"PR-1","quoteId":"Q-1","customerId":"cust-42"}"#
        );
    }

    #[test]
    fn short_or_malformed_keys_are_usage_errors_that_do_not_echo_the_key() {
        let short = "c2hvcnQ="; // "short"
        match hmac_key(Some(short), None) {
            Err(Failure::NotSent(why)) => assert!(!why.contains(short), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            hmac_key(Some("not base64!"), None),
            Err(Failure::NotSent(_))
        ));
        let key = hmac_key(Some("cXJicmlkZ2Utc3BlYy1leGFtcGxlLWtleS0wMDAxISE="), None)
            .unwrap()
            .unwrap();
        assert!(!format!("{key:?}").contains("qrbridge"));
    }
}
