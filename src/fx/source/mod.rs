//! Rate sources: where rate tables come from. The only part of the FX room that does I/O.
//!
//! - [`StaticSource`]: a table from configuration (TOML), no I/O after loading;
//! - [`EcbFile`]: an ECB-format feed read from a file on every fetch;
//! - [`EcbHttps`]: an ECB-format feed fetched over HTTPS (hyper 1 client over rustls, ring).
//!
//! Sources are blocking: a fetch is rare (the cache calls it once per TTL, off the hot path), and a
//! blocking trait keeps the quote path free of an async runtime. The HTTPS source runs its own
//! small runtime and may be called from inside another one.

mod file;
mod https;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::money::Currency;

use super::FxError;
use super::ecb::parse_rate;
use super::rate::RateTable;
use crate::time::parse_timestamp;

pub use file::EcbFile;
pub use https::EcbHttps;

/// Something that can produce the current rate table.
pub trait RateSource: Send + Sync {
    /// A name for logs and errors, e.g. `ecb-https:https://host/eurofxref-daily.xml`.
    fn name(&self) -> &str;

    /// Fetches the current table. Blocking; may take up to the source's timeout.
    fn fetch(&self) -> Result<RateTable, FxError>;
}

impl<S: RateSource + ?Sized> RateSource for Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn fetch(&self) -> Result<RateTable, FxError> {
        (**self).fetch()
    }
}

/// A fixed table from configuration.
///
/// ```toml
/// base = "EUR"
/// as_of = "2026-11-20"            # or "2026-11-20T15:00:00Z"
/// [rates]                         # units per one unit of base, as strings (never floats)
/// USD = "1.0412"
/// JPY = "162.84"
/// ```
#[derive(Debug, Clone)]
pub struct StaticSource {
    name: String,
    table: RateTable,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticConfig {
    base: String,
    as_of: String,
    rates: BTreeMap<String, String>,
}

impl StaticSource {
    /// Serves `table` as it is.
    pub fn new(table: RateTable) -> Self {
        StaticSource {
            name: table.source().to_string(),
            table,
        }
    }

    /// Reads a table from TOML (shape above). Every code must be an ISO 4217 currency with a
    /// minor unit and every rate a plain positive decimal string.
    pub fn from_toml(text: &str, name: &str) -> Result<Self, FxError> {
        let bad = |detail: String| FxError::MalformedFeed {
            source_name: name.to_owned(),
            detail,
        };
        let config: StaticConfig = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let base = Currency::from_code(&config.base)?;
        let as_of = parse_timestamp(&config.as_of).ok_or_else(|| {
            bad(format!(
                "as_of {:?} is neither YYYY-MM-DD nor YYYY-MM-DDTHH:MM:SSZ",
                config.as_of
            ))
        })?;
        let mut table = RateTable::new(base, as_of, name);
        for (code, rate) in &config.rates {
            let currency = Currency::from_code(code)?;
            let value = parse_rate(rate)
                .ok_or_else(|| bad(format!("rates.{code} = {rate:?} is not a positive decimal")))?;
            table.insert(currency, value)?;
        }
        if table.is_empty() {
            return Err(bad("no rates".into()));
        }
        Ok(StaticSource::new(table))
    }
}

impl RateSource for StaticSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn fetch(&self) -> Result<RateTable, FxError> {
        Ok(self.table.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_tables_read_rates_as_strings() {
        let s = StaticSource::from_toml(
            "base = \"EUR\"\nas_of = \"2026-11-20\"\n[rates]\nUSD = \"1.0412\"\nJPY = \"162.84\"\n",
            "static",
        )
        .unwrap();
        let t = s.fetch().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(s.name(), "static");
    }

    #[test]
    fn static_tables_refuse_floats_unknown_codes_and_bad_dates() {
        for text in [
            "base = \"EUR\"\nas_of = \"2026-11-20\"\n[rates]\nUSD = 1.0412\n",
            "base = \"EUR\"\nas_of = \"2026-11-20\"\n[rates]\nXYZ = \"1.0\"\n",
            "base = \"EUR\"\nas_of = \"2026-11-20\"\n[rates]\nUSD = \"-1.0\"\n",
            "base = \"EUR\"\nas_of = \"20-11-2026\"\n[rates]\nUSD = \"1.0\"\n",
            "base = \"EUR\"\nas_of = \"2026-11-20\"\n[rates]\n",
            "base = \"EUR\"\nas_of = \"2026-11-20\"\nextra = 1\n[rates]\nUSD = \"1.0\"\n",
            "base = \"EUR\"\nas_of = \"2026-11-20\"\n[rates]\nEUR = \"2\"\n",
        ] {
            assert!(StaticSource::from_toml(text, "static").is_err(), "{text}");
        }
    }
}
