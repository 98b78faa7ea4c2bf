//! The Prometheus series of a gateway (spec/operations.md §3 lists each with its alerts).
//!
//! Counters and histograms are updated where things happen (server, gateway, acquirer link,
//! journal writer, notification deliverer) through [`global`]. Gauges that describe stored state
//! (reversal queue, outbox, parked notices, link state) are read when scraped, by the probe that
//! `qrbridge serve` installs with [`set_probe`]. [`render`] gives the text exposition.
//!
//! Labels are bounded: scheme and route come from the fixed route tables (an unknown path is
//! `route="unmatched"`), result codes from `spec/errors.md`, acquirers and currencies from the
//! configuration.

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// `scheme`, `route`, `result_code`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `native`, `aplus`, `iso20022`, or `none` (health, metrics, unmatched paths).
    pub scheme: Cow<'static, str>,
    /// The path of the route (`/v1/payments`), or `unmatched`.
    pub route: Cow<'static, str>,
    /// The result code (`SUCCESS`, `ACQUIRER_DECLINED`, ...) or `HTTP_<status>` when the scheme
    /// refused the request before the pipeline (e.g. `HTTP_401`).
    pub result_code: Cow<'static, str>,
}

/// `scheme`, `route`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// As in [`RequestLabels`].
    pub scheme: Cow<'static, str>,
    /// As in [`RequestLabels`].
    pub route: Cow<'static, str>,
}

/// One label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The outcome.
    pub outcome: String,
}

/// One label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AcquirerLabels {
    /// The acquirer's name in `[[acquirers]]`.
    pub acquirer: String,
}

/// `acquirer`, `link`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LinkLabels {
    /// The acquirer's name in `[[acquirers]]`.
    pub acquirer: String,
    /// The connection's index in the acquirer's pool (`links`), from `"0"`.
    pub link: String,
}

/// One label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CurrencyLabels {
    /// ISO 4217 alpha code.
    pub currency: String,
}

/// `scheme`, `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DebitLabels {
    /// A scheme whose wallets debit first (`payment::DEBITS_FIRST`: `aplus`).
    pub scheme: String,
    /// `not_open` (no open order: expired, closed, never issued, or issued before a restart) or
    /// `refused` (the order's pay was refused before the acquirer: quote expired or used, a
    /// limit, the route).
    pub reason: String,
}

/// One label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SchemeLabels {
    /// `native`, `aplus` or `iso20022`.
    pub scheme: Cow<'static, str>,
}

/// Every series.
pub struct Metrics {
    registry: Registry,
    /// `qrbridge_http_requests_total`.
    pub requests: Family<RequestLabels, Counter>,
    /// `qrbridge_http_request_duration_seconds`.
    pub request_duration: Family<RouteLabels, Histogram>,
    /// `qrbridge_http_open_connections`.
    pub open_connections: Gauge,
    /// `qrbridge_payments_total{outcome}`: approved, declined, unknown, not_sent.
    pub payments: Family<OutcomeLabels, Counter>,
    /// `qrbridge_payment_duration_seconds`: from the intent to the journaled outcome.
    pub payment_duration: Histogram,
    /// `qrbridge_reversals_total{outcome}`: reversed, cancelled, manual_review.
    pub reversals: Family<OutcomeLabels, Counter>,
    /// `qrbridge_manual_review_total`: payments and refunds that entered MANUAL_REVIEW.
    pub manual_review: Counter,
    /// `qrbridge_acquirer_link_up{acquirer,link}`: each connection of the pool (read when scraped).
    pub link_up: Family<LinkLabels, Gauge>,
    /// `qrbridge_acquirer_in_flight{acquirer}`: authorisations waiting for their answer.
    pub acquirer_in_flight: Family<AcquirerLabels, Gauge>,
    /// `qrbridge_reversal_queue_depth` (read when scraped).
    pub reversal_queue: Gauge,
    /// `qrbridge_notifications_total{outcome}`: sent, failed (an attempt), parked.
    pub notifications: Family<OutcomeLabels, Counter>,
    /// `qrbridge_refund_advices_total{outcome}`: the acquirer's refund advices by our answer:
    /// accepted, repeat (accepted before), refused (12, 13, 25, 30, 94), not_accepted (96),
    /// pending (left unanswered: the payment's own outcome is still open).
    pub refund_advices: Family<OutcomeLabels, Counter>,
    /// `qrbridge_outbox_pending` (read when scraped).
    pub outbox_pending: Gauge,
    /// `qrbridge_outbox_oldest_age_seconds` (read when scraped).
    pub outbox_oldest_age: Gauge<f64, AtomicU64>,
    /// `qrbridge_notices_parked` (read when scraped).
    pub notices_parked: Gauge,
    /// `qrbridge_fx_rate_age_seconds{currency}`: age of the rate of the last quote into it.
    pub fx_rate_age: Family<CurrencyLabels, Gauge<f64, AtomicU64>>,
    /// `qrbridge_journal_commit_duration_seconds`: one group commit (transaction + fsync).
    pub journal_commit: Histogram,
    /// `qrbridge_journal_batch_size`: writes per commit.
    pub journal_batch: Histogram,
    /// `qrbridge_journal_failed_batches_total`.
    pub journal_failed_batches: Counter,
    /// `qrbridge_journal_takeovers_total`: unresolved records (payments, refunds, requests,
    /// reversals) this instance took over from an instance whose lease expired (shared journal).
    pub journal_takeovers: Counter,
    /// `qrbridge_journal_lease_lost_total`: heartbeats that found this instance's lease taken
    /// (another instance took its work over, or another process runs under its name).
    pub journal_lease_lost: Counter,
    /// `qrbridge_debits_refused_total{scheme,reason}`: a wallet notified that it debited its user
    /// for an order we then refused (nothing reached the acquirer; the wallet must give the
    /// money back).
    pub debits_refused: Family<DebitLabels, Counter>,
    /// `qrbridge_replay_memory_full_total{scheme}`: signed requests refused (503) because the
    /// scheme's replay guard was full (`[memory] replay_mib`): it never forgets a signature still
    /// inside its lifetime to make room.
    pub replay_memory_full: Family<SchemeLabels, Counter>,
}

/// Latency buckets, seconds: 0.5 ms to 30 s.
const LATENCY: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

fn latency() -> Histogram {
    Histogram::new(LATENCY)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("qrbridge");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Wallet requests answered, by scheme, route and result code",
            requests.clone(),
        );
        let request_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from the request head to the response, by scheme and route",
            Unit::Seconds,
            request_duration.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "http_open_connections",
            "Open wallet-facing connections",
            open_connections.clone(),
        );
        let payments = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "payments",
            "Payments by acquirer outcome: approved, declined, unknown, not_sent",
            payments.clone(),
        );
        let payment_duration = latency();
        registry.register_with_unit(
            "payment_duration",
            "Time from the journaled intent to the journaled acquirer outcome",
            Unit::Seconds,
            payment_duration.clone(),
        );
        let reversals = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "reversals",
            "Reversals finished, by outcome: reversed, cancelled, manual_review",
            reversals.clone(),
        );
        let manual_review = Counter::default();
        registry.register(
            "manual_review",
            "Payments and refunds that entered MANUAL_REVIEW (a person must act)",
            manual_review.clone(),
        );
        let link_up = Family::<LinkLabels, Gauge>::default();
        registry.register(
            "acquirer_link_up",
            "1 when this connection of the acquirer's link pool is signed on, 0 otherwise",
            link_up.clone(),
        );
        let acquirer_in_flight = Family::<AcquirerLabels, Gauge>::default();
        registry.register(
            "acquirer_in_flight",
            "Authorisations sent to the acquirer and not yet answered",
            acquirer_in_flight.clone(),
        );
        let reversal_queue = Gauge::default();
        registry.register(
            "reversal_queue_depth",
            "Reversals (0400/0401) queued and not yet acknowledged (store and forward)",
            reversal_queue.clone(),
        );
        let notifications = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "notifications",
            "Wallet notification attempts by outcome: sent, failed, parked",
            notifications.clone(),
        );
        let refund_advices = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "refund_advices",
            "Refund advices from the acquirer by our answer: accepted, repeat, refused, not_accepted",
            refund_advices.clone(),
        );
        let outbox_pending = Gauge::default();
        registry.register(
            "outbox_pending",
            "Notices in the outbox not yet acknowledged (PENDING)",
            outbox_pending.clone(),
        );
        let outbox_oldest_age = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "outbox_oldest_age",
            "Age of the oldest PENDING notice (0 when none)",
            Unit::Seconds,
            outbox_oldest_age.clone(),
        );
        let notices_parked = Gauge::default();
        registry.register(
            "notices_parked",
            "Notices PARKED after their maximum age: an operator must requeue or drop them",
            notices_parked.clone(),
        );
        let fx_rate_age = Family::<CurrencyLabels, Gauge<f64, AtomicU64>>::default();
        registry.register_with_unit(
            "fx_rate_age",
            "Age of the reference rate used by the last quote into each payer currency",
            Unit::Seconds,
            fx_rate_age.clone(),
        );
        let journal_commit = latency();
        registry.register_with_unit(
            "journal_commit_duration",
            "One journal commit (a batch of writes, one transaction, one fsync)",
            Unit::Seconds,
            journal_commit.clone(),
        );
        let journal_batch = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]);
        registry.register(
            "journal_batch_size",
            "Writes per journal commit (group commit)",
            journal_batch.clone(),
        );
        let journal_failed_batches = Counter::default();
        registry.register(
            "journal_failed_batches",
            "Journal commits that failed (their writes were refused)",
            journal_failed_batches.clone(),
        );
        let journal_takeovers = Counter::default();
        registry.register(
            "journal_takeovers",
            "Unresolved journal records taken over from an instance whose lease expired",
            journal_takeovers.clone(),
        );
        let journal_lease_lost = Counter::default();
        registry.register(
            "journal_lease_lost",
            "Heartbeats that found this instance's journal lease taken by another",
            journal_lease_lost.clone(),
        );
        let debits_refused = Family::<DebitLabels, Counter>::default();
        registry.register(
            "debits_refused",
            "Wallet debits notified for an order then refused (nothing sent to the acquirer; the \
             wallet must give the money back), by scheme and reason: not_open, refused",
            debits_refused.clone(),
        );
        let replay_memory_full = Family::<SchemeLabels, Counter>::default();
        registry.register(
            "replay_memory_full",
            "Signed requests refused because the scheme's replay guard was full ([memory] \
             replay_mib too small for the traffic, or a signed client flooding)",
            replay_memory_full.clone(),
        );
        Metrics {
            registry,
            requests,
            request_duration,
            open_connections,
            payments,
            payment_duration,
            reversals,
            manual_review,
            link_up,
            acquirer_in_flight,
            reversal_queue,
            notifications,
            refund_advices,
            outbox_pending,
            outbox_oldest_age,
            notices_parked,
            fx_rate_age,
            journal_commit,
            journal_batch,
            journal_failed_batches,
            journal_takeovers,
            journal_lease_lost,
            debits_refused,
            replay_memory_full,
        }
    }

    /// Counts one signed request refused because the scheme's replay guard was full.
    pub fn replay_memory_full(&self, scheme: &'static str) {
        self.replay_memory_full
            .get_or_create(&SchemeLabels {
                scheme: Cow::Borrowed(scheme),
            })
            .inc();
    }

    /// Counts one payment outcome.
    pub fn payment(&self, outcome: &str) {
        self.payments
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts one finished reversal.
    pub fn reversal(&self, outcome: &str) {
        self.reversals
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts one notification attempt outcome.
    pub fn notification(&self, outcome: &str) {
        self.notifications
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts one wallet debit refused after the fact (`reason`: `not_open`, `refused`).
    pub fn debit_refused(&self, scheme: &str, reason: &str) {
        self.debits_refused
            .get_or_create(&DebitLabels {
                scheme: scheme.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The in-flight gauge of one acquirer.
    pub fn in_flight(&self, acquirer: &str) -> Gauge {
        self.acquirer_in_flight
            .get_or_create(&AcquirerLabels {
                acquirer: acquirer.to_owned(),
            })
            .clone()
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// The request series of one (scheme, route, result code), all static text.
type RequestSeries = (Histogram, Counter);

/// Most static label sets a thread keeps resolved (the route tables and result codes make far
/// fewer; past it, requests are counted through the labels).
const MAX_RESOLVED: usize = 1024;

thread_local! {
    static RESOLVED: std::cell::RefCell<
        std::collections::HashMap<(&'static str, &'static str, &'static str), RequestSeries, foldhash::fast::RandomState>,
    > = std::cell::RefCell::new(std::collections::HashMap::default());
}

/// Counts one answered request and its latency (`http_requests_total`,
/// `http_request_duration_seconds`). When the route and the result code are static text (known
/// routes, pipeline result codes), each thread finds the two series once and keeps them: no label
/// set built, hashed and looked up under the families' locks on every request (issue 16, defect
/// 6). Other requests (a scheme's route without a static label) go through the labels.
pub fn observe_request(
    scheme: &'static str,
    route: Cow<'static, str>,
    code: Cow<'static, str>,
    elapsed: std::time::Duration,
) {
    let seconds = elapsed.as_secs_f64();
    if let (Cow::Borrowed(route), Cow::Borrowed(code)) = (&route, &code) {
        let counted = RESOLVED.with(|resolved| {
            let mut resolved = resolved.borrow_mut();
            let key = (scheme, *route, *code);
            if let Some((duration, count)) = resolved.get(&key) {
                duration.observe(seconds);
                count.inc();
                return true;
            }
            if resolved.len() >= MAX_RESOLVED {
                return false;
            }
            let series = request_series(scheme, Cow::Borrowed(route), Cow::Borrowed(code));
            series.0.observe(seconds);
            series.1.inc();
            resolved.insert(key, series);
            true
        });
        if counted {
            return;
        }
    }
    let (duration, count) = request_series(scheme, route, code);
    duration.observe(seconds);
    count.inc();
}

fn request_series(
    scheme: &'static str,
    route: Cow<'static, str>,
    code: Cow<'static, str>,
) -> RequestSeries {
    let m = global();
    let labels = RouteLabels {
        scheme: Cow::Borrowed(scheme),
        route,
    };
    let duration = m.request_duration.get_or_create(&labels).clone();
    let count = m
        .requests
        .get_or_create(&RequestLabels {
            scheme: labels.scheme,
            route: labels.route,
            result_code: code,
        })
        .clone();
    (duration, count)
}

/// What refreshes the scraped gauges.
pub type Probe = Arc<dyn Fn(&Metrics) + Send + Sync>;

fn probe_slot() -> &'static Mutex<Option<Probe>> {
    static PROBE: OnceLock<Mutex<Option<Probe>>> = OnceLock::new();
    PROBE.get_or_init(|| Mutex::new(None))
}

/// Installs the probe run before every scrape (the last one installed wins).
pub fn set_probe(probe: Probe) {
    if let Ok(mut slot) = probe_slot().lock() {
        *slot = Some(probe);
    }
}

/// The Prometheus text exposition format 0.0.4 (content type [`CONTENT_TYPE`]), which every
/// Prometheus version scrapes and `promtool check metrics` checks.
pub fn render() -> String {
    let m = global();
    let probe = probe_slot().lock().ok().and_then(|s| s.clone());
    if let Some(p) = probe {
        p(m);
    }
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
        out.clear();
    }
    to_prometheus_text(&out)
}

/// `prometheus-client` writes OpenMetrics text; the Prometheus 0.0.4 format differs in three
/// ways that matter here: a counter's HELP and TYPE name the sample (`x_total`, not `x`), and
/// there is no `# UNIT` line nor `# EOF`.
fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Times something and observes the seconds into a histogram when dropped.
pub struct Timer {
    start: std::time::Instant,
    histogram: Histogram,
}

impl Timer {
    /// Starts timing.
    pub fn start(histogram: &Histogram) -> Timer {
        Timer {
            start: std::time::Instant::now(),
            histogram: histogram.clone(),
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_by_their_sample_and_openmetrics_only_lines_go() {
        let om = "# HELP a_b Things.\n# TYPE a_b counter\na_b_total{x=\"1\"} 2\n# HELP d_seconds Time.\n# TYPE d_seconds gauge\n# UNIT d_seconds seconds\nd_seconds 1.5\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_b_total Things.\n# TYPE a_b_total counter\na_b_total{x=\"1\"} 2\n# HELP d_seconds Time.\n# TYPE d_seconds gauge\nd_seconds 1.5\n"
        );
    }
}
