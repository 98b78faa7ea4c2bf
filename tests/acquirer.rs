//! The acquirer link over real TLS sockets on 127.0.0.1 against the simulator, with certificates made
//! by rcgen for each test. Every test is bounded in time; none asserts on timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use qrbridge::acquirer::frame::{DEFAULT_MAX_FRAME, FrameReader, Framing};
use qrbridge::acquirer::iso8583::{self, Message, Mti, Spec};
use qrbridge::acquirer::link::{
    Link, LinkConfig, LinkError, LinkSide, Outcome, Timers, UnknownCause,
};
use qrbridge::acquirer::message::{DeclineReason, Kind, PrivateData, Purchase, Terminal};
use qrbridge::acquirer::reversal::{
    AttemptResult, MemoryReversalStore, RetryPolicy, ReversalRecord, ReversalState,
};
use qrbridge::acquirer::sim::{Behaviour, SimConfig, Simulator, Status};
use qrbridge::money::Currency;
use qrbridge::tls;
use qrbridge::tls::pki::Pki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(60);

/// Runs a test body on a fresh runtime, failing it if it runs longer than LIMIT.
fn run<F: Future<Output = ()>>(body: F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(LIMIT, body)
            .await
            .expect("test exceeded its time bound");
    });
}

struct Fixture {
    pki: Pki,
    sim: Simulator,
    store: Arc<MemoryReversalStore>,
    link: Link,
}

fn sim_tls(pki: &Pki) -> Arc<rustls::ServerConfig> {
    tls::server_config(&pki.ca_cert, &pki.server_cert, &pki.server_key).unwrap()
}

fn link_config(pki: &Pki, addr: SocketAddr) -> LinkConfig {
    let client = tls::client_config(&pki.ca_cert, &pki.client_cert, &pki.client_key).unwrap();
    let mut c = LinkConfig::new(
        addr.to_string(),
        "localhost",
        client,
        Terminal {
            acquiring_institution: "12345678".to_owned(),
            terminal_id: "QRB00001".to_owned(),
        },
    );
    c.timers = Timers {
        connect: Duration::from_secs(5),
        sign_on: Duration::from_secs(5),
        request: Duration::from_secs(10),
        echo_idle: Duration::from_secs(30),
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
    };
    c.reversal = RetryPolicy {
        answer_timeout: Duration::from_millis(400),
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        max_attempts: 5,
    };
    c
}

/// A simulator on a free loopback port, serving with `pki`'s server certificate.
async fn start_sim(pki: &Pki, config: SimConfig) -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap(), sim_tls(pki), config)
        .await
        .unwrap()
}

async fn fixture(config: SimConfig) -> Fixture {
    fixture_with(config, |_| {}).await
}

async fn fixture_with(config: SimConfig, tweak: impl FnOnce(&mut LinkConfig)) -> Fixture {
    let pki = Pki::generate(&["localhost"], "qrbridge-test").unwrap();
    let sim = start_sim(&pki, config).await;
    let store = Arc::new(MemoryReversalStore::new());
    let mut cfg = link_config(&pki, sim.addr());
    tweak(&mut cfg);
    let link = Link::start(cfg, store.clone()).unwrap();
    link.ready(Duration::from_secs(10)).await.unwrap();
    Fixture {
        pki,
        sim,
        store,
        link,
    }
}

fn purchase(amount: u64) -> Purchase {
    Purchase {
        kind: Kind::Purchase,
        amount,
        currency: Currency::from_code("MYR").unwrap(),
        billing: None,
        merchant_id: "M0001".to_owned(),
        mcc: "5812".to_owned(),
        merchant_name: "Nasi Lemak Stall".to_owned(),
        merchant_city: "Kuala Lumpur".to_owned(),
        merchant_country: "MY".to_owned(),
        private: PrivateData {
            quote_id: Some("Q-1".to_owned()),
            wallet_scheme: Some("ALIPAYHK".to_owned()),
            wallet_request_id: Some(format!("WR-{amount}")),
            reference_label: None,
            other: vec![],
        },
    }
}

fn triggers(pairs: &[(u64, Behaviour)]) -> SimConfig {
    let mut c = SimConfig::default();
    for (amount, b) in pairs {
        c.by_amount.insert(amount.to_string(), b.clone());
    }
    c
}

async fn settled(store: &MemoryReversalStore, outcome: &Outcome) -> ReversalRecord {
    let Outcome::Unknown(u) = outcome else {
        panic!("expected Unknown, got {outcome:?}")
    };
    let id = u.reversal.expect("a reversal was queued");
    store
        .wait_for(id, Duration::from_secs(20), |r| {
            r.state != ReversalState::Pending
        })
        .await
        .unwrap_or_else(|| panic!("reversal never settled: {:?}", store.all()))
}

// ---------------------------------------------------------------------------------------------

#[test]
fn approves_a_purchase_and_the_acquirer_ledger_agrees() {
    run(async {
        let f = fixture(SimConfig::default()).await;
        let outcome = f.link.authorise(&purchase(35_000)).await.unwrap();
        let Outcome::Approved(a) = outcome else {
            panic!("{outcome:?}")
        };
        let ledger = f.sim.ledger();
        assert_eq!(ledger.entries.len(), 1);
        let e = &ledger.entries[0];
        assert_eq!(e.status, Status::Approved);
        assert_eq!(e.amount, 35_000);
        assert_eq!(e.currency, "458");
        assert_eq!(e.rrn, a.rrn);
        assert_eq!(e.stan, a.stan.to_string());
        assert_eq!(e.auth_code, a.auth_code);
        assert!(e.private_data.contains("WR-35000"));
        assert_eq!(f.link.stats().sign_ons, 1);
    });
}

#[test]
fn declines_with_the_acquirers_code_as_a_value() {
    run(async {
        let f = fixture(triggers(&[(
            5_100,
            Behaviour::Decline { code: "51".into() },
        )]))
        .await;
        let outcome = f.link.authorise(&purchase(5_100)).await.unwrap();
        let Outcome::Declined(d) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(d.code.as_str(), "51");
        assert_eq!(d.reason, DeclineReason::InsufficientFunds);
        assert_eq!(f.sim.ledger().entries[0].status, Status::Declined);
        assert!(f.store.all().is_empty(), "a decline is not reversed");
    });
}

#[test]
fn timeout_gives_unknown_then_a_reversal_acknowledged_by_0410() {
    run(async {
        let f = fixture(triggers(&[(7_777, Behaviour::NeverAnswer)])).await;
        let outcome = f
            .link
            .authorise_within(&purchase(7_777), Duration::from_millis(300))
            .await
            .unwrap();
        let Outcome::Unknown(u) = &outcome else {
            panic!("{outcome:?}")
        };
        assert!(u.cause.is_timeout());
        let r = settled(&f.store, &outcome).await;
        assert_eq!(r.state, ReversalState::Acknowledged { code: "00".into() });
        assert_eq!(r.attempts.len(), 1);
        assert_eq!(r.attempts[0].mti, "0400");
        assert_eq!(r.reversal.original_stan, u.stan.to_string());
        let entry = &f.sim.ledger().entries[0];
        assert_eq!(entry.status, Status::Reversed);
        assert_eq!(entry.reversal_messages, 1);
    });
}

#[test]
fn reversal_is_repeated_as_0401_when_the_first_0400_is_dropped() {
    run(async {
        let mut cfg = triggers(&[(7_777, Behaviour::NeverAnswer)]);
        cfg.drop_reversals = 1;
        let f = fixture(cfg).await;
        let outcome = f
            .link
            .authorise_within(&purchase(7_777), Duration::from_millis(300))
            .await
            .unwrap();
        let r = settled(&f.store, &outcome).await;
        assert_eq!(r.state, ReversalState::Acknowledged { code: "00".into() });
        let mtis: Vec<&str> = r.attempts.iter().map(|a| a.mti.as_str()).collect();
        assert_eq!(mtis, ["0400", "0401"]);
        assert_eq!(r.attempts[0].result, AttemptResult::NoAnswer);
        assert_eq!(
            r.attempts[1].result,
            AttemptResult::Acknowledged("00".into())
        );
        assert_eq!(f.sim.stats().dropped_reversals, 1);
        assert_eq!(f.sim.ledger().entries[0].status, Status::Reversed);
    });
}

#[test]
fn reversal_without_any_0410_ends_in_manual_review_after_the_bound() {
    run(async {
        let mut cfg = triggers(&[(7_777, Behaviour::NeverAnswer)]);
        cfg.drop_reversals = 1_000;
        let f = fixture_with(cfg, |c| c.reversal.max_attempts = 3).await;
        let outcome = f
            .link
            .authorise_within(&purchase(7_777), Duration::from_millis(300))
            .await
            .unwrap();
        let r = settled(&f.store, &outcome).await;
        assert_eq!(r.state, ReversalState::ManualReview);
        let mtis: Vec<&str> = r.attempts.iter().map(|a| a.mti.as_str()).collect();
        assert_eq!(mtis, ["0400", "0401", "0401"]);
        assert!(
            r.attempts
                .iter()
                .all(|a| a.result == AttemptResult::NoAnswer)
        );
        assert_eq!(f.sim.stats().dropped_reversals, 3);
    });
}

#[test]
fn a_late_approval_after_the_reversal_started_never_approves_the_payment() {
    run(async {
        let mut cfg = triggers(&[(8_888, Behaviour::AnswerLate)]);
        cfg.late_ms = 800;
        let f = fixture(cfg).await;
        let outcome = f
            .link
            .authorise_within(&purchase(8_888), Duration::from_millis(200))
            .await
            .unwrap();
        let Outcome::Unknown(u) = &outcome else {
            panic!("{outcome:?}")
        };
        let id = u.reversal.unwrap();
        // Wait until the late 0210 has arrived and been recorded against the reversal.
        let r = f
            .store
            .wait_for(id, Duration::from_secs(20), |r| {
                !r.late_responses.is_empty() && r.state != ReversalState::Pending
            })
            .await
            .unwrap_or_else(|| panic!("{:?}", f.store.all()));
        assert_eq!(r.late_responses, vec!["00".to_owned()]);
        assert_eq!(r.state, ReversalState::Acknowledged { code: "00".into() });
        assert_eq!(f.sim.ledger().entries[0].status, Status::Reversed);
        assert_eq!(f.link.stats().late, 1);
        assert_eq!(f.link.stats().unmatched, 0);
    });
}

#[test]
fn connection_closed_after_sending_gives_unknown_and_the_reversal_goes_through_after_reconnect() {
    run(async {
        let f = fixture(triggers(&[(4_444, Behaviour::Close)])).await;
        let outcome = f.link.authorise(&purchase(4_444)).await.unwrap();
        let Outcome::Unknown(u) = &outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(u.cause, UnknownCause::ConnectionLost);
        let r = settled(&f.store, &outcome).await;
        assert_eq!(r.state, ReversalState::Acknowledged { code: "00".into() });
        assert_eq!(f.sim.ledger().entries[0].status, Status::Reversed);
        assert!(f.link.stats().connects >= 2);
    });
}

#[test]
fn an_unknown_response_code_is_reversed_not_declined() {
    run(async {
        let f = fixture(triggers(&[(
            9_600,
            Behaviour::Decline { code: "96".into() },
        )]))
        .await;
        let outcome = f.link.authorise(&purchase(9_600)).await.unwrap();
        let Outcome::Unknown(u) = &outcome else {
            panic!("{outcome:?}")
        };
        assert!(matches!(u.cause, UnknownCause::UnusableAnswer(_)));
        let r = settled(&f.store, &outcome).await;
        assert_eq!(r.state, ReversalState::Acknowledged { code: "00".into() });
    });
}

#[test]
fn reconnects_after_the_simulator_restarts() {
    run(async {
        let f = fixture(SimConfig::default()).await;
        assert!(matches!(
            f.link.authorise(&purchase(100)).await.unwrap(),
            Outcome::Approved(_)
        ));
        let addr = f.sim.addr();
        f.sim.stop().await;
        // Once the link has noticed, nothing is sent while the acquirer is down.
        for _ in 0..500 {
            if !f.link.is_ready() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            !f.link.is_ready(),
            "the link did not notice the acquirer went away"
        );
        // An error (nothing reached the acquirer), not an unknown outcome.
        let err = f
            .link
            .authorise_within(&purchase(101), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        let sim = Simulator::start(addr, sim_tls(&f.pki), SimConfig::default())
            .await
            .unwrap();
        let outcome = f
            .link
            .authorise_within(&purchase(102), Duration::from_secs(20))
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Approved(_)), "{outcome:?}");
        assert_eq!(sim.ledger().entries.len(), 1);
        assert_eq!(sim.ledger().entries[0].amount, 102);
        assert!(f.link.stats().connects >= 2);
        assert!(f.link.stats().sign_ons >= 2);
    });
}

#[test]
fn a_thousand_concurrent_authorisations_each_reach_the_right_caller() {
    run(async {
        let cfg = SimConfig {
            jitter_ms: 50, // answers come back out of order
            ..SimConfig::default()
        };
        let f = fixture(cfg).await;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..1_000u64 {
            let link = f.link.clone();
            tasks.spawn(async move {
                let amount = 10_000 + i;
                (amount, link.authorise(&purchase(amount)).await)
            });
        }
        let mut approvals = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (amount, outcome) = joined.unwrap();
            let Outcome::Approved(a) = outcome.unwrap() else {
                panic!("{amount} not approved")
            };
            approvals.push((amount, a));
        }
        // Each caller's approval names the acquirer's ledger entry for its own amount and wallet
        // request, with the authorisation code the acquirer gave that entry.
        let ledger = f.sim.ledger();
        assert_eq!(ledger.entries.len(), 1_000);
        let mut rrns = std::collections::HashSet::new();
        for (amount, a) in &approvals {
            assert!(
                rrns.insert(a.rrn.clone()),
                "RRN {} given to two callers",
                a.rrn
            );
            let e = ledger.by_rrn(&a.rrn).unwrap();
            assert_eq!(e.amount, *amount);
            assert_eq!(e.stan, a.stan.to_string());
            assert_eq!(e.auth_code, a.auth_code);
            assert!(e.private_data.ends_with(&format!("WR-{amount}")));
        }
        assert_eq!(approvals.len(), 1_000);
        let stats = f.link.stats();
        assert_eq!(stats.connects, 1);
        assert_eq!(stats.unmatched, 0);
    });
}

#[test]
fn a_garbage_answer_is_dropped_and_the_link_keeps_working() {
    run(async {
        let f = fixture(triggers(&[(6_666, Behaviour::Garbage)])).await;
        let outcome = f
            .link
            .authorise_within(&purchase(6_666), Duration::from_millis(300))
            .await
            .unwrap();
        let Outcome::Unknown(u) = &outcome else {
            panic!("{outcome:?}")
        };
        assert!(u.cause.is_timeout());
        assert_eq!(f.link.stats().undecodable, 1);
        settled(&f.store, &outcome).await;
        assert!(matches!(
            f.link.authorise(&purchase(1)).await.unwrap(),
            Outcome::Approved(_)
        ));
        assert_eq!(f.link.stats().connects, 1);
    });
}

#[test]
fn garbage_frames_sent_to_the_simulator_are_refused_without_harm() {
    run(async {
        let f = fixture(SimConfig::default()).await;
        let client =
            tls::client_config(&f.pki.ca_cert, &f.pki.client_cert, &f.pki.client_key).unwrap();
        let connector = tokio_rustls::TlsConnector::from(client);
        let tcp = tokio::net::TcpStream::connect(f.sim.addr()).await.unwrap();
        let mut s = connector
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        let mut wire = Vec::new();
        for junk in [
            &b"\x00\x01\x02"[..],
            b"0200ZZZZ",
            b"0800FFFFFFFFFFFFFFFF",
            &[0xFF; 300],
        ] {
            Framing::Binary2.wrap(junk, &mut wire).unwrap();
        }
        let echo = Message::new(Mti::NETWORK_REQUEST)
            .with(7, "1121101500")
            .with(11, "000009")
            .with(41, "QRB00001")
            .with(70, "301");
        Framing::Binary2
            .wrap(
                &iso8583::encode(&echo, Spec::iso1987_ascii()).unwrap(),
                &mut wire,
            )
            .unwrap();
        s.write_all(&wire).await.unwrap();
        // The valid echo after the garbage is still answered.
        let mut reader = FrameReader::new(Framing::Binary2, DEFAULT_MAX_FRAME);
        let mut buf = [0u8; 4096];
        let answer = loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "simulator closed the connection");
            reader.push(&buf[..n]);
            if let Some(frame) = reader.next_frame().unwrap() {
                break iso8583::decode(frame, Spec::iso1987_ascii()).unwrap();
            }
        };
        assert_eq!(answer.mti(), Mti::NETWORK_RESPONSE);
        assert_eq!(answer.text(11), Some("000009"));
        assert_eq!(f.sim.stats().undecodable, 4);
        // A broken length header loses framing: the simulator closes that connection only.
        s.write_all(&[0x00, 0x00]).await.unwrap();
        let n = s.read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0);
        assert_eq!(f.sim.stats().framing_errors, 1);
        assert!(matches!(
            f.link.authorise(&purchase(5)).await.unwrap(),
            Outcome::Approved(_)
        ));
    });
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    run(async {
        let pki = Pki::generate(&["localhost"], "qrbridge-test").unwrap();
        let stranger = Pki::generate(&["localhost"], "stranger").unwrap();
        let sim = start_sim(&pki, SimConfig::default()).await;
        let mut cfg = link_config(&pki, sim.addr());
        // Trusts the right server, but presents a certificate the acquirer's CA never issued.
        cfg.tls =
            tls::client_config(&pki.ca_cert, &stranger.client_cert, &stranger.client_key).unwrap();
        let store = Arc::new(MemoryReversalStore::new());
        let link = Link::start(cfg, store).unwrap();
        let err = link.ready(Duration::from_secs(2)).await.unwrap_err();
        assert!(matches!(err, LinkError::NotConnected { .. }), "{err}");
        let last = link.last_error().expect("a connection error was recorded");
        assert_eq!(last.side(), LinkSide::Network, "{last}");
        assert!(sim.stats().handshake_failures >= 1);
        assert_eq!(sim.stats().connections, 0);
        assert!(sim.ledger().entries.is_empty());
    });
}

#[test]
fn a_server_certificate_from_another_ca_is_refused() {
    run(async {
        let pki = Pki::generate(&["localhost"], "qrbridge-test").unwrap();
        let impostor = Pki::generate(&["localhost"], "qrbridge-test").unwrap();
        let sim = start_sim(&impostor, SimConfig::default()).await;
        let link = Link::start(
            link_config(&pki, sim.addr()),
            Arc::new(MemoryReversalStore::new()),
        )
        .unwrap();
        assert!(link.ready(Duration::from_secs(2)).await.is_err());
        assert!(
            matches!(link.last_error(), Some(LinkError::Tls { .. })),
            "{:?}",
            link.last_error()
        );
    });
}

#[test]
fn the_acquirer_sim_command_serves_a_link_and_exports_its_ledger_on_ctrl_c() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let dir = std::env::temp_dir().join(format!(
        "qrbridge-acquirer-sim-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("sim.toml"),
        "[by_amount]\n\"5100\" = { kind = \"decline\", code = \"51\" }\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_qrbridge"))
        .arg("acquirer-sim")
        .args(["--listen", "127.0.0.1:0"])
        .arg("--pki-dir")
        .arg(dir.join("pki"))
        .arg("--config")
        .arg(dir.join("sim.toml"))
        .arg("--ledger")
        .arg(dir.join("ledger.json"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr: SocketAddr = first.rsplit(' ').next().unwrap().parse().unwrap();
    let pem = |name: &str| std::fs::read_to_string(dir.join("pki").join(name)).unwrap();

    run(async {
        let mut cfg = link_config(
            &Pki {
                ca_cert: pem("ca.pem"),
                client_cert: pem("client.pem"),
                client_key: pem("client.key"),
                server_cert: String::new(),
                server_key: String::new(),
            },
            addr,
        );
        cfg.server_name = "127.0.0.1".to_owned();
        let link = Link::start(cfg, Arc::new(MemoryReversalStore::new())).unwrap();
        link.ready(Duration::from_secs(10)).await.unwrap();
        assert!(matches!(
            link.authorise(&purchase(2_500)).await.unwrap(),
            Outcome::Approved(_)
        ));
        assert!(matches!(
            link.authorise(&purchase(5_100)).await.unwrap(),
            Outcome::Declined(_)
        ));
    });

    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let mut exited = None;
    for _ in 0..1_000 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let Some(status) = exited else {
        child.kill().unwrap();
        panic!("acquirer-sim did not stop on SIGINT");
    };
    assert!(status.success());
    let ledger: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ledger.json")).unwrap()).unwrap();
    let entries = ledger["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["amount"], 2_500);
    assert_eq!(entries[0]["status"], "approved");
    assert_eq!(entries[1]["status"], "declined");
    assert_eq!(entries[1]["response_code"], "51");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_idle_link_sends_echoes_and_stays_signed_on() {
    run(async {
        let f = fixture_with(SimConfig::default(), |c| {
            c.timers.echo_idle = Duration::from_millis(100);
        })
        .await;
        for _ in 0..1_000 {
            if f.link.stats().echoes >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(f.link.stats().echoes >= 2);
        assert!(f.link.is_ready());
        assert_eq!(f.link.stats().connects, 1);
        assert!(matches!(
            f.link.authorise(&purchase(3)).await.unwrap(),
            Outcome::Approved(_)
        ));
    });
}

#[test]
fn pending_reversals_in_the_store_resume_when_a_link_starts() {
    use qrbridge::acquirer::message::{
        ReversalReason, Stan, Trace, purchase_request, reversal_request,
    };
    use qrbridge::acquirer::reversal::{NewReversal, ReversalStore};
    use qrbridge::time::fields::UtcFields;

    run(async {
        let pki = Pki::generate(&["localhost"], "qrbridge-test").unwrap();
        let sim = start_sim(&pki, SimConfig::default()).await;
        // A reversal left pending by an earlier run (e.g. recovered from the journal).
        let cfg = link_config(&pki, sim.addr());
        let at = UtcFields::from_unix(1_795_256_130);
        let original = purchase_request(
            &purchase(42),
            &cfg.terminal,
            &Trace::new(Stan::new(900_001).unwrap(), &at),
        )
        .unwrap();
        let reversal = reversal_request(
            &original,
            &Trace::new(Stan::new(900_002).unwrap(), &at),
            ReversalReason::Timeout,
        )
        .unwrap();
        let store = Arc::new(MemoryReversalStore::new());
        let id = store
            .enqueue(NewReversal {
                reason: ReversalReason::Timeout,
                request: iso8583::encode(&reversal, Spec::iso1987_ascii()).unwrap(),
                original_stan: "900001".into(),
                original_rrn: original.text(37).unwrap().into(),
            })
            .unwrap();
        let _link = Link::start(cfg, store.clone()).unwrap();
        let r = store
            .wait_for(id, Duration::from_secs(20), |r| {
                r.state != ReversalState::Pending
            })
            .await
            .unwrap();
        // The simulator never saw the original: it acknowledges with 25 (unable to locate).
        assert_eq!(r.state, ReversalState::Acknowledged { code: "25".into() });
        assert_eq!(sim.ledger().unmatched_reversals, 1);
    });
}

/// A hand-written acquirer for matching tests: answers the sign-on, then for each 0200 first sends
/// decoys (a 0210 with another STAN, one with another DE7, one with another terminal) and then the
/// real answer with authorisation code `REAL01`.
async fn decoy_acquirer(pki: &Pki) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(sim_tls(pki));
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut s = acceptor.accept(tcp).await.unwrap();
        let spec = Spec::iso1987_ascii();
        let mut reader = FrameReader::new(Framing::Binary2, DEFAULT_MAX_FRAME);
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            reader.push(&buf[..n]);
            while let Some(frame) = reader.next_frame().unwrap() {
                let req = iso8583::decode(frame, spec).unwrap();
                let answer = |m: &Message| {
                    let mut r = Message::new(m.mti().response());
                    for f in [3u8, 4, 7, 11, 37, 41, 49, 70] {
                        if let Some(v) = m.get(f) {
                            r.set(f, v);
                        }
                    }
                    r.with(39, "00")
                };
                let mut replies = Vec::new();
                if req.mti() == Mti::FINANCIAL_REQUEST {
                    replies.push(answer(&req).with(11, "999999").with(38, "DECOY1"));
                    replies.push(answer(&req).with(7, "0101000000").with(38, "DECOY2"));
                    replies.push(answer(&req).with(41, "OTHER001").with(38, "DECOY3"));
                    replies.push(answer(&req).with(38, "REAL01"));
                } else {
                    replies.push(answer(&req));
                }
                let mut wire = Vec::new();
                for r in replies {
                    Framing::Binary2
                        .wrap(&iso8583::encode(&r, spec).unwrap(), &mut wire)
                        .unwrap();
                }
                s.write_all(&wire).await.unwrap();
            }
        }
    });
    addr
}

#[test]
fn responses_matching_nothing_are_dropped_and_never_reach_a_caller() {
    run(async {
        let pki = Pki::generate(&["localhost"], "qrbridge-test").unwrap();
        let addr = decoy_acquirer(&pki).await;
        let link = Link::start(
            link_config(&pki, addr),
            Arc::new(MemoryReversalStore::new()),
        )
        .unwrap();
        link.ready(Duration::from_secs(10)).await.unwrap();
        let outcome = link.authorise(&purchase(1_234)).await.unwrap();
        let Outcome::Approved(a) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(a.auth_code.as_deref(), Some("REAL01"));
        assert_eq!(link.stats().unmatched, 3);
    });
}

#[test]
fn four_digit_ascii_length_framing_works_end_to_end() {
    run(async {
        let cfg = SimConfig {
            framing: Framing::Ascii4,
            ..SimConfig::default()
        };
        let f = fixture_with(cfg, |c| c.framing = Framing::Ascii4).await;
        assert!(matches!(
            f.link.authorise(&purchase(77)).await.unwrap(),
            Outcome::Approved(_)
        ));
        assert_eq!(f.sim.ledger().entries[0].amount, 77);
    });
}

#[test]
fn attempts_that_could_not_be_sent_do_not_use_up_the_reversal_bound() {
    run(async {
        let mut cfg = triggers(&[(7_777, Behaviour::NeverAnswer)]);
        cfg.drop_reversals = 1_000;
        let f = fixture_with(cfg, |c| {
            c.reversal.max_attempts = 2;
            c.reversal.answer_timeout = Duration::from_secs(2);
        })
        .await;
        let outcome = f
            .link
            .authorise_within(&purchase(7_777), Duration::from_millis(300))
            .await
            .unwrap();
        let Outcome::Unknown(u) = &outcome else {
            panic!("{outcome:?}")
        };
        let id = u.reversal.unwrap();
        // The acquirer goes away while the 0400 waits for its answer. Wait until the simulator has
        // really received (and dropped) the 0400 first: on a loaded machine stopping too early left
        // the 0400 unsent, so the repeat was rightly another 0400, not a 0401 (a flaky failure).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while f.sim.stats().dropped_reversals == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the 0400 never reached the simulator"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let addr = f.sim.addr();
        f.sim.stop().await;
        let r = f
            .store
            .wait_for(id, Duration::from_secs(30), |r| {
                r.attempts
                    .iter()
                    .filter(|a| matches!(a.result, AttemptResult::NotSent(_)))
                    .count()
                    >= 2
            })
            .await
            .unwrap_or_else(|| panic!("{:?}", f.store.all()));
        assert_eq!(
            r.state,
            ReversalState::Pending,
            "unsent attempts must not end in manual review"
        );
        // Back again: the repeat goes through (this simulator never saw the original: code 25).
        let sim = Simulator::start(addr, sim_tls(&f.pki), SimConfig::default())
            .await
            .unwrap();
        let r = f
            .store
            .wait_for(id, Duration::from_secs(30), |r| {
                r.state != ReversalState::Pending
            })
            .await
            .unwrap_or_else(|| panic!("{:?}", f.store.all()));
        assert_eq!(r.state, ReversalState::Acknowledged { code: "25".into() });
        assert_eq!(r.attempts.first().map(|a| a.mti.as_str()), Some("0400"));
        assert_eq!(r.attempts.last().map(|a| a.mti.as_str()), Some("0401"));
        assert_eq!(sim.ledger().unmatched_reversals, 1);
    });
}

#[test]
fn cancelling_an_approved_payment_reverses_it_at_the_acquirer() {
    run(async {
        let f = fixture(SimConfig::default()).await;
        let Outcome::Approved(a) = f.link.authorise(&purchase(1_999)).await.unwrap() else {
            panic!("not approved")
        };
        let id = f.link.cancel(&a).unwrap();
        let r = f
            .store
            .wait_for(id, Duration::from_secs(20), |r| {
                r.state != ReversalState::Pending
            })
            .await
            .unwrap();
        assert_eq!(r.state, ReversalState::Acknowledged { code: "00".into() });
        assert_eq!(r.reversal.original_stan, a.stan.to_string());
        let sent = iso8583::decode(&r.reversal.request, Spec::iso1987_ascii()).unwrap();
        assert_eq!(sent.text(39), Some("17"));
        let e = f.sim.ledger().by_rrn(&a.rrn).cloned().unwrap();
        assert_eq!(e.status, Status::Reversed);
    });
}

#[test]
fn stans_and_rrns_stay_unique_when_the_link_restarts_on_the_same_journal() {
    run(unique_stans_over_three_lives(1));
}

#[test]
fn stans_and_rrns_stay_unique_across_a_pool_of_three_and_its_restarts() {
    run(unique_stans_over_three_lives(3));
}

/// Three process lives on one journal (closed and reopened), each with a link of `links`
/// connections paying 30 (10 at a time): no STAN or RRN repeats across the pool or the lives.
async fn unique_stans_over_three_lives(links: usize) {
    use qrbridge::journal::{JournalConfig, RedbJournal};
    let pki = Pki::generate(&["localhost"], "qrbridge-test").unwrap();
    let sim = start_sim(&pki, SimConfig::default()).await;
    let dir = std::env::temp_dir().join(format!("qrbridge-stan-{}-{links}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for _life in 0..3 {
        let journal =
            Arc::new(RedbJournal::open(JournalConfig::new(dir.join("journal.redb"))).unwrap());
        let mut cfg = link_config(&pki, sim.addr());
        cfg.links = links;
        let link = Link::start(cfg, journal.clone()).unwrap();
        all_signed_on(&link).await;
        for batch in 0..3u64 {
            let mut tasks = tokio::task::JoinSet::new();
            for n in 0..10 {
                let link = link.clone();
                tasks.spawn(async move { link.authorise(&purchase(1000 + batch * 10 + n)).await });
            }
            while let Some(outcome) = tasks.join_next().await {
                let outcome = outcome.unwrap().unwrap();
                assert!(matches!(outcome, Outcome::Approved(_)), "{outcome:?}");
            }
        }
        drop(link);
        // The link's tasks let go of the journal before it is reopened.
        let mut journal = journal;
        for _ in 0..500 {
            match Arc::try_unwrap(journal) {
                Ok(j) => {
                    drop(j);
                    break;
                }
                Err(still) => journal = still,
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let ledger = sim.ledger();
    assert_eq!(ledger.entries.len(), 90);
    let stans: std::collections::HashSet<_> =
        ledger.entries.iter().map(|e| e.stan.clone()).collect();
    let rrns: std::collections::HashSet<_> = ledger.entries.iter().map(|e| e.rrn.clone()).collect();
    assert_eq!(
        stans.len(),
        90,
        "STANs repeated across the pool or restarts"
    );
    assert_eq!(rrns.len(), 90, "RRNs repeated across the pool or restarts");
    let connections: std::collections::HashSet<_> =
        ledger.entries.iter().map(|e| e.connection).collect();
    assert_eq!(
        connections.len(),
        3 * links,
        "every connection of every life carried 0200s"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// --- a pool of links ----------------------------------------------------------------------------

/// Waits (bounded) until every connection of the link's pool is signed on.
async fn all_signed_on(link: &Link) {
    for _ in 0..1000 {
        let (ready, size) = link.ready_links();
        if ready == size {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the pool never signed on whole: {:?}", link.members());
}

fn per_connection(sim: &Simulator) -> std::collections::BTreeMap<u64, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for e in &sim.ledger().entries {
        *counts.entry(e.connection).or_insert(0) += 1;
    }
    counts
}

#[test]
fn a_pool_of_three_spreads_authorisations_over_every_connection_with_one_stan_sequence() {
    run(async {
        let cfg = SimConfig {
            jitter_ms: 20,
            ..SimConfig::default()
        };
        let f = fixture_with(cfg, |c| c.links = 3).await;
        all_signed_on(&f.link).await;
        assert_eq!(
            f.sim.stats().connections,
            3,
            "one TLS connection per member"
        );
        // One at a time: every member is idle, so they take turns.
        for n in 0..30 {
            let outcome = f.link.authorise(&purchase(2_000 + n)).await.unwrap();
            assert!(matches!(outcome, Outcome::Approved(_)), "{outcome:?}");
        }
        let counts = per_connection(&f.sim);
        assert_eq!(counts.len(), 3, "{counts:?}");
        assert!(counts.values().all(|&n| n == 10), "{counts:?}");
        // Many at once: each still reaches its own caller, spread over the three.
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..300u64 {
            let link = f.link.clone();
            tasks.spawn(async move { (n, link.authorise(&purchase(5_000 + n)).await) });
        }
        while let Some(joined) = tasks.join_next().await {
            let (n, outcome) = joined.unwrap();
            let Outcome::Approved(a) = outcome.unwrap() else {
                panic!("{n} not approved")
            };
            assert_eq!(f.sim.ledger().by_rrn(&a.rrn).unwrap().amount, 5_000 + n);
        }
        let ledger = f.sim.ledger();
        assert_eq!(ledger.entries.len(), 330);
        let stans: std::collections::HashSet<_> = ledger.entries.iter().map(|e| &e.stan).collect();
        assert_eq!(stans.len(), 330, "one STAN sequence for the pool");
        let counts = per_connection(&f.sim);
        assert!(counts.values().all(|&n| n > 10), "{counts:?}");
        let members = f.link.members();
        assert_eq!(members.len(), 3);
        for m in &members {
            assert!(m.ready && m.stats.sign_ons == 1, "{m:?}");
            assert!(m.stats.authorisations > 10, "{m:?}");
        }
        assert_eq!(f.link.stats().authorisations, 330);
        assert_eq!(f.link.stats().unmatched, 0);
    });
}

#[test]
fn when_one_connection_of_the_pool_drops_payments_go_on_over_the_others_and_its_own_are_reversed() {
    run(async {
        // Six authorisations held by the acquirer for 3 s, two on each connection.
        let held: Vec<u64> = (7_001..=7_006).collect();
        let pairs: Vec<_> = held
            .iter()
            .map(|&a| (a, Behaviour::Delay { ms: 3_000 }))
            .collect();
        let f = fixture_with(triggers(&pairs), |c| c.links = 3).await;
        all_signed_on(&f.link).await;
        let mut waiting = Vec::new();
        for (k, &amount) in held.iter().enumerate() {
            let link = f.link.clone();
            waiting.push((
                amount,
                tokio::spawn(async move { link.authorise(&purchase(amount)).await }),
            ));
            // Sent before the next one is picked: the pool balances them.
            for _ in 0..500 {
                if f.sim.ledger().entries.len() > k {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let counts = per_connection(&f.sim);
        assert!(
            counts.len() == 3 && counts.values().all(|&n| n == 2),
            "{counts:?}"
        );
        // The acquirer drops the connection of the first one.
        let dropped = f.sim.ledger().entries[0].connection;
        assert!(f.sim.close_connection(dropped));
        let on_dropped: Vec<u64> = f
            .sim
            .ledger()
            .entries
            .iter()
            .filter(|e| e.connection == dropped)
            .map(|e| e.amount)
            .collect();
        let mut lost = Vec::new();
        let mut others = Vec::new();
        for (amount, task) in waiting {
            if on_dropped.contains(&amount) {
                lost.push(task.await.unwrap().unwrap());
            } else {
                others.push(task);
            }
        }
        // Its own are unknown (sent, then the connection went) and reversed over the others.
        for outcome in &lost {
            let Outcome::Unknown(u) = outcome else {
                panic!("{outcome:?}")
            };
            assert_eq!(u.cause, UnknownCause::ConnectionLost);
            let r = settled(&f.store, outcome).await;
            assert_eq!(r.state, ReversalState::Acknowledged { code: "00".into() });
        }
        // Meanwhile new payments go on, none refused, none unknown.
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..30u64 {
            let link = f.link.clone();
            tasks.spawn(async move { link.authorise(&purchase(8_000 + n)).await });
        }
        while let Some(outcome) = tasks.join_next().await {
            let outcome = outcome.unwrap().unwrap();
            assert!(matches!(outcome, Outcome::Approved(_)), "{outcome:?}");
        }
        // The ones held on the other connections are answered as usual.
        for task in others {
            let outcome = task.await.unwrap().unwrap();
            assert!(matches!(outcome, Outcome::Approved(_)), "{outcome:?}");
        }
        let ledger = f.sim.ledger();
        for amount in &on_dropped {
            let e = ledger.entries.iter().find(|e| e.amount == *amount).unwrap();
            assert_eq!(e.status, Status::Reversed, "{e:?}");
        }
        assert_eq!(
            ledger
                .entries
                .iter()
                .filter(|e| e.status == Status::Reversed)
                .count(),
            2
        );
        // The dropped member reconnected.
        all_signed_on(&f.link).await;
        assert!(f.link.stats().connects >= 4);
    });
}

#[test]
fn with_every_connection_of_the_pool_down_an_authorisation_is_refused_at_once() {
    run(async {
        let f = fixture_with(SimConfig::default(), |c| {
            c.links = 3;
            // Down for longer than any deadline below.
            c.timers.reconnect_min = Duration::from_secs(60);
            c.timers.reconnect_max = Duration::from_secs(60);
        })
        .await;
        all_signed_on(&f.link).await;
        f.sim.stop().await;
        for _ in 0..1000 {
            if f.link.members().iter().all(|m| m.last_error.is_some()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!f.link.is_ready());
        assert_eq!(f.link.ready_links(), (0, 3));
        // Refused without waiting for its 30 s deadline: nothing reached the acquirer.
        let err = tokio::time::timeout(
            Duration::from_secs(10),
            f.link
                .authorise_within(&purchase(9_001), Duration::from_secs(30)),
        )
        .await
        .expect("refused at once, not after the deadline")
        .unwrap_err();
        assert!(matches!(err, LinkError::NotConnected { .. }), "{err}");
        assert_eq!(f.store.all().len(), 0, "no reversal for a 0200 never sent");
    });
}

#[test]
fn the_acquirers_advices_on_any_connection_of_the_pool_are_answered_on_that_connection() {
    use qrbridge::acquirer::advice::{AdviceFuture, AdviceHandler, RefundAdvice, codes};
    use qrbridge::acquirer::sim::{RefundOrder, RefundOutcome, Target};
    struct AcceptAll;
    impl AdviceHandler for AcceptAll {
        fn refund_advice(&self, _advice: RefundAdvice) -> AdviceFuture {
            Box::pin(async { Some(codes::accepted()) })
        }
    }
    run(async {
        let f = fixture_with(SimConfig::default(), |c| c.links = 3).await;
        all_signed_on(&f.link).await;
        f.link.set_advice_handler(Arc::new(AcceptAll));
        let Outcome::Approved(a) = f.link.authorise(&purchase(10_000)).await.unwrap() else {
            panic!("not approved")
        };
        for _ in 0..6 {
            let entry = f
                .sim
                .refund(RefundOrder {
                    target: Target::Rrn(a.rrn.clone()),
                    amount: 100,
                    reference: None,
                })
                .await;
            assert_eq!(entry.outcome, RefundOutcome::Accepted, "{entry:?}");
            assert_eq!(
                entry.transmissions, 1,
                "answered on the connection it came on"
            );
        }
        let members = f.link.members();
        assert!(
            members
                .iter()
                .all(|m| m.stats.advices == 2 && m.stats.advices_accepted == 2),
            "{members:?}"
        );
    });
}

#[test]
fn a_reversal_repeated_on_another_connection_of_the_pool_is_acknowledged_once() {
    use qrbridge::acquirer::reversal::ReversalStore;
    run(async {
        // The 0200 gets no answer; the 0400 is answered after 1.5 s (past the 400 ms the link
        // waits), so a 0401 goes out on the other connection and is answered at once; then the
        // late 0410 to the 0400 arrives on the first.
        let mut cfg = triggers(&[(7_777, Behaviour::NeverAnswer)]);
        cfg.late_ms = 1_500;
        cfg.late_reversals = 1;
        let f = fixture_with(cfg, |c| c.links = 2).await;
        all_signed_on(&f.link).await;
        let outcome = f
            .link
            .authorise_within(&purchase(7_777), Duration::from_millis(300))
            .await
            .unwrap();
        let r = settled(&f.store, &outcome).await;
        assert_eq!(r.state, ReversalState::Acknowledged { code: "00".into() });
        for _ in 0..500 {
            if f.link.stats().late >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(f.link.stats().late, 1, "the late 0410 came back");
        let Outcome::Unknown(u) = &outcome else {
            unreachable!()
        };
        let r = f.store.get(u.reversal.unwrap()).unwrap().unwrap();
        assert_eq!(r.state, ReversalState::Acknowledged { code: "00".into() });
        let results: Vec<_> = r.attempts.iter().map(|a| &a.result).collect();
        assert_eq!(results.len(), 2, "{results:?}");
        assert!(
            !results
                .iter()
                .any(|a| matches!(a, AttemptResult::LateAcknowledged(_))),
            "the late 0410 recorded again after the 0401's: {results:?}"
        );
        // The two transmissions went out on the two connections.
        assert_eq!(f.sim.ledger().entries[0].reversal_messages, 2);
    });
}
