//! The pieces of a Singapore test deployment that several test binaries start over real sockets:
//! the acquirer simulator on loopback mutual TLS with a link configured for quick tests, quoting on
//! the bundled test rates with a manual clock, and the SG settings (routes, client policies).
//! Included with `#[path]` by `tests/gateway.rs`, `tests/notify.rs` and `tests/schemes/`.
#![allow(dead_code)] // each binary uses its own subset

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use qrbridge::acquirer::link::{LinkConfig, Timers};
use qrbridge::acquirer::message::Terminal;
use qrbridge::acquirer::reversal::RetryPolicy;
use qrbridge::acquirer::sim::{SimConfig, Simulator};
use qrbridge::fx::source::StaticSource;
use qrbridge::fx::{CacheConfig, QuotePolicy, QuoteStore, Quoter, RateCache, parse_ecb};
use qrbridge::gateway::{ClientPolicy, Gateway, Matcher, RouteRule, Settings};
use qrbridge::journal::{DailyLimits, Journal};
use qrbridge::money::Currency;
use qrbridge::scheme::native::auth::AuthConfig;
use qrbridge::server::{Limits, RunningServer, ServerConfig, Transport};
use qrbridge::time::ManualClock;
use qrbridge::tls;
use qrbridge::tls::pki::Pki;

/// The bundled reference rates the tests quote on.
pub const RATES: &str = include_str!("../../testdata/fx/eurofxref-daily.xml");

/// The simulator (with `config`) on loopback mutual TLS, and a link to it with short timers:
/// reconnect 20–200 ms, reversal answers awaited 400 ms, backoff 20–100 ms, 5 attempts.
pub async fn acquirer(config: SimConfig) -> (Simulator, LinkConfig) {
    let (sim, link, _) = acquirer_tls(config).await;
    (sim, link)
}

/// As [`acquirer`], with the simulator's TLS configuration, so a test can stop the simulator and
/// start another on the same address (an acquirer outage and its end).
pub async fn acquirer_tls(config: SimConfig) -> (Simulator, LinkConfig, Arc<rustls::ServerConfig>) {
    let pki = Pki::generate(&["localhost"], "qrbridge-test").unwrap();
    let server = tls::server_config(&pki.ca_cert, &pki.server_cert, &pki.server_key).unwrap();
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), server.clone(), config)
        .await
        .unwrap();
    let client = tls::client_config(&pki.ca_cert, &pki.client_cert, &pki.client_key).unwrap();
    let mut link = LinkConfig::new(
        sim.addr().to_string(),
        "localhost",
        client,
        Terminal {
            acquiring_institution: "70200001".to_owned(),
            terminal_id: "QRB00001".to_owned(),
        },
    );
    link.timers = Timers {
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        ..Timers::default()
    };
    link.reversal = RetryPolicy {
        answer_timeout: Duration::from_millis(400),
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        max_attempts: 5,
    };
    (sim, link, server)
}

/// Quoting on the bundled rates (never stale) with a manual clock starting now.
pub fn quoting() -> (Quoter, QuoteStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let table = parse_ecb(RATES.as_bytes(), "test").unwrap();
    let rates = RateCache::new(
        StaticSource::new(table),
        clock.clone(),
        CacheConfig {
            max_age: Duration::MAX,
            ..CacheConfig::daily_feed()
        },
    );
    let quoter = Quoter::new(rates, QuotePolicy::default(), clock.clone());
    let quotes = QuoteStore::new(clock.clone(), 16 << 20);
    (quoter, quotes, clock)
}

/// A route of GUID `guid` to the acquirer "sg".
pub fn route(guid: &str, mid: u8, tid: Option<u8>, priority: u32) -> RouteRule {
    RouteRule {
        matcher: Matcher::Guid(guid.to_owned()),
        acquirer: "sg".to_owned(),
        merchant_id_sub: mid,
        terminal_id_sub: tid,
        priority,
    }
}

/// NETS (10), PayNow (20), SGQR (30), all to "sg".
pub fn sg_routes() -> Vec<RouteRule> {
    vec![
        route("SG.SGQR", 1, None, 30),
        route("SG.COM.NETS", 2, Some(3), 10),
        route("SG.PAYNOW", 2, None, 20),
    ]
}

/// SG / SGD with `routes`, each of `clients` at 150 bps markup and SGD 5,000.00 per payment; pay
/// budget 1.5 s, decode TTL 10 min, cancel window 30 min.
pub fn sg_settings(clients: &[&str], routes: Vec<RouteRule>) -> Settings {
    let clients: HashMap<String, ClientPolicy> = clients
        .iter()
        .map(|c| {
            (
                (*c).to_owned(),
                ClientPolicy {
                    markup_bps: 150,
                    max_per_transaction: Some(500_000),
                    daily: DailyLimits::default(),
                },
            )
        })
        .collect();
    Settings {
        country: "SG".to_owned(),
        currency: Currency::from_code("SGD").unwrap(),
        clients,
        routes,
        decode_ttl: Duration::from_secs(600),
        pay_budget: Duration::from_millis(1500),
        cancel_window: Duration::from_secs(1800),
        memory: Default::default(),
    }
}

/// A gateway on `journal` paying through `link` (acquirer `sg`), quoting as [`quoting`], ready;
/// and its wallet server on 127.0.0.1:0 (plaintext, authentication off: every request is
/// `client`'s).
pub async fn serve_gateway(
    settings: Settings,
    journal: Arc<dyn Journal>,
    link: LinkConfig,
    client: &str,
) -> (Gateway, RunningServer) {
    let (quoter, quotes, _clock) = quoting();
    let (gateway, _) = Gateway::start(
        settings,
        journal,
        quoter,
        quotes,
        vec![("sg".to_owned(), link)],
    )
    .await
    .unwrap();
    gateway.ready(Duration::from_secs(10)).await.unwrap();
    let server = RunningServer::start(
        ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            transport: Transport::PlaintextLoopback,
            limits: Limits::default(),
            auth: AuthConfig::off(client),
        },
        Arc::new(gateway.clone()),
        gateway.readiness(),
    )
    .await
    .unwrap();
    (gateway, server)
}

/// The journal at `path` on this run's engine: redb, or PostgreSQL when
/// `QRBRIDGE_TEST_JOURNAL=postgres` (scripts/test reruns the pipeline tests that way with
/// `QRBRIDGE_TEST_PG_URL`), one schema per path so a reopened path finds its records.
pub fn open_journal(path: &std::path::Path) -> qrbridge::journal::RedbJournal {
    use qrbridge::journal::{JournalConfig, RedbJournal, postgres::PgConfig};
    use std::hash::{Hash, Hasher};
    if std::env::var("QRBRIDGE_TEST_JOURNAL").as_deref() != Ok("postgres") {
        return RedbJournal::open(JournalConfig::new(path)).unwrap();
    }
    let url = std::env::var("QRBRIDGE_TEST_PG_URL")
        .expect("QRBRIDGE_TEST_JOURNAL=postgres needs QRBRIDGE_TEST_PG_URL");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    let schema = format!("g_{:016x}", h.finish());
    // The synchronous client must not run on a runtime thread.
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut admin = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
            admin
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .unwrap();
        })
        .join()
        .unwrap();
    });
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut pg = PgConfig::new(format!("{url}{sep}options=-c%20search_path%3D{schema}"));
    // One instance name per path: reopening it is the same instance restarting (it recovers its
    // own records at once, as a reopened redb file does).
    pg.instance = Some(schema);
    RedbJournal::open_postgres(pg, JournalConfig::new(path), true).unwrap()
}
