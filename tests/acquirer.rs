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

async fn fixture(config: SimConfig) -> Fixture {
    fixture_with(config, |_| {}).await
}

async fn fixture_with(config: SimConfig, tweak: impl FnOnce(&mut LinkConfig)) -> Fixture {
    let pki = Pki::generate(&["localhost"], "qrbridge-test").unwrap();
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), sim_tls(&pki), config)
        .await
        .unwrap();
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
        let sim = Simulator::start(
            "127.0.0.1:0".parse().unwrap(),
            sim_tls(&pki),
            SimConfig::default(),
        )
        .await
        .unwrap();
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
        let sim = Simulator::start(
            "127.0.0.1:0".parse().unwrap(),
            sim_tls(&impostor),
            SimConfig::default(),
        )
        .await
        .unwrap();
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
        let sim = Simulator::start(
            "127.0.0.1:0".parse().unwrap(),
            sim_tls(&pki),
            SimConfig::default(),
        )
        .await
        .unwrap();
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
    use qrbridge::journal::{JournalConfig, RedbJournal};
    run(async {
        let pki = Pki::generate(&["localhost"], "qrbridge-test").unwrap();
        let sim = Simulator::start(
            "127.0.0.1:0".parse().unwrap(),
            sim_tls(&pki),
            SimConfig::default(),
        )
        .await
        .unwrap();
        let dir = std::env::temp_dir().join(format!("qrbridge-stan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Three process lives on one journal (closed and reopened): each signs on and pays 30.
        for _life in 0..3 {
            let journal =
                Arc::new(RedbJournal::open(JournalConfig::new(dir.join("journal.redb"))).unwrap());
            let link = Link::start(link_config(&pki, sim.addr()), journal.clone()).unwrap();
            link.ready(Duration::from_secs(10)).await.unwrap();
            for n in 0..30 {
                let outcome = link.authorise(&purchase(1000 + n)).await.unwrap();
                assert!(matches!(outcome, Outcome::Approved(_)), "{outcome:?}");
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
        let rrns: std::collections::HashSet<_> =
            ledger.entries.iter().map(|e| e.rrn.clone()).collect();
        assert_eq!(stans.len(), 90, "STANs repeated across restarts");
        assert_eq!(rrns.len(), 90, "RRNs repeated across restarts");
        let _ = std::fs::remove_dir_all(&dir);
    });
}
