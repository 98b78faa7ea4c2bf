//! The ISO 20022 wallet simulator (`qrbridge wallet-sim iso20022`) against the real gateway and
//! the acquirer simulator: three kinds of process over real sockets, signed as in production
//! (HMAC-SHA256 both ways), and at the end three ledgers that must agree — the wallet's, the
//! journal's (`qrbridge admin`) and the acquirer's. Every ISO 20022 document the wallet sent and
//! received is validated against its official schema.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::child::Child;
use crate::harness::SGQR_STATIC;

/// The example configuration's key of `wallet-my-01` (base64 of 32 bytes).
const KEY_MY: &str = "dGVzdC1rZXktZm9yLXdhbGxldC1teS0wMS0zMmJ5dGU=";
/// A Nexus-profile client's key.
const KEY_EU: &str = "bmV4dXMta2V5LWZvci13YWxsZXQtZXUtMDEtMzJieXQ=";

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qrbridge-isosim-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn qrbridge(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_qrbridge"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs a `qrbridge` command that must succeed: its stdout.
fn ok(args: &[&str]) -> String {
    let out = qrbridge(args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The `result {json}` line a wallet-sim command prints.
fn result_of(stdout: &str) -> Value {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("result "))
        .unwrap_or_else(|| panic!("no result line: {stdout}"));
    serde_json::from_str(line).unwrap()
}

fn wallet_sim(wallet: &str, args: &[&str]) -> String {
    let mut all = vec!["wallet-sim", "iso20022"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--wallet", wallet]);
    ok(&all)
}

fn ledger(wallet: &str) -> Value {
    serde_json::from_str(&wallet_sim(wallet, &["ledger"])).unwrap()
}

fn entry(wallet: &str, uetr: &str) -> Value {
    ledger(wallet)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["uetr"] == uetr)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits (at most 60 s) until the wallet's entry of `uetr` satisfies `done`.
fn wait_entry(wallet: &str, uetr: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut e = Value::Null;
    for _ in 0..600 {
        e = entry(wallet, uetr);
        if done(&e) {
            return e;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("entry {uetr} never got there: {e}");
}

fn start_wallet(dir: &Path, client: &str, key: &str, profile: &str) -> (Child, String) {
    let key_file = dir.join(format!("{client}.key"));
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let sim = Child::spawn(&[
        "wallet-sim",
        "iso20022",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--client-id",
        client,
        "--key",
        key_file.to_str().unwrap(),
        "--profile",
        profile,
        "--stop-after",
        "300",
    ]);
    let addr = sim.wait_for("iso20022 wallet simulator listening on");
    (sim, format!("http://{addr}"))
}

/// The gateway's configuration: the example file with signatures on, plaintext on loopback, the
/// acquirer simulator, two iso20022 clients (CBPR+ `wallet-my-01`, Nexus `wallet-eu-01`) whose
/// notifications go to their wallet simulators.
fn gateway_config(dir: &Path, sim_addr: &str, my: &str, eu: &str) -> PathBuf {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/qrbridge.toml")).unwrap();
    let without_schemes = example.split("\n[schemes.").next().unwrap().to_owned();
    let config = without_schemes
        .replace("0.0.0.0:8443", "127.0.0.1:0")
        .replace("listen = \"127.0.0.1:9464\"", "listen = \"127.0.0.1:0\"")
        .replace("transport = \"tls\"", "transport = \"plaintext-loopback\"")
        .replace("acquirer.example.sg:8583", sim_addr)
        .replace(
            "server_name = \"acquirer.example.sg\"",
            "server_name = \"localhost\"",
        )
        .replace("certs/acquirer-ca.pem", "pki/ca.pem")
        .replace("certs/qrbridge-client.pem", "pki/client.pem")
        .replace("certs/qrbridge-client.key", "pki/client.key")
        .replace(
            "rates_file = \"testdata/fx/eurofxref-daily.xml\"",
            "# bundled rates",
        )
        .replace("max_age_secs = 345600", "max_age_secs = 0")
        .replace("first_delay_ms = 1000", "first_delay_ms = 100")
        .replace("max_delay_secs = 600", "max_delay_secs = 1")
        + &format!(
            r#"
[[clients]]
id = "wallet-eu-01"
hmac_key_base64 = "{KEY_EU}"
markup_bps = 100

[schemes.iso20022]
[schemes.iso20022.clients.wallet-my-01]
hmac_key_base64 = "{KEY_MY}"
notify_url = "{my}/iso20022/notify"
[schemes.iso20022.clients.wallet-eu-01]
hmac_key_base64 = "{KEY_EU}"
notify_url = "{eu}/iso20022/notify"
profile = "nexus"
"#
        );
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn serve(config: &Path) -> (Child, SocketAddr) {
    let g = Child::spawn(&["serve", "--config", config.to_str().unwrap()]);
    let addr: SocketAddr = g.wait_for("qrbridge gateway listening on").parse().unwrap();
    g.wait_for("ready");
    (g, addr)
}

fn pay(wallet: &str, gateway: &str, amount: &str, args: &[&str]) -> Value {
    let mut all = vec![
        "pay",
        "--gateway",
        gateway,
        "--code",
        SGQR_STATIC,
        "--amount",
        amount,
    ];
    all.extend_from_slice(args);
    result_of(&wallet_sim(wallet, &all))
}

/// `admin payments` over the stopped gateway's journal: the payment whose id, without hyphens,
/// is `clr_sys_ref` (the pacs.002's `ClrSysRef`).
fn journal_payment(config: &Path, clr_sys_ref: &str) -> Value {
    let out = ok(&["admin", "--config", config.to_str().unwrap(), "payments"]);
    let p = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|p| p["paymentId"].as_str().unwrap().replace('-', "") == clr_sys_ref)
        .unwrap_or_else(|| panic!("no payment {clr_sys_ref} in {out}"));
    let id = p["paymentId"].as_str().unwrap().to_owned();
    serde_json::from_str(&ok(&[
        "admin",
        "--config",
        config.to_str().unwrap(),
        "payment",
        "show",
        &id,
    ]))
    .unwrap()
}

#[test]
fn iso20022_wallet_simulator_pays_cancels_takes_returns_and_the_three_ledgers_agree() {
    let dir = temp_dir("flows");
    std::fs::write(
        dir.join("sim.toml"),
        "[by_amount]\n\"5100\" = { kind = \"decline\", code = \"51\" }\n\
         [refunds]\nrate_percent = 1\nafter_ms = 300\namount_percent = 40\n",
    )
    .unwrap();
    let ledger_path = dir.join("acquirer-ledger.json");
    let mut acquirer = Child::spawn(&[
        "acquirer-sim",
        "--listen",
        "127.0.0.1:0",
        "--pki-dir",
        dir.join("pki").to_str().unwrap(),
        "--config",
        dir.join("sim.toml").to_str().unwrap(),
        "--ledger",
        ledger_path.to_str().unwrap(),
    ]);
    let sim_addr = acquirer.wait_for("acquirer simulator listening on");
    let (my_sim, my) = start_wallet(&dir, "wallet-my-01", KEY_MY, "cbpr");
    let (eu_sim, eu) = start_wallet(&dir, "wallet-eu-01", KEY_EU, "nexus");
    let config = gateway_config(&dir, &sim_addr, &my, &eu);
    let (mut gateway, addr) = serve(&config);
    let g = format!("http://{addr}");

    // 1. Approved (the acquirer's first approval: it refunds 40 % of it, SGD 5.00, by advice).
    let paid = pay(&my, &g, "12.50", &[]);
    assert_eq!(
        (paid["http"].as_u64(), paid["txSts"].as_str()),
        (Some(200), Some("ACCC")),
        "{paid}"
    );
    let uetr_paid = paid["uetr"].as_str().unwrap().to_owned();
    let debited = paid["entry"]["debited"].as_u64().unwrap();
    assert_eq!(paid["entry"]["state"], "SETTLED", "{paid}");
    assert_eq!(paid["debited"]["ccy"], "MYR");

    // 2. Declined: RJCT AM04, the payer credited back at once.
    let declined = pay(&my, &g, "51.00", &[]);
    assert_eq!(
        (declined["txSts"].as_str(), declined["reason"].as_str()),
        (Some("RJCT"), Some("AM04")),
        "{declined}"
    );
    let e = &declined["entry"];
    assert_eq!(e["state"], "REJECTED", "{e}");
    assert_eq!(e["credited"], e["debited"], "{e}");

    // 3. Approved, then cancelled by camt.056: camt.029 CNCL / ACCR, the payer made whole.
    let cancelled = pay(&my, &g, "20.00", &[]);
    assert_eq!(cancelled["txSts"], "ACCC", "{cancelled}");
    let uetr_cancelled = cancelled["uetr"].as_str().unwrap().to_owned();
    // The wallet is down (503) while the funds come back: the gateway retries until it is up.
    wallet_sim(&my, &["mode", "--down", "true"]);
    let c = result_of(&wallet_sim(
        &my,
        &["cancel", "--gateway", &g, "--uetr", &uetr_cancelled],
    ));
    assert_eq!(
        (c["conf"].as_str(), c["txCxlSts"].as_str()),
        (Some("CNCL"), Some("ACCR")),
        "{c}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let e = entry(&my, &uetr_cancelled);
    assert_eq!(
        (e["state"].as_str(), e["credited"].as_u64()),
        (Some("SETTLED"), Some(0)),
        "{e}"
    );
    wallet_sim(&my, &["mode", "--down", "false"]);
    // The camt.029 accepts; the funds come back as a pacs.004 FOCR, which credits the payer.
    let e = wait_entry(&my, &uetr_cancelled, |e| e["state"] == "CANCELLED");
    assert_eq!(e["credited"], e["debited"], "{e}");
    assert_eq!(e["returns"].as_array().map(Vec::len), Some(1), "{e}");
    assert_eq!(e["returns"][0]["reason"], "FOCR", "{e}");

    // 4. The merchant's refund of payment 1 (the acquirer's 0220 advice) reaches the wallet as a
    //    pacs.004, which it acknowledges (ACCC) and credits once.
    let e = wait_entry(&my, &uetr_paid, |e| {
        e["returns"].as_array().is_some_and(|r| !r.is_empty())
    });
    let first_return = e["returns"][0]["amount"].as_u64().unwrap();
    assert_eq!(e["returns"][0]["reason"], "MS02", "a merchant refund: {e}");
    assert_eq!(e["credited"].as_u64(), Some(first_return), "{e}");
    assert_eq!(e["state"], "SETTLED", "{e}");

    // 5. Its status by pacs.028: still ACCC (settled, partly returned), naming the payment.
    let s = result_of(&wallet_sim(
        &my,
        &["status", "--gateway", &g, "--uetr", &uetr_paid],
    ));
    assert_eq!(
        (s["http"].as_u64(), s["txSts"].as_str()),
        (Some(200), Some("ACCC")),
        "{s}"
    );

    // 6. A Nexus-profile wallet pays SGD 150.00 from EUR (pacs.008.001.11 → pacs.002.001.13).
    let nexus = pay(&eu, &g, "150.00", &["--currency", "EUR"]);
    assert_eq!(nexus["txSts"], "ACCC", "{nexus}");
    assert_eq!(nexus["debited"]["ccy"], "EUR", "{nexus}");
    assert_eq!(
        nexus["entry"]["merchantAmount"]["value"], "150.00",
        "{nexus}"
    );

    // 7. A wallet that rejects returns: an operator's merchant refund (`admin merchant-refund`,
    //    gateway stopped) of SGD 2.00 reaches it after the restart and is refused (RJCT AC04):
    //    the notice is parked for an operator, the payer's balance unchanged.
    wallet_sim(
        &my,
        &["mode", "--returns", "RJCT", "--reject-reason", "AC04"],
    );
    gateway.signal("-INT");
    assert!(gateway.wait_exit().success());
    let clr = e["clrSysRef"].as_str().unwrap().to_owned();
    let payment = journal_payment(&config, &clr);
    let id = payment["paymentId"].as_str().unwrap().to_owned();
    ok(&[
        "admin",
        "--config",
        config.to_str().unwrap(),
        "merchant-refund",
        &id,
        "--amount",
        "200",
        "--reference",
        "OPS-TICKET-1",
        "--reason",
        "goods returned",
    ]);
    let (gateway, _) = serve(&config);
    let mut refused = 0;
    for _ in 0..300 {
        refused = ledger(&my)["refusedReturns"].as_u64().unwrap();
        if refused > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(refused, 1);
    assert_eq!(
        entry(&my, &uetr_paid)["credited"].as_u64(),
        Some(first_return)
    );
    // Let the deliverer record the refusal before the journal is read.
    std::thread::sleep(Duration::from_millis(500));
    drop(gateway);

    // The journal (gateway stopped): payment 1 refunded SGD 7.00 — SGD 5.00 credited by the
    // wallet (its one return), SGD 2.00 parked with the wallet's reason for an operator.
    let payment = journal_payment(&config, &clr);
    assert_eq!(payment["refunded"], "700", "{payment}");
    assert_eq!(payment["state"], "PARTIALLY_REFUNDED", "{payment}");
    assert_eq!(
        payment["payerAmount"]["value"].as_str().unwrap(),
        debited.to_string()
    );
    let refunds = payment["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 2, "{payment}");
    let advice = refunds.iter().find(|r| r["amount"] == "500").unwrap();
    assert_eq!(
        advice["payerAmount"].as_str().unwrap(),
        first_return.to_string(),
        "the wallet credited what the journal says the payer gets back"
    );
    let notices = payment["notices"].as_array().unwrap();
    let parked: Vec<&Value> = notices.iter().filter(|n| n["state"] == "PARKED").collect();
    assert_eq!(parked.len(), 1, "{payment}");
    assert!(
        parked[0]["lastError"]
            .as_str()
            .unwrap()
            .contains("RJCT AC04"),
        "{}",
        parked[0]
    );
    let sent_credits = notices
        .iter()
        .filter(|n| n["kind"] == "REFUNDCREDIT" && n["state"] == "SENT")
        .count();
    assert_eq!(sent_credits, 1, "{payment}");

    // Payment 3: CANCELLED, its pacs.004 FOCR delivered after the wallet came back (retried).
    let clr_cancelled = entry(&my, &uetr_cancelled)["clrSysRef"]
        .as_str()
        .unwrap()
        .to_owned();
    let p3 = journal_payment(&config, &clr_cancelled);
    assert_eq!(p3["state"], "CANCELLED", "{p3}");
    let n = &p3["notices"][0];
    assert_eq!(
        (n["kind"].as_str(), n["state"].as_str()),
        (Some("PAYMENT"), Some("SENT")),
        "{p3}"
    );
    assert!(
        n["attempts"].as_u64().unwrap() >= 2,
        "retried while the wallet was down: {p3}"
    );

    // The wallet's books: what stays debited is payment 1 less its one return.
    let books = ledger(&my);
    assert_eq!(
        books["netDebited"]["MYR"].as_u64(),
        Some(debited - first_return),
        "{books}"
    );
    assert_eq!(books["unmatchedNotifications"], 0, "{books}");
    assert_eq!(books["badSignatures"], 0, "{books}");

    // The acquirer's ledger: 12.50 approved, 51.00 declined, 20.00 reversed (the cancel), 150.00
    // approved; one refund advice of 5.00, accepted.
    let messages = wallet_sim(&my, &["messages"]) + &wallet_sim(&eu, &["messages"]);
    drop(my_sim);
    drop(eu_sim);
    acquirer.signal("-INT");
    assert!(acquirer.wait_exit().success());
    let book: Value =
        serde_json::from_str(&std::fs::read_to_string(&ledger_path).unwrap()).unwrap();
    let mut seen: Vec<(u64, String)> = book["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["processing_code"]
                .as_str()
                .unwrap_or("")
                .starts_with("00")
        })
        .map(|e| {
            (
                e["amount"].as_u64().unwrap(),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (1250, "approved".to_owned()),
            (2000, "reversed".to_owned()),
            (5100, "declined".to_owned()),
            (15000, "approved".to_owned()),
        ],
        "{book}"
    );
    let advices = book["refunds"].as_array().unwrap();
    assert_eq!(advices.len(), 1, "{book}");
    assert_eq!(
        (
            advices[0]["amount"].as_u64(),
            advices[0]["response_code"].as_str()
        ),
        (Some(500), Some("00"))
    );

    // Every document either wallet sent or received, against its official schema.
    let docs: Vec<(String, Vec<u8>)> = messages
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|m| {
            (
                format!("{} {} ({})", m["direction"], m["message"], m["what"]),
                m["xml"].as_str().unwrap().as_bytes().to_vec(),
            )
        })
        .collect();
    let kinds: std::collections::BTreeSet<String> = docs
        .iter()
        .map(|(name, _)| name.split(" (").next().unwrap().replace('"', ""))
        .collect();
    for kind in [
        "sent pacs.008.001.08",
        "sent pacs.008.001.11",
        "sent pacs.028.001.03",
        "sent camt.056.001.08",
        "sent pacs.002.001.10",
        "received pacs.002.001.10",
        "received pacs.002.001.13",
        "received camt.029.001.09",
        "received pacs.004.001.09",
    ] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
    crate::xsd::assert_valid(&docs);
    eprintln!(
        "iso20022 wallet simulator: {} documents checked against their XSD",
        docs.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
