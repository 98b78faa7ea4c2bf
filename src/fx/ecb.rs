//! The ECB euro foreign exchange reference-rate feed (`eurofxref-daily.xml` shape): a codec only,
//! no I/O (the sources in `source/` fetch the bytes).
//!
//! ```xml
//! <gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
//!                  xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
//!   <gesmes:subject>Reference rates</gesmes:subject>
//!   <Cube>
//!     <Cube time="2026-11-20">
//!       <Cube currency="USD" rate="1.0412"/>   <!-- 1 EUR = 1.0412 USD -->
//!       ...
//! ```
//!
//! The base is always EUR. A feed with several days (the 90-day history file has that shape) yields
//! the latest day. Currencies unknown to ISO 4217 or without a minor unit are skipped (a new code
//! in the feed must not stop quoting in every other currency); a malformed rate or date, a
//! duplicated currency or a feed without any day is an error.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::money::Currency;

use super::FxError;
use super::rate::RateTable;
use crate::time::parse_date;

/// Feeds are a few kilobytes; anything far larger is not a rate feed.
pub const MAX_FEED_BYTES: usize = 1 << 20;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Cube")]
    cube: Option<OuterCube>,
}

#[derive(Deserialize)]
struct OuterCube {
    #[serde(rename = "Cube", default)]
    days: Vec<DayCube>,
}

#[derive(Deserialize)]
struct DayCube {
    #[serde(rename = "@time")]
    time: String,
    #[serde(rename = "Cube", default)]
    rates: Vec<RateCube>,
}

#[derive(Deserialize)]
struct RateCube {
    #[serde(rename = "@currency")]
    currency: String,
    #[serde(rename = "@rate")]
    rate: String,
}

/// Parses an ECB-format feed into a table named `source_name`.
pub fn parse(xml: &[u8], source_name: &str) -> Result<RateTable, FxError> {
    let malformed = |detail: String| FxError::MalformedFeed {
        source_name: source_name.to_owned(),
        detail,
    };
    if xml.len() > MAX_FEED_BYTES {
        return Err(malformed(format!(
            "{} bytes is larger than the {MAX_FEED_BYTES}-byte limit",
            xml.len()
        )));
    }
    let text = std::str::from_utf8(xml)
        .map_err(|e| malformed(format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    let envelope: Envelope =
        quick_xml::de::from_str(text).map_err(|e| malformed(format!("XML: {e}")))?;
    let days = envelope.cube.map(|c| c.days).unwrap_or_default();
    let mut latest: Option<(std::time::SystemTime, &DayCube)> = None;
    for day in &days {
        let date = parse_date(&day.time).ok_or_else(|| {
            malformed(format!("Cube time={:?} is not a YYYY-MM-DD date", day.time))
        })?;
        if latest.is_none_or(|(t, _)| date > t) {
            latest = Some((date, day));
        }
    }
    let (as_of, day) =
        latest.ok_or_else(|| malformed("no <Cube time=...> day in the feed".into()))?;
    let euro = Currency::from_code("EUR")?;
    let mut table = RateTable::new(euro, as_of, source_name);
    for cube in &day.rates {
        let Ok(currency) = Currency::from_code(&cube.currency) else {
            continue;
        };
        let rate = parse_rate(&cube.rate).ok_or_else(|| {
            malformed(format!(
                "{} {}: rate {:?} is not a positive decimal",
                day.time, cube.currency, cube.rate
            ))
        })?;
        if table.per_base(currency).is_some() {
            return Err(malformed(format!(
                "{} {}: currency listed twice",
                day.time, cube.currency
            )));
        }
        table.insert(currency, rate)?;
    }
    if table.is_empty() {
        return Err(malformed(format!("day {} has no usable rate", day.time)));
    }
    Ok(table)
}

/// A plain positive decimal: digits with at most one `.`, no sign or exponent (what the ECB prints).
pub(crate) fn parse_rate(s: &str) -> Option<Decimal> {
    let plain = !s.is_empty()
        && s.len() <= 30
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|b| *b == b'.').count() <= 1
        && !s.starts_with('.')
        && !s.ends_with('.');
    if !plain {
        return None;
    }
    Decimal::from_str(s).ok().filter(|d| *d > Decimal::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_rfc3339;

    const FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
  <Cube>
    <Cube time='2026-11-19'><Cube currency='USD' rate='1.0500'/></Cube>
    <Cube time='2026-11-20'>
      <Cube currency='USD' rate='1.0412'/>
      <Cube currency='JPY' rate='162.84'/>
      <Cube currency='XYZ' rate='3.3'/>
    </Cube>
  </Cube>
</gesmes:Envelope>"#;

    fn cur(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    #[test]
    fn reads_the_latest_day_and_skips_unknown_codes() {
        let t = parse(FEED.as_bytes(), "test").unwrap();
        assert_eq!(format_rfc3339(t.as_of()), "2026-11-20T00:00:00Z");
        assert_eq!(t.per_base(cur("USD")), Some(Decimal::new(10412, 4)));
        assert_eq!(t.per_base(cur("JPY")), Some(Decimal::new(16284, 2)));
        assert_eq!(t.per_base(cur("EUR")), Some(Decimal::ONE));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn refuses_malformed_feeds() {
        let bad = [
            FEED.replace("1.0412", "-1.0412"),
            FEED.replace("1.0412", "1e3"),
            FEED.replace("1.0412", "0"),
            FEED.replace("1.0412", ""),
            FEED.replace("2026-11-20", "2026-11-31"),
            FEED.replace("<Cube currency='JPY'", "<Cube currency='USD'"),
            FEED.replace("</gesmes:Envelope>", ""),
            "<a/>".to_owned(),
            String::new(),
        ];
        for xml in bad {
            let err = parse(xml.as_bytes(), "test").unwrap_err();
            assert!(err.is_source_failure(), "{err}");
            assert!(
                err.to_string()
                    .starts_with("rate source test: malformed feed"),
                "{err}"
            );
        }
        assert!(parse(&[0xff, 0xfe], "test").is_err());
        assert!(parse(&vec![b' '; MAX_FEED_BYTES + 1], "test").is_err());
    }
}
