//! What each wallet scheme costs per request, side by side: one signed payment inquiry through
//! `Scheme::serve` (route, headers, signature check, parse, the canonical call, render, response
//! signature) against a pipeline that answers at once, so only the scheme's own work is measured —
//! no sockets, no journal. Native (JSON, HMAC-SHA256), aplus (JSON, RSA-2048 PKCS#1 v1.5 both
//! ways) and iso20022 (pacs.028 → pacs.002 XML, HMAC-SHA256); each also with authentication off
//! (the demo), which isolates translation from cryptography. The wallet's own signing happens in
//! the (unmeasured) setup of each iteration.
//!
//! Run briefly: `cargo bench --bench schemes -- --measurement-time 3 --warm-up-time 1`

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use qrbridge::money::{Amount, Currency};
use qrbridge::payment::*;
use qrbridge::scheme::InFlight;
use qrbridge::scheme::aplus::sign::{AplusSignatureHeader, AplusSigner, string_to_sign};
use qrbridge::scheme::native::Native;
use qrbridge::scheme::native::auth::{
    AuthConfig, ClientKey, Credentials, Secret, request_time, sign_request_hmac,
};
use qrbridge::scheme::{Dispatch, Inbound, Peer, Pipeline, Scheme, SchemeSettings};

const CLIENT: &str = "wallet-my";
const KEY: &[u8] = b"bench-key-bench-key-bench-key-32";

struct Instant200;

fn money(minor: u64, code: &str) -> Result<Money, ApiError> {
    let c = Currency::from_code(code).map_err(|e| ApiError::param("currency", e.to_string()))?;
    Amount::from_minor(minor, c)
        .map(Money)
        .map_err(|e| ApiError::param("value", e.to_string()))
}

/// A payment of SGD 12.50 that succeeded.
fn succeeded(r: RequestId) -> Handled<PaymentResponse> {
    Ok(Answer::ok(PaymentResponse {
        merchant: None,
        scheme_ref: None,
        payment_id: RequestId::new("01a1fe39-60f7-7e64-8e68-c97a0ee2d865")
            .map_err(|e| ApiError::param("id", e))?,
        payment_request_id: r,
        payment_status: PaymentStatus::Success,
        merchant_amount: money(1250, "SGD")?,
        payer_amount: money(4042, "MYR")?,
        refunded_amount: None,
        acquirer: None,
    }))
}

fn nope<T>() -> Handled<T> {
    Err(ApiError::NotFound { path: "-".into() })
}

impl Pipeline for Instant200 {
    fn decode(
        self: Arc<Self>,
        _: RequestContext,
        _: DecodeRequest,
    ) -> BoxFuture<'static, Handled<DecodeResponse>> {
        Box::pin(async move { nope() })
    }
    fn quote(
        self: Arc<Self>,
        _: RequestContext,
        _: QuoteRequest,
    ) -> BoxFuture<'static, Handled<QuoteResponse>> {
        Box::pin(async move { nope() })
    }
    fn pay(
        self: Arc<Self>,
        _: RequestContext,
        _: PaymentRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>> {
        Box::pin(async move { nope() })
    }
    fn inquire_payment(
        self: Arc<Self>,
        _: RequestContext,
        req: PaymentInquiryRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>> {
        Box::pin(async move {
            let r = match req.payment {
                PaymentRef::RequestId(r) | PaymentRef::PaymentId(r) => r,
            };
            succeeded(r)
        })
    }
    /// aplus `notifyPayment` S: the order's result, settled at once (no journal, no acquirer).
    fn order_result(
        self: Arc<Self>,
        _: RequestContext,
        req: OrderResultRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>> {
        Box::pin(async move { succeeded(req.payment_request_id) })
    }
    fn cancel(
        self: Arc<Self>,
        _: RequestContext,
        _: CancelRequest,
    ) -> BoxFuture<'static, Handled<CancelResponse>> {
        Box::pin(async move { nope() })
    }
    fn refund(
        self: Arc<Self>,
        _: RequestContext,
        _: RefundRequest,
    ) -> BoxFuture<'static, Handled<RefundResponse>> {
        Box::pin(async move { nope() })
    }
    fn inquire_refund(
        self: Arc<Self>,
        _: RequestContext,
        _: RefundInquiryRequest,
    ) -> BoxFuture<'static, Handled<RefundResponse>> {
        Box::pin(async move { nope() })
    }
}

/// A request as the wallet sent it.
struct Req {
    path: &'static str,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(HeaderName::from_static(k), v);
        }
    }
    h
}

static N: AtomicU64 = AtomicU64::new(0);

fn testdata(scheme: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/schemes/{scheme}"))
}

fn hmac_signed(path: &'static str, content_type: &str, body: Vec<u8>) -> Req {
    let time = request_time(SystemTime::now());
    let sig = sign_request_hmac(
        &Secret::new(KEY.to_vec()),
        1,
        "POST",
        path,
        CLIENT,
        &time,
        &body,
    );
    Req {
        path,
        headers: headers(&[
            ("content-type", content_type.to_owned()),
            ("client-id", CLIENT.to_owned()),
            ("request-time", time),
            ("signature", sig),
        ]),
        body,
    }
}

fn native_request() -> Req {
    let n = N.fetch_add(1, Ordering::Relaxed);
    let body = format!(r#"{{"paymentRequestId":"PR-{n:012}"}}"#).into_bytes();
    hmac_signed("/v1/payments/inquiry", "application/json", body)
}

fn pacs028_request() -> Req {
    let n = N.fetch_add(1, Ordering::Relaxed);
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.028.001.03\"><FIToFIPmtStsReq>\
<GrpHdr><MsgId>BENCH-{n}</MsgId><CreDtTm>2026-11-21T10:41:00Z</CreDtTm></GrpHdr>\
<TxInf><OrgnlUETR>6f1c2b3a-4d5e-4f60-8a7b-{n:012x}</OrgnlUETR></TxInf>\
</FIToFIPmtStsReq></Document>"
    )
    .into_bytes();
    hmac_signed(
        "/schemes/iso20022/v1/payments/status",
        "application/xml",
        body,
    )
}

fn aplus_request_body() -> Vec<u8> {
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        r#"{{"paymentRequestId":"PR-{n:012}","paymentResult":{{"resultStatus":"S","resultCode":"SUCCESS"}}}}"#
    )
    .into_bytes()
}

fn aplus_request(wallet: &AplusSigner) -> Req {
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path = "/schemes/aplus/aps/api/v1/payments/notifyPayment";
    let body = format!(
        r#"{{"paymentRequestId":"PR-{n:012}","paymentResult":{{"resultStatus":"S","resultCode":"SUCCESS"}}}}"#
    )
    .into_bytes();
    let time = qrbridge::scheme::aplus::sign::format_time(SystemTime::now());
    let signature = wallet
        .sign(&string_to_sign("POST", path, CLIENT, &time, &body))
        .unwrap_or_default();
    let header = AplusSignatureHeader {
        key_version: 1,
        signature,
    }
    .format();
    Req {
        path,
        headers: headers(&[
            ("content-type", "application/json".to_owned()),
            ("client-id", CLIENT.to_owned()),
            ("request-time", time),
            ("signature", header),
        ]),
        body,
    }
}

fn demo(path: &'static str, content_type: &str, body: Vec<u8>) -> Req {
    Req {
        path,
        headers: headers(&[("content-type", content_type.to_owned())]),
        body,
    }
}

struct Bench {
    rt: tokio::runtime::Runtime,
    pipeline: Arc<dyn Pipeline>,
}

impl Bench {
    /// Serves one request; true when the scheme answered 200.
    fn serve(&self, scheme: &dyn Scheme, req: &Req) -> bool {
        let peer = Peer::Anonymous;
        let inbound = Inbound {
            method: "POST",
            path: req.path,
            query: None,
            headers: &req.headers,
            body: &req.body,
            peer: &peer,
            received_at: SystemTime::now(),
            request_id: "bench-request",
        };
        let timeout = Duration::from_secs(5);
        let dispatch = Dispatch::new(
            Arc::clone(&self.pipeline),
            InFlight::new(),
            tokio::time::Instant::now() + timeout,
            timeout,
        );
        let out = self
            .rt
            .block_on(async { scheme.serve(inbound, dispatch).await });
        out.status == 200
    }
}

fn settings(table: &str, base: PathBuf, demo_client: Option<&str>) -> SchemeSettings {
    SchemeSettings {
        table: toml::from_str(table).unwrap_or_default(),
        demo_client: demo_client.map(str::to_owned),
        base_dir: base,
        replay_bytes: qrbridge::scheme::native::auth::REPLAY_DEFAULT_BYTES,
    }
}

fn schemes(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let b = Bench {
        rt,
        pipeline: Arc::new(Instant200),
    };
    let creds =
        Credentials::new().with_key(CLIENT, 1, ClientKey::HmacSha256(Secret::new(KEY.to_vec())));
    let Ok(native) = Native::new(AuthConfig::signatures(creds)) else {
        return;
    };
    let Ok(native_demo) = Native::new(AuthConfig::off(CLIENT)) else {
        return;
    };
    let aplus_table = r#"
        signing_key_pem = "gateway-private.pem"
        signing_key_version = 1
        [clients.wallet-my]
        public_keys = { "1" = "wallet-my-public.pem" }
        pay_to_currency = "MYR"
    "#;
    let Ok(aplus) = qrbridge::scheme::aplus::build(&settings(aplus_table, testdata("aplus"), None))
    else {
        eprintln!("aplus scheme did not build");
        return;
    };
    let Ok(aplus_demo) =
        qrbridge::scheme::aplus::build(&settings("", testdata("aplus"), Some(CLIENT)))
    else {
        return;
    };
    let iso_table = format!(
        "[clients.{CLIENT}]\nhmac_key_base64 = \"{}\"\nkey_version = 1\n",
        base64::engine::general_purpose::STANDARD.encode(KEY)
    );
    let Ok(iso) = qrbridge::scheme::iso20022::build(&settings(&iso_table, ".".into(), None)) else {
        eprintln!("iso20022 scheme did not build");
        return;
    };
    let Ok(iso_demo) = qrbridge::scheme::iso20022::build(&settings("", ".".into(), Some(CLIENT)))
    else {
        return;
    };
    let wallet_pem = std::fs::read_to_string(testdata("aplus").join("wallet-my-private.pem"))
        .unwrap_or_default();
    let Ok(wallet) = AplusSigner::from_pem(&wallet_pem) else {
        eprintln!("wallet key unreadable");
        return;
    };
    // Every scheme must answer 200 before it is timed.
    for (name, scheme, req) in [
        ("native", &native as &dyn Scheme, native_request()),
        ("aplus", &*aplus, aplus_request(&wallet)),
        ("iso20022", &*iso, pacs028_request()),
    ] {
        if !b.serve(scheme, &req) {
            eprintln!("{name}: the inquiry was not answered 200; not benchmarking");
            return;
        }
    }

    let mut g = c.benchmark_group("scheme: signed payment inquiry through Scheme::serve");
    g.bench_function("native (JSON, HMAC-SHA256 verify + sign)", |bn| {
        bn.iter_batched(
            native_request,
            |r| black_box(b.serve(&native, &r)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("iso20022 (pacs.028 -> pacs.002, HMAC-SHA256)", |bn| {
        bn.iter_batched(
            pacs028_request,
            |r| black_box(b.serve(&*iso, &r)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("aplus (JSON, RSA-2048 verify + sign)", |bn| {
        bn.iter_batched(
            || aplus_request(&wallet),
            |r| black_box(b.serve(&*aplus, &r)),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("scheme: payment inquiry, authentication off (translation only)");
    g.bench_function("native", |bn| {
        bn.iter_batched(
            || {
                demo(
                    "/v1/payments/inquiry",
                    "application/json",
                    native_request().body,
                )
            },
            |r| black_box(b.serve(&native_demo, &r)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("iso20022", |bn| {
        bn.iter_batched(
            || {
                demo(
                    "/schemes/iso20022/v1/payments/status",
                    "application/xml",
                    pacs028_request().body,
                )
            },
            |r| black_box(b.serve(&*iso_demo, &r)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("aplus", |bn| {
        bn.iter_batched(
            || {
                demo(
                    "/schemes/aplus/aps/api/v1/payments/notifyPayment",
                    "application/json",
                    aplus_request_body(),
                )
            },
            |r| black_box(b.serve(&*aplus_demo, &r)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, schemes);
criterion_main!(benches);
