//! The simulator's ledger: every financial request it saw and what became of it, exportable as JSON.
//!
//! Bounded: the simulator also runs inside the embedded demo gateway for as long as that runs, so
//! the ledger keeps the last [`MAX_LINES`] 0200s and the last [`MAX_LINES`] refund advices; past
//! that the oldest tenth is dropped at once and counted (`forgotten_entries`,
//! `forgotten_refunds`). A reversal or refund for a forgotten 0200 is treated as one for an
//! unknown payment, and the settlement file covers what is kept.

use serde::Serialize;

use crate::acquirer::settlement::{Record, RecordType, Settlement};
use crate::money::Currency;

/// What became of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Approved (DE39 00).
    Approved,
    /// Declined.
    Declined,
    /// Never answered (never_answer, close, garbage).
    Unanswered,
    /// Reversed by a 0400/0401.
    Reversed,
}

/// One 0200 seen by the simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// DE11.
    pub stan: String,
    /// DE7.
    pub transmitted: String,
    /// DE41.
    pub terminal: String,
    /// DE42 (trailing spaces removed).
    pub merchant: String,
    /// DE18 merchant category code.
    pub mcc: String,
    /// DE43 card acceptor name/location (trailing spaces removed).
    pub acceptor: String,
    /// DE3.
    pub processing_code: String,
    /// DE4 as an integer.
    pub amount: u64,
    /// DE49.
    pub currency: String,
    /// DE37.
    pub rrn: String,
    /// DE48 as received.
    pub private_data: String,
    /// DE39 sent (or that would have been sent).
    pub response_code: String,
    /// DE38 sent on approval.
    pub auth_code: Option<String>,
    /// Current status.
    pub status: Status,
    /// Reversal messages received for it (0400 + 0401s).
    pub reversal_messages: u32,
    /// Refunded by accepted refund advices (minor units).
    pub refunded: u64,
    /// The connection it came on (numbered from 0 in the order the simulator accepted them): a
    /// gateway with a pool of links spreads its 0200s over several.
    pub connection: u64,
}

/// What became of a refund advice the simulator sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundOutcome {
    /// Answered 0230 with DE39 00.
    Accepted,
    /// Answered 0230 with another DE39.
    Refused,
    /// No 0230 after every transmission.
    Unanswered,
}

/// One refund advice the simulator sent (0220 and its 0221 repeats).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundEntry {
    /// DE37 of the advice: the acquirer's reference for the refund.
    pub rrn: String,
    /// RRN of the refunded 0200 (none for an advice naming an unknown payment).
    pub original_rrn: Option<String>,
    /// STAN of the refunded 0200 (DE90).
    pub original_stan: String,
    /// DE7 of the refunded 0200 (DE90).
    pub original_transmitted: String,
    /// DE42.
    pub merchant: String,
    /// DE4 as an integer.
    pub amount: u64,
    /// DE49.
    pub currency: String,
    /// DE11 of the advice.
    pub stan: String,
    /// DE7 of the advice.
    pub transmitted: String,
    /// 0220 + 0221s sent.
    pub transmissions: u32,
    /// DE39 of the 0230.
    pub response_code: Option<String>,
    /// What became of it.
    pub outcome: RefundOutcome,
}

/// The most 0200s, and the most refund advices, the ledger keeps (each line a few hundred bytes).
pub const MAX_LINES: usize = 100_000;

/// Pushes `line`, first dropping the oldest tenth of `lines` if they hold [`MAX_LINES`];
/// counts what it drops in `forgotten`.
fn push_bounded<T>(lines: &mut Vec<T>, forgotten: &mut u64, line: T) {
    if lines.len() >= MAX_LINES {
        let oldest = MAX_LINES / 10;
        lines.drain(..oldest);
        *forgotten += oldest as u64;
    }
    lines.push(line);
}

/// All entries in arrival order (the last [`MAX_LINES`] of each kind).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ledger {
    /// Entries.
    pub entries: Vec<Entry>,
    /// Reversals that matched no entry (answered with DE39 25).
    pub unmatched_reversals: u32,
    /// Refund advices sent, in order (a duplicate is its own line).
    pub refunds: Vec<RefundEntry>,
    /// Oldest entries dropped to keep [`MAX_LINES`].
    pub forgotten_entries: u64,
    /// Oldest refund advice lines dropped to keep [`MAX_LINES`].
    pub forgotten_refunds: u64,
}

impl Ledger {
    /// Records a 0200 (dropping the oldest entries past [`MAX_LINES`]).
    pub fn record(&mut self, entry: Entry) {
        push_bounded(&mut self.entries, &mut self.forgotten_entries, entry);
    }

    /// Records a refund advice sent (dropping the oldest lines past [`MAX_LINES`]).
    pub fn record_refund(&mut self, refund: RefundEntry) {
        push_bounded(&mut self.refunds, &mut self.forgotten_refunds, refund);
    }

    /// The entry for an original transaction (STAN, DE7, terminal).
    pub fn find_mut(
        &mut self,
        stan: &str,
        transmitted: &str,
        terminal: &str,
    ) -> Option<&mut Entry> {
        self.entries
            .iter_mut()
            .find(|e| e.stan == stan && e.transmitted == transmitted && e.terminal == terminal)
    }

    /// Entries with this RRN.
    pub fn by_rrn(&self, rrn: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.rrn == rrn)
    }

    /// The end-of-day settlement file of this ledger (spec/settlement.md): approved purchases
    /// (SALE), approved refund 0200s and accepted refund advices (REFUND, a repeated advice once),
    /// reversed requests (REVERSAL). Declined and unanswered requests settle nothing.
    pub fn settlement(&self, date: &str, acquirer: &str, created: &str) -> Settlement {
        let currency = |numeric: &str| {
            numeric
                .parse::<u16>()
                .ok()
                .and_then(|n| Currency::from_numeric(n).ok())
        };
        let mut records = Vec::new();
        for e in &self.entries {
            let kind = match (e.status, e.processing_code.starts_with("20")) {
                (Status::Approved, false) => RecordType::Sale,
                (Status::Approved, true) => RecordType::Refund,
                (Status::Reversed, _) => RecordType::Reversal,
                (Status::Declined | Status::Unanswered, _) => continue,
            };
            let Some(currency) = currency(&e.currency) else {
                continue;
            };
            records.push(Record {
                kind,
                rrn: e.rrn.clone(),
                stan: e.stan.clone(),
                transmitted: e.transmitted.clone(),
                terminal: e.terminal.trim().to_owned(),
                merchant: e.merchant.clone(),
                currency,
                amount: e.amount,
                auth_code: e.auth_code.clone().unwrap_or_default(),
                original_rrn: String::new(),
            });
        }
        let mut settled = std::collections::HashSet::new();
        for r in &self.refunds {
            if r.outcome != RefundOutcome::Accepted || !settled.insert(r.rrn.clone()) {
                continue;
            }
            let Some(currency) = currency(&r.currency) else {
                continue;
            };
            records.push(Record {
                kind: RecordType::Refund,
                rrn: r.rrn.clone(),
                stan: r.stan.clone(),
                transmitted: r.transmitted.clone(),
                terminal: String::new(),
                merchant: r.merchant.clone(),
                currency,
                amount: r.amount,
                auth_code: String::new(),
                original_rrn: r.original_rrn.clone().unwrap_or_default(),
            });
        }
        Settlement {
            date: date.to_owned(),
            acquirer: acquirer.to_owned(),
            created: created.to_owned(),
            records,
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_keeps_the_newest_lines_and_counts_the_dropped() {
        let mut lines = Vec::new();
        let mut forgotten = 0;
        for n in 0..=MAX_LINES {
            push_bounded(&mut lines, &mut forgotten, n);
        }
        assert_eq!(forgotten, (MAX_LINES / 10) as u64);
        assert_eq!(lines.len(), MAX_LINES - MAX_LINES / 10 + 1);
        assert_eq!(lines.first(), Some(&(MAX_LINES / 10)));
        assert_eq!(lines.last(), Some(&MAX_LINES));
    }
}
