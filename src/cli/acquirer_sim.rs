//! `qrbridge acquirer-sim`: run the acquirer simulator (TLS 1.3, client certificate required).
//!
//! Without `--tls-*` files it makes a private CA, a server certificate for `localhost`/`127.0.0.1` and a
//! client certificate, and writes them to `--pki-dir` so a link (or `openssl s_client`) can connect.
//! On Ctrl-C (or after `--stop-after`) it writes the ledger as JSON to `--ledger` (or stdout) and,
//! with `--settlement`, the end-of-day settlement file (spec/settlement.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use qrbridge::acquirer::sim::{SimConfig, Simulator};
use qrbridge::tls;
use qrbridge::tls::pki::Pki;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8583")]
    listen: SocketAddr,
    /// Behaviours in TOML (default: approve everything). See spec/acquirer-iso8583.md.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where generated certificates are written (ca.pem, client.pem, client.key, server.pem, server.key).
    #[arg(long, default_value = "acquirer-sim-pki")]
    pki_dir: PathBuf,
    /// CA certificate (PEM) that issued the client certificates to accept.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<PathBuf>,
    /// Server certificate (PEM).
    #[arg(long, requires = "tls_ca")]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, requires = "tls_ca")]
    tls_key: Option<PathBuf>,
    /// Write the ledger JSON here on exit (default: stdout).
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// Write the end-of-day settlement file (spec/settlement.md) here on exit.
    #[arg(long)]
    settlement: Option<PathBuf>,
    /// Stop after this many seconds instead of waiting for Ctrl-C.
    #[arg(long)]
    stop_after: Option<u64>,
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn server_tls(args: &Args) -> Result<Arc<rustls::ServerConfig>, String> {
    if let (Some(ca), Some(cert), Some(key)) = (&args.tls_ca, &args.tls_cert, &args.tls_key) {
        return tls::server_config(&read(ca)?, &read(cert)?, &read(key)?)
            .map_err(|e| e.to_string());
    }
    let pki = Pki::generate(&["localhost", "127.0.0.1"], "qrbridge").map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&args.pki_dir)
        .map_err(|e| format!("{}: {e}", args.pki_dir.display()))?;
    for (name, text) in [
        ("ca.pem", &pki.ca_cert),
        ("client.pem", &pki.client_cert),
        ("client.key", &pki.client_key),
        ("server.pem", &pki.server_cert),
        ("server.key", &pki.server_key),
    ] {
        let path = args.pki_dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    tls::server_config(&pki.ca_cert, &pki.server_cert, &pki.server_key).map_err(|e| e.to_string())
}

pub fn run(args: Args) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(args: Args) -> Result<(), String> {
    let config = match &args.config {
        Some(path) => {
            SimConfig::from_toml(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => SimConfig::default(),
    };
    let tls = server_tls(&args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let sim = Simulator::start(args.listen, tls, config)
            .await
            .map_err(|e| format!("listening on {}: {e}", args.listen))?;
        println!("acquirer simulator listening on {}", sim.addr());
        if args.tls_ca.is_none() {
            println!(
                "client certificate, key and CA written to {}",
                args.pki_dir.display()
            );
        }
        match args.stop_after {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        let book = sim.ledger();
        let ledger = book.to_json();
        sim.stop().await;
        if let Some(path) = &args.settlement {
            let now = qrbridge::time::fields::UtcFields::now();
            let date = now.yyyymmdd();
            let created = format!("{date}{}", now.de12());
            let file = book.settlement(&date, "acquirer-sim", &created).render();
            std::fs::write(path, file).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        match &args.ledger {
            Some(path) => {
                std::fs::write(path, ledger + "\n").map_err(|e| format!("{}: {e}", path.display()))
            }
            None => {
                println!("{ledger}");
                Ok(())
            }
        }
    })
}
