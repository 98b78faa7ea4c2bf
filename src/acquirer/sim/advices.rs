//! The simulator as an originator: refund advices (0220, repeated as 0221 until a 0230 comes) for
//! payments it approved, on the gateway's open connection, as an acquirer sends them when a
//! merchant refunds (spec/acquirer-iso8583.md §3a). On a call ([`Simulator::refund`]) or at a rate
//! (`[refunds]` in the configuration), including the mistakes real traffic has: duplicates (the
//! same DE37 sent again after it was answered), refunds for unknown payments, over-refunds.
//!
//! ```toml
//! [refunds]
//! rate_percent = 20       # of approved payments, refunded after_ms after the approval
//! after_ms = 200
//! amount_percent = 50     # of the approved amount (at least 1 minor unit)
//! duplicate_percent = 10  # of those refunds, the same advice (same DE37) sent again once answered
//! unknown_percent = 5     # of those, also an advice naming a payment that does not exist
//! over_percent = 5        # of those, also an advice for one minor unit more than is left
//! ```

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{RefundEntry, RefundOutcome, State, lock};
use crate::acquirer::iso8583::{self, Message, Mti, Spec};
use crate::time::fields::UtcFields;

/// Refunds the simulator originates by itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundPolicy {
    /// Percent of approved payments refunded (0 = none, the default).
    #[serde(default)]
    pub rate_percent: u8,
    /// Delay after the approval, milliseconds.
    #[serde(default)]
    pub after_ms: u64,
    /// Refunded share of the approved amount, percent (0 is taken as 100).
    #[serde(default)]
    pub amount_percent: u8,
    /// Percent of those refunds sent again with the same DE37 after the answer (a duplicate).
    #[serde(default)]
    pub duplicate_percent: u8,
    /// Percent of those refunds followed by an advice for a payment that does not exist.
    #[serde(default)]
    pub unknown_percent: u8,
    /// Percent of those refunds followed by an advice for one minor unit more than is left.
    #[serde(default)]
    pub over_percent: u8,
    /// Wait for a 0230 this long before repeating as 0221, milliseconds (default 2000).
    #[serde(default)]
    pub answer_ms: u64,
    /// Transmissions of one advice at most (0220 + 0221s; default 5).
    #[serde(default)]
    pub max_transmissions: u32,
}

impl RefundPolicy {
    fn answer_timeout(&self) -> Duration {
        Duration::from_millis(if self.answer_ms == 0 {
            2_000
        } else {
            self.answer_ms
        })
    }

    fn transmissions(&self) -> u32 {
        if self.max_transmissions == 0 {
            5
        } else {
            self.max_transmissions
        }
    }
}

/// Which payment a refund advice names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The approved 0200 with this RRN in the ledger.
    Rrn(String),
    /// A payment that does not exist (a STAN and DE7 no 0200 carried).
    Unknown,
}

/// A refund advice to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOrder {
    /// The payment.
    pub target: Target,
    /// Minor units of the payment's currency.
    pub amount: u64,
    /// DE37 to use (a duplicate reuses one); `None`: a fresh one.
    pub reference: Option<String>,
}

/// `n`-th event selected at `percent`: spread evenly (deterministic, so runs repeat).
pub(super) fn selected(n: u64, percent: u8) -> bool {
    percent > 0 && (n.wrapping_mul(37) % 100) < u64::from(percent)
}

/// Sends one refund advice (0220, repeated as 0221) and records it in the ledger.
pub(super) async fn originate(state: &Arc<State>, order: RefundOrder) -> RefundEntry {
    let policy = &state.config.refunds;
    let n = state.advice_stans.fetch_add(1, Ordering::Relaxed);
    let stan = format!("{:06}", 700_000 + n % 300_000);
    let now = UtcFields::now();
    let de7 = now.de7();
    let reference = order
        .reference
        .clone()
        .unwrap_or_else(|| format!("RF{}{stan}", &de7[..4]));
    let original = match &order.target {
        Target::Rrn(rrn) => lock(&state.ledger).by_rrn(rrn).cloned(),
        Target::Unknown => None,
    };
    let (terminal, merchant, currency, original_stan, original_de7) = match &original {
        Some(e) => (
            e.terminal.clone(),
            e.merchant.clone(),
            e.currency.clone(),
            e.stan.clone(),
            e.transmitted.clone(),
        ),
        None => (
            format!("{:<8}", "QRB00001"),
            "UNKNOWN".to_owned(),
            lock(&state.ledger)
                .entries
                .first()
                .map_or_else(|| "702".to_owned(), |e| e.currency.clone()),
            "999999".to_owned(),
            "0101000000".to_owned(),
        ),
    };
    let de90 = format!(
        "0200{original_stan}{original_de7}{}{}",
        "0".repeat(11),
        "0".repeat(11)
    );
    let mut advice = Message::new(Mti::ADVICE)
        .with(3, "200000")
        .with(4, format!("{:012}", order.amount))
        .with(7, de7.as_str())
        .with(11, stan.as_str())
        .with(32, "00000000000")
        .with(37, format!("{reference:0>12}"))
        .with(41, terminal.as_str())
        .with(42, format!("{merchant:<15}"))
        .with(49, currency.as_str())
        .with(90, de90);
    let mut entry = RefundEntry {
        rrn: reference.clone(),
        original_rrn: original.as_ref().map(|e| e.rrn.clone()),
        original_stan,
        original_transmitted: original_de7,
        merchant,
        amount: order.amount,
        currency,
        stan: stan.clone(),
        transmitted: de7.clone(),
        transmissions: 0,
        response_code: None,
        outcome: RefundOutcome::Unanswered,
    };
    let key = (stan.clone(), de7.clone());
    for attempt in 0..policy.transmissions() {
        if attempt > 0 {
            advice.set_mti(Mti::ADVICE_REPEAT);
        }
        let (tx, rx) = oneshot::channel();
        lock(&state.advice_waiters).insert(key.clone(), tx);
        let sent = send(state, &advice).await;
        if sent {
            entry.transmissions += 1;
        }
        let answer = if sent {
            tokio::time::timeout(policy.answer_timeout(), rx)
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            tokio::time::sleep(policy.answer_timeout()).await;
            None
        };
        lock(&state.advice_waiters).remove(&key);
        if let Some(answer) = answer {
            let code = answer.text(39).unwrap_or("--").to_owned();
            entry.outcome = if code == "00" {
                RefundOutcome::Accepted
            } else {
                RefundOutcome::Refused
            };
            entry.response_code = Some(code);
            break;
        }
    }
    let mut ledger = lock(&state.ledger);
    if entry.outcome == RefundOutcome::Accepted
        && !ledger
            .refunds
            .iter()
            .any(|r| r.rrn == entry.rrn && r.outcome == RefundOutcome::Accepted)
        && let Some(rrn) = &entry.original_rrn
        && let Some(e) = ledger.entries.iter_mut().find(|e| &e.rrn == rrn)
    {
        e.refunded += entry.amount;
    }
    ledger.record_refund(entry.clone());
    entry
}

/// Writes `msg` on an open connection, each advice on the next in turn (the gateway must answer
/// on whichever of its pool's connections one came); false when there is none.
async fn send(state: &State, msg: &Message) -> bool {
    let payload = match iso8583::encode(msg, Spec::iso1987_ascii()) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("simulator: advice does not encode: {e}");
            return false;
        }
    };
    let mut wire = Vec::with_capacity(payload.len() + 4);
    if state.config.framing.wrap(&payload, &mut wire).is_err() {
        return false;
    }
    let tx = {
        let conns = lock(&state.conns);
        let turn = state.advice_turn.fetch_add(1, Ordering::Relaxed);
        let n = conns.len().max(1) as u64;
        conns
            .values()
            .nth((turn % n) as usize)
            .map(|o| o.tx.clone())
    };
    match tx {
        Some(tx) => tx.send(wire).await.is_ok(),
        None => false,
    }
}

/// After an approval: the refunds the policy asks for, `after_ms` later.
pub(super) fn after_approval(state: &Arc<State>, rrn: String, amount: u64) {
    let policy = &state.config.refunds;
    let n = state.approvals_seen.fetch_add(1, Ordering::Relaxed);
    if !selected(n, policy.rate_percent) {
        return;
    }
    let share = if policy.amount_percent == 0 {
        100
    } else {
        u64::from(policy.amount_percent.min(100))
    };
    let refund = (amount * share / 100).max(1).min(amount);
    let state = Arc::clone(state);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(state.config.refunds.after_ms)).await;
        let p = state.config.refunds.clone();
        let first = originate(
            &state,
            RefundOrder {
                target: Target::Rrn(rrn.clone()),
                amount: refund,
                reference: None,
            },
        )
        .await;
        if selected(n, p.duplicate_percent) {
            originate(
                &state,
                RefundOrder {
                    target: Target::Rrn(rrn.clone()),
                    amount: refund,
                    reference: Some(first.rrn.clone()),
                },
            )
            .await;
        }
        if selected(n, p.unknown_percent) {
            originate(
                &state,
                RefundOrder {
                    target: Target::Unknown,
                    amount: refund,
                    reference: None,
                },
            )
            .await;
        }
        if selected(n, p.over_percent) {
            let left = amount.saturating_sub(refund);
            originate(
                &state,
                RefundOrder {
                    target: Target::Rrn(rrn),
                    amount: left + 1,
                    reference: None,
                },
            )
            .await;
        }
    });
}
