//! Operations, end to end with the real binaries: `qrbridge serve --config` with JSON logs and an
//! operator listener, against a separate `qrbridge acquirer-sim` process, driving an approval, a
//! decline, an acquirer timeout (reversed) and a wallet notification that cannot be delivered
//! (parked). Checked: each is a JSON log line naming its payment id and the request id the wallet
//! sent; `x-request-id` comes back; `/metrics` counters moved as they should between two scrapes
//! (and `promtool check metrics` accepts the output when promtool is installed); after the gateway
//! stops, `qrbridge admin` lists the parked notice and requeues it. Plus `qrbridge config check`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Static SGQR code with PayNow, NETS, GrabPay and SGQR templates (no amount).
const SGQR_STATIC: &str = "00020101021126370009SG.PAYNOW010120210201912345K0301127730011SG.COM.NETS01231201912345K991231235900021511111686614000303088686614028260008COM.GRAB0110A93FO3230Q51380007SG.SGQR0112180907512345020701.00015204581253037025802SG5917SOBA NOODLE HOUSE6009Singapore63048499";

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "qrbridge-ops-test-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qrbridge"));
    c.env_remove("RUST_LOG");
    c
}

/// A child process whose stdout lines arrive on a channel; killed when dropped.
struct Child {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Child {
    fn spawn(args: &[&str], stderr: Stdio) -> Child {
        let mut child = bin()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Child { child, lines }
    }

    fn wait_for(&self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                Err(e) => panic!("no line starting with {prefix:?}: {e}"),
            }
        }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        for _ in 0..600 {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("process did not exit within 30 s of SIGTERM");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange on its own connection: (status, headers in lower case, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, BTreeMap<String, String>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn post(addr: SocketAddr, path: &str, request_id: &str, body: Value) -> (Value, String) {
    let (_, headers, body) = http(
        addr,
        "POST",
        path,
        &[("x-request-id", request_id)],
        &body.to_string(),
    );
    let echoed = headers.get("x-request-id").cloned().unwrap_or_default();
    (serde_json::from_str(&body).unwrap_or(Value::Null), echoed)
}

/// decode → quote (SGD `minor`) → pay with `request_id` as x-request-id: (payment id, answer).
fn pay(addr: SocketAddr, n: &str, minor: &str, request_id: &str) -> (String, Value) {
    let (d, _) = post(
        addr,
        "/v1/qr/decode",
        &format!("{request_id}-decode"),
        json!({"decodeRequestId": format!("d-{n}"), "customerId": "secret-customer-77", "codeValue": SGQR_STATIC, "payerCurrency": "MYR"}),
    );
    let (q, _) = post(
        addr,
        "/v1/quotes",
        &format!("{request_id}-quote"),
        json!({"quoteRequestId": format!("q-{n}"), "decodeId": d["decodeId"], "amount": {"currency": "SGD", "value": minor}, "payerCurrency": "MYR"}),
    );
    let (p, echoed) = post(
        addr,
        "/v1/payments",
        request_id,
        json!({"paymentRequestId": format!("p-{n}"), "quoteId": q["quoteId"], "customerId": "secret-customer-77"}),
    );
    assert_eq!(echoed, request_id, "x-request-id is returned as sent");
    let id = p["paymentId"].as_str().unwrap_or_default().to_owned();
    assert!(!id.is_empty(), "{p}");
    (id, p)
}

/// `name{labels} value` lines of a scrape, by the part before the value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

fn value(s: &BTreeMap<String, f64>, key: &str) -> f64 {
    s.get(key).copied().unwrap_or(0.0)
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// The log lines naming this payment and this request id (as event fields or in a span).
fn lines_about<'a>(logs: &'a [Value], payment_id: &str, request_id: &str) -> Vec<&'a Value> {
    let names = |v: &Value, key: &str, want: &str| {
        v[key].as_str() == Some(want)
            || v["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().any(|s| s[key].as_str() == Some(want)))
    };
    logs.iter()
        .filter(|v| names(v, "payment_id", payment_id) && names(v, "request_id", request_id))
        .collect()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn json_logs_metrics_and_admin_follow_a_decline_a_timeout_and_a_parked_notice() {
    let dir = temp_dir("scenario");
    std::fs::write(
        dir.join("sim.toml"),
        "[by_amount]\n\"5100\" = { kind = \"decline\", code = \"51\" }\n\"7777\" = { kind = \"never_answer\" }\n",
    )
    .unwrap();
    let pki = dir.join("pki");
    let sim = Child::spawn(
        &[
            "acquirer-sim",
            "--listen",
            "127.0.0.1:0",
            "--pki-dir",
            pki.to_str().unwrap(),
            "--config",
            dir.join("sim.toml").to_str().unwrap(),
            "--ledger",
            dir.join("ledger.json").to_str().unwrap(),
        ],
        Stdio::null(),
    );
    let sim_addr = sim.wait_for("acquirer simulator listening on");

    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/qrbridge.toml")).unwrap();
    let without_schemes = example.split("\n[schemes.").next().unwrap().to_owned();
    let config = without_schemes
        .replace("0.0.0.0:8443", "127.0.0.1:0")
        .replace("transport = \"tls\"", "transport = \"plaintext-loopback\"")
        .replace("auth = \"signatures\"", "auth = \"off\"")
        .replace(
            "# demo_client = \"demo-wallet\"",
            "demo_client = \"wallet-my-01\"",
        )
        .replace("acquirer.example.sg:8583", &sim_addr)
        .replace(
            "server_name = \"acquirer.example.sg\"",
            "server_name = \"localhost\"",
        )
        .replace("certs/acquirer-ca.pem", "pki/ca.pem")
        .replace("certs/qrbridge-client.pem", "pki/client.pem")
        .replace("certs/qrbridge-client.key", "pki/client.key")
        .replace("pay_budget_ms = 8000", "pay_budget_ms = 1000")
        .replace(
            "reversal_answer_timeout_ms = 10000",
            "reversal_answer_timeout_ms = 1000",
        )
        .replace(
            "rates_file = \"testdata/fx/eurofxref-daily.xml\"",
            "# bundled rates",
        )
        .replace("max_age_secs = 345600", "max_age_secs = 0")
        // Notifications to a closed loopback port: every attempt fails, parked after 2 s.
        .replace(
            "notify_url = \"https://wallet-my.example/qrbridge/notify\"",
            "notify_url = \"http://127.0.0.1:9/notify\"",
        )
        .replace("first_delay_ms = 1000", "first_delay_ms = 100")
        .replace("max_delay_secs = 600", "max_delay_secs = 1")
        .replace("max_age_secs = 86400", "max_age_secs = 2")
        .replace("format = \"auto\"", "format = \"json\"")
        // The access lines (debug) of the server only.
        .replace(
            "filter = \"info\"",
            "filter = \"info,qrbridge::server::router=debug\"",
        )
        .replace("listen = \"127.0.0.1:9464\"", "listen = \"127.0.0.1:0\"");
    for needle in [
        "pay_budget_ms = 1000",
        "http://127.0.0.1:9/notify",
        "max_age_secs = 2",
        "format = \"json\"",
        "qrbridge::server::router=debug",
    ] {
        assert!(config.contains(needle), "the example changed: {needle}");
    }
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let config_path = dir.join("gateway.toml");
    std::fs::write(&config_path, &config).unwrap();
    let log_path = dir.join("gateway.log");
    let mut gateway = Child::spawn(
        &["serve", "--config", config_path.to_str().unwrap()],
        Stdio::from(std::fs::File::create(&log_path).unwrap()),
    );
    let addr: SocketAddr = gateway
        .wait_for("qrbridge gateway listening on")
        .parse()
        .unwrap();
    let operator: SocketAddr = gateway
        .wait_for("operator listener (metrics, health) on http://")
        .parse()
        .unwrap();
    gateway.wait_for("ready");

    let scrape = || {
        let (status, headers, body) = http(operator, "GET", "/metrics", &[], "");
        assert_eq!(status, 200);
        assert!(headers["content-type"].contains("text"), "{headers:?}");
        body
    };
    let before = samples(&scrape());
    // The wallet listener does not serve /metrics outside the demo.
    assert_eq!(http(addr, "GET", "/metrics", &[], "").0, 404);

    let (approved, a) = pay(addr, "ok", "1000", "req-approve-1");
    assert_eq!(a["paymentStatus"], "SUCCESS", "{a}");
    let (declined, d) = pay(addr, "declined", "5100", "req-decline-1");
    assert_eq!(d["result"]["resultCode"], "ACQUIRER_DECLINED", "{d}");
    let (timed_out, t) = pay(addr, "timeout", "7777", "req-timeout-1");
    assert_eq!(t["result"]["resultCode"], "ACQUIRER_TIMEOUT", "{t}");
    // A request without x-request-id gets one made for it.
    let (_, headers, _) = http(addr, "GET", "/healthz", &[], "");
    assert_eq!(headers["x-request-id"].len(), 36, "{headers:?}");

    // The timed-out payment is reversed; its notice can never be delivered and is parked.
    wait_until("the reversal and the parked notice", || {
        let (v, _) = post(
            addr,
            "/v1/payments/inquiry",
            "req-inquiry",
            json!({"paymentRequestId": "p-timeout"}),
        );
        let parked = value(&samples(&scrape()), "qrbridge_notices_parked");
        v["paymentStatus"] == "REVERSED" && parked >= 1.0
    });
    let after_text = scrape();
    let after = samples(&after_text);
    let moved = |key: &str| value(&after, key) - value(&before, key);
    assert_eq!(moved("qrbridge_payments_total{outcome=\"approved\"}"), 1.0);
    assert_eq!(moved("qrbridge_payments_total{outcome=\"declined\"}"), 1.0);
    assert_eq!(moved("qrbridge_payments_total{outcome=\"unknown\"}"), 1.0);
    assert_eq!(moved("qrbridge_reversals_total{outcome=\"reversed\"}"), 1.0);
    assert_eq!(
        moved(
            "qrbridge_http_requests_total{scheme=\"native\",route=\"/v1/payments\",result_code=\"ACQUIRER_DECLINED\"}"
        ),
        1.0
    );
    assert_eq!(
        moved(
            "qrbridge_http_requests_total{scheme=\"native\",route=\"/v1/payments\",result_code=\"SUCCESS\"}"
        ),
        1.0
    );
    assert!(moved("qrbridge_notifications_total{outcome=\"failed\"}") >= 1.0);
    assert_eq!(value(&after, "qrbridge_notices_parked"), 1.0);
    assert_eq!(
        value(
            &after,
            "qrbridge_acquirer_link_up{acquirer=\"sg-acquirer\",link=\"0\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "qrbridge_acquirer_in_flight{acquirer=\"sg-acquirer\"}"
        ),
        0.0
    );
    assert!(value(&after, "qrbridge_journal_commit_duration_seconds_count") >= 9.0);
    assert_eq!(moved("qrbridge_payment_duration_seconds_count"), 3.0);
    // Scrapes come through the operator listener; the wallet connections were closed.
    assert!(after.contains_key("qrbridge_http_open_connections"));
    if have("promtool") {
        let mut check = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        check
            .stdin
            .take()
            .unwrap()
            .write_all(after_text.as_bytes())
            .unwrap();
        let out = check.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("notice: promtool not installed; `promtool check metrics` skipped");
    }

    let status = gateway.terminate();
    assert!(status.success(), "{status}");
    let logs = log_lines(&log_path);
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        !text.contains("secret-customer-77"),
        "customer ids are never logged"
    );

    let find = |payment: &str, request: &str, message: &str, level: &str| {
        let about = lines_about(&logs, payment, request);
        assert!(
            about.iter().any(
                |v| v["message"].as_str().is_some_and(|m| m.contains(message))
                    && v["level"] == level
            ),
            "no {level} line {message:?} for payment {payment} / request {request} in:\n{about:#?}"
        );
    };
    find(&approved, "req-approve-1", "payment approved", "INFO");
    find(
        &declined,
        "req-decline-1",
        "payment declined by the acquirer",
        "INFO",
    );
    find(
        &timed_out,
        "req-timeout-1",
        "no usable answer from the acquirer",
        "WARN",
    );
    find(&timed_out, "req-timeout-1", "payment reversed", "INFO");
    find(
        &timed_out,
        "req-timeout-1",
        "notification attempt failed",
        "WARN",
    );
    find(&timed_out, "req-timeout-1", "notice PARKED", "ERROR");
    // The STAN of the declined payment is on its line.
    assert!(
        lines_about(&logs, &declined, "req-decline-1")
            .iter()
            .any(|v| v["stan"].as_str().is_some_and(|s| s.len() == 6)),
        "a STAN on the decline's lines"
    );

    // Each request's access line (debug): route, status, result code, latency, and the request's
    // context as the outermost span (a context, not a tracing span: spec/operations.md §1.1).
    let access = |request_id: &str| {
        logs.iter()
            .find(|v| v["message"] == "answered" && v["spans"][0]["request_id"] == request_id)
            .unwrap_or_else(|| panic!("no access line for {request_id}"))
    };
    let declined_line = access("req-decline-1");
    assert_eq!(declined_line["level"], "DEBUG");
    assert_eq!(declined_line["route"], "/v1/payments", "{declined_line}");
    assert_eq!(declined_line["result_code"], "ACQUIRER_DECLINED");
    assert!(declined_line["status"].is_u64() && declined_line["elapsed_ms"].is_u64());
    let request = &declined_line["spans"][0];
    assert_eq!(request["name"], "request");
    assert_eq!(request["method"], "POST");
    assert_eq!(request["path"], "/v1/payments");
    assert_eq!(request["scheme"], "native");
    assert_eq!(request["client_id"], "wallet-my-01");
    let decode_line = access("req-decline-1-decode");
    assert_eq!(decode_line["route"], "/v1/qr/decode");
    assert_eq!(decode_line["result_code"], "SUCCESS");

    // Offline admin: the parked notice is listed, requeued, then pending.
    let journal = dir.join("data/journal.redb");
    let admin = |args: &[&str]| {
        let out = bin()
            .arg("admin")
            .args(["--journal", journal.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, out, err) = admin(&["notices", "--state", "parked"]);
    assert_eq!(code, Some(0), "{err}");
    let parked: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parked.len(), 1, "{out}");
    assert_eq!(parked[0]["subject"], timed_out.as_str());
    assert_eq!(parked[0]["requestId"], "req-timeout-1");
    let notice_id = parked[0]["noticeId"].as_str().unwrap().to_owned();
    let (code, out, err) = admin(&["notices", "requeue", &notice_id]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"PENDING\""), "{out}");
    let (_, out, _) = admin(&["notices", "--state", "parked"]);
    assert!(out.trim().is_empty(), "{out}");
    let (_, out, _) = admin(&["notices", "--state", "pending"]);
    assert!(out.contains(&notice_id), "{out}");
    // Requeueing a notice that is not parked is refused.
    let (code, _, err) = admin(&["notices", "requeue", &notice_id]);
    assert_eq!(code, Some(1), "{err}");
    // The payment with its history; the list by state; the export.
    let (code, out, err) = admin(&["payment", "show", &timed_out]);
    assert_eq!(code, Some(0), "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    let history: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        ["QUOTED", "SENT", "UNKNOWN", "REVERSING", "REVERSED"]
    );
    assert_eq!(shown["notices"].as_array().unwrap().len(), 1);
    assert!(!out.contains("secret-customer-77"));
    let (_, out, _) = admin(&["payments", "--state", "failed"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(&declined));
    let (_, out, _) = admin(&["export", "--format", "csv", "--since", "2000-01-01"]);
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 4, "{out}");
    assert!(rows[0].starts_with("payment_id,created_at,"));
    let (_, out, _) = admin(&["export", "--until", "2000-01-01"]);
    assert!(out.is_empty(), "{out}");
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The example configuration, runnable here: no scheme key files, plaintext on loopback, the
/// journal's directory made.
fn runnable_example(dir: &Path) -> String {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/qrbridge.toml")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    example
        .split("\n[schemes.")
        .next()
        .unwrap()
        .replace("0.0.0.0:8443", "127.0.0.1:0")
        .replace("transport = \"tls\"", "transport = \"plaintext-loopback\"")
}

fn config_check(path: &Path) -> (Option<i32>, String, String) {
    let out = bin()
        .args(["config", "check", path.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn config_check_reports_every_mistake_of_a_file_with_its_key_and_line() {
    let dir = temp_dir("config");
    let good = runnable_example(&dir);
    let path = dir.join("good.toml");
    std::fs::write(&path, &good).unwrap();
    let (code, out, err) = config_check(&path);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("valid"), "{out}");

    // Eight mistakes: (text, replacement, key path the error must name).
    let mistakes = [
        (
            "currency = \"SGD\"",
            "currency = \"JPY\"",
            "deployment.currency",
        ),
        (
            "transport = \"plaintext-loopback\"",
            "transport = \"tcp\"",
            "server.transport",
        ),
        (
            "markup_bps = 150",
            "markup_bps = 5000",
            "clients[0].markup_bps",
        ),
        (
            "terminal_id = \"QRB00001\"",
            "terminal_id = \"QRB1\"",
            "acquirers[0].terminal_id",
        ),
        ("links = 1 ", "links = 17 ", "acquirers[0].links"),
        ("concurrency = 8", "concurrency = 0", "notifications"),
        (
            "[journal]",
            "[journal]\ncolour = \"blue\"",
            "journal.colour",
        ),
        ("ttl_secs = 3600", "ttl_secs = \"soon\"", "fx.ttl_secs"),
    ];
    let mut bad = good.clone();
    for (from, to, _) in mistakes {
        assert_eq!(bad.matches(from).count(), 1, "{from}");
        bad = bad.replacen(from, to, 1);
    }
    let path = dir.join("bad.toml");
    std::fs::write(&path, &bad).unwrap();
    let (code, out, err) = config_check(&path);
    assert_eq!(code, Some(2), "{out}{err}");
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with(path.to_str().unwrap()))
        .collect();
    assert_eq!(problems.len(), 8, "{err}");
    for (_, to, key) in mistakes {
        // The line of the mistake, found here in the text written.
        let first = to.lines().last().unwrap();
        let line = bad.lines().position(|l| l.contains(first)).unwrap() + 1;
        let line = if key == "notifications" {
            // A rule over several keys names its table.
            bad.lines()
                .position(|l| l.starts_with("[notifications]"))
                .unwrap()
                + 1
        } else {
            line
        };
        let want = format!("{key} (line {line}): ");
        assert!(
            problems.iter().any(|p| p.contains(&want)),
            "no {want:?} in:\n{err}"
        );
    }

    // A country that does not exist.
    let path = dir.join("country.toml");
    let text = good.replace("country = \"SG\"", "country = \"XX\"");
    let line = text
        .lines()
        .position(|l| l.starts_with("country = \"XX\""))
        .unwrap()
        + 1;
    std::fs::write(&path, &text).unwrap();
    let (code, _, err) = config_check(&path);
    assert_eq!(code, Some(2), "{err}");
    let want = format!("deployment.country (line {line}): \"XX\" is not an ISO 3166-1");
    assert!(err.contains(&want), "{err}");
    // A journal directory that does not exist: refused, unless create_dir.
    let missing = good.replace(
        "path = \"data/journal.redb\"",
        "path = \"missing/journal.redb\"",
    );
    let path = dir.join("journal.toml");
    std::fs::write(&path, &missing).unwrap();
    let (code, _, err) = config_check(&path);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("journal.path (line "), "{err}");
    assert!(err.contains("missing does not exist"), "{err}");
    std::fs::write(
        &path,
        missing.replace("create_dir = false", "create_dir = true"),
    )
    .unwrap();
    assert_eq!(config_check(&path).0, Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
