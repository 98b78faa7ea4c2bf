//! The acquirer's end-of-day settlement (clearing) file: what it approved, reversed and refunded
//! for us, with trailer totals per currency. CSV, one record per line (spec/settlement.md):
//!
//! ```text
//! H,QRBSETTLE,1,<business date YYYYMMDD>,<acquirer>,<created YYYYMMDDhhmmss UTC>
//! D,<seq>,<type SALE|REFUND|REVERSAL>,<RRN>,<STAN>,<DE7>,<terminal>,<merchant>,<currency>,<amount>,<auth code>,<original RRN>
//! T,<currency>,<sales>,<sales amount>,<refunds>,<refund amount>,<reversals>,<reversal amount>,<net>
//! Z,<detail records>
//! ```
//!
//! Pure: writing and strict parsing (every problem names its line). A file whose trailer does not
//! add up is damaged, not a reconciliation break.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::money::Currency;

/// What a detail record settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordType {
    /// An approved purchase (0200, DE3 00): the merchant is credited.
    Sale,
    /// An approved refund (a refund 0200, or a refund advice): the merchant is debited.
    Refund,
    /// A purchase reversed (0400/0401 acknowledged): nothing settles; listed for the record.
    Reversal,
}

impl RecordType {
    /// The file's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Sale => "SALE",
            RecordType::Refund => "REFUND",
            RecordType::Reversal => "REVERSAL",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "SALE" => Some(RecordType::Sale),
            "REFUND" => Some(RecordType::Refund),
            "REVERSAL" => Some(RecordType::Reversal),
            _ => None,
        }
    }
}

/// One detail record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What it settles.
    pub kind: RecordType,
    /// DE37 of the transaction (for an advice refund, the advice's DE37: its reference).
    pub rrn: String,
    /// DE11.
    pub stan: String,
    /// DE7.
    pub transmitted: String,
    /// DE41 (trimmed).
    pub terminal: String,
    /// DE42 (trimmed).
    pub merchant: String,
    /// DE49.
    pub currency: Currency,
    /// DE4, minor units.
    pub amount: u64,
    /// DE38, if any.
    pub auth_code: String,
    /// For a refund: the RRN of the refunded sale, when known.
    pub original_rrn: String,
}

/// Totals of one currency (the trailer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Sales: count and amount.
    pub sales: (u64, u64),
    /// Refunds: count and amount.
    pub refunds: (u64, u64),
    /// Reversals: count and amount.
    pub reversals: (u64, u64),
}

impl Totals {
    /// Sales minus refunds (what the merchants are owed), as a signed number of minor units.
    pub fn net(&self) -> i128 {
        i128::from(self.sales.1) - i128::from(self.refunds.1)
    }

    fn add(&mut self, r: &Record) {
        let slot = match r.kind {
            RecordType::Sale => &mut self.sales,
            RecordType::Refund => &mut self.refunds,
            RecordType::Reversal => &mut self.reversals,
        };
        slot.0 += 1;
        slot.1 = slot.1.saturating_add(r.amount);
    }
}

/// A settlement file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// Business date, `YYYYMMDD`.
    pub date: String,
    /// Who sends it (the acquirer's name or institution id).
    pub acquirer: String,
    /// When it was written, `YYYYMMDDhhmmss` UTC.
    pub created: String,
    /// Detail records in file order.
    pub records: Vec<Record>,
}

/// The file is unusable: the line (1-based) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("settlement file line {line}: {reason}")]
pub struct SettlementError {
    /// 1-based line number (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| *c != ',' && *c != '\n' && *c != '\r')
        .collect::<String>()
        .trim()
        .to_owned()
}

impl Settlement {
    /// Totals per currency of the detail records.
    pub fn totals(&self) -> BTreeMap<&'static str, Totals> {
        let mut out: BTreeMap<&'static str, Totals> = BTreeMap::new();
        for r in &self.records {
            out.entry(r.currency.code()).or_default().add(r);
        }
        out
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "H,QRBSETTLE,1,{},{},{}",
            self.date,
            clean(&self.acquirer),
            self.created
        );
        for (i, r) in self.records.iter().enumerate() {
            let _ = writeln!(
                s,
                "D,{},{},{},{},{},{},{},{},{},{},{}",
                i + 1,
                r.kind.as_str(),
                clean(&r.rrn),
                clean(&r.stan),
                clean(&r.transmitted),
                clean(&r.terminal),
                clean(&r.merchant),
                r.currency.code(),
                r.amount,
                clean(&r.auth_code),
                clean(&r.original_rrn)
            );
        }
        for (currency, t) in self.totals() {
            let _ = writeln!(
                s,
                "T,{currency},{},{},{},{},{},{},{}",
                t.sales.0,
                t.sales.1,
                t.refunds.0,
                t.refunds.1,
                t.reversals.0,
                t.reversals.1,
                t.net()
            );
        }
        let _ = writeln!(s, "Z,{}", self.records.len());
        s
    }

    /// Parses a file strictly: header first, details, trailers that add up, the end record last.
    pub fn parse(text: &str) -> Result<Settlement, SettlementError> {
        let err = |line: usize, reason: String| SettlementError { line, reason };
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        let (n, header) = lines
            .next()
            .ok_or_else(|| err(0, "empty file".to_owned()))?;
        let h: Vec<&str> = header.split(',').collect();
        if h.len() != 6 || h[0] != "H" || h[1] != "QRBSETTLE" {
            return Err(err(n, "not a QRBSETTLE header record".to_owned()));
        }
        if h[2] != "1" {
            return Err(err(n, format!("version {:?} is not supported (1)", h[2])));
        }
        if h[3].len() != 8 || !h[3].bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(n, format!("business date {:?} is not YYYYMMDD", h[3])));
        }
        let mut file = Settlement {
            date: h[3].to_owned(),
            acquirer: h[4].to_owned(),
            created: h[5].to_owned(),
            records: Vec::new(),
        };
        let mut trailers: BTreeMap<String, (usize, Vec<i128>)> = BTreeMap::new();
        let mut end = None;
        for (n, line) in lines {
            if end.is_some() {
                return Err(err(n, "a record after the Z record".to_owned()));
            }
            let f: Vec<&str> = line.split(',').collect();
            match f.first().copied() {
                Some("D") => {
                    if !trailers.is_empty() {
                        return Err(err(n, "a detail record after the trailers".to_owned()));
                    }
                    if f.len() != 12 {
                        return Err(err(n, format!("{} fields, a D record has 12", f.len())));
                    }
                    let seq: usize = f[1]
                        .parse()
                        .map_err(|_| err(n, format!("sequence {:?} is not a number", f[1])))?;
                    if seq != file.records.len() + 1 {
                        return Err(err(
                            n,
                            format!("sequence {seq}, expected {}", file.records.len() + 1),
                        ));
                    }
                    let kind = RecordType::parse(f[2]).ok_or_else(|| {
                        err(n, format!("type {:?} (SALE, REFUND, REVERSAL)", f[2]))
                    })?;
                    if f[3].is_empty() {
                        return Err(err(n, "empty RRN".to_owned()));
                    }
                    let currency = Currency::from_code(f[8])
                        .map_err(|_| err(n, format!("currency {:?} is not ISO 4217", f[8])))?;
                    let amount: u64 = f[9]
                        .parse()
                        .map_err(|_| err(n, format!("amount {:?} is not minor units", f[9])))?;
                    file.records.push(Record {
                        kind,
                        rrn: f[3].to_owned(),
                        stan: f[4].to_owned(),
                        transmitted: f[5].to_owned(),
                        terminal: f[6].to_owned(),
                        merchant: f[7].to_owned(),
                        currency,
                        amount,
                        auth_code: f[10].to_owned(),
                        original_rrn: f[11].to_owned(),
                    });
                }
                Some("T") => {
                    if f.len() != 9 {
                        return Err(err(n, format!("{} fields, a T record has 9", f.len())));
                    }
                    let mut numbers = Vec::new();
                    for v in &f[2..] {
                        numbers.push(
                            v.parse::<i128>()
                                .map_err(|_| err(n, format!("total {v:?} is not a number")))?,
                        );
                    }
                    if trailers.insert(f[1].to_owned(), (n, numbers)).is_some() {
                        return Err(err(n, format!("a second trailer for {}", f[1])));
                    }
                }
                Some("Z") => {
                    let count: usize = f
                        .get(1)
                        .and_then(|c| c.parse().ok())
                        .filter(|_| f.len() == 2)
                        .ok_or_else(|| err(n, "a Z record is Z,<detail records>".to_owned()))?;
                    end = Some((n, count));
                }
                _ => return Err(err(n, "not an H, D, T or Z record".to_owned())),
            }
        }
        let (zn, count) =
            end.ok_or_else(|| err(0, "no Z record: the file is cut short".to_owned()))?;
        if count != file.records.len() {
            return Err(err(
                zn,
                format!(
                    "{count} detail records announced, {} present",
                    file.records.len()
                ),
            ));
        }
        let totals = file.totals();
        for (currency, t) in &totals {
            let want = [
                i128::from(t.sales.0),
                i128::from(t.sales.1),
                i128::from(t.refunds.0),
                i128::from(t.refunds.1),
                i128::from(t.reversals.0),
                i128::from(t.reversals.1),
                t.net(),
            ];
            match trailers.remove(*currency) {
                Some((tn, got)) if got != want => {
                    return Err(err(
                        tn,
                        format!(
                            "the {currency} totals do not add up to the detail records (records say {want:?})"
                        ),
                    ));
                }
                Some(_) => {}
                None => return Err(err(zn, format!("no trailer for {currency}"))),
            }
        }
        if let Some((c, (tn, _))) = trailers.into_iter().next() {
            return Err(err(
                tn,
                format!("a trailer for {c}, which no detail record has"),
            ));
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sgd() -> Currency {
        Currency::from_code("SGD").unwrap()
    }

    fn file() -> Settlement {
        let rec = |kind, rrn: &str, amount| Record {
            kind,
            rrn: rrn.to_owned(),
            stan: "000001".to_owned(),
            transmitted: "1205103000".to_owned(),
            terminal: "QRB00001".to_owned(),
            merchant: "M0001".to_owned(),
            currency: sgd(),
            amount,
            auth_code: "A00001".to_owned(),
            original_rrn: String::new(),
        };
        Settlement {
            date: "20261205".to_owned(),
            acquirer: "sim".to_owned(),
            created: "20261205235900".to_owned(),
            records: vec![
                rec(RecordType::Sale, "633910000001", 2000),
                rec(RecordType::Sale, "633910000002", 1500),
                rec(RecordType::Reversal, "633910000003", 7777),
                rec(RecordType::Refund, "RF1205700001", 500),
            ],
        }
    }

    #[test]
    fn a_file_round_trips_and_its_trailer_adds_up() {
        let text = file().render();
        // 2 sales 35.00, 1 refund 5.00, 1 reversal 77.77: net 30.00.
        assert!(
            text.contains("\nT,SGD,2,3500,1,500,1,7777,3000\nZ,4\n"),
            "{text}"
        );
        assert_eq!(Settlement::parse(&text).unwrap(), file());
    }

    #[test]
    fn a_damaged_file_names_its_line() {
        let text = file().render();
        let altered = text.replace(",2000,A00001", ",2001,A00001");
        let e = Settlement::parse(&altered).unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        let cut: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
        assert_eq!(Settlement::parse(&cut).unwrap_err().line, 0);
        let bad = text.replace("D,2,SALE", "D,2,SOLD");
        assert_eq!(Settlement::parse(&bad).unwrap_err().line, 3);
        assert!(Settlement::parse("").is_err());
        assert!(Settlement::parse("H,OTHER,1,20261205,x,y\nZ,0\n").is_err());
    }
}
