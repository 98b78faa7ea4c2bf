//! What the pipeline is told at start: the deployment, the wallet clients' pricing and limits, the
//! routing table and the pipeline's timers. Built from `config.rs` (or the embedded demo).

use std::collections::HashMap;
use std::time::Duration;

use crate::journal::DailyLimits;
use crate::money::Currency;

use super::routing::RouteRule;

/// The pipeline's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// ISO 3166 alpha-2 country of the deployment (EMV 58 must match).
    pub country: String,
    /// The deployment's currency (EMV 53 must match).
    pub currency: Currency,
    /// Wallet client id → pricing and limits. A client not listed may call nothing.
    pub clients: HashMap<String, ClientPolicy>,
    /// The routing table (any order; priority decides).
    pub routes: Vec<RouteRule>,
    /// How long a decode id stays usable.
    pub decode_ttl: Duration,
    /// The acquirer deadline of a payment: past it the answer is U / PROCESSING and a reversal runs.
    pub pay_budget: Duration,
    /// How long after the payment a cancel is still a reversal (after it: CANCEL_WINDOW_EXCEED).
    pub cancel_window: Duration,
    /// Byte bounds of the in-memory stores (`[memory]`).
    pub memory: super::MemoryBounds,
}

/// One wallet client's pricing and limits (amounts in minor units of the deployment currency).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientPolicy {
    /// FX markup over the mid rate, basis points.
    pub markup_bps: u32,
    /// Largest single payment, merchant currency minor units.
    pub max_per_transaction: Option<u64>,
    /// Per customer per UTC day (count and merchant-currency amount).
    pub daily: DailyLimits,
}
