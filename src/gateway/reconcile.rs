//! Daily reconciliation: the acquirer's settlement file (`acquirer::settlement`) against the
//! journal. Pure: records in, a [`Report`] out (spec/settlement.md §3).
//!
//! ```text
//! journal record (by the RRN of its 0200, or a merchant refund's reference)   file record
//! payment SUCCESS / PARTIALLY_REFUNDED / REFUNDED   expects  SALE of its merchant amount
//! payment REVERSED / CANCELLED                      expects  REVERSAL, or nothing (never reached it)
//! payment FAILED                                    expects  nothing
//! refund SUCCESS (wallet 0200, or merchant advice)  expects  REFUND of its amount
//! refund FAILED                                     expects  REVERSAL, or nothing
//! anything still open (SENT, UNKNOWN, REVERSING, MANUAL_REVIEW, refund PENDING / UNKNOWN): a break
//! ```
//!
//! Breaks: only at the acquirer, only in our journal, amount mismatch (same RRN and type, another
//! amount or currency), state mismatch (same RRN, another type, or a line for a record that
//! expects none), unresolved (our record is still open). The journal's records of the file's
//! business day (UTC) and any record the file names are compared.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

use crate::acquirer::settlement::{RecordType, Settlement};
use crate::journal::{Initiator, Payment, PaymentState, Refund, RefundState};
use crate::money::Currency;
use crate::time::fields::UtcFields;

/// What kind of break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// A file record no journal record explains.
    OnlyAtAcquirer,
    /// A journal record that should be in the file and is not.
    OnlyInJournal,
    /// Same RRN and type, another amount or currency.
    AmountMismatch,
    /// Same RRN, but the file says another thing happened.
    StateMismatch,
    /// Our record is still open (in doubt): a person must look.
    Unresolved,
}

impl BreakKind {
    /// The name in the table and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::OnlyAtAcquirer => "only_at_acquirer",
            BreakKind::OnlyInJournal => "only_in_journal",
            BreakKind::AmountMismatch => "amount_mismatch",
            BreakKind::StateMismatch => "state_mismatch",
            BreakKind::Unresolved => "unresolved",
        }
    }
}

/// One break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// What kind.
    pub kind: BreakKind,
    /// The RRN (or merchant refund reference) both sides are keyed by.
    pub rrn: String,
    /// Our side: `payment <id> <STATE> SGD 20.00`, or none.
    pub journal: Option<String>,
    /// The acquirer's side: `SALE SGD 20.00` (line n), or none.
    pub acquirer: Option<String>,
}

/// Totals of one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Side {
    /// Sales: count.
    pub sales: u64,
    /// Sales: minor units.
    pub sales_amount: u64,
    /// Refunds: count.
    pub refunds: u64,
    /// Refunds: minor units.
    pub refunds_amount: u64,
    /// Reversals: count.
    pub reversals: u64,
    /// Sales minus refunds, minor units.
    pub net: i128,
}

impl Side {
    /// Counts one record of `kind` and `amount` minor units.
    fn add(&mut self, kind: RecordType, amount: u64) {
        match kind {
            RecordType::Sale => {
                self.sales += 1;
                self.sales_amount += amount;
                self.net += i128::from(amount);
            }
            RecordType::Refund => {
                self.refunds += 1;
                self.refunds_amount += amount;
                self.net -= i128::from(amount);
            }
            RecordType::Reversal => self.reversals += 1,
        }
    }
}

/// Totals of one merchant currency, each side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CurrencyTotals {
    /// From the file.
    pub acquirer: Side,
    /// From the journal (what it expects the file to hold).
    pub journal: Side,
}

/// The reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The file's business date, `YYYYMMDD`.
    pub date: String,
    /// Who sent the file.
    pub acquirer: String,
    /// File records that matched a journal record exactly.
    pub matched: u64,
    /// Every break, in a stable order (kind, RRN).
    pub breaks: Vec<Break>,
    /// Per merchant currency (ISO 4217 code).
    pub totals: BTreeMap<String, CurrencyTotals>,
    /// FX margin earned on matched sales net of matched refunds, per payer currency, minor units:
    /// payer amount charged minus the payer amount at the mid rate.
    pub fx_margin: BTreeMap<String, i128>,
}

impl Report {
    /// Whether the two sides agree.
    pub fn is_clean(&self) -> bool {
        self.breaks.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Record(RecordType),
    ReversalOrNothing,
    Nothing,
    Open,
}

struct Item {
    rrn: String,
    expect: Expect,
    amount: u64,
    currency: Currency,
    describe: String,
    margin: Option<(Currency, Decimal)>,
}

/// `minor` as `12.34` in `currency`'s exponent.
pub fn major(minor: i128, currency: Currency) -> String {
    let d = Decimal::from_i128_with_scale(minor, u32::from(currency.exponent()));
    format!("{} {d}", currency.code())
}

fn day_of(ms: u64) -> String {
    UtcFields::from_unix(ms / 1000).yyyymmdd()
}

/// The payer-currency margin of `merchant` minor units charged as `payer` minor units at `p`'s
/// quote: payer − merchant × mid (in payer minor units).
fn margin(p: &Payment, merchant: u64, payer: u64) -> Option<(Currency, Decimal)> {
    let q = &p.quote;
    let pc = q.payer_amount.currency();
    let mc = q.merchant_amount.currency();
    let shift = i64::from(pc.exponent()) - i64::from(mc.exponent());
    let mut at_mid = Decimal::from(merchant).checked_mul(q.mid_rate)?;
    let ten = Decimal::from(10);
    for _ in 0..shift.unsigned_abs() {
        at_mid = if shift > 0 {
            at_mid.checked_mul(ten)?
        } else {
            at_mid.checked_div(ten)?
        };
    }
    Some((pc, Decimal::from(payer) - at_mid))
}

fn payment_item(p: &Payment) -> Option<Item> {
    let rrn = p.acquirer.rrn.clone().filter(|r| !r.is_empty())?;
    let m = p.quote.merchant_amount;
    let expect = match p.state {
        PaymentState::Success | PaymentState::PartiallyRefunded | PaymentState::Refunded => {
            Expect::Record(RecordType::Sale)
        }
        PaymentState::Reversed | PaymentState::Cancelled => Expect::ReversalOrNothing,
        PaymentState::Failed | PaymentState::Closed => Expect::Nothing,
        PaymentState::Ordered
        | PaymentState::Quoted
        | PaymentState::Sent
        | PaymentState::Unknown
        | PaymentState::Reversing
        | PaymentState::ManualReview => Expect::Open,
    };
    Some(Item {
        describe: format!(
            "payment {} {} {}",
            p.id,
            p.state.as_str(),
            major(m.minor().into(), m.currency())
        ),
        margin: (expect == Expect::Record(RecordType::Sale))
            .then(|| margin(p, m.minor(), p.quote.payer_amount.minor()))
            .flatten(),
        rrn,
        expect,
        amount: m.minor(),
        currency: m.currency(),
    })
}

fn refund_item(r: &Refund, payments: &HashMap<String, &Payment>) -> Option<Item> {
    let rrn = match &r.initiator {
        Initiator::Merchant { reference, .. } => Some(reference.clone()),
        Initiator::Wallet => r.acquirer.rrn.clone(),
    }
    .filter(|x| !x.is_empty())?;
    let expect = match r.state {
        RefundState::Success => Expect::Record(RecordType::Refund),
        // A wallet refund's 0200 that was reversed, or never reached the acquirer.
        RefundState::Failed => Expect::ReversalOrNothing,
        RefundState::Pending | RefundState::Unknown => Expect::Open,
    };
    let payment = payments.get(&r.payment_id.to_string()).copied();
    let who = match r.initiator {
        Initiator::Merchant { .. } => "merchant refund",
        Initiator::Wallet => "refund",
    };
    Some(Item {
        describe: format!(
            "{who} {} {} {}",
            r.id,
            r.state.as_str(),
            major(r.amount.minor().into(), r.amount.currency())
        ),
        margin: match (expect, payment) {
            (Expect::Record(_), Some(p)) => {
                margin(p, r.amount.minor(), r.payer_amount.minor()).map(|(c, m)| (c, -m))
            }
            _ => None,
        },
        rrn,
        expect,
        amount: r.amount.minor(),
        currency: r.amount.currency(),
    })
}

/// Reconciles `file` against the journal's `payments` and `refunds`.
pub fn reconcile(payments: &[Payment], refunds: &[Refund], file: &Settlement) -> Report {
    let by_id: HashMap<String, &Payment> = payments.iter().map(|p| (p.id.to_string(), p)).collect();
    let mut lines: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, r) in file.records.iter().enumerate() {
        lines.entry(r.rrn.as_str()).or_default().push(i);
    }
    let named = |rrn: &str| lines.contains_key(rrn);
    let in_scope = |created_ms: u64, rrn: &str| day_of(created_ms) == file.date || named(rrn);
    let mut items: Vec<Item> = Vec::new();
    for p in payments {
        if let Some(item) = payment_item(p)
            && in_scope(p.created_at_ms, &item.rrn)
        {
            items.push(item);
        }
    }
    for r in refunds {
        if let Some(item) = refund_item(r, &by_id)
            && in_scope(r.created_at_ms, &item.rrn)
        {
            items.push(item);
        }
    }

    let mut used = vec![false; file.records.len()];
    let mut breaks = Vec::new();
    let mut matched = 0u64;
    let mut totals: BTreeMap<String, CurrencyTotals> = BTreeMap::new();
    let mut fx: BTreeMap<String, Decimal> = BTreeMap::new();
    let describe_line = |i: usize| {
        let r = &file.records[i];
        format!(
            "{} {} (record {})",
            r.kind.as_str(),
            major(r.amount.into(), r.currency),
            i + 1
        )
    };
    for it in &items {
        let candidates: Vec<usize> = lines
            .get(it.rrn.as_str())
            .map(|v| v.iter().copied().filter(|i| !used[*i]).collect())
            .unwrap_or_default();
        let mut brk = |kind, line: Option<usize>| {
            breaks.push(Break {
                kind,
                rrn: it.rrn.clone(),
                journal: Some(it.describe.clone()),
                acquirer: line.map(describe_line),
            });
        };
        let side = &mut totals
            .entry(it.currency.code().to_owned())
            .or_default()
            .journal;
        match it.expect {
            Expect::Record(kind) => {
                side.add(kind, it.amount);
                let same = candidates
                    .iter()
                    .copied()
                    .find(|i| file.records[*i].kind == kind);
                match (same, candidates.first().copied()) {
                    (Some(i), _) => {
                        used[i] = true;
                        let r = &file.records[i];
                        if r.amount == it.amount && r.currency == it.currency {
                            matched += 1;
                            if let Some((c, m)) = it.margin {
                                *fx.entry(c.code().to_owned()).or_default() += m;
                            }
                        } else {
                            brk(BreakKind::AmountMismatch, Some(i));
                        }
                    }
                    (None, Some(i)) => {
                        used[i] = true;
                        brk(BreakKind::StateMismatch, Some(i));
                    }
                    (None, None) => brk(BreakKind::OnlyInJournal, None),
                }
            }
            Expect::ReversalOrNothing => {
                if let Some(&i) = candidates.first() {
                    used[i] = true;
                    if file.records[i].kind == RecordType::Reversal {
                        matched += 1;
                        side.add(RecordType::Reversal, it.amount);
                    } else {
                        brk(BreakKind::StateMismatch, Some(i));
                    }
                }
            }
            Expect::Nothing => {
                if let Some(&i) = candidates.first() {
                    used[i] = true;
                    brk(BreakKind::StateMismatch, Some(i));
                }
            }
            Expect::Open => {
                let line = candidates.first().copied();
                if let Some(i) = line {
                    used[i] = true;
                }
                brk(BreakKind::Unresolved, line);
            }
        }
    }
    for (i, r) in file.records.iter().enumerate() {
        let side = &mut totals
            .entry(r.currency.code().to_owned())
            .or_default()
            .acquirer;
        side.add(r.kind, r.amount);
        if !used[i] {
            breaks.push(Break {
                kind: BreakKind::OnlyAtAcquirer,
                rrn: r.rrn.clone(),
                journal: None,
                acquirer: Some(describe_line(i)),
            });
        }
    }
    breaks.sort_by(|a, b| (a.kind, &a.rrn).cmp(&(b.kind, &b.rrn)));
    Report {
        date: file.date.clone(),
        acquirer: file.acquirer.clone(),
        matched,
        breaks,
        totals,
        fx_margin: fx
            .into_iter()
            .map(|(c, m)| {
                let rounded = m.round_dp_with_strategy(
                    0,
                    rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                );
                (c, rounded.to_i128().unwrap_or(0))
            })
            .collect(),
    }
}

/// The breaks as CSV (RFC 4180: a header line, CRLF line ends, fields quoted when they hold a
/// comma, quote or line break): the work list an operations team loads into its own tools. The
/// totals and the FX margin are in the table and the JSON.
pub fn csv(r: &Report) -> String {
    fn field(s: &str) -> String {
        if s.contains([',', '"', '\r', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    }
    let mut out = String::from("date,acquirer,kind,rrn,journal,acquirer_record\r\n");
    for b in &r.breaks {
        let row = [
            field(&r.date),
            field(&r.acquirer),
            b.kind.as_str().to_owned(),
            field(&b.rrn),
            field(b.journal.as_deref().unwrap_or("")),
            field(b.acquirer.as_deref().unwrap_or("")),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The report as a table for a terminal.
pub fn table(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "reconciliation of {} (settlement file of {}): {} matched, {} breaks",
        r.date,
        r.acquirer,
        r.matched,
        r.breaks.len()
    );
    for b in &r.breaks {
        let _ = writeln!(
            s,
            "BREAK {:<17} {:<14} journal: {:<60} acquirer: {}",
            b.kind.as_str(),
            b.rrn,
            b.journal.as_deref().unwrap_or("-"),
            b.acquirer.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(
        s,
        "totals per currency (count / amount; net = sales - refunds):"
    );
    for (c, t) in &r.totals {
        let Ok(cur) = Currency::from_code(c) else {
            continue;
        };
        for (who, side) in [("acquirer", &t.acquirer), ("journal", &t.journal)] {
            let _ = writeln!(
                s,
                "  {c} {who:<8} sales {:>5} / {:<18} refunds {:>5} / {:<18} reversals {:>5}  net {}",
                side.sales,
                major(side.sales_amount.into(), cur),
                side.refunds,
                major(side.refunds_amount.into(), cur),
                side.reversals,
                major(side.net, cur)
            );
        }
    }
    for (c, m) in &r.fx_margin {
        if let Ok(cur) = Currency::from_code(c) {
            let _ = writeln!(
                s,
                "FX margin earned (matched, net of refunds): {}",
                major(*m, cur)
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_fields_that_need_it_and_ends_lines_with_crlf() {
        let r = Report {
            date: "20261205".into(),
            acquirer: "sim, Bangkok".into(),
            matched: 0,
            breaks: vec![Break {
                kind: BreakKind::OnlyAtAcquirer,
                rrn: "633921000003".into(),
                journal: None,
                acquirer: Some("SALE SGD 20.00 (\"record\" 3)".into()),
            }],
            totals: BTreeMap::new(),
            fx_margin: BTreeMap::new(),
        };
        assert_eq!(
            csv(&r),
            "date,acquirer,kind,rrn,journal,acquirer_record\r\n\
             20261205,\"sim, Bangkok\",only_at_acquirer,633921000003,,\"SALE SGD 20.00 (\"\"record\"\" 3)\"\r\n"
        );
    }
}
