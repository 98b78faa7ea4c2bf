//! Journal write throughput: the same payment writes (intent, sent, approved: three durable
//! commits' worth) from 64 concurrent tasks, with group commit and with one transaction per write,
//! measured side by side in one run so the figures read as a ratio. A single caller is measured
//! too, on both journals: group commit cannot help it, so it shows the cost of durable commits
//! without contention.
//!
//! `cargo bench --bench journal` (bounded: 10 samples of at most 4 s per benchmark). The journal
//! files live in Cargo's target tmp dir, on the same disk as the build.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use qrbridge::journal::{
    AcquirerData, CustomerId, Journal, JournalConfig, NewPayment, PaymentEvent, QuoteSnapshot,
    RedbJournal, Routing,
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

/// One payment's journal writes, as the pipeline makes them.
async fn pay(j: &RedbJournal, request: String) {
    let p = ok(j.record_intent(payment(request)).await);
    let sent = PaymentEvent::Sent {
        acquirer: AcquirerData {
            stan: Some("000001".to_owned()),
            ..AcquirerData::default()
        },
    };
    let p = ok(j.update_payment(p.id, sent).await);
    let approved = PaymentEvent::Approved {
        acquirer: AcquirerData {
            auth_code: Some("A1B2C3".to_owned()),
            response_code: Some("00".to_owned()),
            ..AcquirerData::default()
        },
    };
    ok(j.update_payment(p.id, approved).await);
}

/// `iters` payments over `in_flight` concurrent tasks; the elapsed time.
fn run(rt: &tokio::runtime::Runtime, j: &Arc<RedbJournal>, iters: u64, in_flight: u64) -> Duration {
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
                        pay(&j, format!("r{}", NEXT.fetch_add(1, Ordering::Relaxed))).await;
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
    group.bench_function("payment_64_in_flight_group_commit", |b| {
        b.iter_custom(|iters| run(&rt, &grouped, iters, IN_FLIGHT))
    });
    group.bench_function("payment_64_in_flight_one_commit_per_write", |b| {
        b.iter_custom(|iters| run(&rt, &single, iters, IN_FLIGHT))
    });
    group.bench_function("payment_1_in_flight_group_commit", |b| {
        b.iter_custom(|iters| run(&rt, &grouped, iters, 1))
    });
    group.bench_function("payment_1_in_flight_one_commit_per_write", |b| {
        b.iter_custom(|iters| run(&rt, &single, iters, 1))
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
