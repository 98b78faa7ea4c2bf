//! The one configuration file (TOML) of `qrbridge serve --config FILE`, validated at load with
//! messages that name the key. Every key is documented in the example `qrbridge.toml` at the
//! repository root; the embedded demo is such a file too (`src/cli/serve_demo.toml`).
//!
//! In: TOML text (and the directory relative paths are taken from). Out: [`Config`], plus the
//! settings each room takes ([`Config::settings`], [`Config::server`], ...).
//! Errors: [`ConfigError`], naming the key (`routes[2].acquirer: no acquirer named "x"`).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::fx::{CacheConfig, QuotePolicy};
use crate::gateway::{ClientPolicy, Matcher, MemoryBounds, RouteRule, Settings};
use crate::journal::DailyLimits;
use crate::money::Currency;
use crate::notify::NotifyPolicy;
use crate::scheme::native::auth::{AuthConfig, ClientKey, Credentials, Secret};
use crate::scheme::{Scheme, SchemeSettings};
use crate::server::{Limits, ServerConfig, TlsSettings, Transport};

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, an unknown key, or a value of the wrong type.
    #[error("{0}")]
    Syntax(String),
    /// A value that parses but cannot be used, an unknown key, or a value of the wrong type.
    #[error("{key}{}: {reason}", at_line(*.line))]
    Invalid {
        /// The key, e.g. `routes[1].merchant_id_sub`.
        key: String,
        /// Why.
        reason: String,
        /// Its line in the file (1-based), when known.
        line: Option<usize>,
    },
    /// Several problems, each on its own line ([`ConfigError::all`] lists them).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Many(Vec<ConfigError>),
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

impl ConfigError {
    /// Every single problem (one for all but [`ConfigError::Many`]).
    pub fn all(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Many(v) => v.iter().flat_map(ConfigError::all).collect(),
            other => vec![other],
        }
    }

    fn from_list(mut errs: Vec<ConfigError>) -> Result<(), ConfigError> {
        match errs.len() {
            0 => Ok(()),
            1 => Err(errs.remove(0)),
            _ => Err(ConfigError::Many(errs)),
        }
    }
}

/// The largest FX markup a client may be configured with (10 %); the quoting library accepts up
/// to `fx::MAX_MARKUP_BPS`, but a configuration above this is a typo, not a price.
pub const MAX_CLIENT_MARKUP_BPS: u32 = 1_000;

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
        line: None,
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The domestic market served.
    pub deployment: Deployment,
    /// The wallet-facing server.
    #[serde(default)]
    pub server: ServerSection,
    /// Pipeline timers.
    #[serde(default)]
    pub gateway: GatewaySection,
    /// Wallet clients.
    #[serde(default)]
    pub clients: Vec<ClientSection>,
    /// Acquirer links.
    #[serde(default)]
    pub acquirers: Vec<AcquirerSection>,
    /// The routing table.
    #[serde(default)]
    pub routes: Vec<RouteSection>,
    /// Rates and quotes.
    pub fx: FxSection,
    /// The journal.
    pub journal: JournalSection,
    /// Foreign wallet schemes served beside the native API: `[schemes.<name>]`, one table per
    /// registered scheme (`scheme::REGISTRY`), its keys the scheme's own. A table present = served.
    #[serde(default)]
    pub schemes: SchemeTables,
    /// Wallet notifications (delivery of the notice outbox).
    #[serde(default)]
    pub notifications: NotificationsSection,
    /// Logging: format and filter (spec/operations.md §1).
    #[serde(default)]
    pub log: crate::telemetry::log::LogSettings,
    /// The operator listener: `GET /metrics`, `/healthz`, `/readyz` (spec/operations.md §3).
    #[serde(default)]
    pub operator: OperatorSection,
    /// Byte bounds of the in-memory stores and of the journal's page cache.
    #[serde(default)]
    pub memory: MemorySection,
    /// Where relative paths are resolved from (the file's directory); not a key.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// The `[schemes.<name>]` tables, as written. They hold credentials (HMAC keys), so `Debug` shows
/// only the scheme names.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct SchemeTables(pub std::collections::BTreeMap<String, toml::Table>);

impl std::ops::Deref for SchemeTables {
    type Target = std::collections::BTreeMap<String, toml::Table>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::fmt::Debug for SchemeTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.0.keys().map(|k| format!("{k}: <redacted>")))
            .finish()
    }
}

/// `[deployment]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// ISO 3166 alpha-2, e.g. `SG`.
    pub country: String,
    /// ISO 4217 alpha, e.g. `SGD`.
    pub currency: String,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// `host:port`.
    pub listen: String,
    /// `tls` or `plaintext-loopback`.
    pub transport: String,
    /// PEM certificate chain (TLS); absent: generated at start.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (TLS).
    pub tls_key: Option<PathBuf>,
    /// PEM CA of wallet client certificates: mutual TLS (clients map by `certificate_sha256`).
    pub client_ca: Option<PathBuf>,
    /// `signatures` or `off` (demo only).
    pub auth: String,
    /// With `auth = "off"`: the client every request is attributed to.
    pub demo_client: Option<String>,
    /// Largest body, bytes.
    pub max_body_bytes: u64,
    /// Time for a request (body + handler), ms.
    pub request_timeout_ms: u64,
    /// A connection with no request in progress this long is closed, ms.
    pub idle_timeout_ms: u64,
    /// Most open connections.
    pub max_connections: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        let limits = Limits::default();
        ServerSection {
            listen: "127.0.0.1:8443".to_owned(),
            transport: "tls".to_owned(),
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            auth: "signatures".to_owned(),
            demo_client: None,
            max_body_bytes: limits.max_body_bytes,
            request_timeout_ms: 30_000,
            idle_timeout_ms: 10_000,
            max_connections: limits.max_connections,
        }
    }
}

/// `[gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// Acquirer deadline of a payment, ms (then U / PROCESSING and a reversal).
    pub pay_budget_ms: u64,
    /// Lifetime of a decode id, s.
    pub decode_ttl_secs: u64,
    /// Cancel cut-off after the payment, s.
    pub cancel_window_secs: u64,
}

impl Default for GatewaySection {
    fn default() -> Self {
        GatewaySection {
            pay_budget_ms: 8_000,
            decode_ttl_secs: 600,
            cancel_window_secs: 1_800,
        }
    }
}

/// `[[clients]]`. Its `Debug` does not show the key.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSection {
    /// Client id (the `client-id` header).
    pub id: String,
    /// HMAC-SHA256 key, base64 (required with `auth = "signatures"`).
    #[serde(default)]
    pub hmac_key_base64: Option<String>,
    /// Its version (the signature header's `keyVersion`).
    #[serde(default = "one")]
    pub key_version: u32,
    /// With `server.client_ca`: lower-case hex SHA-256 of its client certificate (DER).
    #[serde(default)]
    pub certificate_sha256: Option<String>,
    /// FX markup, basis points.
    #[serde(default)]
    pub markup_bps: u32,
    /// Largest payment, minor units of the deployment currency.
    #[serde(default)]
    pub max_per_transaction_minor: Option<u64>,
    /// Payments per customer per UTC day.
    #[serde(default)]
    pub daily_max_count: Option<u32>,
    /// Amount per customer per UTC day, minor units of the deployment currency.
    #[serde(default)]
    pub daily_max_amount_minor: Option<u64>,
    /// Where the native scheme notifies this client of final states reached after the answer
    /// (`https://...`; `http://` to a loopback address only). Absent: no notifications.
    #[serde(default)]
    pub notify_url: Option<String>,
}

/// `[notifications]`: how the notice outbox is delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsSection {
    /// Delay before the second attempt, ms (doubles after every failure).
    pub first_delay_ms: u64,
    /// Longest delay between attempts, s.
    pub max_delay_secs: u64,
    /// Unacknowledged this long after the state change: PARKED, s.
    pub max_age_secs: u64,
    /// Bound on one attempt, ms.
    pub attempt_timeout_ms: u64,
    /// Most attempts in flight.
    pub concurrency: usize,
    /// Most inquiries about a payment order without a result before it is cancelled on the
    /// wallet's side (Alipay+ MPP inquiryPayment, then cancelPayment).
    pub max_inquiries: u32,
    /// Extra CA certificates (PEM) for wallets' notify URLs, besides the public roots.
    pub extra_ca_pem: Option<PathBuf>,
}

impl Default for NotificationsSection {
    fn default() -> Self {
        let p = NotifyPolicy::default();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        NotificationsSection {
            first_delay_ms: ms(p.first_delay),
            max_delay_secs: p.max_delay.as_secs(),
            max_age_secs: p.max_age.as_secs(),
            attempt_timeout_ms: ms(p.attempt_timeout),
            concurrency: p.concurrency,
            max_inquiries: p.max_inquiries,
            extra_ca_pem: None,
        }
    }
}

impl std::fmt::Debug for ClientSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSection")
            .field("id", &self.id)
            .field(
                "hmac_key_base64",
                &self.hmac_key_base64.as_ref().map(|_| "<redacted>"),
            )
            .field("key_version", &self.key_version)
            .field("certificate_sha256", &self.certificate_sha256)
            .field("markup_bps", &self.markup_bps)
            .field("max_per_transaction_minor", &self.max_per_transaction_minor)
            .field("daily_max_count", &self.daily_max_count)
            .field("daily_max_amount_minor", &self.daily_max_amount_minor)
            .field("notify_url", &self.notify_url)
            .finish()
    }
}

fn one() -> u32 {
    1
}

/// `[[acquirers]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcquirerSection {
    /// Name routes refer to.
    pub name: String,
    /// `host:port` (ignored with `embedded_simulator`).
    #[serde(default)]
    pub address: String,
    /// The name its certificate carries.
    #[serde(default = "localhost")]
    pub server_name: String,
    /// PEM CA that issued its certificate.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Our PEM client certificate.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// Our PEM client key.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Start the built-in simulator on loopback TLS (certificates generated) instead.
    #[serde(default)]
    pub embedded_simulator: bool,
    /// DE32.
    pub acquiring_institution: String,
    /// DE41 (8 characters).
    pub terminal_id: String,
    /// TCP + TLS connect timeout, ms.
    #[serde(default = "connect_ms")]
    pub connect_timeout_ms: u64,
    /// Wait for each 0410, ms.
    #[serde(default = "reversal_ms")]
    pub reversal_answer_timeout_ms: u64,
    /// 0400 + 0401s before manual review.
    #[serde(default = "reversal_attempts")]
    pub reversal_max_attempts: u32,
    /// Connections in the link's pool, 1 to 16 (same address and DE32 / DE41, one STAN sequence).
    #[serde(default = "one_link")]
    pub links: usize,
}

fn localhost() -> String {
    "localhost".to_owned()
}
fn connect_ms() -> u64 {
    5_000
}
fn reversal_ms() -> u64 {
    10_000
}
fn reversal_attempts() -> u32 {
    10
}
fn one_link() -> usize {
    1
}

/// `[[routes]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// GUID / AID in sub-ID 00 of a merchant-account template (case-insensitive).
    #[serde(default)]
    pub guid: Option<String>,
    /// Or a root primitive merchant-account ID, 2 to 25.
    #[serde(default)]
    pub primitive: Option<u8>,
    /// Acquirer name.
    pub acquirer: String,
    /// Sub-ID with the merchant id, e.g. `"02"`.
    #[serde(default)]
    pub merchant_id_sub: Option<String>,
    /// Sub-ID with the terminal id.
    #[serde(default)]
    pub terminal_id_sub: Option<String>,
    /// Lower wins when a code has several routable templates.
    #[serde(default)]
    pub priority: u32,
}

/// `[fx]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FxSection {
    /// ECB-format XML, or a static table (`*.toml`). Absent (and no `rates_url`): the bundled
    /// reference rates.
    #[serde(default)]
    pub rates_file: Option<PathBuf>,
    /// Or an ECB-format feed over HTTPS.
    #[serde(default)]
    pub rates_url: Option<String>,
    /// How long a fetched rate is fresh, s.
    #[serde(default = "ttl")]
    pub ttl_secs: u64,
    /// Refuse to quote on rates older than this, s (0: no limit).
    #[serde(default = "max_age")]
    pub max_age_secs: u64,
    /// How long a quote holds, s.
    #[serde(default = "quote_lifetime")]
    pub quote_lifetime_secs: u64,
}

fn ttl() -> u64 {
    3_600
}
fn max_age() -> u64 {
    4 * 86_400
}
fn quote_lifetime() -> u64 {
    120
}

/// `[operator]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperatorSection {
    /// `host:port` of the plaintext operator listener (metrics, health). Absent: none (the
    /// embedded demo serves `/metrics` on its wallet listener instead).
    pub listen: Option<String>,
}

/// `[journal]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSection {
    /// The engine: `redb` (the embedded file, default) or `postgres` (a database several
    /// instances share; spec/journal.md §11).
    #[serde(default)]
    pub engine: JournalEngine,
    /// The redb file (created if missing; its directory must exist unless `create_dir`).
    /// Required for `redb`; unused for `postgres`.
    #[serde(default)]
    pub path: PathBuf,
    /// Create the journal's directory when it does not exist (default false: a missing
    /// directory is refused, as it usually means a wrong path or an unmounted volume).
    #[serde(default)]
    pub create_dir: bool,
    /// `postgres`: the database URL or key=value DSN, without the password
    /// (`postgresql://qrbridge@db.internal:5432/qrbridge`).
    #[serde(default)]
    pub url: Option<String>,
    /// `postgres`: the environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// `postgres`: a file holding the password (one line; relative to the config file).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// `postgres`: apply the schema migrations this build ships at start (default false: run
    /// `qrbridge journal migrate` as a deployment step).
    #[serde(default)]
    pub migrate: bool,
    /// `postgres`: read connections at most (default 4; the writer has one more).
    #[serde(default = "default_pg_readers")]
    pub readers: usize,
    /// `postgres`: this instance's name, unique among the instances sharing the database (its
    /// unresolved records are owned by it; a restart under the same name recovers them at once).
    /// Default: a random name per process (its records are taken over after the lease).
    #[serde(default)]
    pub instance: Option<String>,
    /// `postgres`: how long an instance's records stay its own without a heartbeat, in
    /// milliseconds (default 15000, at least 1000); another instance takes them over after it.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
}

fn default_lease_ms() -> u64 {
    15_000
}

fn default_pg_readers() -> usize {
    4
}

/// Which journal engine (`[journal] engine`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalEngine {
    /// The embedded redb file.
    #[default]
    Redb,
    /// PostgreSQL.
    Postgres,
}

/// `[memory]`: byte bounds, in MiB, of every in-memory store that grows with traffic, and of the
/// journal's page cache. Entries also expire by time (decode ids: `gateway.decode_ttl_secs`;
/// quotes: `fx.quote_lifetime_secs` + 10 min grace; approvals: `gateway.cancel_window_secs`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemorySection {
    /// Decoded merchants under their decode id.
    pub decodes_mib: u64,
    /// The quote store (fx): issued quotes, single use.
    pub quotes_mib: u64,
    /// The decoded merchant of each quote.
    pub quoted_mib: u64,
    /// Approvals kept for a cancel inside the cancel window.
    pub approvals_mib: u64,
    /// redb's page cache (redb's own default would be 1 GiB).
    pub journal_cache_mib: u64,
    /// Each signing scheme's replay guard (accepted signatures, kept 2 × window + 1 min).
    pub replay_mib: u64,
}

impl Default for MemorySection {
    fn default() -> Self {
        let mib = |b: u64| b >> 20;
        let bounds = MemoryBounds::default();
        MemorySection {
            decodes_mib: mib(bounds.decodes_bytes),
            quotes_mib: 16,
            quoted_mib: mib(bounds.quoted_bytes),
            approvals_mib: mib(bounds.approvals_bytes),
            journal_cache_mib: u64::try_from(crate::journal::DEFAULT_CACHE_BYTES >> 20)
                .unwrap_or(32),
            replay_mib: crate::scheme::native::auth::REPLAY_DEFAULT_BYTES >> 20,
        }
    }
}

impl MemorySection {
    /// The largest bound accepted, MiB (16 GiB).
    pub const MAX_MIB: u64 = 16 << 10;

    fn keys(&self) -> [(&'static str, u64); 6] {
        [
            ("memory.decodes_mib", self.decodes_mib),
            ("memory.quotes_mib", self.quotes_mib),
            ("memory.quoted_mib", self.quoted_mib),
            ("memory.approvals_mib", self.approvals_mib),
            ("memory.journal_cache_mib", self.journal_cache_mib),
            ("memory.replay_mib", self.replay_mib),
        ]
    }

    /// Each signing scheme's replay guard, bytes.
    pub fn replay_bytes(&self) -> u64 {
        self.replay_mib << 20
    }

    /// The pipeline's stores.
    pub fn bounds(&self) -> MemoryBounds {
        MemoryBounds {
            decodes_bytes: self.decodes_mib << 20,
            quoted_bytes: self.quoted_mib << 20,
            approvals_bytes: self.approvals_mib << 20,
        }
    }

    /// The quote store's bound, bytes.
    pub fn quotes_bytes(&self) -> u64 {
        self.quotes_mib << 20
    }

    /// The journal's page cache, bytes.
    pub fn journal_cache_bytes(&self) -> usize {
        usize::try_from(self.journal_cache_mib << 20).unwrap_or(usize::MAX)
    }
}

/// The 1-based line of byte offset `at`.
fn line_at(text: &str, at: usize) -> usize {
    text.get(..at).map_or(0, |t| t.matches('\n').count()) + 1
}

/// `unknown field `colour`, expected ...` → `colour`.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// A key path (`clients[1].markup_bps`) as table names and array indexes.
fn segments(key: &str) -> Vec<(String, Option<usize>)> {
    key.split('.')
        .filter(|s| !s.is_empty())
        .map(|part| match part.split_once('[') {
            Some((name, idx)) => (
                name.to_owned(),
                idx.trim_end_matches(']').parse::<usize>().ok(),
            ),
            None => (part.to_owned(), None),
        })
        .collect()
}

/// Takes `key` out of `table`; false when it is not there.
fn remove_key(table: &mut toml::Table, key: &str) -> bool {
    let segs = segments(key);
    let Some(((last, last_idx), parents)) = segs.split_last() else {
        return false;
    };
    if last_idx.is_some() {
        return false;
    }
    let mut current = table;
    for (name, idx) in parents {
        let next = match (current.get_mut(name), idx) {
            (Some(toml::Value::Table(t)), None) => t,
            (Some(toml::Value::Array(a)), Some(i)) => match a.get_mut(*i) {
                Some(toml::Value::Table(t)) => t,
                _ => return false,
            },
            _ => return false,
        };
        current = next;
    }
    current.remove(last).is_some()
}

/// The line of `key` in the file: the line of its `key =` in the table the path names
/// (`[[clients]]` tables counted), else the line of that table's header. Dotted keys and inline
/// tables are not followed (the header's line is given then).
pub fn line_of(text: &str, key: &str) -> Option<usize> {
    let segs = segments(key);
    // The longest prefix of the path that is a table header, and the key after it.
    for split in (0..=segs.len()).rev() {
        let (table, rest) = segs.split_at(split);
        let header = table
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(".");
        let index = table.last().and_then(|(_, i)| *i);
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut inside = table.is_empty();
        let mut header_line = None;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.starts_with('[') {
                let array = line.starts_with("[[");
                let name = line
                    .trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                let k = seen.entry(name.clone()).or_insert(0);
                let this = *k;
                if array {
                    *k += 1;
                }
                inside = !table.is_empty()
                    && name == header
                    && (index.is_none() || (array && index == Some(this)));
                if inside && rest.is_empty() {
                    return Some(n + 1);
                }
                if inside {
                    header_line = Some(n + 1);
                }
                continue;
            }
            if inside
                && let Some((first, _)) = rest.first()
                && let Some(after) = line.strip_prefix(first.as_str())
                && after.trim_start().starts_with('=')
            {
                return Some(n + 1);
            }
        }
        if let Some(l) = header_line {
            return Some(l);
        }
    }
    None
}

fn sub_id(key: &str, value: &str) -> Result<u8, ConfigError> {
    match value.parse::<u8>() {
        Ok(n) if value.len() == 2 && n <= 99 => Ok(n),
        _ => Err(invalid(
            key,
            format!("must be a two-digit sub-ID such as \"02\", got {value:?}"),
        )),
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse(&text, &base)
    }

    /// Parses and validates TOML text; relative paths are taken from `base_dir`. Every problem
    /// is reported, not only the first ([`ConfigError::Many`]), each with its key and line.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|r| line_at(text, r.start));
            let message = e.message().replace('\n', " ");
            ConfigError::Syntax(match line {
                Some(l) => format!("line {l}: {message}"),
                None => message,
            })
        })?;
        // Unknown keys and values of the wrong type: each is noted and taken out, and the rest
        // is read again, so that one run reports them all (a missing required key stops it).
        let mut errs = Vec::new();
        let mut config = loop {
            let value = toml::Value::Table(table.clone());
            match serde_path_to_error::deserialize::<_, Config>(value) {
                Ok(c) => break Some(c),
                Err(e) => {
                    let path = e.path().to_string();
                    let message = e.into_inner().to_string();
                    // toml appends a line "in `key`": the key path is given separately.
                    let inner = message.lines().next().unwrap_or(&message).trim().to_owned();
                    let (key, reason) = match unknown_field(&inner) {
                        Some(field) if path == "." => (field, inner.clone()),
                        Some(field) if !path.ends_with(&format!(".{field}")) && path != field => {
                            (format!("{path}.{field}"), inner.clone())
                        }
                        _ => (path.clone(), inner.clone()),
                    };
                    let removed = remove_key(&mut table, &key);
                    errs.push(ConfigError::Invalid {
                        line: line_of(text, &key),
                        key,
                        reason: reason.replace('\n', " "),
                    });
                    if !removed || errs.len() > 100 {
                        break None;
                    }
                }
            }
        };
        if let Some(c) = &mut config {
            c.base_dir = base_dir.to_path_buf();
            for e in c.validate() {
                errs.push(match e {
                    ConfigError::Invalid { key, reason, line } => ConfigError::Invalid {
                        line: line.or_else(|| line_of(text, &key)),
                        key,
                        reason,
                    },
                    other => other,
                });
            }
        }
        ConfigError::from_list(errs)?;
        config.ok_or_else(|| ConfigError::Syntax("configuration unreadable".to_owned()))
    }

    /// Everything `qrbridge serve` would refuse in this configuration beyond the file itself:
    /// the journal's directory, key and certificate files, the routing table, the schemes.
    pub fn check_environment(&self) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        let path = self.resolve(&self.journal.path);
        if let Err(e) = self.postgres() {
            errs.push(e);
        }
        if self.journal.engine == JournalEngine::Redb && self.journal.path.as_os_str().is_empty() {
            errs.push(invalid("journal.path", "engine = \"redb\" needs a path"));
        } else if self.journal.engine == JournalEngine::Redb
            && let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !dir.is_dir()
            && !self.journal.create_dir
        {
            errs.push(invalid(
                "journal.path",
                format!(
                    "the directory {} does not exist (create it, or set journal.create_dir = true)",
                    dir.display()
                ),
            ));
        }
        if let Err(e) = self.settings() {
            errs.push(e);
        }
        if let Err(e) = self.server() {
            errs.push(e);
        }
        if let Err(e) = self.schemes() {
            errs.push(e);
        }
        if let Some(addr) = &self.operator.listen
            && addr.parse::<SocketAddr>().is_err()
        {
            errs.push(invalid(
                "operator.listen",
                format!("must be ip:port, got {addr:?}"),
            ));
        }
        let mut seen = BTreeSet::new();
        errs.retain(|e| seen.insert(e.to_string()));
        errs
    }

    /// The PostgreSQL connection of `[journal]` (engine `postgres`), the password read from
    /// `password_env` or `password_file`; `None` for the redb engine. A password written in the
    /// URL itself is refused (it would sit in the file and in process listings).
    pub fn postgres(&self) -> Result<Option<crate::journal::postgres::PgConfig>, ConfigError> {
        let j = &self.journal;
        if j.engine != JournalEngine::Postgres {
            return Ok(None);
        }
        let url = j
            .url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| invalid("journal.url", "engine = \"postgres\" needs a url"))?;
        if crate::journal::postgres::redact(&url) != url {
            return Err(invalid(
                "journal.url",
                "holds a password: put it in password_env or password_file instead",
            ));
        }
        let password = match (&j.password_env, &j.password_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "journal.password_env",
                    "set password_env or password_file, not both",
                ));
            }
            (Some(var), None) => Some(std::env::var(var).map_err(|_| {
                invalid(
                    "journal.password_env",
                    format!("the environment variable {var} is not set"),
                )
            })?),
            (None, Some(file)) => {
                let path = self.resolve(file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    invalid("journal.password_file", format!("{}: {e}", path.display()))
                })?;
                Some(text.trim_end_matches(['\r', '\n']).to_owned())
            }
            (None, None) => None,
        };
        let mut pg = crate::journal::postgres::PgConfig::new(url);
        pg.password = password;
        pg.readers = j.readers.clamp(1, 64);
        if j.lease_ms < 1_000 {
            return Err(invalid("journal.lease_ms", "at least 1000 (1 s)"));
        }
        pg.lease = std::time::Duration::from_millis(j.lease_ms);
        if let Some(name) = &j.instance {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !ok {
                return Err(invalid(
                    "journal.instance",
                    "1 to 64 characters: letters, digits, '-', '_', '.'",
                ));
            }
            pg.instance = Some(name.clone());
        }
        Ok(Some(pg))
    }

    /// Checks that the journal's directory exists, or creates it with `journal.create_dir`.
    pub fn prepare_journal_dir(&self) -> Result<(), ConfigError> {
        if self.journal.engine == JournalEngine::Postgres {
            return Ok(());
        }
        let path = self.resolve(&self.journal.path);
        let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
            return Ok(());
        };
        if dir.is_dir() {
            return Ok(());
        }
        if self.journal.create_dir {
            return std::fs::create_dir_all(dir)
                .map_err(|e| invalid("journal.path", format!("creating {}: {e}", dir.display())));
        }
        Err(invalid(
            "journal.path",
            format!(
                "the directory {} does not exist (create it, or set journal.create_dir = true)",
                dir.display()
            ),
        ))
    }

    /// A path from the file, resolved against its directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// Every problem of a parsed configuration, in file order of the checks.
    fn validate(&self) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        for (key, mib) in self.memory.keys() {
            if !(1..=MemorySection::MAX_MIB).contains(&mib) {
                errs.push(invalid(
                    key,
                    format!("{mib} MiB: a bound is 1 to {} MiB", MemorySection::MAX_MIB),
                ));
            }
        }
        for name in self.schemes.keys() {
            if !crate::scheme::REGISTRY.iter().any(|e| e.name == name) {
                let known: Vec<&str> = crate::scheme::REGISTRY.iter().map(|e| e.name).collect();
                errs.push(invalid(
                    format!("schemes.{name}"),
                    format!("no such scheme (registered: {})", known.join(", ")),
                ));
            }
        }
        let d = &self.deployment;
        let country =
            d.country.parse::<iso_country::Country>().ok().filter(|_| {
                d.country.len() == 2 && d.country.bytes().all(|b| b.is_ascii_uppercase())
            });
        if country.is_none() {
            errs.push(invalid(
                "deployment.country",
                format!(
                    "{:?} is not an ISO 3166-1 alpha-2 country code (e.g. \"SG\")",
                    d.country
                ),
            ));
        }
        match self.currency() {
            Err(e) => errs.push(e),
            Ok(currency) => {
                if let Some(country) = country
                    && let Some(iso) = iso_currency::Currency::from_code(currency.code())
                    && !iso
                        .used_by()
                        .iter()
                        .any(|c| c.to_string() == country.to_string())
                {
                    errs.push(invalid(
                        "deployment.currency",
                        format!(
                            "{} is not a currency of {} ({}): a deployment's QR codes carry its \
                             country's currency",
                            currency.code(),
                            d.country,
                            country.name()
                        ),
                    ));
                }
            }
        }
        let s = &self.server;
        let listen = self.listen().map_err(|e| errs.push(e)).ok();
        match s.transport.as_str() {
            "tls" => {
                if s.tls_cert.is_some() != s.tls_key.is_some() {
                    errs.push(invalid(
                        "server.tls_cert",
                        "tls_cert and tls_key go together (or neither: generated at start)",
                    ));
                }
            }
            "plaintext-loopback" => {
                if s.client_ca.is_some() {
                    errs.push(invalid(
                        "server.client_ca",
                        "mutual TLS needs transport = \"tls\"",
                    ));
                }
                if let Some(listen) = listen
                    && !listen.ip().is_loopback()
                {
                    errs.push(invalid(
                        "server.listen",
                        format!("plaintext-loopback needs a loopback address, got {listen}"),
                    ));
                }
            }
            other => {
                errs.push(invalid(
                    "server.transport",
                    format!("must be \"tls\" or \"plaintext-loopback\", got {other:?}"),
                ));
            }
        }
        match (s.auth.as_str(), &s.demo_client) {
            ("signatures", None) => {}
            ("signatures", Some(_)) => {
                errs.push(invalid("server.demo_client", "only with auth = \"off\""));
            }
            ("off", Some(c)) => {
                if !self.clients.iter().any(|x| &x.id == c) {
                    errs.push(invalid(
                        "server.demo_client",
                        format!("{c:?} is not in [[clients]]"),
                    ));
                }
            }
            ("off", None) => {
                errs.push(invalid(
                    "server.demo_client",
                    "required with auth = \"off\"",
                ));
            }
            (other, _) => {
                errs.push(invalid(
                    "server.auth",
                    format!("must be \"signatures\" or \"off\", got {other:?}"),
                ));
            }
        }
        if self.gateway.pay_budget_ms == 0 {
            errs.push(invalid("gateway.pay_budget_ms", "must be above 0"));
        }
        if self.clients.is_empty() {
            errs.push(invalid("clients", "at least one [[clients]] is needed"));
        }
        let n = &self.notifications;
        if n.first_delay_ms == 0
            || n.attempt_timeout_ms == 0
            || n.concurrency == 0
            || n.max_inquiries == 0
        {
            errs.push(invalid(
                "notifications",
                "first_delay_ms, attempt_timeout_ms, concurrency and max_inquiries must be above 0",
            ));
        }
        if n.max_age_secs == 0 || n.max_delay_secs.saturating_mul(1000) < n.first_delay_ms {
            errs.push(invalid(
                "notifications",
                "max_age_secs must be above 0 and max_delay_secs at least first_delay_ms",
            ));
        }
        let mut ids = BTreeSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            let key = |k: &str| format!("clients[{i}].{k}");
            if c.id.is_empty() || c.id.len() > 64 || !c.id.bytes().all(|b| b.is_ascii_graphic()) {
                errs.push(invalid(
                    key("id"),
                    "must be 1 to 64 printable ASCII characters",
                ));
            }
            if !ids.insert(c.id.as_str()) {
                errs.push(invalid(key("id"), format!("{:?} appears twice", c.id)));
            }
            if let Some(url) = &c.notify_url
                && let Err(e) = crate::http_client::target(url)
            {
                errs.push(invalid(key("notify_url"), e));
            }
            if c.markup_bps > MAX_CLIENT_MARKUP_BPS {
                errs.push(invalid(
                    key("markup_bps"),
                    format!(
                        "{} is above the limit of {MAX_CLIENT_MARKUP_BPS} (10 %)",
                        c.markup_bps
                    ),
                ));
            }
            if let Some(fp) = &c.certificate_sha256 {
                if s.client_ca.is_none() {
                    errs.push(invalid(
                        key("certificate_sha256"),
                        "only with server.client_ca",
                    ));
                }
                if fp.len() != 64 || !fp.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    errs.push(invalid(
                        key("certificate_sha256"),
                        "must be 64 lower-case hex digits (SHA-256 of the certificate's DER)",
                    ));
                }
            }
            match &c.hmac_key_base64 {
                Some(k) => match Secret::from_base64(k) {
                    Err(e) => {
                        errs.push(invalid(key("hmac_key_base64"), format!("not base64: {e}")));
                    }
                    Ok(secret) if secret.expose().len() < 16 => {
                        errs.push(invalid(key("hmac_key_base64"), "must be at least 16 bytes"));
                    }
                    Ok(_) => {}
                },
                None if s.auth == "signatures" => {
                    errs.push(invalid(
                        key("hmac_key_base64"),
                        "required with server.auth = \"signatures\"",
                    ));
                }
                None => {}
            }
        }
        if self.acquirers.is_empty() {
            errs.push(invalid("acquirers", "at least one [[acquirers]] is needed"));
        }
        let mut names = BTreeSet::new();
        for (i, a) in self.acquirers.iter().enumerate() {
            let key = |k: &str| format!("acquirers[{i}].{k}");
            if !names.insert(a.name.as_str()) {
                errs.push(invalid(key("name"), format!("{:?} appears twice", a.name)));
            }
            if !a.embedded_simulator {
                if a.address.parse::<SocketAddr>().is_err() && !a.address.contains(':') {
                    errs.push(invalid(
                        key("address"),
                        format!("must be host:port, got {:?}", a.address),
                    ));
                }
                for (k, v) in [
                    ("tls_ca", &a.tls_ca),
                    ("tls_cert", &a.tls_cert),
                    ("tls_key", &a.tls_key),
                ] {
                    if v.is_none() {
                        errs.push(invalid(
                            key(k),
                            "required (mutual TLS) unless embedded_simulator = true",
                        ));
                    }
                }
            }
            if !(1..=crate::acquirer::link::MAX_LINKS).contains(&a.links) {
                errs.push(invalid(
                    key("links"),
                    format!(
                        "must be 1 to {} connections, got {}",
                        crate::acquirer::link::MAX_LINKS,
                        a.links
                    ),
                ));
            }
            if a.terminal_id.len() != 8 || !a.terminal_id.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                errs.push(invalid(key("terminal_id"), "must be 8 letters or digits"));
            }
            if a.acquiring_institution.is_empty()
                || a.acquiring_institution.len() > 11
                || !a.acquiring_institution.bytes().all(|b| b.is_ascii_digit())
            {
                errs.push(invalid(
                    key("acquiring_institution"),
                    "must be 1 to 11 digits",
                ));
            }
        }
        if self.routes.is_empty() {
            errs.push(invalid("routes", "at least one [[routes]] is needed"));
        }
        if let Err(e) = self.route_rules() {
            errs.push(e);
        }
        if self.fx.rates_file.is_some() && self.fx.rates_url.is_some() {
            errs.push(invalid(
                "fx.rates_url",
                "give rates_file or rates_url, not both",
            ));
        }
        if let Some(url) = &self.fx.rates_url
            && !url.starts_with("https://")
        {
            errs.push(invalid(
                "fx.rates_url",
                format!("must be an https:// URL, got {url:?}"),
            ));
        }
        if self.fx.quote_lifetime_secs == 0 {
            errs.push(invalid("fx.quote_lifetime_secs", "must be above 0"));
        }
        if let Err(e) = crate::telemetry::log::check_filter(&self.log.filter) {
            errs.push(invalid("log.filter", e));
        }
        if let Some(addr) = &self.operator.listen
            && addr.parse::<SocketAddr>().is_err()
        {
            errs.push(invalid(
                "operator.listen",
                format!("must be ip:port, got {addr:?}"),
            ));
        }
        errs
    }

    /// The deployment currency.
    pub fn currency(&self) -> Result<Currency, ConfigError> {
        Currency::from_code(&self.deployment.currency)
            .map_err(|e| invalid("deployment.currency", e.to_string()))
    }

    /// The listen address.
    pub fn listen(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.parse().map_err(|e| {
            invalid(
                "server.listen",
                format!("must be ip:port, got {:?} ({e})", self.server.listen),
            )
        })
    }

    /// The routing table.
    pub fn route_rules(&self) -> Result<Vec<RouteRule>, ConfigError> {
        let mut rules = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            let key = |k: &str| format!("routes[{i}].{k}");
            let matcher = match (&r.guid, r.primitive) {
                (Some(g), None) if !g.is_empty() && g.len() <= 32 => Matcher::Guid(g.clone()),
                (Some(_), None) => return Err(invalid(key("guid"), "must be 1 to 32 characters")),
                (None, Some(p)) if (2..=25).contains(&p) => Matcher::Primitive(p),
                (None, Some(p)) => {
                    return Err(invalid(
                        key("primitive"),
                        format!("must be 2 to 25, got {p}"),
                    ));
                }
                _ => {
                    return Err(invalid(
                        key("guid"),
                        "exactly one of guid, primitive is required",
                    ));
                }
            };
            if !self.acquirers.iter().any(|a| a.name == r.acquirer) {
                return Err(invalid(
                    key("acquirer"),
                    format!("no acquirer named {:?} in [[acquirers]]", r.acquirer),
                ));
            }
            let merchant_id_sub = match (&matcher, &r.merchant_id_sub) {
                (Matcher::Guid(_), Some(s)) => sub_id(&key("merchant_id_sub"), s)?,
                (Matcher::Guid(_), None) => {
                    return Err(invalid(key("merchant_id_sub"), "required with guid"));
                }
                (Matcher::Primitive(_), _) => 0,
            };
            let terminal_id_sub = r
                .terminal_id_sub
                .as_deref()
                .map(|s| sub_id(&key("terminal_id_sub"), s))
                .transpose()?;
            rules.push(RouteRule {
                matcher,
                acquirer: r.acquirer.clone(),
                merchant_id_sub,
                terminal_id_sub,
                priority: r.priority,
            });
        }
        Ok(rules)
    }

    /// The pipeline's settings.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let clients: HashMap<String, ClientPolicy> = self
            .clients
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    ClientPolicy {
                        markup_bps: c.markup_bps,
                        max_per_transaction: c.max_per_transaction_minor,
                        daily: DailyLimits {
                            max_count: c.daily_max_count,
                            max_amount: c.daily_max_amount_minor,
                        },
                    },
                )
            })
            .collect();
        let g = &self.gateway;
        Ok(Settings {
            country: self.deployment.country.clone(),
            currency: self.currency()?,
            clients,
            routes: self.route_rules()?,
            decode_ttl: Duration::from_secs(g.decode_ttl_secs),
            pay_budget: Duration::from_millis(g.pay_budget_ms),
            cancel_window: Duration::from_secs(g.cancel_window_secs),
            memory: self.memory.bounds(),
        })
    }

    /// The server's settings (reads the TLS files, if any).
    pub fn server(&self) -> Result<ServerConfig, ConfigError> {
        let s = &self.server;
        let read = |key: &str, p: &Path| {
            std::fs::read_to_string(self.resolve(p))
                .map_err(|e| invalid(key, format!("{}: {e}", p.display())))
        };
        let transport = if s.transport == "plaintext-loopback" {
            Transport::PlaintextLoopback
        } else {
            let identity = match (&s.tls_cert, &s.tls_key) {
                (Some(c), Some(k)) => Some(crate::server::Identity {
                    cert_pem: read("server.tls_cert", c)?,
                    key_pem: Secret::new(read("server.tls_key", k)?.into_bytes()),
                }),
                _ => None,
            };
            let mutual = match &s.client_ca {
                Some(ca) => Some(crate::server::MutualTls {
                    client_ca_pem: read("server.client_ca", ca)?,
                    clients: self
                        .clients
                        .iter()
                        .filter_map(|c| Some((c.certificate_sha256.clone()?, c.id.clone())))
                        .collect(),
                }),
                None => None,
            };
            Transport::Tls(TlsSettings { identity, mutual })
        };
        let mut auth = match &s.demo_client {
            Some(c) if s.auth == "off" => AuthConfig::off(c.clone()),
            _ => {
                let mut creds = Credentials::new();
                for (i, c) in self.clients.iter().enumerate() {
                    if let Some(k) = &c.hmac_key_base64 {
                        let secret = Secret::from_base64(k).map_err(|e| {
                            invalid(format!("clients[{i}].hmac_key_base64"), e.to_string())
                        })?;
                        creds = creds.with_key(
                            c.id.clone(),
                            c.key_version,
                            ClientKey::HmacSha256(secret),
                        );
                    }
                }
                AuthConfig::signatures(creds)
            }
        };
        auth.replay_bytes = self.memory.replay_bytes();
        Ok(ServerConfig {
            listen: self.listen()?,
            transport,
            limits: Limits {
                max_body_bytes: s.max_body_bytes,
                request_timeout: Duration::from_millis(s.request_timeout_ms),
                idle_timeout: Duration::from_millis(s.idle_timeout_ms),
                max_connections: s.max_connections,
                ..Limits::default()
            },
            auth,
        })
    }

    /// The foreign wallet schemes to serve, built from their tables. With `server.auth = "off"`
    /// (demo) every registered scheme is served, authentication off for `server.demo_client`;
    /// otherwise the schemes that have a `[schemes.<name>]` table.
    pub fn schemes(&self) -> Result<Vec<Arc<dyn Scheme>>, ConfigError> {
        let demo_client = match (self.server.auth.as_str(), &self.server.demo_client) {
            ("off", Some(c)) => Some(c.clone()),
            _ => None,
        };
        let mut out = Vec::new();
        for entry in crate::scheme::REGISTRY {
            let table = self.schemes.get(entry.name);
            if table.is_none() && demo_client.is_none() {
                continue;
            }
            let settings = SchemeSettings {
                table: table.cloned().unwrap_or_default(),
                demo_client: demo_client.clone(),
                base_dir: self.base_dir.clone(),
                replay_bytes: self.memory.replay_bytes(),
            };
            out.push(
                (entry.build)(&settings)
                    .map_err(|e| invalid(format!("schemes.{}.{}", entry.name, e.key), e.reason))?,
            );
        }
        Ok(out)
    }

    /// Client id → notify URL, for the native scheme's notifications.
    pub fn notify_urls(&self) -> std::collections::BTreeMap<String, String> {
        self.clients
            .iter()
            .filter_map(|c| Some((c.id.clone(), c.notify_url.clone()?)))
            .collect()
    }

    /// How notices are delivered.
    pub fn notify_policy(&self) -> NotifyPolicy {
        let n = &self.notifications;
        NotifyPolicy {
            first_delay: Duration::from_millis(n.first_delay_ms),
            max_delay: Duration::from_secs(n.max_delay_secs),
            max_age: Duration::from_secs(n.max_age_secs),
            attempt_timeout: Duration::from_millis(n.attempt_timeout_ms),
            concurrency: n.concurrency,
            max_inquiries: n.max_inquiries,
            extra_ca_pem: n.extra_ca_pem.as_ref().map(|p| self.resolve(p)),
        }
    }

    /// The rate cache's timings.
    pub fn cache(&self) -> CacheConfig {
        CacheConfig {
            ttl: Duration::from_secs(self.fx.ttl_secs),
            max_age: if self.fx.max_age_secs == 0 {
                Duration::MAX
            } else {
                Duration::from_secs(self.fx.max_age_secs)
            },
            ..CacheConfig::daily_feed()
        }
    }

    /// The quoting policy.
    pub fn quote_policy(&self) -> QuotePolicy {
        QuotePolicy {
            lifetime: Duration::from_secs(self.fx.quote_lifetime_secs),
            ..QuotePolicy::default()
        }
    }
}
