//! `qrbridge admin ...`: an operator's tools over the journal file, offline (the gateway holds
//! the file while it runs: stop it first, or work on a copy). Reads print JSON lines on stdout
//! (one record a line; `jq` friendly) or CSV; writes print the changed record. Customer ids are
//! never printed. Exit codes: 0 done, 1 not found or not allowed (e.g. requeue of a notice that is
//! not parked), 2 usage, unreadable configuration or journal.
//!
//! ```text
//! admin payment show ID                     the payment, its history, refunds, notices
//! admin payments [--state S] [--client C] [--since T] [--until T] [--limit N]
//! admin notices [--state parked|pending|sent|not_needed]
//! admin notices requeue NOTICE_ID           PARKED → PENDING, due now
//! admin review list                         payments in MANUAL_REVIEW
//! admin review resolve ID --outcome approved|reversed --note TEXT
//! admin export [--format jsonl|csv] [--since T] [--until T]
//! admin merchant-refund ID --amount MINOR --reference REF [--reason TEXT]
//!                                           a refund the merchant made at the acquirer (SUCCESS,
//!                                           the wallet credited when the gateway next runs)
//! ```
//! Times (`T`) are RFC 3339 (`2026-12-05T00:00:00Z`) or a date (`2026-12-05`, UTC midnight).

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use serde_json::{Value, json};

use qrbridge::config::Config;
use qrbridge::journal::{
    Journal, JournalConfig, NewMerchantRefund, NoticeState, OutboxNotice, Payment, PaymentEvent,
    PaymentId, PaymentState, RedbJournal, Refund,
};

#[derive(ClapArgs)]
pub struct Args {
    /// The journal file (redb). Or --config.
    #[arg(long, global = true, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// The gateway's configuration: its `[journal] path` is used.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One payment with its full history, refunds and notices.
    Payment {
        #[command(subcommand)]
        command: PaymentCommand,
    },
    /// List or search payments (JSON lines, oldest first).
    Payments(Filter),
    /// Wallet notices: list (default: every state), or requeue a parked one.
    Notices(NoticesArgs),
    /// Payments in MANUAL_REVIEW: list them, or record how one was resolved.
    Review {
        #[command(subcommand)]
        command: ReviewCommand,
    },
    /// Export payments of a period (JSON lines or CSV).
    Export(ExportArgs),
    /// Record a refund the merchant made at the acquirer, for one that the acquirer could not
    /// send as an advice (an operator acting for it): journaled SUCCESS with the wallet's
    /// REFUND_CREDIT notice, delivered when the gateway next runs. A repeat of the reference
    /// changes nothing.
    MerchantRefund {
        /// The payment id.
        id: String,
        /// Minor units of the payment's merchant currency.
        #[arg(long)]
        amount: u64,
        /// The acquirer's reference for the refund (its RRN, or a ticket): one refund per reference.
        #[arg(long)]
        reference: String,
        /// Why (kept with the refund).
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Subcommand)]
enum PaymentCommand {
    /// Show a payment by its id.
    Show {
        /// The payment id.
        id: String,
    },
}

#[derive(ClapArgs, Default)]
struct Filter {
    /// Only this state (`SUCCESS`, `MANUAL_REVIEW`, ...).
    #[arg(long)]
    state: Option<String>,
    /// Only this wallet client.
    #[arg(long)]
    client: Option<String>,
    /// Created at or after this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    since: Option<String>,
    /// Created before this time.
    #[arg(long)]
    until: Option<String>,
    /// At most this many (the newest are dropped).
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(ClapArgs)]
struct NoticesArgs {
    #[command(subcommand)]
    command: Option<NoticesCommand>,
    /// Only this state.
    #[arg(long, value_enum)]
    state: Option<NoticeStateArg>,
}

#[derive(Subcommand)]
enum NoticesCommand {
    /// Put a PARKED notice back to PENDING, due now: the gateway delivers it at its next start.
    Requeue {
        /// The notice id (`N-...`).
        notice_id: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum NoticeStateArg {
    Pending,
    Sent,
    NotNeeded,
    Parked,
}

#[derive(Subcommand)]
enum ReviewCommand {
    /// Payments in MANUAL_REVIEW (JSON lines).
    List,
    /// Record what the acquirer said about a payment in MANUAL_REVIEW.
    Resolve {
        /// The payment id.
        id: String,
        /// `approved`: the authorisation stands (SUCCESS); `reversed`: it does not, or its
        /// reversal went through (REVERSED, or CANCELLED for a cancel).
        #[arg(long, value_enum)]
        outcome: Outcome,
        /// Who confirmed what, with which reference (kept in the payment's note).
        #[arg(long)]
        note: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Outcome {
    Approved,
    Reversed,
}

#[derive(ClapArgs)]
struct ExportArgs {
    /// `jsonl` (default) or `csv`.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
    /// Created at or after this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    since: Option<String>,
    /// Created before this time.
    #[arg(long)]
    until: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

/// A failure: message and exit code.
struct Fail(String, u8);

fn usage(m: impl Into<String>) -> Fail {
    Fail(m.into(), 2)
}

pub fn run(args: Args) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(message, code)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

fn journal_path(args: &Args) -> Result<PathBuf, Fail> {
    match (&args.journal, &args.config) {
        (Some(j), None) => Ok(j.clone()),
        (None, Some(c)) => {
            let config = Config::load(c).map_err(|e| usage(format!("{}: {e}", c.display())))?;
            Ok(config.resolve(&config.journal.path))
        }
        _ => Err(usage(
            "give the journal with --journal FILE or --config FILE (one of them)",
        )),
    }
}

fn open(path: &std::path::Path) -> Result<RedbJournal, Fail> {
    if !path.is_file() {
        return Err(usage(format!("{}: no such journal file", path.display())));
    }
    let journal = RedbJournal::open(JournalConfig::new(path.to_path_buf())).map_err(|e| {
        usage(format!(
            "{}: {e} (a running gateway holds the file: stop it first, or use a copy)",
            path.display()
        ))
    })?;
    // Resolutions and requeues write notices as the gateway would.
    journal.set_notice_rules(qrbridge::gateway::notices::rules());
    Ok(journal)
}

fn execute(args: Args) -> Result<(), Fail> {
    let path = journal_path(&args)?;
    let journal = open(&path)?;
    let snapshot = || {
        journal
            .snapshot()
            .map_err(|e| usage(format!("{}: {e}", path.display())))
    };
    let read = |e: qrbridge::journal::JournalError| usage(format!("{}: {e}", path.display()));
    match args.command {
        Command::Payment {
            command: PaymentCommand::Show { id },
        } => {
            let pid = PaymentId::from_str(&id)
                .map_err(|_| Fail(format!("{id:?} is not a payment id"), 1))?;
            let s = snapshot()?;
            let p = s
                .payment(pid)
                .map_err(read)?
                .ok_or_else(|| Fail(format!("no payment {id}"), 1))?;
            let refunds = s.refunds_of(pid).map_err(read)?;
            let notices: Vec<OutboxNotice> = s
                .notices()
                .map_err(read)?
                .into_iter()
                .filter(|n| {
                    n.subject == id || refunds.iter().any(|r| r.id.to_string() == n.subject)
                })
                .collect();
            let mut v = payment_json(&p);
            v["refunds"] = Value::Array(refunds.iter().map(refund_json).collect());
            v["notices"] = Value::Array(notices.iter().map(notice_json).collect());
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(())
        }
        Command::Payments(filter) => {
            for p in select(&snapshot()?.payments().map_err(read)?, &filter)? {
                println!("{}", payment_json(p));
            }
            Ok(())
        }
        Command::Notices(NoticesArgs {
            command: Some(NoticesCommand::Requeue { notice_id }),
            ..
        }) => {
            let rt = runtime()?;
            let n = rt
                .block_on(journal.requeue_notice(&notice_id))
                .map_err(|e| Fail(format!("notice {notice_id}: {e}"), 1))?;
            println!("{}", notice_json(&n));
            eprintln!(
                "notice {notice_id} is PENDING again: the gateway delivers it when it next runs"
            );
            Ok(())
        }
        Command::Notices(NoticesArgs {
            command: None,
            state,
        }) => {
            let want = state.map(|s| match s {
                NoticeStateArg::Pending => NoticeState::Pending,
                NoticeStateArg::Sent => NoticeState::Sent,
                NoticeStateArg::NotNeeded => NoticeState::NotNeeded,
                NoticeStateArg::Parked => NoticeState::Parked,
            });
            for n in snapshot()?.notices().map_err(read)? {
                if want.is_none_or(|w| n.state == w) {
                    println!("{}", notice_json(&n));
                }
            }
            Ok(())
        }
        Command::Review {
            command: ReviewCommand::List,
        } => {
            for p in snapshot()?.payments().map_err(read)? {
                if p.state == PaymentState::ManualReview {
                    println!("{}", payment_json(&p));
                }
            }
            Ok(())
        }
        Command::Review {
            command: ReviewCommand::Resolve { id, outcome, note },
        } => {
            if note.trim().is_empty() {
                return Err(usage("--note must say who confirmed what"));
            }
            let pid = PaymentId::from_str(&id)
                .map_err(|_| Fail(format!("{id:?} is not a payment id"), 1))?;
            let rt = runtime()?;
            let event = PaymentEvent::Resolved {
                approved: matches!(outcome, Outcome::Approved),
                note,
            };
            let p = rt
                .block_on(journal.update_payment(pid, event))
                .map_err(|e| Fail(format!("payment {id}: {e}"), 1))?;
            println!("{}", payment_json(&p));
            Ok(())
        }
        Command::MerchantRefund {
            id,
            amount,
            reference,
            reason,
        } => {
            let pid = PaymentId::from_str(&id)
                .map_err(|_| Fail(format!("{id:?} is not a payment id"), 1))?;
            let p = snapshot()?
                .payment(pid)
                .map_err(read)?
                .ok_or_else(|| Fail(format!("no payment {id}"), 1))?;
            let amount =
                qrbridge::money::Amount::from_minor(amount, p.quote.merchant_amount.currency())
                    .map_err(|e| usage(format!("--amount: {e}")))?;
            let rt = runtime()?;
            let recorded = rt
                .block_on(journal.record_merchant_refund(NewMerchantRefund {
                    payment_id: pid,
                    acquirer: p.routing.acquirer.clone(),
                    merchant_id: None,
                    reference: reference.clone(),
                    amount,
                    reason,
                    trace: qrbridge::journal::AcquirerData::default(),
                }))
                .map_err(|e| Fail(format!("payment {id}: {e}"), 1))?;
            println!("{}", refund_json(&recorded.refund));
            if recorded.repeat {
                eprintln!("reference {reference} was recorded before: nothing changed");
            } else {
                eprintln!(
                    "refund recorded; the wallet is asked to credit the payer when the gateway next runs"
                );
            }
            Ok(())
        }
        Command::Export(e) => {
            let filter = Filter {
                since: e.since,
                until: e.until,
                ..Filter::default()
            };
            let all = snapshot()?.payments().map_err(read)?;
            let chosen = select(&all, &filter)?;
            match e.format {
                Format::Jsonl => {
                    for p in chosen {
                        println!("{}", payment_json(p));
                    }
                }
                Format::Csv => {
                    println!("{}", CSV_HEADER.join(","));
                    for p in chosen {
                        println!("{}", csv_row(p).join(","));
                    }
                }
            }
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Fail> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| usage(format!("runtime: {e}")))
}

/// A time bound in ms since the epoch: RFC 3339 or a date (UTC midnight).
fn parse_time(key: &str, s: &str) -> Result<u64, Fail> {
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_owned()
    };
    qrbridge::time::parse_timestamp(&full)
        .map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        })
        .ok_or_else(|| {
            usage(format!(
                "--{key} {s:?}: not a time (RFC 3339 or YYYY-MM-DD)"
            ))
        })
}

fn select<'a>(all: &'a [Payment], f: &Filter) -> Result<Vec<&'a Payment>, Fail> {
    let since = f
        .since
        .as_deref()
        .map(|s| parse_time("since", s))
        .transpose()?;
    let until = f
        .until
        .as_deref()
        .map(|s| parse_time("until", s))
        .transpose()?;
    let state = f.state.as_deref().map(str::to_ascii_uppercase);
    if let Some(s) = &state
        && !STATES.contains(&s.as_str())
    {
        return Err(usage(format!(
            "--state {s:?}: one of {}",
            STATES.join(", ")
        )));
    }
    let mut out: Vec<&Payment> = all
        .iter()
        .filter(|p| state.as_deref().is_none_or(|s| p.state.as_str() == s))
        .filter(|p| f.client.as_deref().is_none_or(|c| p.client_id == c))
        .filter(|p| since.is_none_or(|t| p.created_at_ms >= t))
        .filter(|p| until.is_none_or(|t| p.created_at_ms < t))
        .collect();
    if let Some(n) = f.limit {
        out.truncate(n);
    }
    Ok(out)
}

const STATES: &[&str] = &[
    "ORDERED",
    "CLOSED",
    "QUOTED",
    "SENT",
    "SUCCESS",
    "FAILED",
    "UNKNOWN",
    "REVERSING",
    "REVERSED",
    "CANCELLED",
    "MANUAL_REVIEW",
    "PARTIALLY_REFUNDED",
    "REFUNDED",
];

fn rfc3339(ms: u64) -> String {
    qrbridge::time::format_rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

/// A payment as printed: everything but the customer id.
fn payment_json(p: &Payment) -> Value {
    let q = &p.quote;
    json!({
        "paymentId": p.id.to_string(),
        "clientId": p.client_id,
        "paymentRequestId": p.request_id,
        "requestId": p.origin.request_id,
        "scheme": p.origin.scheme,
        "state": p.state.as_str(),
        "merchantAmount": {"currency": q.merchant_amount.currency().code(), "value": q.merchant_amount.minor().to_string()},
        "payerAmount": {"currency": q.payer_amount.currency().code(), "value": q.payer_amount.minor().to_string()},
        "refunded": p.refunded.minor().to_string(),
        "rate": q.rate.to_string(),
        "markupBps": q.markup_bps,
        "quoteId": q.quote_id,
        "acquirer": p.routing.acquirer,
        "merchantId": p.routing.merchant_id,
        "terminalId": p.routing.terminal_id,
        "stan": p.acquirer.stan,
        "rrn": p.acquirer.rrn,
        "authCode": p.acquirer.auth_code,
        "responseCode": p.acquirer.response_code,
        "note": p.note,
        "createdAt": rfc3339(p.created_at_ms),
        "updatedAt": rfc3339(p.updated_at_ms),
        "history": p.history.iter().map(|c| json!({"state": c.state.as_str(), "at": rfc3339(c.at_ms)})).collect::<Vec<_>>(),
    })
}

fn refund_json(r: &Refund) -> Value {
    json!({
        "refundId": r.id.to_string(),
        "refundRequestId": r.request_id,
        "requestId": r.origin.request_id,
        "state": r.state.as_str(),
        "amount": r.amount.minor().to_string(),
        "payerAmount": r.payer_amount.minor().to_string(),
        "stan": r.acquirer.stan,
        "rrn": r.acquirer.rrn,
        "responseCode": r.acquirer.response_code,
        "note": r.note,
        "initiator": serde_json::to_value(&r.initiator).unwrap_or(Value::Null),
        "createdAt": rfc3339(r.created_at_ms),
    })
}

fn notice_json(n: &OutboxNotice) -> Value {
    json!({
        "noticeId": n.notice_id,
        "state": format!("{:?}", n.state).to_ascii_uppercase(),
        "kind": format!("{:?}", n.kind).to_ascii_uppercase(),
        "subject": n.subject,
        "clientId": n.client_id,
        "scheme": n.scheme,
        "requestId": n.request_id,
        "attempts": n.attempts,
        "lastError": n.last_error,
        "createdAt": rfc3339(n.created_at_ms),
        "updatedAt": rfc3339(n.updated_at_ms),
    })
}

const CSV_HEADER: &[&str] = &[
    "payment_id",
    "created_at",
    "client_id",
    "payment_request_id",
    "state",
    "merchant_currency",
    "merchant_amount_minor",
    "payer_currency",
    "payer_amount_minor",
    "refunded_minor",
    "acquirer",
    "merchant_id",
    "stan",
    "rrn",
    "auth_code",
    "response_code",
];

/// RFC 4180 quoting: fields with a comma, quote or line break are quoted, quotes doubled.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv_row(p: &Payment) -> Vec<String> {
    let q = &p.quote;
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        p.id.to_string(),
        rfc3339(p.created_at_ms),
        p.client_id.clone(),
        p.request_id.clone(),
        p.state.as_str().to_owned(),
        q.merchant_amount.currency().code().to_owned(),
        q.merchant_amount.minor().to_string(),
        q.payer_amount.currency().code().to_owned(),
        q.payer_amount.minor().to_string(),
        p.refunded.minor().to_string(),
        p.routing.acquirer.clone(),
        p.routing.merchant_id.clone(),
        o(&p.acquirer.stan),
        o(&p.acquirer.rrn),
        o(&p.acquirer.auth_code),
        o(&p.acquirer.response_code),
    ]
    .iter()
    .map(|s| csv_field(s))
    .collect()
}
