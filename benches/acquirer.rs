//! Acquirer benchmarks: ISO 8583 encode + decode of a 0200, and authorisations over a TLS link
//! against the simulator on loopback, timed inside the runtime: one connection with 1, 4, 16 and 64
//! in flight, and pools of 2 and 4 connections (`links`) with 16 and 64 in flight, side by side in
//! one run. Prints each link's connection reuse.
//!
//! Run briefly: `cargo bench --bench acquirer -- --measurement-time 3 --warm-up-time 1`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use qrbridge::acquirer::iso8583::{self, Spec};
use qrbridge::acquirer::link::{Link, LinkConfig, Outcome};
use qrbridge::acquirer::message::{
    Billing, ConversionRate, Kind, PrivateData, Purchase, Stan, Terminal, Trace, purchase_request,
};
use qrbridge::acquirer::reversal::MemoryReversalStore;
use qrbridge::acquirer::sim::{SimConfig, Simulator};
use qrbridge::money::Currency;
use qrbridge::time::fields as clock;
use qrbridge::tls;
use qrbridge::tls::pki::Pki;

fn purchase(amount: u64) -> Option<Purchase> {
    Some(Purchase {
        kind: Kind::Purchase,
        amount,
        currency: Currency::from_code("MYR").ok()?,
        billing: Some(Billing {
            amount: amount * 2,
            currency: Currency::from_code("HKD").ok()?,
            rate: ConversionRate::new(1_749_543, 6)?,
        }),
        merchant_id: "M0001".to_owned(),
        mcc: "5812".to_owned(),
        merchant_name: "Nasi Lemak Stall".to_owned(),
        merchant_city: "Kuala Lumpur".to_owned(),
        merchant_country: "MY".to_owned(),
        private: PrivateData {
            quote_id: Some("Q-0000000001".to_owned()),
            wallet_scheme: Some("ALIPAYHK".to_owned()),
            wallet_request_id: Some("WR-000000001".to_owned()),
            reference_label: Some("RL-1".to_owned()),
            other: vec![],
        },
    })
}

fn terminal() -> Terminal {
    Terminal {
        acquiring_institution: "12345678".to_owned(),
        terminal_id: "QRB00001".to_owned(),
    }
}

fn codec(c: &mut Criterion) {
    let spec = Spec::iso1987_ascii();
    let Some(p) = purchase(35_000) else { return };
    let Some(stan) = Stan::new(123) else { return };
    let Ok(msg) = purchase_request(&p, &terminal(), &Trace::new(stan, &clock::UtcFields::now()))
    else {
        return;
    };
    let Ok(wire) = iso8583::encode(&msg, spec) else {
        return;
    };
    let mut g = c.benchmark_group("iso8583_0200");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| iso8583::encode(black_box(&msg), spec))
    });
    g.bench_function("decode", |b| {
        b.iter(|| iso8583::decode(black_box(&wire), spec))
    });
    g.bench_function("encode_decode", |b| {
        b.iter(|| iso8583::encode(black_box(&msg), spec).and_then(|w| iso8583::decode(&w, spec)))
    });
    g.finish();
}

fn link(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    else {
        return;
    };
    let Ok(pki) = Pki::generate(&["localhost"], "bench") else {
        return;
    };
    let (Ok(server), Ok(client)) = (
        tls::server_config(&pki.ca_cert, &pki.server_cert, &pki.server_key),
        tls::client_config(&pki.ca_cert, &pki.client_cert, &pki.client_key),
    ) else {
        return;
    };
    let Some(sim) = rt.block_on(async {
        Simulator::start("127.0.0.1:0".parse().ok()?, server, SimConfig::default())
            .await
            .ok()
    }) else {
        eprintln!("bench setup failed: simulator");
        return;
    };
    let Some(p) = purchase(1_000) else { return };

    let mut g = c.benchmark_group("link_authorise");
    g.throughput(Throughput::Elements(1));
    for (links, in_flights) in [
        (1usize, &[1u64, 4, 16, 64][..]),
        (2, &[16, 64]),
        (4, &[16, 64]),
    ] {
        let Some(link) = rt.block_on(async {
            let mut cfg = LinkConfig::new(
                sim.addr().to_string(),
                "localhost",
                client.clone(),
                terminal(),
            );
            cfg.links = links;
            let link = Link::start(cfg, Arc::new(MemoryReversalStore::new())).ok()?;
            // Every member signed on before timing (bounded).
            for _ in 0..1000 {
                if link.ready_links() == (links, links) {
                    return Some(link);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            None
        }) else {
            eprintln!("bench setup failed: a pool of {links} did not sign on");
            return;
        };
        for &in_flight in in_flights {
            let name = match (links, in_flight) {
                (1, 1) => "sequential".to_owned(),
                (1, n) => format!("{n}_in_flight"),
                (l, n) => format!("{l}_links_{n}_in_flight"),
            };
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        tokio::spawn(authorise(link.clone(), p.clone(), iters, in_flight))
                            .await
                            .unwrap_or_default()
                    })
                })
            });
        }
        let s = link.stats();
        let reuse = 1.0 - s.connects as f64 / s.authorisations.max(1) as f64;
        eprintln!(
            "link of {links}: {} authorisations over {} TLS connection(s): connection reuse {:.4} %; \
             unmatched {}; per member {:?}",
            s.authorisations,
            s.connects,
            reuse * 100.0,
            s.unmatched,
            link.members()
                .iter()
                .map(|m| m.stats.authorisations)
                .collect::<Vec<_>>()
        );
    }
    g.finish();
    eprintln!("sim ledger {} entries", sim.ledger().entries.len());
    drop(sim);
}

/// `iters` authorisations split over `in_flight` callers, each sequential, every one inside the
/// runtime's workers (spawned), as the gateway's are: timing from the bench thread with
/// `block_on` adds a cross-thread wake-up per await.
async fn authorise(link: Link, p: Purchase, iters: u64, in_flight: u64) -> Duration {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for k in 0..in_flight {
        let n = iters / in_flight + u64::from(k < iters % in_flight);
        let (link, p) = (link.clone(), p.clone());
        set.spawn(async move {
            for _ in 0..n {
                let ok = matches!(link.authorise(&p).await, Ok(Outcome::Approved(_)));
                assert!(ok, "authorisation not approved");
            }
        });
    }
    while let Some(r) = set.join_next().await {
        assert!(r.is_ok(), "an authorising task failed");
    }
    start.elapsed()
}

criterion_group!(benches, codec, link);
criterion_main!(benches);
