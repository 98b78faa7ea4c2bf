//! An ECB-format feed in a file, read anew on every fetch (an operator or a cron job replaces it).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::fx::FxError;
use crate::fx::ecb::{self, MAX_FEED_BYTES};
use crate::fx::rate::RateTable;

use super::RateSource;

/// An ECB-format feed read from a file.
#[derive(Debug, Clone)]
pub struct EcbFile {
    path: PathBuf,
    name: String,
}

impl EcbFile {
    /// A source reading `path` on each fetch.
    pub fn new(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_path_buf();
        let name = format!("ecb-file:{}", path.display());
        EcbFile { path, name }
    }
}

impl RateSource for EcbFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn fetch(&self) -> Result<RateTable, FxError> {
        let unavailable = |e: std::io::Error| FxError::SourceUnavailable {
            source_name: self.name.clone(),
            detail: e.to_string(),
        };
        let file = std::fs::File::open(&self.path).map_err(unavailable)?;
        let mut bytes = Vec::new();
        // Read one byte past the limit so an oversized file is reported, not cut.
        file.take(MAX_FEED_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(unavailable)?;
        ecb::parse(&bytes, &self.name)
    }
}
