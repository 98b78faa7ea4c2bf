//! `qrbridge serve [--config FILE]`: the gateway. Without a config file, the embedded demo of a
//! Singapore deployment: plaintext on loopback, authentication OFF for `demo-wallet`, the acquirer
//! simulator in-process on loopback TLS (certificates generated at start), SGQR / PayNow / NETS
//! routes, the bundled reference rates and a journal in a data directory. Prints a banner with
//! ready-to-paste requests. Ctrl-C / SIGTERM: stop accepting, drain, then close the journal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use qrbridge::acquirer::link::{LinkConfig, Timers};
use qrbridge::acquirer::message::Terminal;
use qrbridge::acquirer::reversal::RetryPolicy;
use qrbridge::acquirer::sim::{SimConfig, Simulator};
use qrbridge::config::{AcquirerSection, Config};
use qrbridge::fx::source::{EcbHttps, StaticSource};
use qrbridge::fx::{EcbFile, QuoteStore, Quoter, RateCache, parse_ecb};
use qrbridge::gateway::Gateway;
use qrbridge::journal::{JournalConfig, RedbJournal};
use qrbridge::notify::Deliverer;
use qrbridge::scheme::Scheme;
use qrbridge::scheme::native::Native;
use qrbridge::server::{RunningServer, ServeOptions};
use qrbridge::time::SystemClock;
use qrbridge::tls;
use qrbridge::tls::pki::Pki;

/// The embedded demo's configuration.
const DEMO: &str = include_str!("serve_demo.toml");
/// The bundled reference rates (ECB format; illustrative figures).
const BUNDLED_RATES: &str = include_str!("../../testdata/fx/eurofxref-daily.xml");
/// A valid SGQR code with PayNow, NETS, GrabPay and SGQR templates (testdata/emv/valid).
pub const DEMO_CODE: &str = "00020101021126370009SG.PAYNOW010120210201912345K0301127730011SG.COM.NETS01231201912345K991231235900021511111686614000303088686614028260008COM.GRAB0110A93FO3230Q51380007SG.SGQR0112180907512345020701.00015204581253037025802SG5917SOBA NOODLE HOUSE6009Singapore63048499";

#[derive(clap::Args)]
pub struct Args {
    /// The configuration (TOML; every key documented in qrbridge.toml). Default: the embedded demo.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Listen here instead of the configured address (port 0 picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Demo only: the data directory for the journal (default: a new temporary directory,
    /// removed on exit).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Log format on stderr: auto (human on a terminal, JSON lines otherwise), human or json.
    /// Overrides `[log] format`; `RUST_LOG` overrides `[log] filter`.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<qrbridge::telemetry::log::LogFormat>,
}

/// What `serve` hands back to be closed, and the demo's temporary directory to remove.
struct Stopped {
    journal: Arc<RedbJournal>,
    temp_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(serve(args));
    // Background tasks (links, reversal drivers) end with the runtime; then the journal is the
    // last owner of its file and closes it (its writer thread finishes the queue first).
    rt.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(Stopped { journal, temp_dir }) => {
            match Arc::try_unwrap(journal) {
                Ok(journal) => journal.close(),
                Err(still_shared) => drop(still_shared),
            }
            println!("journal closed");
            if let Some(dir) = temp_dir {
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => println!("removed the demo's data directory {}", dir.display()),
                    Err(e) => eprintln!("warning: removing {}: {e}", dir.display()),
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn read(config: &Config, key: &str, p: &Option<PathBuf>) -> Result<String, String> {
    let p = p.as_ref().ok_or_else(|| format!("{key}: missing"))?;
    let path = config.resolve(p);
    std::fs::read_to_string(&path).map_err(|e| format!("{key}: {}: {e}", path.display()))
}

async fn link_config(
    config: &Config,
    i: usize,
    a: &AcquirerSection,
    sims: &mut Vec<Simulator>,
) -> Result<LinkConfig, String> {
    let (addr, server_name, client) = if a.embedded_simulator {
        let pki = Pki::generate(&["localhost"], "qrbridge").map_err(|e| e.to_string())?;
        let server = tls::server_config(&pki.ca_cert, &pki.server_cert, &pki.server_key)
            .map_err(|e| e.to_string())?;
        let sim = Simulator::start(([127, 0, 0, 1], 0).into(), server, SimConfig::default())
            .await
            .map_err(|e| format!("acquirer simulator: {e}"))?;
        let client = tls::client_config(&pki.ca_cert, &pki.client_cert, &pki.client_key)
            .map_err(|e| e.to_string())?;
        let addr = sim.addr().to_string();
        sims.push(sim);
        (addr, "localhost".to_owned(), client)
    } else {
        let k = |s: &str| format!("acquirers[{i}].{s}");
        let client = tls::client_config(
            &read(config, &k("tls_ca"), &a.tls_ca)?,
            &read(config, &k("tls_cert"), &a.tls_cert)?,
            &read(config, &k("tls_key"), &a.tls_key)?,
        )
        .map_err(|e| format!("acquirers[{i}]: {e}"))?;
        (a.address.clone(), a.server_name.clone(), client)
    };
    let mut c = LinkConfig::new(
        addr,
        server_name,
        client,
        Terminal {
            acquiring_institution: a.acquiring_institution.clone(),
            terminal_id: a.terminal_id.clone(),
        },
    );
    c.timers = Timers {
        connect: Duration::from_millis(a.connect_timeout_ms),
        ..Timers::default()
    };
    c.reversal = RetryPolicy {
        answer_timeout: Duration::from_millis(a.reversal_answer_timeout_ms),
        max_attempts: a.reversal_max_attempts,
        ..RetryPolicy::default()
    };
    c.links = a.links;
    Ok(c)
}

async fn serve(args: Args) -> Result<Stopped, String> {
    let demo = args.config.is_none();
    let mut temp_dir = None;
    let mut config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| format!("{}: {e}", path.display()))?,
        None => {
            let dir = match &args.data_dir {
                Some(d) => d.clone(),
                None => {
                    let d =
                        std::env::temp_dir().join(format!("qrbridge-demo-{}", std::process::id()));
                    temp_dir = Some(d.clone());
                    d
                }
            };
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            Config::parse(DEMO, &dir).map_err(|e| format!("embedded demo config: {e}"))?
        }
    };
    qrbridge::telemetry::log::init(&config.log, args.log_format);
    if let Some(listen) = args.listen {
        config.server.listen = listen.to_string();
    }
    let settings = config.settings().map_err(|e| e.to_string())?;
    let server_config = config.server().map_err(|e| e.to_string())?;
    let schemes = config.schemes().map_err(|e| e.to_string())?;

    let clock = Arc::new(SystemClock);
    let rates = match &config.fx.rates_file {
        None if config.fx.rates_url.is_some() => {
            let url = config.fx.rates_url.as_deref().unwrap_or_default();
            let source = EcbHttps::new(url).map_err(|e| format!("fx.rates_url: {e}"))?;
            RateCache::new(source, clock.clone(), config.cache())
        }
        None => {
            let table = parse_ecb(BUNDLED_RATES.as_bytes(), "bundled:eurofxref-daily.xml")
                .map_err(|e| e.to_string())?;
            RateCache::new(StaticSource::new(table), clock.clone(), config.cache())
        }
        Some(p) => {
            let path = config.resolve(p);
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
            {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("fx.rates_file: {}: {e}", path.display()))?;
                let source = StaticSource::from_toml(&text, &format!("static:{}", path.display()))
                    .map_err(|e| format!("fx.rates_file: {e}"))?;
                RateCache::new(source, clock.clone(), config.cache())
            } else {
                RateCache::new(EcbFile::new(path), clock.clone(), config.cache())
            }
        }
    };
    let quoter = Quoter::new(rates, config.quote_policy(), clock.clone());
    let quotes = QuoteStore::new(clock, config.memory.quotes_bytes());

    let journal_path = config.resolve(&config.journal.path);
    config.prepare_journal_dir().map_err(|e| e.to_string())?;
    let journal_config = JournalConfig {
        cache_bytes: config.memory.journal_cache_bytes(),
        ..JournalConfig::new(journal_path.clone())
    };
    let journal = Arc::new(match config.postgres().map_err(|e| e.to_string())? {
        Some(pg) => {
            let label = pg.redacted();
            RedbJournal::open_postgres(pg, journal_config, config.journal.migrate)
                .map_err(|e| format!("journal {label}: {e}"))?
        }
        None => RedbJournal::open(journal_config)
            .map_err(|e| format!("journal {}: {e}", journal_path.display()))?,
    });
    let mut sims = Vec::new();
    let mut links = Vec::new();
    for (i, a) in config.acquirers.iter().enumerate() {
        links.push((a.name.clone(), link_config(&config, i, a, &mut sims).await?));
    }
    let (gateway, recovery) = Gateway::start(settings, journal.clone(), quoter, quotes, links)
        .await
        .map_err(|e| e.to_string())?;
    if recovery != Default::default() {
        println!("recovered from the journal: {recovery:?}");
    }
    if let Err(e) = gateway.ready(Duration::from_secs(10)).await {
        tracing::error!(
            error = %e,
            action = "check the acquirer's address, certificates and reachability; payments \
                      are refused (F SERVICE_UNAVAILABLE) until the link signs on, and /readyz \
                      says not ready",
            "acquirer link not signed on at start"
        );
    }
    for (name, members) in gateway.link_states() {
        if members.len() > 1 {
            let up = members.iter().filter(|m| **m).count();
            println!(
                "acquirer {name}: a pool of {} links, {up} signed on",
                members.len()
            );
        }
    }
    let readiness = gateway.readiness();
    // The native scheme with its clients' notify URLs, then the registry's schemes. The deliverer
    // notifies in every scheme served; pending notices from before a restart resume at once.
    let native = Native::new(server_config.auth.clone())
        .map_err(|e| e.to_string())?
        .with_notify_urls(config.notify_urls());
    let mut served: Vec<Arc<dyn Scheme>> = vec![Arc::new(native)];
    served.extend(schemes.iter().cloned());
    // The demo serves /metrics on its wallet listener; a deployment on `[operator] listen`.
    let server = RunningServer::start_with_options(
        server_config,
        served,
        Arc::new(gateway.clone()),
        readiness.clone(),
        ServeOptions { metrics: demo },
    )
    .await
    .map_err(|e| e.to_string())?;
    install_probe(&gateway, &journal);
    let operator = match &config.operator.listen {
        Some(addr) => {
            let addr: SocketAddr = addr
                .parse()
                .map_err(|e| format!("operator.listen: {addr:?}: {e}"))?;
            let op = qrbridge::server::operator::OperatorListener::start(addr, readiness.clone())
                .await
                .map_err(|e| format!("operator.listen: {addr}: {e}"))?;
            println!(
                "operator listener (metrics, health) on http://{}",
                op.local_addr()
            );
            Some(op)
        }
        None => None,
    };
    // The deliverer settles payment orders with the wallets' answers to inquiries (aplus).
    let deliverer = Deliverer::start_settling(
        journal.clone(),
        server.schemes(),
        config.notify_policy(),
        Some(Arc::new(gateway.clone())),
    )
    .map_err(|e| e.to_string())?;
    let addr = server.local_addr();
    if demo {
        print!(
            "{}",
            banner(addr, &journal_path, sims.first().map(Simulator::addr))
        );
        let base = format!("http://{addr}");
        for s in &schemes {
            if let Some(walk) = s.demo_walkthrough(&base, DEMO_CODE) {
                print!("{walk}");
            }
        }
    } else {
        println!("qrbridge gateway listening on {addr}");
    }
    if let Some(op) = &operator {
        println!(
            "operator listener (metrics, health) on http://{}",
            op.local_addr()
        );
    }
    println!();
    for s in &schemes {
        let auth = if s.is_demo() {
            "AUTHENTICATION OFF (demo client)"
        } else {
            "signatures required"
        };
        println!("scheme {:<9} {}{}  ({auth})", s.name(), addr, s.prefix());
    }
    println!("ready");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    wait_for_signal().await;
    println!("shutting down: draining requests in flight");
    let handlers = server.handlers();
    let report = server.shutdown(Duration::from_secs(10)).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), handlers.wait_idle()).await;
    println!(
        "stopped (drained: {}, connections dropped: {}, handlers still running: {})",
        report.drained, report.connections_dropped, report.handlers_running
    );
    // After the server drained: attempts in flight finish (5 s at most); whatever is still
    // unacknowledged stays PENDING in the journal for the next start.
    let notified = deliverer.shutdown(Duration::from_secs(5)).await;
    println!(
        "notifications stopped (sent: {}, failed attempts: {}, parked: {})",
        notified.sent, notified.failed, notified.parked
    );
    if let Some(op) = operator {
        op.stop();
    }
    drop(gateway);
    if let Some(name) = journal.instance().map(|i| i.name.clone()) {
        // A clean stop: the other instances may take whatever is still open at once.
        match qrbridge::journal::Journal::retire(&*journal).await {
            Ok(_) => println!("journal instance {name} retired"),
            Err(e) => eprintln!("journal instance {name}: retiring: {e}"),
        }
    }
    for sim in sims {
        sim.stop().await;
    }
    Ok(Stopped { journal, temp_dir })
}

/// Reads the gauges that describe stored state when `/metrics` is scraped.
fn install_probe(gateway: &Gateway, journal: &Arc<RedbJournal>) {
    let weak_gateway = gateway.downgrade();
    let weak_journal = Arc::downgrade(journal);
    qrbridge::telemetry::metrics::set_probe(Arc::new(move |m| {
        if let Some(g) = weak_gateway.upgrade() {
            for (name, members) in g.link_states() {
                for (i, up) in members.into_iter().enumerate() {
                    m.link_up
                        .get_or_create(&qrbridge::telemetry::metrics::LinkLabels {
                            acquirer: name.clone(),
                            link: i.to_string(),
                        })
                        .set(i64::from(up));
                }
            }
        }
        let Some(j) = weak_journal.upgrade() else {
            return;
        };
        let Ok(snapshot) = j.snapshot() else { return };
        if let Ok(u) = snapshot.unresolved() {
            m.reversal_queue
                .set(i64::try_from(u.reversals.len()).unwrap_or(i64::MAX));
        }
        if let Ok(pending) = snapshot.pending_notices() {
            m.outbox_pending
                .set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let oldest = pending.iter().map(|n| n.created_at_ms).min();
            m.outbox_oldest_age
                .set(oldest.map_or(0.0, |t| now.saturating_sub(t) as f64 / 1000.0));
        }
        if let Ok(parked) = snapshot.parked_notices() {
            m.notices_parked
                .set(i64::try_from(parked.len()).unwrap_or(i64::MAX));
        }
    }));
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The demo banner: what runs where, and a pasteable payment (decode → quote → pay → inquiry).
pub fn banner(addr: SocketAddr, journal: &std::path::Path, sim: Option<SocketAddr>) -> String {
    let base = format!("http://{addr}");
    let sim = sim.map_or_else(|| "-".to_owned(), |a| a.to_string());
    let journal = journal.display();
    format!(
        r#"
================================================================================
 qrbridge gateway: EMBEDDED DEMO of a Singapore deployment (SG, SGD)
 !! AUTHENTICATION IS OFF: every request is accepted as client "demo-wallet". !!
 !! Demo only: plaintext HTTP on loopback. Use --config FILE for the real thing. !!
================================================================================
 wallet API     {base}  (plaintext, loopback only)
 acquirer       built-in simulator on {sim} (ISO 8583 over mutual TLS 1.3,
                certificates generated at start; approves everything)
 routes         SG.COM.NETS (priority 10), SG.PAYNOW (20), SG.SGQR (30)
 rates          bundled reference rates (illustrative), markup 150 bps
 journal        {journal}

 Pay an SGQR code (SOBA NOODLE HOUSE) SGD 12.50 from a Malaysian wallet in MYR.
 Paste into a shell (bash; needs curl and sed):

Q={base}
R=$(curl -s -X POST $Q/v1/qr/decode -H 'content-type: application/json' -d '{{"decodeRequestId":"demo-decode-1","customerId":"my-customer-1","codeValue":"{DEMO_CODE}","payerCurrency":"MYR"}}'); echo "$R"; DECODE_ID=$(echo "$R" | sed -E 's/.*"decodeId":"([^"]+)".*/\1/')
R=$(curl -s -X POST $Q/v1/quotes -H 'content-type: application/json' -d '{{"quoteRequestId":"demo-quote-1","decodeId":"'$DECODE_ID'","amount":{{"currency":"SGD","value":"1250"}},"payerCurrency":"MYR"}}'); echo "$R"; QUOTE_ID=$(echo "$R" | sed -E 's/.*"quoteId":"([^"]+)".*/\1/')
PAY_ID=demo-pay-$RANDOM; R=$(curl -s -X POST $Q/v1/payments -H 'content-type: application/json' -d '{{"paymentRequestId":"'$PAY_ID'","quoteId":"'$QUOTE_ID'","customerId":"my-customer-1"}}'); echo "$R"; PAYMENT_ID=$(echo "$R" | sed -E 's/.*"paymentId":"([^"]+)".*/\1/')
curl -s -X POST $Q/v1/payments/inquiry -H 'content-type: application/json' -d '{{"paymentRequestId":"'$PAY_ID'"}}'; echo

 Then refund part of it (SGD 5.00, at the quote's rate; repeatable up to the total):
curl -s -X POST $Q/v1/refunds -H 'content-type: application/json' -d '{{"refundRequestId":"'$PAY_ID'-r1","paymentId":"'$PAYMENT_ID'","refundAmount":{{"currency":"SGD","value":"500"}},"reason":"demo"}}'; echo
 or, before any refund, cancel it (a reversal to the acquirer):
curl -s -X POST $Q/v1/payments/cancel -H 'content-type: application/json' -d '{{"paymentRequestId":"'$PAY_ID'"}}'; echo

 Health: curl -s $Q/healthz ; curl -s $Q/readyz   Metrics: curl -s $Q/metrics   Stop: Ctrl-C
================================================================================
"#
    )
}
