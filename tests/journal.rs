//! The durable journal on real files in a temporary directory: the payment and refund state
//! machines, refund limits under concurrency, idempotency (50 concurrent duplicates → one `New`),
//! retention, recovery lists, the reversal queue against the same contract as the in-memory store,
//! corrupt records, and a crash test that SIGKILLs a writer process mid-stream and checks that
//! every acknowledged write survived.
//!
//! Expected values are worked out here by hand (amounts, shares, counts), never copied from the
//! code's output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use qrbridge::acquirer::message::ReversalReason;
use qrbridge::acquirer::reversal::{
    Attempt, AttemptResult, MemoryReversalStore, NewReversal, ReversalId, ReversalState,
    ReversalStore, StoreError,
};
use qrbridge::journal::*;
use qrbridge::money::{Amount, Currency};
use qrbridge::time::ManualClock;
use rust_decimal::Decimal;

// ---- helpers ------------------------------------------------------------------------------

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "qrbridge-journal-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("journal.redb")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether this run puts the shared tests on PostgreSQL (`QRBRIDGE_TEST_JOURNAL=postgres` with
/// `QRBRIDGE_TEST_PG_URL`: scripts/test runs this binary a second time that way). Otherwise they
/// run on redb.
fn on_postgres() -> bool {
    std::env::var("QRBRIDGE_TEST_JOURNAL").as_deref() == Ok("postgres")
}

fn pg_url() -> Option<String> {
    std::env::var("QRBRIDGE_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A PostgreSQL journal config of its own for `path`: one schema per path (so reopening the same
/// path finds the same journal, and tests running in parallel do not see each other's records).
fn pg_for(path: &Path) -> postgres::PgConfig {
    use std::hash::{Hash, Hasher};
    let url = pg_url().expect("QRBRIDGE_TEST_JOURNAL=postgres needs QRBRIDGE_TEST_PG_URL");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    let schema = format!("t_{:016x}", h.finish());
    let mut admin = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut pg = postgres::PgConfig::new(format!("{url}{sep}options=-c%20search_path%3D{schema}"));
    // One instance name per path: a reopened journal is the same instance restarted (it owns
    // its unresolved records, as a redb file's reopening does).
    pg.instance = Some(schema);
    pg
}

fn open(path: &Path) -> RedbJournal {
    open_with(JournalConfig::new(path))
}

/// The journal under test on this run's engine.
fn open_with(config: JournalConfig) -> RedbJournal {
    if on_postgres() {
        let pg = pg_for(&config.path);
        RedbJournal::open_postgres(pg, config, true).unwrap()
    } else {
        RedbJournal::open(config).unwrap()
    }
}

/// For the few tests about the redb file itself: true (and a notice) on the PostgreSQL run.
fn redb_only(test: &str) -> bool {
    if on_postgres() {
        eprintln!("{test}: about the redb file; not run on the PostgreSQL engine");
    }
    on_postgres()
}

fn cur(code: &str) -> Currency {
    Currency::from_code(code).unwrap()
}

fn amt(minor: u64, code: &str) -> Amount {
    Amount::from_minor(minor, cur(code)).unwrap()
}

/// SGD 100.00 paid as MYR 333.37 (rate 3.3337).
fn quote() -> QuoteSnapshot {
    QuoteSnapshot {
        quote_id: "019a8f3e-0000-7000-8000-000000000001".to_owned(),
        merchant_amount: amt(10_000, "SGD"),
        payer_amount: amt(33_337, "MYR"),
        fees: amt(0, "MYR"),
        mid_rate: "3.3004".parse::<Decimal>().unwrap(),
        rate: "3.3337".parse::<Decimal>().unwrap(),
        markup_bps: 100,
        rate_source: "test".to_owned(),
        rate_as_of_ms: 1_763_640_000_000,
    }
}

fn new_payment(client: &str, request: &str) -> NewPayment {
    NewPayment {
        merchant: qrbridge::payment::Merchant {
            name: "KOPI STALL".to_owned(),
            city: "SINGAPORE".to_owned(),
            country: "SG".to_owned(),
            mcc: "5812".to_owned(),
            merchant_id: "M0001".to_owned(),
        },
        client_id: client.to_owned(),
        request_id: request.to_owned(),
        customer: CustomerId::new("cust-secret-4711"),
        quote: quote(),
        routing: Routing {
            acquirer: "sim".to_owned(),
            merchant_id: "M0001".to_owned(),
            terminal_id: Some("QRB00001".to_owned()),
            scheme: "SG.PAYNOW".to_owned(),
            qr_reference: Some("INV-42".to_owned()),
        },
        limits: DailyLimits::default(),
        origin: qrbridge::journal::Origin::default(),
    }
}

fn acq(stan: &str) -> AcquirerData {
    AcquirerData {
        stan: Some(stan.to_owned()),
        transmitted: Some("1121104500".to_owned()),
        rrn: Some(format!("632510{stan}")),
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

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A payment driven through `events` from QUOTED.
async fn payment_after(j: &RedbJournal, request: &str, events: Vec<PaymentEvent>) -> Payment {
    let mut p = j.record_intent(new_payment("w1", request)).await.unwrap();
    for e in events {
        p = j.update_payment(p.id, e).await.unwrap();
    }
    p
}

fn sent() -> PaymentEvent {
    PaymentEvent::Sent {
        acquirer: acq("000001"),
    }
}

fn unknown() -> PaymentEvent {
    PaymentEvent::Unknown {
        cause: "timeout".to_owned(),
        acquirer: AcquirerData::default(),
    }
}

fn refund_req(payment: PaymentId, request: &str, minor: u64) -> NewRefund {
    NewRefund {
        client_id: "w1".to_owned(),
        request_id: request.to_owned(),
        payment_id: payment,
        amount: amt(minor, "SGD"),
        reason: "customer request".to_owned(),
        origin: qrbridge::journal::Origin::default(),
        trace: AcquirerData::default(),
    }
}

fn refund_ok() -> RefundEvent {
    RefundEvent::Approved {
        acquirer: AcquirerData {
            response_code: Some("00".to_owned()),
            ..AcquirerData::default()
        },
    }
}

// ---- payments -----------------------------------------------------------------------------

#[test]
fn a_payment_goes_quoted_sent_success_and_keeps_its_history() {
    let dir = TempDir::new("happy");
    let j = open(&dir.file());
    rt().block_on(async {
        let p = j.record_intent(new_payment("w1", "pay-1")).await.unwrap();
        assert_eq!(p.state, PaymentState::Quoted);
        let p = j.update_payment(p.id, sent()).await.unwrap();
        assert_eq!(p.state, PaymentState::Sent);
        let p = j.update_payment(p.id, approved()).await.unwrap();
        assert_eq!(p.state, PaymentState::Success);
        // Data merged from both events.
        assert_eq!(p.acquirer.stan.as_deref(), Some("000001"));
        assert_eq!(p.acquirer.auth_code.as_deref(), Some("A1B2C3"));
        assert_eq!(
            p.history.iter().map(|c| c.state).collect::<Vec<_>>(),
            vec![
                PaymentState::Quoted,
                PaymentState::Sent,
                PaymentState::Success
            ]
        );
        let stored = j.payment(p.id).await.unwrap().unwrap();
        assert_eq!(stored, p);
        let by_request = j.payment_by_request("w1", "pay-1").await.unwrap().unwrap();
        assert_eq!(by_request.id, p.id);
        assert!(j.payment_by_request("w2", "pay-1").await.unwrap().is_none());
        assert_eq!(stored.quote.payer_amount, amt(33_337, "MYR"));
        assert_eq!(stored.quote.rate, "3.3337".parse::<Decimal>().unwrap());
    });
}

/// Every (state, event) pair: the allowed set is written out here from the spec's diagram.
#[test]
fn every_transition_not_in_the_diagram_is_refused_and_changes_nothing() {
    let dir = TempDir::new("matrix");
    let j = open(&dir.file());
    type Path = Vec<PaymentEvent>;
    let reversing = || PaymentEvent::Reversing {
        reversal_id: Some(7),
    };
    let states: Vec<(PaymentState, Path)> = vec![
        (PaymentState::Quoted, vec![]),
        (PaymentState::Sent, vec![sent()]),
        (PaymentState::Success, vec![sent(), approved()]),
        (
            PaymentState::Failed,
            vec![
                sent(),
                PaymentEvent::Declined {
                    acquirer: AcquirerData::default(),
                },
            ],
        ),
        (PaymentState::Unknown, vec![sent(), unknown()]),
        (
            PaymentState::Reversing,
            vec![sent(), unknown(), reversing()],
        ),
        (
            PaymentState::Reversed,
            vec![
                sent(),
                unknown(),
                reversing(),
                PaymentEvent::Reversed {
                    response_code: "00".into(),
                },
            ],
        ),
        (
            PaymentState::ManualReview,
            vec![
                sent(),
                unknown(),
                PaymentEvent::ManualReview {
                    note: "no reversal queued".into(),
                },
            ],
        ),
        (
            PaymentState::Cancelled,
            vec![
                sent(),
                approved(),
                reversing(),
                PaymentEvent::Reversed {
                    response_code: "00".into(),
                },
            ],
        ),
    ];
    let events: Vec<(&str, PaymentEvent)> = vec![
        ("Sent", sent()),
        (
            "NotSent",
            PaymentEvent::NotSent {
                reason: "link down".into(),
            },
        ),
        ("Approved", approved()),
        (
            "Declined",
            PaymentEvent::Declined {
                acquirer: AcquirerData::default(),
            },
        ),
        ("Unknown", unknown()),
        ("Reversing", reversing()),
        (
            "Reversed",
            PaymentEvent::Reversed {
                response_code: "00".into(),
            },
        ),
        (
            "ManualReview",
            PaymentEvent::ManualReview { note: "x".into() },
        ),
    ];
    let allowed: HashMap<PaymentState, Vec<(&str, PaymentState)>> = HashMap::from([
        (
            PaymentState::Quoted,
            vec![
                ("Sent", PaymentState::Sent),
                ("NotSent", PaymentState::Failed),
            ],
        ),
        (
            PaymentState::Sent,
            vec![
                ("NotSent", PaymentState::Failed),
                ("Approved", PaymentState::Success),
                ("Declined", PaymentState::Failed),
                ("Unknown", PaymentState::Unknown),
            ],
        ),
        (
            PaymentState::Success,
            vec![("Reversing", PaymentState::Reversing)],
        ),
        (
            PaymentState::Unknown,
            vec![
                ("Reversing", PaymentState::Reversing),
                ("ManualReview", PaymentState::ManualReview),
            ],
        ),
        (
            PaymentState::Reversing,
            vec![
                ("Reversed", PaymentState::Reversed),
                ("ManualReview", PaymentState::ManualReview),
            ],
        ),
    ]);
    rt().block_on(async {
        let mut n = 0;
        for (state, path) in &states {
            for (name, event) in &events {
                n += 1;
                let p = payment_after(&j, &format!("m-{n}"), path.clone()).await;
                assert_eq!(p.state, *state);
                let expected = allowed
                    .get(state)
                    .and_then(|v| v.iter().find(|(e, _)| e == name))
                    .map(|(_, to)| *to);
                match (j.update_payment(p.id, event.clone()).await, expected) {
                    (Ok(next), Some(to)) => assert_eq!(next.state, to, "{state} + {name}"),
                    (Err(e), None) => {
                        assert!(e.is_conflict(), "{state} + {name}: {e}");
                        assert_eq!(
                            e,
                            JournalError::IllegalTransition {
                                payment: p.id,
                                from: *state,
                                event: name,
                            }
                        );
                        assert_eq!(j.payment(p.id).await.unwrap().unwrap(), p, "unchanged");
                    }
                    (got, want) => panic!("{state} + {name}: got {got:?}, want {want:?}"),
                }
            }
        }
    });
}

#[test]
fn an_unknown_outcome_is_reversed_or_goes_to_manual_review() {
    let dir = TempDir::new("unknown");
    let j = open(&dir.file());
    rt().block_on(async {
        let p = payment_after(&j, "u1", vec![sent(), unknown()]).await;
        assert_eq!(p.note.as_deref(), Some("timeout"));
        let p = j
            .update_payment(
                p.id,
                PaymentEvent::Reversing {
                    reversal_id: Some(3),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            p.reversal,
            Some(ReversalLink {
                reversal_id: Some(3),
                purpose: ReversalPurpose::Unknown
            })
        );
        let p = j
            .update_payment(
                p.id,
                PaymentEvent::Reversed {
                    response_code: "00".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(p.state, PaymentState::Reversed);

        let q = payment_after(
            &j,
            "u2",
            vec![
                sent(),
                unknown(),
                PaymentEvent::Reversing { reversal_id: None },
                PaymentEvent::ManualReview {
                    note: "reversal bound reached".into(),
                },
            ],
        )
        .await;
        assert_eq!(q.state, PaymentState::ManualReview);
        assert_eq!(q.note.as_deref(), Some("reversal bound reached"));
    });
}

#[test]
fn a_cancel_reverses_an_approval_unless_a_refund_is_reserved() {
    let dir = TempDir::new("cancel");
    let j = open(&dir.file());
    rt().block_on(async {
        let p = payment_after(&j, "c1", vec![sent(), approved()]).await;
        let p = j
            .update_payment(
                p.id,
                PaymentEvent::Reversing {
                    reversal_id: Some(1),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            p.reversal.as_ref().unwrap().purpose,
            ReversalPurpose::Cancel
        );
        let p = j
            .update_payment(
                p.id,
                PaymentEvent::Reversed {
                    response_code: "00".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(p.state, PaymentState::Cancelled);
        // A cancelled payment cannot be refunded.
        let e = j
            .reserve_refund(refund_req(p.id, "r-c1", 100))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            JournalError::NotRefundable {
                payment: p.id,
                state: PaymentState::Cancelled
            }
        );

        let q = payment_after(&j, "c2", vec![sent(), approved()]).await;
        j.reserve_refund(refund_req(q.id, "r-c2", 100))
            .await
            .unwrap();
        let e = j
            .update_payment(q.id, PaymentEvent::Reversing { reversal_id: None })
            .await
            .unwrap_err();
        assert!(e.is_conflict(), "{e}");
    });
}

#[test]
fn one_payment_per_client_and_request_id() {
    let dir = TempDir::new("dup");
    let j = open(&dir.file());
    rt().block_on(async {
        j.record_intent(new_payment("w1", "same")).await.unwrap();
        let e = j
            .record_intent(new_payment("w1", "same"))
            .await
            .unwrap_err();
        assert!(e.is_conflict());
        assert!(matches!(
            e,
            JournalError::Duplicate {
                kind: RecordKind::Payment,
                ..
            }
        ));
        // Another client may use the same request id.
        j.record_intent(new_payment("w2", "same")).await.unwrap();
    });
}

#[test]
fn the_customer_id_never_shows_in_debug_output() {
    let dir = TempDir::new("redact");
    let j = open(&dir.file());
    rt().block_on(async {
        let p = j.record_intent(new_payment("w1", "r")).await.unwrap();
        let text = format!("{p:?} {}", p.customer);
        assert!(!text.contains("cust-secret-4711"), "{text}");
        assert_eq!(p.customer.expose(), "cust-secret-4711");
    });
}

#[cfg(unix)]
#[test]
fn a_new_journal_file_is_private_to_its_owner() {
    if redb_only("a_new_journal_file_is_private_to_its_owner") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("perm");
    drop(open(&dir.file()));
    let mode = std::fs::metadata(dir.file()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[test]
fn payment_ids_are_distinct_uuid_v7() {
    let dir = TempDir::new("ids");
    let j = open(&dir.file());
    rt().block_on(async {
        let mut seen = HashSet::new();
        for i in 0..50 {
            let p = j
                .record_intent(new_payment("w1", &format!("i{i}")))
                .await
                .unwrap();
            assert_eq!(p.id.as_uuid().get_version_num(), 7);
            assert!(seen.insert(p.id));
            let parsed: PaymentId = p.id.to_string().parse().unwrap();
            assert_eq!(parsed, p.id);
        }
    });
}

#[test]
fn without_group_commit_every_write_is_its_own_commit() {
    let dir = TempDir::new("stats");
    let single = Arc::new(open_with(JournalConfig {
        max_batch: 1,
        ..JournalConfig::new(dir.0.join("single.redb"))
    }));
    let grouped = Arc::new(open(&dir.0.join("grouped.redb")));
    rt().block_on(async {
        for j in [&single, &grouped] {
            let tasks: Vec<_> = (0..20)
                .map(|i| {
                    let j = Arc::clone(j);
                    tokio::spawn(async move {
                        j.record_intent(new_payment("w1", &format!("s{i}"))).await
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap().unwrap();
            }
        }
    });
    let s = single.stats();
    assert_eq!((s.writes, s.commits, s.largest_batch), (20, 20, 1));
    let g = grouped.stats();
    assert_eq!(g.writes, 20);
    assert!((1..=20).contains(&g.commits), "{g:?}");
    assert_eq!(g.failed_batches, 0);
}

fn limited(request: &str, customer: &str, limits: DailyLimits) -> NewPayment {
    NewPayment {
        merchant: qrbridge::payment::Merchant {
            name: "KOPI STALL".to_owned(),
            city: "SINGAPORE".to_owned(),
            country: "SG".to_owned(),
            mcc: "5812".to_owned(),
            merchant_id: "M0001".to_owned(),
        },
        customer: CustomerId::new(customer),
        limits,
        ..new_payment("w1", request)
    }
}

#[test]
fn daily_limits_count_amount_and_give_back_what_did_not_move_money() {
    let dir = TempDir::new("limits");
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(20_000 * 86_400 + 3_600);
    let clock = Arc::new(ManualClock::new(start));
    let j = open_with(JournalConfig {
        clock: clock.clone(),
        ..JournalConfig::new(dir.file())
    });
    let alice = CustomerId::new("alice");
    let sgd = cur("SGD");
    rt().block_on(async {
        // Each payment is SGD 100.00; at most 3 a day and SGD 250.00.
        let three = DailyLimits {
            max_count: Some(3),
            max_amount: None,
        };
        let a1 = j
            .record_intent(limited("a1", "alice", three))
            .await
            .unwrap();
        let a2 = j
            .record_intent(limited("a2", "alice", three))
            .await
            .unwrap();
        j.record_intent(limited("a3", "alice", three))
            .await
            .unwrap();
        let e = j
            .record_intent(limited("a4", "alice", three))
            .await
            .unwrap_err();
        assert!(e.is_limit_exceeded(), "{e}");
        assert_eq!(
            e,
            JournalError::LimitExceeded {
                limit: "count",
                used: 3,
                requested: 1,
                max: 3
            }
        );
        assert!(j.payment_by_request("w1", "a4").await.unwrap().is_none());
        // Another customer is not affected.
        j.record_intent(limited("b1", "bob", three)).await.unwrap();
        assert_eq!(
            j.daily_usage("w1", &alice, sgd, 20_000).await.unwrap(),
            DailyUsage {
                count: 3,
                amount: 30_000
            }
        );

        // A declined payment gives its share back; an approved one does not.
        j.update_payment(a1.id, sent()).await.unwrap();
        j.update_payment(
            a1.id,
            PaymentEvent::Declined {
                acquirer: AcquirerData::default(),
            },
        )
        .await
        .unwrap();
        j.update_payment(a2.id, sent()).await.unwrap();
        j.update_payment(a2.id, approved()).await.unwrap();
        assert_eq!(
            j.daily_usage("w1", &alice, sgd, 20_000).await.unwrap(),
            DailyUsage {
                count: 2,
                amount: 20_000
            }
        );
        j.record_intent(limited("a4", "alice", three))
            .await
            .unwrap();

        // The amount limit: 300.00 used, 250.00 allowed → refused (on a new day it fits).
        let amount = DailyLimits {
            max_count: None,
            max_amount: Some(35_000),
        };
        let e = j
            .record_intent(limited("a5", "alice", amount))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            JournalError::LimitExceeded {
                limit: "amount",
                used: 30_000,
                requested: 10_000,
                max: 35_000
            }
        );
        clock.advance(Duration::from_secs(86_400));
        j.record_intent(limited("a5", "alice", amount))
            .await
            .unwrap();
        assert_eq!(
            j.daily_usage("w1", &alice, sgd, 20_001).await.unwrap(),
            DailyUsage {
                count: 1,
                amount: 10_000
            }
        );
        // A payment of yesterday that fails now gives back yesterday's allowance.
        let a3 = j.payment_by_request("w1", "a3").await.unwrap().unwrap();
        j.update_payment(
            a3.id,
            PaymentEvent::NotSent {
                reason: "link down".into(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            j.daily_usage("w1", &alice, sgd, 20_000)
                .await
                .unwrap()
                .count,
            2
        );
        assert_eq!(utc_day(start), 20_000);
    });
}

#[test]
fn concurrent_payments_never_overshoot_a_daily_limit() {
    let dir = TempDir::new("limits-race");
    let j = Arc::new(open(&dir.file()));
    rt().block_on(thirty_intents_race_a_limit_of_five(&[j]));
}

/// Thirty intents of one customer with a daily limit of five payments, all at once, dealt to
/// `journals` in turn: exactly five are recorded, every other one is refused for the limit.
async fn thirty_intents_race_a_limit_of_five(journals: &[Arc<RedbJournal>]) {
    let limits = DailyLimits {
        max_count: Some(5),
        max_amount: None,
    };
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let j = Arc::clone(&journals[i % journals.len()]);
            tokio::spawn(async move {
                j.record_intent(limited(&format!("c{i}"), "carol", limits))
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(e.is_limit_exceeded(), "{e}"),
        }
    }
    assert_eq!(ok, 5);
}

// ---- refunds ------------------------------------------------------------------------------

#[test]
fn partial_refunds_add_up_to_the_original_and_no_further() {
    let dir = TempDir::new("refunds");
    let j = open(&dir.file());
    rt().block_on(async {
        let p = payment_after(&j, "p", vec![sent(), approved()]).await;
        // 30.00 + 30.00 + 40.00 SGD of 100.00; payer MYR 333.37 shared out:
        // P(3000)=round(33337×0.3)=10001.1→10001; P(6000)=20002.2→20002; P(10000)=33337.
        let r1 = j
            .reserve_refund(refund_req(p.id, "r1", 3_000))
            .await
            .unwrap();
        assert_eq!(r1.state, RefundState::Pending);
        assert_eq!(r1.payer_amount, amt(10_001, "MYR"));
        let r1 = j.update_refund(r1.id, refund_ok()).await.unwrap();
        assert_eq!(r1.state, RefundState::Success);
        let after1 = j.payment(p.id).await.unwrap().unwrap();
        assert_eq!(after1.state, PaymentState::PartiallyRefunded);
        assert_eq!(after1.refunded, amt(3_000, "SGD"));

        let r2 = j
            .reserve_refund(refund_req(p.id, "r2", 3_000))
            .await
            .unwrap();
        assert_eq!(r2.payer_amount, amt(10_001, "MYR"));
        j.update_refund(r2.id, refund_ok()).await.unwrap();

        // 40.01 is one cent too many.
        let e = j
            .reserve_refund(refund_req(p.id, "r3", 4_001))
            .await
            .unwrap_err();
        assert!(e.is_refund_exceeded(), "{e}");
        assert_eq!(
            e,
            JournalError::RefundExceedsPayment {
                payment: p.id,
                requested: 4_001,
                remaining: 4_000
            }
        );
        let r3 = j
            .reserve_refund(refund_req(p.id, "r3", 4_000))
            .await
            .unwrap();
        assert_eq!(r3.payer_amount, amt(13_335, "MYR"));
        j.update_refund(r3.id, refund_ok()).await.unwrap();
        let done = j.payment(p.id).await.unwrap().unwrap();
        assert_eq!(done.state, PaymentState::Refunded);
        assert_eq!(done.refunded, amt(10_000, "SGD"));
        let all = j.refunds_of(p.id).await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(
            all.iter().map(|r| r.payer_amount.minor()).sum::<u64>(),
            33_337
        );
        let e = j
            .reserve_refund(refund_req(p.id, "r4", 1))
            .await
            .unwrap_err();
        assert!(matches!(e, JournalError::NotRefundable { .. }), "{e}");
    });
}

#[test]
fn a_failed_refund_releases_its_amount_and_an_unknown_one_holds_it() {
    let dir = TempDir::new("refund-fail");
    let j = open(&dir.file());
    rt().block_on(async {
        let p = payment_after(&j, "p", vec![sent(), approved()]).await;
        let big = j
            .reserve_refund(refund_req(p.id, "a", 10_000))
            .await
            .unwrap();
        assert!(
            j.reserve_refund(refund_req(p.id, "b", 1))
                .await
                .unwrap_err()
                .is_refund_exceeded()
        );
        let failed = j
            .update_refund(
                big.id,
                RefundEvent::Declined {
                    acquirer: AcquirerData {
                        response_code: Some("05".into()),
                        ..AcquirerData::default()
                    },
                },
            )
            .await
            .unwrap();
        assert_eq!(failed.state, RefundState::Failed);
        let p_now = j.payment(p.id).await.unwrap().unwrap();
        assert_eq!(p_now.state, PaymentState::Success);
        assert_eq!(p_now.refundable(), 10_000);
        // A failed refund is final.
        assert!(
            j.update_refund(big.id, refund_ok())
                .await
                .unwrap_err()
                .is_conflict()
        );

        let u = j
            .reserve_refund(refund_req(p.id, "c", 6_000))
            .await
            .unwrap();
        let u = j
            .update_refund(
                u.id,
                RefundEvent::Unknown {
                    cause: "timeout".into(),
                    acquirer: AcquirerData::default(),
                },
            )
            .await
            .unwrap();
        assert_eq!(u.state, RefundState::Unknown);
        assert_eq!(
            j.reserve_refund(refund_req(p.id, "d", 4_001))
                .await
                .unwrap_err(),
            JournalError::RefundExceedsPayment {
                payment: p.id,
                requested: 4_001,
                remaining: 4_000
            }
        );
        // Resolved later by inquiry.
        let u = j.update_refund(u.id, refund_ok()).await.unwrap();
        assert_eq!(u.state, RefundState::Success);
        assert_eq!(
            j.payment(p.id).await.unwrap().unwrap().state,
            PaymentState::PartiallyRefunded
        );
    });
}

#[test]
fn refunds_are_refused_for_bad_requests() {
    let dir = TempDir::new("refund-bad");
    let j = open(&dir.file());
    rt().block_on(async {
        let p = payment_after(&j, "p", vec![sent(), approved()]).await;
        let pending = payment_after(&j, "q", vec![sent()]).await;
        let e = j
            .reserve_refund(refund_req(pending.id, "x", 1))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            JournalError::NotRefundable {
                payment: pending.id,
                state: PaymentState::Sent
            }
        );
        let e = j
            .reserve_refund(refund_req(p.id, "zero", 0))
            .await
            .unwrap_err();
        assert!(matches!(e, JournalError::Invalid { .. }), "{e}");
        let mut wrong = refund_req(p.id, "ccy", 100);
        wrong.amount = amt(100, "MYR");
        let e = j.reserve_refund(wrong).await.unwrap_err();
        assert!(matches!(e, JournalError::Invalid { .. }), "{e}");
        let mut other = refund_req(p.id, "other", 100);
        other.client_id = "w2".into();
        assert!(j.reserve_refund(other).await.unwrap_err().is_not_found());

        let r = j
            .reserve_refund(refund_req(p.id, "once", 100))
            .await
            .unwrap();
        let e = j
            .reserve_refund(refund_req(p.id, "once", 100))
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            JournalError::Duplicate {
                kind: RecordKind::Refund,
                ..
            }
        ));
        assert_eq!(
            j.refund_by_request("w1", "once").await.unwrap().unwrap().id,
            r.id
        );
        assert_eq!(j.refund(r.id).await.unwrap().unwrap(), r);
        // Nothing refused above reserved anything.
        assert_eq!(j.payment(p.id).await.unwrap().unwrap().refundable(), 9_900);
    });
}

#[test]
fn concurrent_refunds_never_overshoot_the_original() {
    let dir = TempDir::new("refund-race");
    let j = Arc::new(open(&dir.file()));
    rt().block_on(async {
        let p = payment_after(&j, "p", vec![sent(), approved()]).await;
        // 40 refunds of 3.00 against 100.00: 33 fit (99.00), 7 must be refused.
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let j = Arc::clone(&j);
                tokio::spawn(async move {
                    j.reserve_refund(refund_req(p.id, &format!("r{i}"), 300))
                        .await
                })
            })
            .collect();
        let mut ok = 0;
        let mut exceeded = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) if e.is_refund_exceeded() => exceeded += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!((ok, exceeded), (33, 7));
        let p = j.payment(p.id).await.unwrap().unwrap();
        assert_eq!(p.refunds_reserved, amt(9_900, "SGD"));
        let refunds = j.refunds_of(p.id).await.unwrap();
        assert_eq!(refunds.len(), 33);
        assert_eq!(refunds.iter().map(|r| r.amount.minor()).sum::<u64>(), 9_900);
    });
}

// ---- idempotency --------------------------------------------------------------------------

fn key(req: &str) -> IdempotencyKey {
    IdempotencyKey::new("w1", RequestKind::Payment, req)
}

#[test]
fn idempotency_new_in_flight_replay_and_inconsistent() {
    let dir = TempDir::new("idem");
    let j = open(&dir.file());
    rt().block_on(async {
        let body = BodyHash::of(br#"{"paymentRequestId":"a","quoteId":"q"}"#);
        let other = BodyHash::of(br#"{"paymentRequestId":"a","quoteId":"z"}"#);
        assert_eq!(j.begin(key("a"), body).await.unwrap(), Begin::New);
        assert_eq!(j.begin(key("a"), body).await.unwrap(), Begin::InFlight);
        assert_eq!(j.begin(key("a"), other).await.unwrap(), Begin::Inconsistent);
        // Same request id, other kind: a different request.
        let refund_key = IdempotencyKey::new("w1", RequestKind::Refund, "a");
        assert_eq!(j.begin(refund_key, other).await.unwrap(), Begin::New);

        let response = StoredResponse {
            status: 200,
            body: br#"{"result":{"resultStatus":"S"}}"#.to_vec(),
        };
        j.complete(key("a"), response.clone()).await.unwrap();
        assert_eq!(
            j.begin(key("a"), body).await.unwrap(),
            Begin::Replay(response.clone())
        );
        assert_eq!(j.begin(key("a"), other).await.unwrap(), Begin::Inconsistent);
        let e = j.complete(key("a"), response).await.unwrap_err();
        assert!(matches!(e, JournalError::NotInFlight { .. }), "{e}");
        let e = j
            .complete(
                key("never"),
                StoredResponse {
                    status: 200,
                    body: vec![],
                },
            )
            .await
            .unwrap_err();
        assert!(e.is_conflict(), "{e}");
    });
}

#[test]
fn an_abandoned_request_can_be_retried() {
    let dir = TempDir::new("abandon");
    let j = open(&dir.file());
    rt().block_on(async {
        let body = BodyHash::of(b"x");
        assert!(!j.abandon(key("b")).await.unwrap());
        assert_eq!(j.begin(key("b"), body).await.unwrap(), Begin::New);
        assert!(j.abandon(key("b")).await.unwrap());
        assert_eq!(j.begin(key("b"), body).await.unwrap(), Begin::New);
        j.complete(
            key("b"),
            StoredResponse {
                status: 400,
                body: b"{}".to_vec(),
            },
        )
        .await
        .unwrap();
        // A completed request cannot be abandoned.
        assert!(j.abandon(key("b")).await.unwrap_err().is_conflict());
    });
}

#[test]
fn fifty_concurrent_duplicates_get_exactly_one_new() {
    let dir = TempDir::new("idem-race");
    let j = Arc::new(open(&dir.file()));
    rt().block_on(async {
        let body = BodyHash::of(b"same body");
        let barrier = Arc::new(tokio::sync::Barrier::new(50));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let j = Arc::clone(&j);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    j.begin(key("dup"), body).await.unwrap()
                })
            })
            .collect();
        let mut new = 0;
        let mut in_flight = 0;
        for t in tasks {
            match t.await.unwrap() {
                Begin::New => new += 1,
                Begin::InFlight => in_flight += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((new, in_flight), (1, 49));
    });
}

#[test]
fn completed_requests_are_purged_after_the_retention_and_in_flight_ones_never() {
    let dir = TempDir::new("retention");
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_700_000);
    let clock = Arc::new(ManualClock::new(start));
    let config = JournalConfig {
        idempotency_retention: Duration::from_secs(3600),
        clock: clock.clone(),
        ..JournalConfig::new(dir.file())
    };
    let j = open_with(config);
    rt().block_on(async {
        let body = BodyHash::of(b"b");
        let response = StoredResponse {
            status: 200,
            body: b"ok".to_vec(),
        };
        j.begin(key("old"), body).await.unwrap();
        j.complete(key("old"), response.clone()).await.unwrap();
        j.begin(key("stuck"), body).await.unwrap();
        clock.advance(Duration::from_secs(1800));
        j.begin(key("young"), body).await.unwrap();
        j.complete(key("young"), response.clone()).await.unwrap();

        clock.advance(Duration::from_secs(1799));
        assert_eq!(j.purge_expired().await.unwrap(), 0, "old is 59:59 old");
        clock.advance(Duration::from_secs(2));
        assert_eq!(j.purge_expired().await.unwrap(), 1, "old is 60:01 old");
        assert_eq!(j.begin(key("old"), body).await.unwrap(), Begin::New);
        assert_eq!(
            j.begin(key("young"), body).await.unwrap(),
            Begin::Replay(response)
        );
        clock.advance(Duration::from_secs(10 * 24 * 3600));
        assert_eq!(j.purge_expired().await.unwrap(), 1, "young only");
        assert_eq!(j.begin(key("stuck"), body).await.unwrap(), Begin::InFlight);
    });
}

// ---- recovery and reopening ---------------------------------------------------------------

#[test]
fn unresolved_lists_exactly_what_recovery_must_act_on() {
    let dir = TempDir::new("unresolved");
    let j = open(&dir.file());
    rt().block_on(async {
        assert!(j.unresolved().await.unwrap().is_empty());
        let quoted = payment_after(&j, "quoted", vec![]).await;
        let sent_p = payment_after(&j, "sent", vec![sent()]).await;
        let unknown_p = payment_after(&j, "unknown", vec![sent(), unknown()]).await;
        let reversing = payment_after(
            &j,
            "reversing",
            vec![
                sent(),
                unknown(),
                PaymentEvent::Reversing { reversal_id: None },
            ],
        )
        .await;
        let ok = payment_after(&j, "ok", vec![sent(), approved()]).await;
        payment_after(
            &j,
            "declined",
            vec![
                sent(),
                PaymentEvent::Declined {
                    acquirer: AcquirerData::default(),
                },
            ],
        )
        .await;
        let pending = j
            .reserve_refund(refund_req(ok.id, "r1", 100))
            .await
            .unwrap();
        let settled = j
            .reserve_refund(refund_req(ok.id, "r2", 100))
            .await
            .unwrap();
        j.update_refund(settled.id, refund_ok()).await.unwrap();
        j.begin(key("open"), BodyHash::of(b"1")).await.unwrap();
        j.begin(key("closed"), BodyHash::of(b"1")).await.unwrap();
        j.complete(
            key("closed"),
            StoredResponse {
                status: 200,
                body: vec![],
            },
        )
        .await
        .unwrap();

        let u = j.unresolved().await.unwrap();
        let ids: HashSet<PaymentId> = u.payments.iter().map(|p| p.id).collect();
        assert_eq!(
            ids,
            HashSet::from([quoted.id, sent_p.id, unknown_p.id, reversing.id])
        );
        assert_eq!(
            u.refunds.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![pending.id]
        );
        assert_eq!(u.in_flight, vec![key("open")]);
        assert!(u.reversals.is_empty());

        // Resolving them empties the list.
        j.update_payment(
            quoted.id,
            PaymentEvent::NotSent {
                reason: "restart".into(),
            },
        )
        .await
        .unwrap();
        j.update_payment(sent_p.id, approved()).await.unwrap();
        j.update_payment(
            unknown_p.id,
            PaymentEvent::ManualReview {
                note: "restart".into(),
            },
        )
        .await
        .unwrap();
        j.update_payment(
            reversing.id,
            PaymentEvent::Reversed {
                response_code: "00".into(),
            },
        )
        .await
        .unwrap();
        j.update_refund(pending.id, refund_ok()).await.unwrap();
        j.abandon(key("open")).await.unwrap();
        assert!(j.unresolved().await.unwrap().is_empty());
    });
}

#[test]
fn a_reopened_journal_has_everything_that_was_acknowledged() {
    let dir = TempDir::new("reopen");
    let (p, r) = {
        let j = open(&dir.file());
        rt().block_on(async {
            let p = payment_after(&j, "p", vec![sent(), approved()]).await;
            let r = j
                .reserve_refund(refund_req(p.id, "r", 2_500))
                .await
                .unwrap();
            j.begin(key("k"), BodyHash::of(b"k")).await.unwrap();
            j.complete(
                key("k"),
                StoredResponse {
                    status: 201,
                    body: b"resp".to_vec(),
                },
            )
            .await
            .unwrap();
            (j.payment(p.id).await.unwrap().unwrap(), r)
        })
    };
    let j = open(&dir.file());
    rt().block_on(async {
        assert_eq!(j.payment(p.id).await.unwrap().unwrap(), p);
        assert_eq!(j.refund(r.id).await.unwrap().unwrap(), r);
        assert_eq!(
            j.begin(key("k"), BodyHash::of(b"k")).await.unwrap(),
            Begin::Replay(StoredResponse {
                status: 201,
                body: b"resp".to_vec()
            })
        );
        assert_eq!(j.unresolved().await.unwrap().refunds, vec![r]);
    });
}

#[test]
fn a_write_whose_future_is_dropped_after_the_first_poll_still_commits() {
    let dir = TempDir::new("dropped");
    let j = open(&dir.file());
    rt().block_on(async {
        let write = j.record_intent(new_payment("w1", "dropped"));
        tokio::select! {
            biased;
            // (Finishing within one poll would need a commit in nanoseconds; fine if it did.)
            _ = write => {}
            () = std::future::ready(()) => {}
        }
        // The write was queued; a later write is committed after it (one writer, in order).
        j.record_intent(new_payment("w1", "after")).await.unwrap();
        let p = j.payment_by_request("w1", "dropped").await.unwrap();
        assert_eq!(p.unwrap().state, PaymentState::Quoted);
    });
}

#[test]
fn the_journal_works_behind_dyn_journal() {
    let dir = TempDir::new("dyn");
    let j: Arc<dyn Journal> = Arc::new(open(&dir.file()));
    rt().block_on(async {
        let p = j.record_intent(new_payment("w1", "dyn")).await.unwrap();
        assert_eq!(
            j.payment(p.id).await.unwrap().unwrap().state,
            PaymentState::Quoted
        );
    });
}

#[test]
fn a_corrupt_record_is_an_error_naming_its_key() {
    if redb_only("a_corrupt_record_is_an_error_naming_its_key") {
        return;
    }
    let dir = TempDir::new("corrupt");
    let id = {
        let j = open(&dir.file());
        rt().block_on(async { j.record_intent(new_payment("w1", "c")).await.unwrap().id })
    };
    {
        let db = redb::Database::create(dir.file()).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("payments");
            let mut t = txn.open_table(def).unwrap();
            t.insert(
                id.as_uuid().as_bytes().as_slice(),
                b"\x01{\"id\":".as_slice(),
            )
            .unwrap();
        }
        txn.commit().unwrap();
    }
    let j = open(&dir.file());
    rt().block_on(async {
        let e = j.payment(id).await.unwrap_err();
        assert!(e.is_corrupt(), "{e}");
        assert!(e.to_string().contains(&id.to_string()), "{e}");
        // Recovery reports it too rather than skipping it.
        assert!(j.unresolved().await.unwrap_err().is_corrupt());
        let e = j.update_payment(id, sent()).await.unwrap_err();
        assert!(e.is_corrupt(), "{e}");
    });
}

#[test]
fn a_file_from_a_future_format_is_refused() {
    if redb_only("a_file_from_a_future_format_is_refused") {
        return;
    }
    let dir = TempDir::new("format");
    drop(open(&dir.file()));
    {
        let db = redb::Database::create(dir.file()).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
            txn.open_table(def).unwrap().insert("format", 99).unwrap();
        }
        txn.commit().unwrap();
    }
    let e = RedbJournal::open(JournalConfig::new(dir.file())).unwrap_err();
    assert_eq!(
        e,
        JournalError::UnsupportedFormat {
            found: 99,
            supported: FORMAT_VERSION
        }
    );
}

// ---- the reversal queue -------------------------------------------------------------------

fn new_reversal(stan: &str) -> NewReversal {
    NewReversal {
        reason: ReversalReason::Timeout,
        request: b"0400\xf2\x3a0000".to_vec(),
        original_stan: stan.to_owned(),
        original_rrn: format!("632510{stan}"),
    }
}

fn attempt(n: u32, result: AttemptResult) -> Attempt {
    Attempt {
        number: n,
        mti: if n == 1 { "0400" } else { "0401" }.to_owned(),
        at_unix_ms: 1_763_700_000_000 + u64::from(n),
        result,
    }
}

/// The `ReversalStore` contract (acquirer/reversal.rs), checked the same way on every store.
fn reversal_store_contract(s: &dyn ReversalStore) {
    let a = s.enqueue(new_reversal("000001")).unwrap();
    let b = s.enqueue(new_reversal("000002")).unwrap();
    assert_eq!((a, b), (ReversalId(1), ReversalId(2)), "ids count from 1");
    assert_eq!(
        s.pending()
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        vec![a, b]
    );
    s.record_attempt(a, attempt(1, AttemptResult::NoAnswer))
        .unwrap();
    s.record_attempt(a, attempt(2, AttemptResult::NotSent("link down".into())))
        .unwrap();
    s.record_attempt(a, attempt(3, AttemptResult::Acknowledged("00".into())))
        .unwrap();
    s.note_late_response(a, "00".into()).unwrap();
    let ra = s.get(a).unwrap().unwrap();
    assert_eq!(
        ra.reversal,
        new_reversal("000001"),
        "request bytes kept exactly"
    );
    assert_eq!(
        ra.attempts
            .iter()
            .map(|x| x.mti.as_str())
            .collect::<Vec<_>>(),
        ["0400", "0401", "0401"]
    );
    assert_eq!(
        ra.attempts[1].result,
        AttemptResult::NotSent("link down".into())
    );
    assert_eq!(ra.late_responses, vec!["00".to_owned()]);
    assert_eq!(ra.state, ReversalState::Pending);

    assert!(
        s.resolve(a, ReversalState::Acknowledged { code: "00".into() })
            .unwrap()
    );
    assert!(
        !s.resolve(a, ReversalState::ManualReview).unwrap(),
        "stays resolved"
    );
    assert_eq!(
        s.get(a).unwrap().unwrap().state,
        ReversalState::Acknowledged { code: "00".into() }
    );
    assert_eq!(
        s.pending()
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        vec![b]
    );
    assert!(s.resolve(b, ReversalState::ManualReview).unwrap());
    assert!(s.pending().unwrap().is_empty());

    let missing = ReversalId(99);
    assert_eq!(s.get(missing).unwrap(), None);
    assert_eq!(
        s.record_attempt(missing, attempt(1, AttemptResult::NoAnswer)),
        Err(StoreError::NotFound(missing))
    );
    assert_eq!(
        s.resolve(missing, ReversalState::ManualReview),
        Err(StoreError::NotFound(missing))
    );
    assert_eq!(
        s.note_late_response(missing, "00".into()),
        Err(StoreError::NotFound(missing))
    );
}

#[test]
fn the_memory_store_meets_the_reversal_store_contract() {
    reversal_store_contract(&MemoryReversalStore::new());
}

#[test]
fn the_journal_meets_the_reversal_store_contract() {
    let dir = TempDir::new("saf");
    reversal_store_contract(&open(&dir.file()));
}

#[test]
fn pending_reversals_survive_a_restart_and_ids_are_never_reused() {
    let dir = TempDir::new("saf-reopen");
    {
        let j = open(&dir.file());
        let a = j.enqueue(new_reversal("000001")).unwrap();
        j.enqueue(new_reversal("000002")).unwrap();
        j.record_attempt(a, attempt(1, AttemptResult::ConnectionLost))
            .unwrap();
        j.resolve(a, ReversalState::ManualReview).unwrap();
    }
    let j = open(&dir.file());
    let pending = j.pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, ReversalId(2));
    assert_eq!(pending[0].reversal.original_stan, "000002");
    assert_eq!(j.get(ReversalId(1)).unwrap().unwrap().attempts.len(), 1);
    assert_eq!(j.enqueue(new_reversal("000003")).unwrap(), ReversalId(3));
    let u = rt().block_on(j.unresolved()).unwrap();
    assert_eq!(
        u.reversals.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ReversalId(2), ReversalId(3)]
    );
}

#[test]
fn the_reversal_store_can_be_called_from_runtime_tasks() {
    let dir = TempDir::new("saf-async");
    let j = Arc::new(open(&dir.file()));
    // As the link does: from spawned tasks, on both runtime flavours.
    let multi = rt();
    let ids: Vec<ReversalId> = multi.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let j = Arc::clone(&j);
                tokio::spawn(async move { j.enqueue(new_reversal(&format!("{i:06}"))).unwrap() })
            })
            .collect();
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap());
        }
        ids
    });
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let n = current.block_on(async {
        let j = Arc::clone(&j);
        tokio::spawn(async move { j.pending().unwrap().len() })
            .await
            .unwrap()
    });
    assert_eq!(n, 8);
    let unique: HashSet<_> = ids.into_iter().collect();
    assert_eq!(unique.len(), 8);
}

// ---- with the acquirer link ---------------------------------------------------------------

/// The pipeline's journal calls around a timed-out authorisation, with the journal as the link's
/// reversal store: intent → sent → unknown → reversing → reversed, and the reversal's history
/// durable across a reopen.
#[test]
fn a_timed_out_payment_is_reversed_through_the_durable_queue() {
    use qrbridge::acquirer::link::{Link, LinkConfig, Outcome, Timers};
    use qrbridge::acquirer::message::{Kind, PrivateData, Purchase, Terminal};
    use qrbridge::acquirer::reversal::RetryPolicy;
    use qrbridge::acquirer::sim::{Behaviour, SimConfig, Simulator, Status};
    use qrbridge::tls;
    use qrbridge::tls::pki::Pki;

    let dir = TempDir::new("link");
    let journal = Arc::new(open(&dir.file()));
    let (payment_id, reversal_id) = rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let pki = Pki::generate(&["localhost"], "qrbridge-test").unwrap();
            let server =
                tls::server_config(&pki.ca_cert, &pki.server_cert, &pki.server_key).unwrap();
            let mut sim_config = SimConfig::default();
            sim_config
                .by_amount
                .insert("10000".to_owned(), Behaviour::NeverAnswer);
            let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), server, sim_config)
                .await
                .unwrap();
            let client =
                tls::client_config(&pki.ca_cert, &pki.client_cert, &pki.client_key).unwrap();
            let mut config = LinkConfig::new(
                sim.addr().to_string(),
                "localhost",
                client,
                Terminal {
                    acquiring_institution: "12345678".to_owned(),
                    terminal_id: "QRB00001".to_owned(),
                },
            );
            config.timers = Timers {
                connect: Duration::from_secs(5),
                sign_on: Duration::from_secs(5),
                request: Duration::from_secs(10),
                echo_idle: Duration::from_secs(30),
                reconnect_min: Duration::from_millis(20),
                reconnect_max: Duration::from_millis(200),
            };
            config.reversal = RetryPolicy {
                answer_timeout: Duration::from_millis(400),
                first_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(100),
                max_attempts: 5,
            };
            let link = Link::start(config, journal.clone()).unwrap();
            link.ready(Duration::from_secs(10)).await.unwrap();

            let p = journal
                .record_intent(new_payment("w1", "timeout"))
                .await
                .unwrap();
            let p = journal
                .update_payment(
                    p.id,
                    PaymentEvent::Sent {
                        acquirer: AcquirerData::default(),
                    },
                )
                .await
                .unwrap();
            let purchase = Purchase {
                kind: Kind::Purchase,
                amount: p.quote.merchant_amount.minor(),
                currency: p.quote.merchant_amount.currency(),
                billing: None,
                merchant_id: p.routing.merchant_id.clone(),
                mcc: "5812".to_owned(),
                merchant_name: "Hawker".to_owned(),
                merchant_city: "Singapore".to_owned(),
                merchant_country: "SG".to_owned(),
                private: PrivateData::default(),
            };
            let outcome = link
                .authorise_within(&purchase, Duration::from_millis(300))
                .await
                .unwrap();
            let Outcome::Unknown(u) = outcome else {
                panic!("{outcome:?}")
            };
            let reversal = u
                .reversal
                .expect("the link queued a reversal in the journal");
            let p = journal
                .update_payment(
                    p.id,
                    PaymentEvent::Unknown {
                        cause: "timeout".to_owned(),
                        acquirer: AcquirerData {
                            stan: Some(u.stan.to_string()),
                            ..AcquirerData::default()
                        },
                    },
                )
                .await
                .unwrap();
            journal
                .update_payment(
                    p.id,
                    PaymentEvent::Reversing {
                        reversal_id: Some(reversal.0),
                    },
                )
                .await
                .unwrap();
            // The queue entry is durable and visible to recovery while it is pending or after.
            let record = loop {
                let r = journal.get(reversal).unwrap().expect("queued");
                if r.state != ReversalState::Pending {
                    break r;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            assert_eq!(
                record.state,
                ReversalState::Acknowledged { code: "00".into() }
            );
            assert_eq!(record.reversal.original_stan, u.stan.to_string());
            assert_eq!(record.attempts[0].mti, "0400");
            let ReversalState::Acknowledged { code } = record.state else {
                unreachable!()
            };
            let p = journal
                .update_payment(
                    p.id,
                    PaymentEvent::Reversed {
                        response_code: code,
                    },
                )
                .await
                .unwrap();
            assert_eq!(p.state, PaymentState::Reversed);
            assert_eq!(sim.ledger().entries[0].status, Status::Reversed);
            drop(link);
            (p.id, reversal)
        })
        .await
        .expect("bounded")
    });
    // The link's tasks may still hold the journal for a moment; reopen from a fresh handle.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut journal = Some(journal);
    let reopened = loop {
        journal = match Arc::try_unwrap(journal.take().unwrap()) {
            Ok(j) => {
                j.close();
                break open(&dir.file());
            }
            Err(arc) => Some(arc),
        };
        assert!(
            Instant::now() < deadline,
            "the link never released the journal"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let p = rt()
        .block_on(reopened.payment(payment_id))
        .unwrap()
        .unwrap();
    assert_eq!(p.state, PaymentState::Reversed);
    assert_eq!(p.reversal.unwrap().reversal_id, Some(reversal_id.0));
    assert!(reopened.pending().unwrap().is_empty());
    assert!(matches!(
        reopened.get(reversal_id).unwrap().unwrap().state,
        ReversalState::Acknowledged { .. }
    ));
}

// ---- crash test ---------------------------------------------------------------------------

const CRASH_ENV: &str = "QRBRIDGE_JOURNAL_CRASH_FILE";

/// The child of `acknowledged_writes_survive_sigkill`: writes payments from 16 concurrent tasks
/// and prints `ACK <request id> <state>` after each write returned. Does nothing unless started
/// by that test.
#[test]
#[ignore = "child process of acknowledged_writes_survive_sigkill"]
fn crash_child() {
    let Ok(file) = std::env::var(CRASH_ENV) else {
        return;
    };
    let j = Arc::new(open(Path::new(&file)));
    let deadline = Instant::now() + Duration::from_secs(60);
    rt().block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let j = Arc::clone(&j);
                tokio::spawn(async move {
                    let mut n = 0;
                    while Instant::now() < deadline {
                        let req = format!("t{t}-{n}");
                        n += 1;
                        let p = j.record_intent(new_payment("w1", &req)).await.unwrap();
                        let p = j.update_payment(p.id, sent()).await.unwrap();
                        println!("ACK {req} SENT");
                        j.update_payment(p.id, approved()).await.unwrap();
                        println!("ACK {req} SUCCESS");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if redb_only("acknowledged_writes_survive_sigkill") {
        return;
    }
    let dir = TempDir::new("crash");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_ENV, dir.file())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked: HashMap<String, PaymentState> = HashMap::new();
    let mut lines = BufReader::new(stdout).lines();
    // Kill after 400 acknowledgements, mid-stream: other writes are queued or committing.
    while acked.len() < 400 {
        let Some(line) = lines.next() else {
            panic!("the child stopped before being killed");
        };
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (req, state) = rest.split_once(' ').unwrap();
            let state = match state {
                "SENT" => PaymentState::Sent,
                "SUCCESS" => PaymentState::Success,
                other => panic!("{other}"),
            };
            acked.insert(req.to_owned(), state);
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    // Anything the child printed before it died was acknowledged too.
    for line in lines.map_while(Result::ok) {
        if let Some((req, state)) = line.strip_prefix("ACK ").and_then(|r| r.split_once(' ')) {
            let state = if state == "SUCCESS" {
                PaymentState::Success
            } else {
                PaymentState::Sent
            };
            let entry = acked.entry(req.to_owned()).or_insert(state);
            if state == PaymentState::Success {
                *entry = state;
            }
        }
    }
    child.wait().unwrap();

    {
        let mut db = redb::Database::open(dir.file()).unwrap();
        assert!(db.check_integrity().unwrap(), "redb integrity check");
    }
    let j = open(&dir.file());
    let snapshot = j.snapshot().unwrap();
    for (req, state) in &acked {
        let p = snapshot
            .payment_by_request("w1", req)
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged payment {req} lost"));
        match state {
            // SENT was acknowledged; the approval may or may not have committed before the kill.
            PaymentState::Sent => assert!(
                matches!(p.state, PaymentState::Sent | PaymentState::Success),
                "{req}: {}",
                p.state
            ),
            _ => assert_eq!(p.state, *state, "{req}"),
        }
    }
    // Recovery sees every payment that did not reach SUCCESS, and nothing else.
    let unresolved = snapshot.unresolved().unwrap();
    let listed: HashSet<&str> = unresolved
        .payments
        .iter()
        .map(|p| p.request_id.as_str())
        .collect();
    for p in &unresolved.payments {
        assert!(p.state.is_unresolved(), "{}: {}", p.request_id, p.state);
    }
    for req in acked.keys() {
        let p = snapshot.payment_by_request("w1", req).unwrap().unwrap();
        assert_eq!(
            listed.contains(req.as_str()),
            p.state == PaymentState::Sent,
            "{req}: {}",
            p.state
        );
    }
}

// ---- a payment's two writes on the critical path (§6a) -------------------------------------

fn open_req(request: &str, body: &[u8], payment: NewPayment) -> OpenPayment {
    OpenPayment {
        request: key(request),
        body: BodyHash::of(body),
        payment,
        sent: acq("000042"),
        shared_quote: false,
    }
}

fn finish_req(id: PaymentId, request: &str, events: Vec<PaymentEvent>) -> FinishPayment {
    FinishPayment {
        id,
        events,
        request: key(request),
        answer: Render::new(|p: &Payment| StoredResponse {
            status: 200,
            body: format!("{{\"state\":\"{}\"}}", p.state.as_str()).into_bytes(),
        }),
    }
}

fn opened(o: Opened) -> Payment {
    match o {
        Opened::Sent(p) => *p,
        Opened::Repeat(b) => panic!("expected a new payment, got {b:?}"),
    }
}

#[test]
fn a_payment_opens_and_finishes_in_two_commits_with_its_answer_stored() {
    let dir = TempDir::new("two-writes");
    let j = open(&dir.file());
    rt().block_on(async {
        let before = j.stats();
        let p = opened(
            j.open_payment(open_req("p-1", b"body", new_payment("w1", "p-1")))
                .await
                .unwrap(),
        );
        assert_eq!(p.state, PaymentState::Sent);
        assert_eq!(p.acquirer.stan.as_deref(), Some("000042"));
        let s = j.snapshot().unwrap();
        assert!(s.is_in_flight(&key("p-1")).unwrap(), "request in flight");
        assert_eq!(s.payment(p.id).unwrap().unwrap().state, PaymentState::Sent);
        drop(s);
        let done = j
            .finish_payment(finish_req(p.id, "p-1", vec![approved()]))
            .await
            .unwrap();
        assert_eq!(done.state, PaymentState::Success);
        let after = j.stats();
        assert_eq!(
            (after.writes - before.writes, after.commits - before.commits),
            (2, 2)
        );
        let states: Vec<PaymentState> = done.history.iter().map(|c| c.state).collect();
        assert_eq!(
            states,
            [
                PaymentState::Quoted,
                PaymentState::Sent,
                PaymentState::Success
            ]
        );
        // The stored answer was rendered from the record the write made.
        match j.request(&key("p-1"), BodyHash::of(b"body")).await.unwrap() {
            Some(Begin::Replay(r)) => assert_eq!(r.body, br#"{"state":"SUCCESS"}"#),
            other => panic!("{other:?}"),
        }
        assert!(j.unresolved().await.unwrap().is_empty());
    });
}

#[test]
fn opening_a_seen_request_is_a_repeat_and_writes_nothing() {
    let dir = TempDir::new("open-repeat");
    let j = open(&dir.file());
    rt().block_on(async {
        assert_eq!(
            j.request(&key("p-2"), BodyHash::of(b"a")).await.unwrap(),
            None
        );
        let p = opened(
            j.open_payment(open_req("p-2", b"a", new_payment("w1", "p-2")))
                .await
                .unwrap(),
        );
        let writes = j.stats().writes;
        let again = j
            .open_payment(open_req("p-2", b"a", new_payment("w1", "p-2")))
            .await
            .unwrap();
        assert_eq!(again, Opened::Repeat(Begin::InFlight));
        let other = j
            .open_payment(open_req("p-2", b"b", new_payment("w1", "p-2")))
            .await
            .unwrap();
        assert_eq!(other, Opened::Repeat(Begin::Inconsistent));
        assert_eq!(
            j.request(&key("p-2"), BodyHash::of(b"a")).await.unwrap(),
            Some(Begin::InFlight)
        );
        j.finish_payment(finish_req(p.id, "p-2", vec![approved()]))
            .await
            .unwrap();
        assert!(matches!(
            j.open_payment(open_req("p-2", b"a", new_payment("w1", "p-2")))
                .await
                .unwrap(),
            Opened::Repeat(Begin::Replay(_))
        ));
        // Refused writes count as answered writes, but nothing changed: one payment.
        assert_eq!(j.stats().writes, writes + 4);
        assert_eq!(j.snapshot().unwrap().payments().unwrap().len(), 1);
    });
}

#[test]
fn a_refused_open_leaves_no_request_and_no_usage_behind() {
    let dir = TempDir::new("open-refused");
    let j = open(&dir.file());
    rt().block_on(async {
        let limits = DailyLimits {
            max_count: Some(1),
            max_amount: None,
        };
        let first = limited("l-1", "cust-9", limits);
        opened(j.open_payment(open_req("l-1", b"1", first)).await.unwrap());
        let err = j
            .open_payment(open_req("l-2", b"2", limited("l-2", "cust-9", limits)))
            .await
            .unwrap_err();
        assert!(err.is_limit_exceeded(), "{err}");
        // Nothing of the refused open: no request record (the wallet may retry it), no payment.
        assert_eq!(
            j.request(&key("l-2"), BodyHash::of(b"2")).await.unwrap(),
            None
        );
        assert!(j.payment_by_request("w1", "l-2").await.unwrap().is_none());
        let day = utc_day(SystemTime::now());
        let usage = j
            .daily_usage("w1", &CustomerId::new("cust-9"), cur("SGD"), day)
            .await
            .unwrap();
        assert_eq!(usage.count, 1);
    });
}

#[test]
fn concurrent_opens_of_one_request_record_one_payment() {
    let dir = TempDir::new("open-race");
    let j = Arc::new(open(&dir.file()));
    rt().block_on(async {
        let barrier = Arc::new(tokio::sync::Barrier::new(30));
        let tasks: Vec<_> = (0..30)
            .map(|_| {
                let j = Arc::clone(&j);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    j.open_payment(open_req("race", b"same", new_payment("w1", "race")))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut sent = 0;
        for t in tasks {
            match t.await.unwrap() {
                Opened::Sent(_) => sent += 1,
                Opened::Repeat(Begin::InFlight) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(sent, 1);
        assert_eq!(j.snapshot().unwrap().payments().unwrap().len(), 1);
    });
}

#[test]
fn a_refused_finish_changes_neither_the_payment_nor_the_request() {
    let dir = TempDir::new("finish-refused");
    let j = open(&dir.file());
    rt().block_on(async {
        let p = opened(
            j.open_payment(open_req("f-1", b"x", new_payment("w1", "f-1")))
                .await
                .unwrap(),
        );
        // The second Approved is illegal from SUCCESS: the whole write is refused.
        let err = j
            .finish_payment(finish_req(p.id, "f-1", vec![approved(), approved()]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, JournalError::IllegalTransition { .. }),
            "{err}"
        );
        assert_eq!(
            j.payment(p.id).await.unwrap().unwrap().state,
            PaymentState::Sent
        );
        assert!(j.snapshot().unwrap().is_in_flight(&key("f-1")).unwrap());
        // A request not in flight cannot be finished.
        let err = j
            .finish_payment(finish_req(p.id, "other", vec![approved()]))
            .await
            .unwrap_err();
        assert!(matches!(err, JournalError::NotInFlight { .. }), "{err}");
        assert_eq!(
            j.payment(p.id).await.unwrap().unwrap().state,
            PaymentState::Sent
        );
    });
}

#[test]
fn an_unknown_outcome_and_its_reversal_are_one_write_and_not_sent_gives_the_limits_back() {
    let dir = TempDir::new("finish-steps");
    let j = open(&dir.file());
    rt().block_on(async {
        let p = opened(
            j.open_payment(open_req("u-1", b"u", new_payment("w1", "u-1")))
                .await
                .unwrap(),
        );
        let commits = j.stats().commits;
        let events = vec![
            unknown(),
            PaymentEvent::Reversing {
                reversal_id: Some(7),
            },
        ];
        let done = j
            .finish_payment(finish_req(p.id, "u-1", events))
            .await
            .unwrap();
        assert_eq!(j.stats().commits, commits + 1);
        assert_eq!(done.state, PaymentState::Reversing);
        let states: Vec<PaymentState> = done.history.iter().map(|c| c.state).collect();
        assert_eq!(
            states,
            [
                PaymentState::Quoted,
                PaymentState::Sent,
                PaymentState::Unknown,
                PaymentState::Reversing
            ]
        );
        // Still unresolved (the reversal runs); the request is done.
        let u = j.unresolved().await.unwrap();
        assert_eq!(u.payments.len(), 1);
        assert!(u.in_flight.is_empty());

        let limits = DailyLimits {
            max_count: Some(1),
            max_amount: None,
        };
        let q = opened(
            j.open_payment(open_req("n-1", b"n", limited("n-1", "cust-5", limits)))
                .await
                .unwrap(),
        );
        let not_sent = PaymentEvent::NotSent {
            reason: "link down".to_owned(),
        };
        let failed = j
            .finish_payment(finish_req(q.id, "n-1", vec![not_sent]))
            .await
            .unwrap();
        assert_eq!(failed.state, PaymentState::Failed);
        let day = utc_day(SystemTime::now());
        let usage = j
            .daily_usage("w1", &CustomerId::new("cust-5"), cur("SGD"), day)
            .await
            .unwrap();
        assert_eq!(
            usage.count, 0,
            "a payment that moved no money gives its count back"
        );
    });
}

#[test]
fn a_crash_between_the_two_writes_leaves_a_sent_payment_and_its_request_for_recovery() {
    let dir = TempDir::new("two-writes-crash");
    let id = {
        let j = open(&dir.file());
        let p = rt().block_on(async {
            opened(
                j.open_payment(open_req("c-1", b"c", new_payment("w1", "c-1")))
                    .await
                    .unwrap(),
            )
        });
        p.id
    };
    let j = open(&dir.file());
    let u = rt().block_on(j.unresolved()).unwrap();
    assert_eq!(u.payments.len(), 1);
    assert_eq!(u.payments[0].id, id);
    assert_eq!(u.payments[0].state, PaymentState::Sent);
    assert_eq!(u.in_flight, vec![key("c-1")]);
}

// ---- refunds that start at the merchant (spec/journal.md §4b) --------------------------------

fn merchant_refund(payment: PaymentId, reference: &str, minor: u64) -> NewMerchantRefund {
    NewMerchantRefund {
        payment_id: payment,
        acquirer: "sim".to_owned(),
        merchant_id: Some("M0001".to_owned()),
        reference: reference.to_owned(),
        amount: amt(minor, "SGD"),
        reason: "returned goods".to_owned(),
        trace: AcquirerData {
            stan: Some("400001".to_owned()),
            rrn: Some(reference.to_owned()),
            response_code: Some("00".to_owned()),
            ..AcquirerData::default()
        },
    }
}

fn with_rules(path: &Path) -> RedbJournal {
    let j = open(path);
    j.set_notice_rules(qrbridge::gateway::notices::rules());
    j
}

#[test]
fn a_merchant_refund_is_journaled_with_its_refund_credit_notice_exactly_once() {
    let dir = TempDir::new("merchant");
    let j = with_rules(&dir.file());
    rt().block_on(async {
        let mut intent = new_payment("w1", "p");
        intent.origin = Origin::new("aplus", Some("PAY-REF-7".to_owned()));
        let p = j.record_intent(intent).await.unwrap();
        let p = j.update_payment(p.id, sent()).await.unwrap();
        let p = j.update_payment(p.id, approved()).await.unwrap();
        // Found by the RRN of its 0200 on its acquirer only.
        let found = j
            .payment_by_acquirer_ref("sim", "632510000001")
            .await
            .unwrap();
        assert_eq!(found.map(|f| f.id), Some(p.id));
        // ... and by STAN ‖ DE7 of its 0200, as an advice's DE90 names it.
        let by_trace = j
            .payment_by_acquirer_ref("sim", "0000011121104500")
            .await
            .unwrap();
        assert_eq!(by_trace.map(|f| f.id), Some(p.id));
        assert_eq!(
            j.payment_by_acquirer_ref("other", "632510000001")
                .await
                .unwrap(),
            None
        );

        // 30.00 of 100.00 SGD: MYR round(33337 × 0.3) = 10001.
        let first = j
            .record_merchant_refund(merchant_refund(p.id, "M00000000001", 3_000))
            .await
            .unwrap();
        assert!(!first.repeat);
        let r = &first.refund;
        assert_eq!(r.state, RefundState::Success);
        assert_eq!(r.payer_amount, amt(10_001, "MYR"));
        assert_eq!(r.client_id, "w1");
        assert_eq!(r.origin.scheme, "aplus");
        assert_eq!(r.origin.scheme_ref.as_deref(), Some("PAY-REF-7"));
        assert_eq!(
            r.initiator,
            Initiator::Merchant {
                acquirer: "sim".to_owned(),
                reference: "M00000000001".to_owned()
            }
        );
        let after = j.payment(p.id).await.unwrap().unwrap();
        assert_eq!(after.state, PaymentState::PartiallyRefunded);
        assert_eq!(after.refunded, amt(3_000, "SGD"));
        assert_eq!(after.refundable(), 7_000);

        let snap = j.snapshot().unwrap();
        let notices = snap.pending_notices().unwrap();
        assert_eq!(notices.len(), 1, "{notices:?}");
        let n = &notices[0];
        assert_eq!(n.notice_id, format!("N-{}-CREDIT", r.id));
        assert_eq!(n.kind, NoticeKind::RefundCredit);
        assert_eq!((n.scheme.as_str(), n.client_id.as_str()), ("aplus", "w1"));
        assert_eq!(n.scheme_ref.as_deref(), Some("PAY-REF-7"));
        let event: serde_json::Value = serde_json::from_str(&n.event).unwrap();
        assert_eq!(event["refundStatus"], "SUCCESS");
        assert_eq!(event["payerRefundAmount"]["value"], "10001");
        assert_eq!(event["refundRequestId"], "M00000000001");
        assert_eq!(
            snap.merchant_refund("sim", "M00000000001")
                .unwrap()
                .map(|x| x.id),
            Some(r.id)
        );

        // The repeat (a 0221) changes nothing and makes no second notice.
        let again = j
            .record_merchant_refund(merchant_refund(p.id, "M00000000001", 3_000))
            .await
            .unwrap();
        assert!(again.repeat);
        assert_eq!(again.refund, first.refund);
        assert_eq!(j.snapshot().unwrap().pending_notices().unwrap().len(), 1);
        let same = j.payment(p.id).await.unwrap().unwrap();
        assert_eq!((same.refunded, same.state), (after.refunded, after.state));

        // The same reference for another amount is not a repeat.
        let e = j
            .record_merchant_refund(merchant_refund(p.id, "M00000000001", 2_000))
            .await
            .unwrap_err();
        assert!(matches!(e, JournalError::Duplicate { .. }), "{e}");
    });
}

#[test]
fn merchant_refunds_are_refused_and_change_nothing_when_they_do_not_fit() {
    let dir = TempDir::new("merchant-refused");
    let j = with_rules(&dir.file());
    rt().block_on(async {
        let p = payment_after(&j, "p", vec![sent(), approved()]).await;
        // A wallet refund of 80.00 pending holds its amount: 20.00 left.
        j.reserve_refund(refund_req(p.id, "r1", 8_000))
            .await
            .unwrap();
        let e = j
            .record_merchant_refund(merchant_refund(p.id, "M1", 2_001))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            JournalError::RefundExceedsPayment {
                payment: p.id,
                requested: 2_001,
                remaining: 2_000
            }
        );
        let mut wrong = merchant_refund(p.id, "M2", 100);
        wrong.amount = amt(100, "MYR");
        let e = j.record_merchant_refund(wrong).await.unwrap_err();
        assert!(matches!(e, JournalError::Invalid { .. }), "{e}");
        let mut other = merchant_refund(p.id, "M3", 100);
        other.acquirer = "other-acquirer".to_owned();
        let e = j.record_merchant_refund(other).await.unwrap_err();
        assert!(e.is_not_found(), "{e}");
        let mut other = merchant_refund(p.id, "M5", 100);
        other.merchant_id = Some("M0002".to_owned());
        let e = j.record_merchant_refund(other).await.unwrap_err();
        assert!(e.is_not_found(), "{e}");
        let e = j
            .record_merchant_refund(merchant_refund(p.id, "bad ref!", 100))
            .await
            .unwrap_err();
        assert!(matches!(e, JournalError::Invalid { .. }), "{e}");

        // A reversed payment moved no money.
        let rev = payment_after(
            &j,
            "p-rev",
            vec![
                sent(),
                unknown(),
                PaymentEvent::Reversing {
                    reversal_id: Some(1),
                },
                PaymentEvent::Reversed {
                    response_code: "00".to_owned(),
                },
            ],
        )
        .await;
        assert_eq!(rev.state, PaymentState::Reversed);
        let e = j
            .record_merchant_refund(merchant_refund(rev.id, "M4", 100))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            JournalError::NotRefundable {
                payment: rev.id,
                state: PaymentState::Reversed
            }
        );

        // Nothing of the above changed anything.
        let same = j.payment(p.id).await.unwrap().unwrap();
        assert_eq!(same.refunded, amt(0, "SGD"));
        assert_eq!(same.refunds_reserved, amt(8_000, "SGD"));
        assert_eq!(j.refunds_of(p.id).await.unwrap().len(), 1);
        let snap = j.snapshot().unwrap();
        // (The reversal made its PAYMENT_RESULT notice; no credit was asked for.)
        assert!(
            snap.pending_notices()
                .unwrap()
                .iter()
                .all(|n| n.kind != NoticeKind::RefundCredit)
        );
        for r in ["M1", "M2", "M3", "M4", "M5"] {
            assert_eq!(snap.merchant_refund("sim", r).unwrap(), None);
        }
    });
}

#[test]
fn without_notice_rules_a_merchant_refund_is_refused_so_no_credit_is_lost() {
    let dir = TempDir::new("merchant-norules");
    let j = open(&dir.file());
    rt().block_on(async {
        let p = payment_after(&j, "p", vec![sent(), approved()]).await;
        let e = j
            .record_merchant_refund(merchant_refund(p.id, "M1", 100))
            .await
            .unwrap_err();
        assert!(matches!(e, JournalError::Invalid { .. }), "{e}");
        assert_eq!(j.refunds_of(p.id).await.unwrap(), vec![]);
    });
}

// ---- the PostgreSQL engine: several instances on one database (spec/journal.md §11) -------

/// The PostgreSQL server the tests use, or `None` with a notice (a failure under
/// `QRBRIDGE_REQUIRE_PEERS=1`: scripts/test starts one).
fn pg_server(test: &str) -> Option<String> {
    match pg_url() {
        Some(url) => Some(url),
        None if std::env::var("QRBRIDGE_REQUIRE_PEERS").as_deref() == Ok("1") => {
            panic!(
                "QRBRIDGE_REQUIRE_PEERS=1 but QRBRIDGE_TEST_PG_URL is not set (scripts/test starts PostgreSQL)"
            )
        }
        None => {
            eprintln!(
                "notice: {test} skipped: no PostgreSQL (set QRBRIDGE_TEST_PG_URL, or run scripts/test)"
            );
            None
        }
    }
}

/// Two journals ("instances") on one fresh, migrated schema.
fn two_instances(tag: &str) -> (Arc<RedbJournal>, Arc<RedbJournal>, TempDir) {
    let dir = TempDir::new(tag);
    let pg = pg_for(&dir.file());
    postgres::migrate(&pg).unwrap();
    let named = |name: &str| {
        let mut pg = pg.clone();
        pg.instance = Some(name.to_owned());
        RedbJournal::open_postgres(pg, JournalConfig::new(dir.file()), false).unwrap()
    };
    let (a, b) = (named("a"), named("b"));
    (Arc::new(a), Arc::new(b), dir)
}

#[test]
fn migrations_apply_once_and_an_unmigrated_database_is_refused() {
    let Some(_) = pg_server("migrations_apply_once_and_an_unmigrated_database_is_refused") else {
        return;
    };
    let dir = TempDir::new("migrate");
    let pg = pg_for(&dir.file());
    let e =
        RedbJournal::open_postgres(pg.clone(), JournalConfig::new(dir.file()), false).unwrap_err();
    assert!(e.to_string().contains("qrbridge journal migrate"), "{e}");
    let all: Vec<i32> = postgres::MIGRATIONS.iter().map(|m| m.0).collect();
    assert_eq!(postgres::migrate(&pg).unwrap(), all);
    assert_eq!(postgres::migrate(&pg).unwrap(), Vec::<i32>::new());
    let j = RedbJournal::open_postgres(pg, JournalConfig::new(dir.file()), false).unwrap();
    rt().block_on(async {
        let p = j.record_intent(new_payment("w1", "m1")).await.unwrap();
        assert_eq!(j.payment(p.id).await.unwrap().unwrap().id, p.id);
    });
}

#[test]
fn the_same_pay_sent_to_two_instances_at_once_opens_one_payment() {
    let Some(_) = pg_server("the_same_pay_sent_to_two_instances_at_once_opens_one_payment") else {
        return;
    };
    let (a, b, _dir) = two_instances("twopay");
    rt().block_on(async {
        let tasks: Vec<_> = (0..30)
            .map(|i| {
                let j = if i % 2 == 0 {
                    Arc::clone(&a)
                } else {
                    Arc::clone(&b)
                };
                tokio::spawn(async move {
                    j.open_payment(open_req("same", b"{}", new_payment("w1", "same")))
                        .await
                })
            })
            .collect();
        let mut sent = Vec::new();
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Opened::Sent(p) => sent.push(p.id),
                Opened::Repeat(b) => assert_eq!(b, Begin::InFlight),
            }
        }
        assert_eq!(sent.len(), 1, "{sent:?}");
        // Either instance finishes it; the other sees the stored answer.
        let done = b
            .finish_payment(finish_req(sent[0], "same", vec![approved()]))
            .await
            .unwrap();
        assert_eq!(done.state, PaymentState::Success);
        match a.request(&key("same"), BodyHash::of(b"{}")).await.unwrap() {
            Some(Begin::Replay(r)) => assert_eq!(r.body, b"{\"state\":\"SUCCESS\"}".to_vec()),
            other => panic!("expected a replay, got {other:?}"),
        }
    });
}

#[test]
fn two_instances_never_overshoot_a_daily_limit() {
    let Some(_) = pg_server("two_instances_never_overshoot_a_daily_limit") else {
        return;
    };
    let (a, b, _dir) = two_instances("twolimit");
    rt().block_on(thirty_intents_race_a_limit_of_five(&[a, b]));
}

#[test]
fn reversal_ids_and_stan_blocks_are_unique_across_two_instances() {
    let Some(_) = pg_server("reversal_ids_and_stan_blocks_are_unique_across_two_instances") else {
        return;
    };
    let (a, b, _dir) = two_instances("tworev");
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let j = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            std::thread::spawn(move || {
                let id = j.enqueue(new_reversal(&format!("{i:06}"))).unwrap();
                let stans = j.reserve_stans("acq1", 20_000, 10).unwrap();
                (id, stans)
            })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut blocks = HashSet::new();
    for h in handles {
        let (id, first) = h.join().unwrap();
        assert!(ids.insert(id), "reversal id {id:?} twice");
        assert!(blocks.insert(first), "STAN block {first} twice");
    }
    assert_eq!(ids.len(), 8);
    // Blocks of 10 from 1: the eight firsts are 1, 11, ..., 71 in some order.
    let want: HashSet<u64> = (0..8).map(|k| 1 + 10 * k).collect();
    assert_eq!(blocks, want);
    // Each instance works the reversals it queued (its own, by lease).
    assert_eq!(a.pending().unwrap().len(), 4);
    assert_eq!(b.pending().unwrap().len(), 4);
}

// ---- leases and takeover (spec/journal.md §12) ---------------------------------------------

fn lease_of(l: Lease) -> InstanceRecord {
    match l {
        Lease::Held(r) => r,
        Lease::Lost(found) => panic!("lease lost: {found:?}"),
    }
}

#[test]
fn a_live_instance_keeps_its_records_and_a_silent_one_is_taken_over() {
    let Some(_) = pg_server("a_live_instance_keeps_its_records_and_a_silent_one_is_taken_over")
    else {
        return;
    };
    let (a, b, _dir) = two_instances("takeover");
    rt().block_on(async {
        let p = opened(
            a.open_payment(open_req("t-1", b"{}", new_payment("w1", "t-1")))
                .await
                .unwrap(),
        );
        let rev = a.enqueue(new_reversal("000777")).unwrap();
        let owners = b.owners().await.unwrap();
        assert_eq!(owners.open.get("a"), Some(&3), "{owners:?}"); // payment, request, reversal
        assert!(b.unresolved_mine().await.unwrap().is_empty());
        assert_eq!(b.pending().unwrap(), vec![]);
        assert!(!b.may_drive(rev));
        assert!(a.may_drive(rev));
        let seen = owners.instances.iter().find(|r| r.name == "a").unwrap();
        let seen = (seen.token.clone(), seen.seq);
        // A beats: what B saw is stale, so B takes nothing.
        lease_of(a.heartbeat().await.unwrap());
        assert!(b.take_over("a", Some(seen)).await.unwrap().is_empty());
        assert_eq!(a.unresolved_mine().await.unwrap().payments.len(), 1);
        // A goes silent: B takes exactly what B saw unchanged.
        let owners = b.owners().await.unwrap();
        let rec = owners.instances.iter().find(|r| r.name == "a").unwrap();
        let taken = b
            .take_over("a", Some((rec.token.clone(), rec.seq)))
            .await
            .unwrap();
        assert_eq!(
            taken.payments.iter().map(|p| p.id).collect::<Vec<_>>(),
            vec![p.id]
        );
        assert_eq!(taken.in_flight, vec![key("t-1")]);
        assert_eq!(
            taken.reversals.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![rev]
        );
        assert_eq!(b.owners().await.unwrap().open.get("b"), Some(&3));
        assert_eq!(b.pending().unwrap().len(), 1);
        assert!(b.may_drive(rev) && !a.may_drive(rev));
        // A wakes up: its lease is gone, and it owns nothing.
        assert!(matches!(a.heartbeat().await.unwrap(), Lease::Lost(None)));
        assert!(a.unresolved_mine().await.unwrap().is_empty());
        // Registered again, its new records are its own again.
        lease_of(a.register().await.unwrap());
        a.open_payment(open_req("t-2", b"{}", new_payment("w1", "t-2")))
            .await
            .unwrap();
        assert_eq!(a.unresolved_mine().await.unwrap().payments.len(), 1);
        // Taking over oneself or a live owner does nothing.
        assert!(b.take_over("b", None).await.unwrap().is_empty());
        assert!(b.take_over("a", None).await.unwrap().is_empty());
    });
}

#[test]
fn a_retired_instances_records_are_taken_at_once() {
    let Some(_) = pg_server("a_retired_instances_records_are_taken_at_once") else {
        return;
    };
    let (a, b, _dir) = two_instances("retire");
    rt().block_on(async {
        a.open_payment(open_req("r-1", b"{}", new_payment("w1", "r-1")))
            .await
            .unwrap();
        assert!(a.retire().await.unwrap());
        let owners = b.owners().await.unwrap();
        assert!(owners.instances.iter().all(|r| r.name != "a"), "{owners:?}");
        let taken = b.take_over("a", None).await.unwrap();
        assert_eq!(taken.payments.len(), 1);
        assert_eq!(taken.in_flight, vec![key("r-1")]);
    });
}

#[test]
fn one_instance_at_a_time_holds_a_notice() {
    let Some(_) = pg_server("one_instance_at_a_time_holds_a_notice") else {
        return;
    };
    let dir = TempDir::new("claim");
    let pg = pg_for(&dir.file());
    postgres::migrate(&pg).unwrap();
    let named = |name: &str| {
        let mut pg = pg.clone();
        pg.instance = Some(name.to_owned());
        let j = RedbJournal::open_postgres(pg, JournalConfig::new(dir.file()), false).unwrap();
        j.set_notice_rules(qrbridge::gateway::notices::rules());
        Arc::new(j)
    };
    let (a, b) = (named("a"), named("b"));
    rt().block_on(async {
        let mut intent = new_payment("w1", "n-1");
        intent.origin = Origin::new("aplus", Some("PAY-REF-8".to_owned()));
        let p = a.record_intent(intent).await.unwrap();
        let p = a.update_payment(p.id, sent()).await.unwrap();
        let p = a.update_payment(p.id, approved()).await.unwrap();
        a.record_merchant_refund(merchant_refund(p.id, "M00000000002", 100))
            .await
            .unwrap();
        let due = a.due_notices(u64::MAX - 1, 10).await.unwrap();
        assert!(!due.is_empty());
        let id = due[0].notice_id.clone();
        let until = unix_now_ms() + 60_000;
        let (x, y) = tokio::join!(a.claim_notice(&id, until), b.claim_notice(&id, until));
        let held = [x.unwrap(), y.unwrap()];
        assert_eq!(held.iter().filter(|n| n.is_some()).count(), 1, "{held:?}");
        // Leased: due for nobody until the lease ends, then due again for anyone.
        assert!(
            b.due_notices(unix_now_ms(), 10)
                .await
                .unwrap()
                .iter()
                .all(|n| n.notice_id != id)
        );
        assert!(
            b.due_notices(until, 10)
                .await
                .unwrap()
                .iter()
                .any(|n| n.notice_id == id)
        );
    });
}

#[test]
fn a_shared_quote_pays_once_on_any_instance() {
    let Some(_) = pg_server("a_shared_quote_pays_once_on_any_instance") else {
        return;
    };
    let (a, b, _dir) = two_instances("sharedquote");
    rt().block_on(async {
        let first = new_payment("w1", "q-1");
        let quote_id = first.quote.quote_id.clone();
        let later = unix_now_ms() + 60_000;
        let key_q = SharedKey::Quote(quote_id.clone());
        a.share(key_q.clone(), b"payload".to_vec(), later)
            .await
            .unwrap();
        assert_eq!(
            b.shared(&key_q, unix_now_ms()).await.unwrap(),
            Some(b"payload".to_vec())
        );
        assert_eq!(b.shared(&key_q, later).await.unwrap(), None, "expired");
        let mut open = open_req("q-1", b"{}", first);
        open.shared_quote = true;
        opened(b.open_payment(open).await.unwrap());
        // Used: an empty payload until it expires, and a second payment is refused.
        assert_eq!(
            a.shared(&key_q, unix_now_ms()).await.unwrap(),
            Some(Vec::new())
        );
        let mut second = new_payment("w1", "q-2");
        second.quote.quote_id = quote_id;
        let mut open = open_req("q-2", b"{}", second);
        open.shared_quote = true;
        let e = a.open_payment(open).await.unwrap_err();
        assert!(matches!(e, JournalError::QuoteUsed { .. }), "{e}");
        assert!(a.payment_by_request("w1", "q-2").await.unwrap().is_none());
        // A quote with no shared record (never shared, purged, or an unflushed share lost in a
        // database crash) is refused as unknown, not as used: no payment consumed it.
        let mut third = new_payment("w1", "q-3");
        third.quote.quote_id = "019a8f3e-0000-7000-8000-00000000ffff".to_owned();
        let mut open = open_req("q-3", b"{}", third);
        open.shared_quote = true;
        let e = a.open_payment(open).await.unwrap_err();
        assert!(matches!(e, JournalError::QuoteNotShared { .. }), "{e:?}");
    });
}

fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Regression (found by the reconcile load run after the two-write pay path landed): a payment
/// opened SENT in one write is found by its 0200's trace at once, so an advice racing the outcome
/// is not "unknown payment".
#[test]
fn a_payment_opened_sent_in_one_write_is_found_by_its_rrn_and_trace() {
    let dir = TempDir::new("opened-refs");
    let j = with_rules(&dir.file());
    rt().block_on(async {
        let p = opened(
            j.open_payment(open_req("p-o", b"body", new_payment("w1", "p-o")))
                .await
                .unwrap(),
        );
        assert_eq!(p.state, PaymentState::Sent);
        for reference in ["632510000042", "0000421121104500"] {
            let found = j.payment_by_acquirer_ref("sim", reference).await.unwrap();
            assert_eq!(found.map(|f| f.id), Some(p.id), "{reference}");
        }
        // Its outcome is still open: a merchant refund is refused as not refundable (the advice
        // handler leaves such an advice unanswered), and nothing changes.
        let e = j
            .record_merchant_refund(merchant_refund(p.id, "M-open", 100))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            JournalError::NotRefundable {
                payment: p.id,
                state: PaymentState::Sent
            }
        );
    });
}

// ---- payment orders (a debits-first wallet: Alipay+ MPP) -------------------------------------

fn aplus_order(client: &str, request: &str) -> NewPayment {
    let mut order = new_payment(client, request);
    order.origin = Origin::new(
        "aplus",
        Some(format!("{{\"paymentRequestId\":\"{request}\"}}")),
    );
    order.limits = DailyLimits {
        max_count: Some(1),
        max_amount: None,
    };
    order
}

#[test]
fn an_order_is_durable_with_its_inquiry_due_and_moves_on_only_by_the_wallets_result() {
    let dir = TempDir::new("orders");
    let inquire_at = 4_000_000_000_000;
    let order_id = {
        let j = with_rules(&dir.file());
        rt().block_on(async {
            let order = j
                .record_order(aplus_order("w1", "APR1"), inquire_at)
                .await
                .unwrap();
            assert_eq!(order.state, PaymentState::Ordered);
            // The customer's one payment a day is taken by the order.
            let refused = j.record_order(aplus_order("w1", "APR2"), inquire_at).await;
            assert!(refused.unwrap_err().is_limit_exceeded());
            order.id
        })
    };
    // After a restart: the order is in the journal, not among what recovery acts on, and its
    // inquiry is due at the order's inquiry time, not before.
    let j = with_rules(&dir.file());
    rt().block_on(async {
        let found = j.payment_by_request("w1", "APR1").await.unwrap().unwrap();
        assert_eq!((found.id, found.state), (order_id, PaymentState::Ordered));
        assert!(j.unresolved().await.unwrap().payments.is_empty());
        let inquiry = j
            .snapshot()
            .unwrap()
            .notice(&format!("N-{order_id}-INQUIRY"))
            .unwrap()
            .expect("the inquiry notice was committed with the order");
        assert_eq!(inquiry.kind, NoticeKind::PaymentInquiry);
        assert_eq!(inquiry.next_attempt_at_ms, inquire_at);
        assert!(j.due_notices(inquire_at - 1, 10).await.unwrap().is_empty());
        assert_eq!(j.due_notices(inquire_at, 10).await.unwrap().len(), 1);

        // The wallet debited its user: ORDERED → SENT with the wallet's reference, the request in
        // flight; a second debit of the same request is a repeat and writes nothing.
        let key = IdempotencyKey::new("w1", RequestKind::Payment, "APR1");
        let debit = DebitOrder {
            request: key.clone(),
            body: BodyHash::of(b"notify-1"),
            scheme_ref: Some("{\"paymentId\":\"W-1\"}".to_owned()),
            sent: acq("000001"),
        };
        let Opened::Sent(sent) = j.debit_order(debit.clone()).await.unwrap() else {
            panic!("not sent");
        };
        assert_eq!(sent.state, PaymentState::Sent);
        assert_eq!(
            sent.origin.scheme_ref.as_deref(),
            Some("{\"paymentId\":\"W-1\"}")
        );
        assert_eq!(
            j.debit_order(debit).await.unwrap(),
            Opened::Repeat(Begin::InFlight)
        );
        let states: Vec<_> = sent.history.iter().map(|c| c.state).collect();
        assert_eq!(states, vec![PaymentState::Ordered, PaymentState::Sent]);
        // A declined authorisation of a debited order makes the wallet's cancelPayment.
        let finished = j
            .finish_payment(FinishPayment {
                id: sent.id,
                events: vec![PaymentEvent::Declined {
                    acquirer: AcquirerData {
                        response_code: Some("05".to_owned()),
                        ..AcquirerData::default()
                    },
                }],
                request: key,
                answer: Render::new(|_| StoredResponse {
                    status: 200,
                    body: b"{}".to_vec(),
                }),
            })
            .await
            .unwrap();
        assert_eq!(finished.state, PaymentState::Failed);
        let cancel = j
            .snapshot()
            .unwrap()
            .notice(&format!("N-{}-FAILED", sent.id))
            .unwrap()
            .expect("cancel notice");
        assert_eq!(cancel.kind, NoticeKind::PaymentCancel);

        // Another order (the declined one gave the day's allowance back): the wallet says F → CLOSED,
        // no notice; a debit afterwards is refused (the order is closed).
        let other = j
            .record_order(aplus_order("w1", "APR3"), inquire_at)
            .await
            .unwrap();
        let closed = j
            .update_payment(
                other.id,
                PaymentEvent::Closed {
                    reason: "USER_BALANCE_NOT_ENOUGH".to_owned(),
                },
            )
            .await
            .unwrap();
        assert_eq!(closed.state, PaymentState::Closed);
        let late = j
            .debit_order(DebitOrder {
                request: IdempotencyKey::new("w1", RequestKind::Payment, "APR3"),
                body: BodyHash::of(b"late"),
                scheme_ref: None,
                sent: acq("000002"),
            })
            .await;
        assert!(
            matches!(late, Err(JournalError::IllegalTransition { .. })),
            "{late:?}"
        );
        // An order whose result stays unknown is cancelled on the wallet's side.
        let third = j
            .record_order(aplus_order("w1", "APR4"), inquire_at)
            .await
            .unwrap();
        let cancelled = j
            .update_payment(
                third.id,
                PaymentEvent::OrderCancelled {
                    reason: "no result after 10 inquiries".to_owned(),
                },
            )
            .await
            .unwrap();
        assert_eq!(cancelled.state, PaymentState::Cancelled);
        let notice = j
            .snapshot()
            .unwrap()
            .notice(&format!("N-{}-CANCELLED", third.id))
            .unwrap()
            .expect("cancel notice for the unknown order");
        assert_eq!(notice.kind, NoticeKind::PaymentCancel);
        // No order of an unknown request.
        let none = j
            .debit_order(DebitOrder {
                request: IdempotencyKey::new("w1", RequestKind::Payment, "NOPE"),
                body: BodyHash::of(b"x"),
                scheme_ref: None,
                sent: acq("000003"),
            })
            .await;
        assert!(none.unwrap_err().is_not_found());
    });
}
