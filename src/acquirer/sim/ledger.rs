//! The simulator's ledger: every financial request it saw and what became of it, exportable as JSON.

use serde::Serialize;

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
}

/// All entries in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ledger {
    /// Entries.
    pub entries: Vec<Entry>,
    /// Reversals that matched no entry (answered with DE39 25).
    pub unmatched_reversals: u32,
}

impl Ledger {
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

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
