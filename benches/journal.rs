//! Journal write throughput of one payment's writes, measured side by side in one run so the
//! figures read as ratios:
//!
//! * `two_writes`: what the pipeline does now (spec/journal.md §6a): `open_payment` (request,
//!   intent, SENT) and `finish_payment` (outcome, stored answer).
//! * `five_writes`: what it did before issue 16: `begin`, `record_intent`, `Sent`, `Approved`,
//!   `complete`, each its own write.
//! * `one_write`: a lone durable commit (a `begin` of a new key), the unit the issue's target
//!   "pay p50 ≤ 2 × one journal commit" is stated in.
//!
//! Each with 64 concurrent tasks and with one, on a group-commit journal; `two_writes` also on a
//! journal with one transaction per write (group commit off) for the effect of grouping.
//!
//! `cargo bench --bench journal` (bounded: 10 samples of at most 4 s per benchmark). The journal
//! files live in Cargo's target tmp dir, on the same disk as the build.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use qrbridge::journal::{
    AcquirerData, BodyHash, CustomerId, FinishPayment, IdempotencyKey, Journal, JournalConfig,
    NewPayment, OpenPayment, Opened, PaymentEvent, QuoteSnapshot, RedbJournal, Render, RequestKind,
    Routing, StoredResponse,
};
use qrbridge::money::{Amount, Currency};
use rust_decimal::Decimal;

const IN_FLIGHT: u64 = 64;

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| unreachable!("{e}"))
}

fn payment(request: String) -> NewPayment {
    let sgd = ok(Currency::from_code("SGD"));
    let myr = ok(Currency::from_code("MYR"));
    NewPayment {
        merchant: qrbridge::payment::Merchant {
            name: "KOPI STALL".to_owned(),
            city: "SINGAPORE".to_owned(),
            country: "SG".to_owned(),
            mcc: "5812".to_owned(),
            merchant_id: "M0001".to_owned(),
        },
        client_id: "bench-wallet".to_owned(),
        request_id: request,
        customer: CustomerId::new("customer-1"),
        quote: QuoteSnapshot {
            quote_id: "019a8f3e-0000-7000-8000-000000000001".to_owned(),
            merchant_amount: ok(Amount::from_minor(1_250, sgd)),
            payer_amount: ok(Amount::from_minor(4_167, myr)),
            fees: Amount::zero(myr),
            mid_rate: Decimal::new(33_004, 4),
            rate: Decimal::new(33_337, 4),
            markup_bps: 100,
            rate_source: "bench".to_owned(),
            rate_as_of_ms: 1_763_640_000_000,
        },
        routing: Routing {
            acquirer: "sim".to_owned(),
            merchant_id: "M0001".to_owned(),
            terminal_id: Some("QRB00001".to_owned()),
            scheme: "SG.PAYNOW".to_owned(),
            qr_reference: None,
        },
        limits: qrbridge::journal::DailyLimits::default(),
        origin: qrbridge::journal::Origin::default(),
    }
}

fn sent_trace() -> AcquirerData {
    AcquirerData {
        stan: Some("000001".to_owned()),
        ..AcquirerData::default()
    }
}

fn approved() -> PaymentEvent {
    PaymentEvent::Approved {
        acquirer: AcquirerData {
            auth_code: Some("A1B2C3".to_owned()),
            response_code: Some("00".to_owned()),
            ..AcquirerData::default()
        },
    }
}

fn answer() -> StoredResponse {
    StoredResponse {
        status: 200,
        body: br#"{"resultCode":"SUCCESS","resultMessage":"","body":{}}"#.to_vec(),
    }
}

/// Which writes one payment makes.
#[derive(Clone, Copy)]
enum Flow {
    Two,
    Five,
    One,
}

/// One payment's journal writes.
async fn pay(j: &RedbJournal, flow: Flow, request: String) {
    let key = IdempotencyKey::new("bench-wallet", RequestKind::Payment, request.as_str());
    let body = BodyHash::of(request.as_bytes());
    match flow {
        Flow::Two => {
            let open = OpenPayment {
                request: key.clone(),
                body,
                payment: payment(request),
                sent: sent_trace(),
                shared_quote: false,
            };
            let Opened::Sent(p) = ok(j.open_payment(open).await) else {
                unreachable!("a new request id")
            };
            let finish = FinishPayment {
                id: p.id,
                events: vec![approved()],
                request: key,
                answer: Render::new(|_| answer()),
            };
            ok(j.finish_payment(finish).await);
        }
        Flow::Five => {
            ok(j.begin(key.clone(), body).await);
            let p = ok(j.record_intent(payment(request)).await);
            let sent = PaymentEvent::Sent {
                acquirer: sent_trace(),
            };
            let p = ok(j.update_payment(p.id, sent).await);
            ok(j.update_payment(p.id, approved()).await);
            ok(j.complete(key, answer()).await);
        }
        Flow::One => {
            ok(j.begin(key, body).await);
        }
    }
}

/// `iters` payments over `in_flight` concurrent tasks; the elapsed time.
fn run(
    rt: &tokio::runtime::Runtime,
    j: &Arc<RedbJournal>,
    flow: Flow,
    iters: u64,
    in_flight: u64,
) -> Duration {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..in_flight.min(iters))
            .map(|t| {
                let j = Arc::clone(j);
                let share =
                    iters / in_flight.min(iters) + u64::from(t < iters % in_flight.min(iters));
                tokio::spawn(async move {
                    for _ in 0..share {
                        let r = format!("r{}", NEXT.fetch_add(1, Ordering::Relaxed));
                        pay(&j, flow, r).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            ok(t.await);
        }
        start.elapsed()
    })
}

fn bench(c: &mut Criterion) {
    let rt = ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build());
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("journal-bench-{}", std::process::id()));
    ok(std::fs::create_dir_all(&dir));
    let open = |name: &str, max_batch: usize| {
        let config = JournalConfig {
            max_batch,
            ..JournalConfig::new(dir.join(name))
        };
        Arc::new(ok(RedbJournal::open(config)))
    };
    let grouped = open("grouped.redb", 256);
    let single = open("single.redb", 1);

    let mut group = c.benchmark_group("journal");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    for (name, flow, in_flight) in [
        ("two_writes/64_in_flight", Flow::Two, IN_FLIGHT),
        ("five_writes/64_in_flight", Flow::Five, IN_FLIGHT),
        ("two_writes/1_in_flight", Flow::Two, 1),
        ("five_writes/1_in_flight", Flow::Five, 1),
        ("one_write/1_in_flight", Flow::One, 1),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| run(&rt, &grouped, flow, iters, in_flight))
        });
    }
    group.bench_function("two_writes/64_in_flight_one_commit_per_write", |b| {
        b.iter_custom(|iters| run(&rt, &single, Flow::Two, iters, IN_FLIGHT))
    });
    group.finish();

    for (name, j) in [
        ("group commit", &grouped),
        ("one commit per write", &single),
    ] {
        let s = j.stats();
        println!(
            "journal {name}: {} writes in {} commits (mean {:.1} per commit, largest {})",
            s.writes,
            s.commits,
            s.writes as f64 / s.commits.max(1) as f64,
            s.largest_batch
        );
    }
    drop((grouped, single));
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
