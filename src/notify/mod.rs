//! Wallet notifications: the worker that delivers the journal's notice outbox, in each notice's own
//! scheme, until the wallet acknowledges it.
//!
//! In: PENDING notices from the journal ([`Journal::due_notices`](crate::journal::Journal::due_notices)),
//! woken by the journal's notice signal (a notice committed) or by the next due time; the schemes
//! served (each renders and signs its notices, and judges the wallet's answer).
//! Out: one HTTP/1.1 POST per attempt (`client.rs`); the attempt's end in the journal: SENT only after
//! the scheme accepted the answer as an acknowledgement, NOT_NEEDED when the client takes no
//! notifications, otherwise a retry time (exponential backoff with jitter) or PARKED past the
//! maximum age.
//! Errors: a failed attempt is a value (recorded as the notice's `last_error`); start-up problems
//! are [`NotifyError`].
//! Spec: `spec/gateway.md` (notifications), `spec/auth.md` §9 (the native signature).
//!
//! Delivery is at least once: a crash or a shutdown between the wallet's acknowledgement and the
//! journal's SENT sends the notice again after the restart, with the same notice id.
//!
//! ```text
//! mod.rs     NotifyPolicy, backoff, Deliverer (the worker), DeliveryStats
//! client.rs  the POST through the http_client leaf: https (webpki roots + extra CAs) or loopback http
//! ```

mod client;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::journal::{
    Journal, NoticeKind, NoticeOutcome, OutboxNotice, PaymentId, PaymentState, Retry,
};
use crate::payment::{ApiError, OrderResultRequest, Pipeline, RequestContext, WalletResult};
use crate::scheme::{InquiryAnswer, Notice, NoticeEvent, NoticeMessage, Scheme, WalletCall};

pub use client::{MAX_ANSWER_BYTES, NotifyClient, WalletAnswer, outbound};

/// How notices are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyPolicy {
    /// Delay before the second attempt (default 1 s); it doubles after every failure.
    pub first_delay: Duration,
    /// The longest delay between attempts (default 10 min).
    pub max_delay: Duration,
    /// A notice still unacknowledged this long after its state change is PARKED (default 24 h).
    pub max_age: Duration,
    /// Bound on one attempt: lookup, connect, TLS, request and answer (default 10 s).
    pub attempt_timeout: Duration,
    /// Most attempts in flight at once (default 8).
    pub concurrency: usize,
    /// Most inquiries about a payment order (a debits-first wallet that sent no result by the
    /// order's expiry) before the order is cancelled on the wallet's side (default 10: about
    /// 8 min of backoff from a 1 s first delay). Counts answers that say nothing definite
    /// (processing, U, unreadable, not authentic) and attempts without an answer.
    pub max_inquiries: u32,
    /// Extra CA certificates (PEM) trusted for wallets' notify URLs, besides the webpki roots.
    pub extra_ca_pem: Option<PathBuf>,
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        NotifyPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(600),
            max_age: Duration::from_secs(24 * 3600),
            attempt_timeout: Duration::from_secs(10),
            concurrency: 8,
            max_inquiries: 10,
            extra_ca_pem: None,
        }
    }
}

/// The delay after the `failures`-th failed attempt (1 for the first): `first_delay × 2^(n−1)`,
/// capped at `max_delay`, then drawn uniformly from its upper half with `jitter` (so retries of many
/// notices spread out but never come sooner than half the nominal delay).
pub fn backoff(policy: &NotifyPolicy, failures: u32, jitter: u32) -> Duration {
    let first = ms(policy.first_delay).max(1);
    let cap = ms(policy.max_delay).max(first);
    let shift = failures.saturating_sub(1).min(40);
    let nominal = first.saturating_mul(1u64 << shift).min(cap);
    let half = nominal / 2;
    let spread = nominal - half;
    Duration::from_millis(half + u64::from(jitter) % (spread + 1))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, ms)
}

/// The deliverer could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The TLS client could not be built (extra CA file unreadable or empty).
    #[error("notifications: {0}")]
    Tls(String),
    /// The policy is unusable.
    #[error("notifications: {0}")]
    Policy(String),
}

/// What the deliverer has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Attempts that POSTed (or tried to).
    pub attempts: u64,
    /// Notices acknowledged and marked SENT.
    pub sent: u64,
    /// Notices marked NOT_NEEDED.
    pub not_needed: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Notices PARKED.
    pub parked: u64,
}

#[derive(Default)]
struct Counters {
    attempts: AtomicU64,
    sent: AtomicU64,
    not_needed: AtomicU64,
    failed: AtomicU64,
    parked: AtomicU64,
}

impl Counters {
    fn stats(&self) -> DeliveryStats {
        DeliveryStats {
            attempts: self.attempts.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            not_needed: self.not_needed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            parked: self.parked.load(Ordering::Relaxed),
        }
    }
}

struct Shared {
    journal: Arc<dyn Journal>,
    schemes: Vec<Arc<dyn Scheme>>,
    /// The pipeline that settles payment orders with the wallet's answer to an inquiry; without
    /// it an inquiry is only delivered.
    orders: Option<Arc<dyn Pipeline>>,
    policy: NotifyPolicy,
    client: NotifyClient,
    rng: SystemRandom,
    counters: Counters,
}

/// The running delivery worker.
pub struct Deliverer {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("policy", &self.shared.policy)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A failed attempt: why, and whether retrying can help.
struct Failure {
    reason: String,
    permanent: bool,
}

impl Failure {
    fn retry(reason: String) -> Self {
        Failure {
            reason,
            permanent: false,
        }
    }
}

enum Delivered {
    Acknowledged,
    NotNeeded,
}

impl Deliverer {
    /// Starts the worker (inside a tokio runtime): it resumes every PENDING notice at once (they
    /// are due), then waits for the journal's notice signal or the next due time.
    pub fn start(
        journal: Arc<dyn Journal>,
        schemes: Vec<Arc<dyn Scheme>>,
        policy: NotifyPolicy,
    ) -> Result<Deliverer, NotifyError> {
        Self::start_settling(journal, schemes, policy, None)
    }

    /// As [`Deliverer::start`], and the wallet's answer to an inquiry about a payment order
    /// (`PaymentInquiry`) settles the order through `orders` ([`Pipeline::order_result`]):
    /// debited → authorised, not debited → closed, still unknown after
    /// [`NotifyPolicy::max_inquiries`] → cancelled on the wallet's side.
    pub fn start_settling(
        journal: Arc<dyn Journal>,
        schemes: Vec<Arc<dyn Scheme>>,
        policy: NotifyPolicy,
        orders: Option<Arc<dyn Pipeline>>,
    ) -> Result<Deliverer, NotifyError> {
        if policy.max_inquiries == 0 {
            return Err(NotifyError::Policy(
                "max_inquiries must be at least 1".to_owned(),
            ));
        }
        if policy.concurrency == 0 {
            return Err(NotifyError::Policy(
                "concurrency must be at least 1".to_owned(),
            ));
        }
        if policy.attempt_timeout.is_zero() {
            return Err(NotifyError::Policy(
                "attempt_timeout must be above zero".to_owned(),
            ));
        }
        let client = NotifyClient::new(policy.extra_ca_pem.as_deref()).map_err(NotifyError::Tls)?;
        let shared = Arc::new(Shared {
            journal,
            schemes,
            orders,
            policy,
            client,
            rng: SystemRandom::new(),
            counters: Counters::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(Arc::clone(&shared), stopped));
        Ok(Deliverer { shared, stop, task })
    }

    /// What it has done so far.
    pub fn stats(&self) -> DeliveryStats {
        self.shared.counters.stats()
    }

    /// Stops starting attempts, lets those in flight finish for at most `grace`, then abandons
    /// the rest (their notices stay PENDING and are sent again after a restart).
    pub async fn shutdown(self, grace: Duration) -> DeliveryStats {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
        self.shared.counters.stats()
    }
}

/// Longest sleep without looking at the journal (a safety net; the signal wakes the worker).
const IDLE_RECHECK: Duration = Duration::from_secs(60);

async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let signal = shared.journal.notice_signal();
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut in_flight: HashSet<String> = HashSet::new();
    let concurrency = shared.policy.concurrency;
    loop {
        if *stop.borrow() {
            break;
        }
        let now = now_ms();
        let mut wake = tokio::time::Instant::now() + IDLE_RECHECK;
        let free = concurrency.saturating_sub(in_flight.len());
        if free > 0 {
            match shared
                .journal
                .due_notices(now, free + in_flight.len())
                .await
            {
                Ok(due) => {
                    let fresh: Vec<OutboxNotice> = due
                        .into_iter()
                        .filter(|n| !in_flight.contains(&n.notice_id))
                        .take(free)
                        .collect();
                    for n in fresh {
                        in_flight.insert(n.notice_id.clone());
                        let id = n.notice_id.clone();
                        let s = Arc::clone(&shared);
                        let handle = tasks.spawn(async move { attempt(&s, n).await });
                        running.insert(handle.id(), id);
                    }
                }
                Err(e) => {
                    tracing::warn!("notifications: reading due notices: {e}");
                    wake = tokio::time::Instant::now() + shared.policy.first_delay;
                }
            }
        }
        match shared.journal.next_notice_due_after(now).await {
            Ok(Some(at)) => {
                let later = Duration::from_millis(at.saturating_sub(now));
                wake = wake.min(tokio::time::Instant::now() + later);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("notifications: reading the next due time: {e}");
                wake = wake.min(tokio::time::Instant::now() + shared.policy.first_delay);
            }
        }
        tokio::select! {
            _ = stop.changed() => break,
            () = signal.notified() => {}
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => {
                        tracing::error!("notifications: an attempt stopped unexpectedly: {e}");
                        e.id()
                    }
                };
                if let Some(notice) = running.remove(&id) {
                    in_flight.remove(&notice);
                }
            }
            () = tokio::time::sleep_until(wake) => {}
        }
    }
    // Attempts in flight finish (the caller bounds the wait); nothing new starts.
    while tasks.join_next().await.is_some() {}
}

/// How long a notice is leased to this instance before it is sent, on a shared journal: the
/// attempt's bound twice plus 5 s. An instance that dies holding it leaves it due again after this.
fn notice_lease(policy: &NotifyPolicy) -> u64 {
    ms(policy.attempt_timeout)
        .saturating_mul(2)
        .saturating_add(5_000)
}

async fn attempt(shared: &Shared, n: OutboxNotice) {
    let n = if shared.journal.instance().is_some() {
        // Several instances work one outbox: only the one holding the lease sends.
        let until = now_ms().saturating_add(notice_lease(&shared.policy));
        match shared.journal.claim_notice(&n.notice_id, until).await {
            Ok(Some(claimed)) => claimed,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("notice {}: leasing it: {e}", n.notice_id);
                return;
            }
        }
    } else {
        n
    };
    let c = &shared.counters;
    c.attempts.fetch_add(1, Ordering::Relaxed);
    let outcome = match deliver(shared, &n).await {
        Ok(Delivered::Acknowledged) => NoticeOutcome::Sent,
        Ok(Delivered::NotNeeded) => NoticeOutcome::NotNeeded,
        Err(failure) => {
            c.failed.fetch_add(1, Ordering::Relaxed);
            let now = now_ms();
            let deadline = n.created_at_ms.saturating_add(ms(shared.policy.max_age));
            let retry = if failure.permanent || now >= deadline {
                Retry::Park
            } else {
                let mut jitter = [0u8; 4];
                let _ = shared.rng.fill(&mut jitter);
                let delay = backoff(
                    &shared.policy,
                    n.attempts.saturating_add(1),
                    u32::from_be_bytes(jitter),
                );
                Retry::At(now.saturating_add(ms(delay)).min(deadline))
            };
            NoticeOutcome::Failed {
                error: failure.reason,
                retry,
            }
        }
    };
    match shared.journal.notice_attempt(&n.notice_id, outcome).await {
        Ok(done) => {
            match done.state {
                crate::journal::NoticeState::Sent => c.sent.fetch_add(1, Ordering::Relaxed),
                crate::journal::NoticeState::NotNeeded => {
                    c.not_needed.fetch_add(1, Ordering::Relaxed)
                }
                // Logged at error, with what to do, when the journal commits it.
                crate::journal::NoticeState::Parked => c.parked.fetch_add(1, Ordering::Relaxed),
                crate::journal::NoticeState::Pending => 0,
            };
            crate::journal::events::notice_attempted(
                &done,
                done.next_attempt_at_ms.saturating_sub(now_ms()),
            );
        }
        Err(e) => {
            tracing::error!(
                "notice {}: recording the attempt: {e} (it stays due and is tried again)",
                n.notice_id
            );
            // Hold the slot for a backoff, so a journal that cannot record attempts does not turn
            // into a tight loop of POSTs to the wallet.
            let mut jitter = [0u8; 4];
            let _ = shared.rng.fill(&mut jitter);
            tokio::time::sleep(backoff(
                &shared.policy,
                n.attempts.saturating_add(1),
                u32::from_be_bytes(jitter),
            ))
            .await;
        }
    }
}

/// One call made and answered, authentic.
struct Exchanged {
    scheme: Arc<dyn Scheme>,
    notice: Notice,
    answer: WalletAnswer,
}

async fn deliver(shared: &Shared, n: &OutboxNotice) -> Result<Delivered, Failure> {
    if n.kind == NoticeKind::PaymentInquiry
        && let Some(orders) = &shared.orders
    {
        return settle_order(shared, orders, n).await;
    }
    let Some(x) = exchange(shared, n).await? else {
        return Ok(Delivered::NotNeeded);
    };
    let (scheme, answer) = (&x.scheme, &x.answer);
    if scheme.acknowledged(answer.status, &answer.headers, &answer.body) {
        Ok(Delivered::Acknowledged)
    } else if let Some(reason) = scheme.refused(answer.status, &answer.headers, &answer.body) {
        Err(Failure {
            reason: format!("refused by the wallet: {reason}"),
            permanent: true,
        })
    } else {
        Err(Failure::retry(format!(
            "HTTP {} from the wallet is not an acknowledgement",
            answer.status.as_u16()
        )))
    }
}

fn scheme_of(shared: &Shared, n: &OutboxNotice) -> Result<Arc<dyn Scheme>, Failure> {
    shared
        .schemes
        .iter()
        .find(|s| s.name() == n.scheme)
        .cloned()
        .ok_or_else(|| {
            Failure::retry(format!(
                "scheme {:?} is not served by this gateway",
                n.scheme
            ))
        })
}

/// Renders `n` in its scheme, POSTs it and checks the answer is authentic; `None` when the client
/// takes no such call.
async fn exchange(shared: &Shared, n: &OutboxNotice) -> Result<Option<Exchanged>, Failure> {
    let scheme = scheme_of(shared, n)?;
    let unreadable = |e: serde_json::Error| Failure {
        reason: format!("stored {:?} event unreadable: {e}", n.kind),
        permanent: true,
    };
    let payment = |call| -> Result<_, Failure> {
        Ok((
            call,
            NoticeEvent::Payment(serde_json::from_str(&n.event).map_err(unreadable)?),
        ))
    };
    let refund = |call| -> Result<_, Failure> {
        Ok((
            call,
            NoticeEvent::Refund(serde_json::from_str(&n.event).map_err(unreadable)?),
        ))
    };
    let (call, event) = match n.kind {
        NoticeKind::Payment => payment(WalletCall::PaymentResult)?,
        NoticeKind::Refund => refund(WalletCall::RefundResult)?,
        NoticeKind::RefundCredit => refund(WalletCall::RefundCredit)?,
        NoticeKind::PaymentInquiry => payment(WalletCall::PaymentInquiry)?,
        NoticeKind::PaymentCancel => payment(WalletCall::PaymentCancel)?,
    };
    if !scheme.calls().contains(&call) {
        return Err(Failure {
            reason: format!("scheme {} does not make the call {call}", n.scheme),
            permanent: true,
        });
    }
    let notice = Notice {
        call,
        scheme: n.scheme.clone(),
        client_id: n.client_id.clone(),
        scheme_ref: n.scheme_ref.clone(),
        notice_id: n.notice_id.clone(),
        event,
    };
    let message: NoticeMessage = match scheme.notification(&notice) {
        // A credit is money owed to the payer: a client without an endpoint for it needs a person.
        Ok(None) if call == WalletCall::RefundCredit => {
            return Err(Failure {
                reason: format!(
                    "client {} has no endpoint for refund credits in scheme {}: the payer is not \
                     credited until an operator arranges it",
                    n.client_id, n.scheme
                ),
                permanent: true,
            });
        }
        Ok(None) => return Ok(None),
        Ok(Some(m)) => m,
        Err(e) => return Err(Failure::retry(format!("not rendered: {e}"))),
    };
    let request = outbound(message.clone()).map_err(|refused| Failure {
        reason: refused,
        permanent: true,
    })?;
    let answer = shared
        .client
        .post(request, shared.policy.attempt_timeout)
        .await
        .map_err(Failure::retry)?;
    scheme
        .verify_answer(&notice, &message, &answer.headers, &answer.body)
        .map_err(|e| Failure::retry(format!("the wallet's answer is not authentic: {e}")))?;
    Ok(Some(Exchanged {
        scheme,
        notice,
        answer,
    }))
}

/// An inquiry about a payment order (spec/schemes/aplus.md §4): asked only while the order is
/// still ORDERED (the wallet's result may have come first: NOT_NEEDED); the wallet's answer
/// settles the order through the pipeline. An answer that says nothing definite is asked again
/// with backoff, up to `max_inquiries`; then the order is cancelled on the wallet's side.
async fn settle_order(
    shared: &Shared,
    orders: &Arc<dyn Pipeline>,
    n: &OutboxNotice,
) -> Result<Delivered, Failure> {
    let permanent = |reason: String| Failure {
        reason,
        permanent: true,
    };
    let id: PaymentId = n
        .subject
        .parse()
        .map_err(|_| permanent(format!("inquiry about {:?}: not a payment id", n.subject)))?;
    let order = shared
        .journal
        .payment(id)
        .await
        .map_err(|e| Failure::retry(format!("reading payment {id}: {e}")))?
        .ok_or_else(|| permanent(format!("payment {id} is not in the journal")))?;
    if order.state != PaymentState::Ordered {
        return Ok(Delivered::NotNeeded);
    }
    let scheme = scheme_of(shared, n)?;
    let asked: Result<InquiryAnswer, String> = match exchange(shared, n).await {
        Ok(Some(x)) => x
            .scheme
            .inquiry_answer(
                &x.notice,
                x.answer.status,
                &x.answer.headers,
                &x.answer.body,
            )
            .ok_or_else(|| {
                format!(
                    "HTTP {} from the wallet is not an inquiry answer",
                    x.answer.status.as_u16()
                )
            }),
        Ok(None) => Err(format!(
            "client {} takes no inquiryPayment calls (no endpoint)",
            n.client_id
        )),
        Err(f) => Err(f.reason),
    };
    let tries = n.attempts.saturating_add(1);
    let (result, scheme_ref) = match asked {
        Ok(InquiryAnswer {
            result: WalletResult::Unknown { reason },
            ..
        })
        | Err(reason) => {
            if tries < shared.policy.max_inquiries {
                return Err(Failure::retry(format!(
                    "no result for the order yet ({tries} of {} inquiries): {reason}",
                    shared.policy.max_inquiries
                )));
            }
            let reason = format!("no result from the wallet after {tries} inquiries: {reason}");
            (WalletResult::Unknown { reason }, None)
        }
        Ok(a) => (a.result, a.scheme_ref),
    };
    let ctx = RequestContext {
        client_id: n.client_id.clone(),
        body_sha256: crate::scheme::native::auth::body_digest(
            format!("{}|{result:?}", n.notice_id).as_bytes(),
        ),
        received_at: std::time::SystemTime::now(),
        unauthenticated_demo: false,
        scheme: scheme.name(),
        scheme_ref,
        request_id: n.request_id.clone().unwrap_or_else(|| n.notice_id.clone()),
    };
    let Ok(payment_request_id) = crate::payment::RequestId::new(order.request_id.clone()) else {
        return Err(permanent(format!(
            "payment {id}: request id {:?} unusable",
            order.request_id
        )));
    };
    let debited = result == WalletResult::Debited;
    let settle = OrderResultRequest {
        payment_request_id,
        result,
        merchant_amount: None,
        payer_amount: None,
        customer_id: None,
    };
    match Arc::clone(orders).order_result(ctx, settle).await {
        Ok(_) => Ok(Delivered::Acknowledged),
        // Closed meanwhile (the wallet said F, or we cancelled): nothing left to settle. A debit
        // it reports for such an order reaches no acquirer: the wallet must give the money back
        // (logged and counted, as a notifyPayment S for a closed order is).
        Err(ApiError::OrderNotFound { .. }) => {
            if debited {
                tracing::warn!(
                    payment_id = %id,
                    "inquiry: the wallet reports a debit for an order closed meanwhile: it must \
                     give its user the money back"
                );
                crate::telemetry::metrics::global().debit_refused(scheme.name(), "not_open");
            } else {
                tracing::info!(payment_id = %id, "inquiry: the order was closed meanwhile");
            }
            Ok(Delivered::Acknowledged)
        }
        Err(e) => Err(Failure::retry(format!("settling the order: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_delay_up_to_the_cap() {
        let p = NotifyPolicy::default();
        // jitter 0: the lower end (half the nominal delay); u32::MAX % (spread + 1) varies.
        assert_eq!(backoff(&p, 1, 0), Duration::from_millis(500));
        assert_eq!(backoff(&p, 2, 0), Duration::from_millis(1_000));
        assert_eq!(backoff(&p, 3, 0), Duration::from_millis(2_000));
        assert_eq!(backoff(&p, 30, 0), Duration::from_millis(300_000));
        assert_eq!(backoff(&p, u32::MAX, 0), Duration::from_millis(300_000));
        for failures in [1, 2, 5, 11, 64] {
            for jitter in [0, 1, 499, 500, 501, 123_456, u32::MAX] {
                let d = backoff(&p, failures, jitter);
                let nominal = (1_000u64 << (failures - 1).min(20)).min(600_000);
                assert!(
                    d >= Duration::from_millis(nominal / 2) && d <= Duration::from_millis(nominal),
                    "{failures} {jitter} {d:?}"
                );
            }
        }
    }
}
