//! The payment pipeline: the [`Pipeline`] the schemes call, wiring the QR parser, the routing
//! table, FX quotes, the durable journal and the acquirer links together.
//!
//! In: typed Wallet API v1 requests with their [`RequestContext`] (client id, body hash).
//! Out: typed answers (S / F / U with the response fields); ISO 8583 0200s (purchases and refunds)
//! and 0400s (reversals, cancels) through the acquirer links; journal records.
//! Errors: every room's error becomes an [`ApiError`] in `errors.rs` (and nowhere else); a decline
//! is an answer with a body, an unknown outcome is U with `paymentStatus` PROCESSING.
//! Spec: `spec/gateway.md` (pipeline, routing, state → answer mapping, recovery).
//!
//! ```text
//! settings   Settings, ClientPolicy: deployment, clients (markup, limits), timers
//! routing    RouteRule, route(): GUID/AID or primitive → acquirer, merchant / terminal sub-IDs
//! decode     parse → domestic check → route → decode id (moka, expiring)
//! caches     the in-memory stores (decodes, quoted, approvals): bounded by bytes and by time
//! quote      decode id + amount → locked single-use quote (fx)
//! pay        claim → repeat? → quote → limits → link ready → open (journal write 1) → authorise
//!            → finish (journal write 2) → answer; inquiry
//! order      payment orders of debits-first wallets (Alipay+ MPP): order, then the wallet's result
//! cancel     a reversal before the cut-off
//! refund     partial / repeated refunds (0200, DE3 200000) at the original quote; refund inquiry
//! merchant   refunds that start at the merchant (acquirer advice / operator) → RefundCredit notice
//! reversal   the journal as the links' reversal store, reporting resolutions
//! notices    which state changes notify the wallet (journal NoticeRules), and what they say
//! recovery   what start-up does with the journal's unresolved records
//! takeover   shared journal: heartbeat, and recovery of a dead instance's records after its lease
//! shared     shared journal: decodes and quotes any instance may use
//! reconcile  the acquirer's settlement file against the journal (pure; `qrbridge reconcile`)
//! acquirer   canonical Purchase from the decoded merchant and the quote
//! errors     room errors → ApiError
//! ids        decode ids
//! ```
//!
//! Order of a payment (DESIGN §3, "nothing acknowledged from memory only"): the request's
//! idempotency record, the intent (QUOTED) and SENT are durable, in one commit, before the 0200 is
//! handed to the link; the outcome and the stored answer are durable, in one commit, before the
//! wallet is answered (spec/journal.md §6a).

mod acquirer;
mod caches;
mod cancel;
mod decode;
mod errors;
mod ids;
mod merchant;
pub mod notices;
mod once;
mod order;
mod pay;
mod quote;
pub mod reconcile;
mod recovery;
mod refund;
mod reversal;
mod routing;
mod settings;
mod shared;
mod takeover;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::acquirer::iso8583::Message;
use crate::acquirer::link::{Link, LinkConfig, LinkError};
use crate::acquirer::message::Terminal;
use crate::acquirer::reversal::{ReversalId, ReversalState, ReversalStore};
use crate::fx::{QuoteStore, Quoter};
use crate::journal::{
    Journal, JournalError, Payment, PaymentEvent, PaymentId, PaymentState, RefundEvent, RefundId,
};
use crate::payment::Readiness;
use crate::payment::{ApiError, BoxFuture, Handled, Pipeline, RequestContext};
use crate::payment::{
    CancelRequest, CancelResponse, DecodeRequest, DecodeResponse, OrderRequest, OrderResultRequest,
    PaymentInquiryRequest, PaymentRequest, PaymentResponse, QuoteRequest, QuoteResponse,
    RefundInquiryRequest, RefundRequest, RefundResponse,
};

pub use caches::MemoryBounds;
pub use decode::Decoded;
pub use merchant::{MerchantRefund, MerchantRefundError, Original};
pub use order::ORDER_INQUIRY_GRACE;
pub use recovery::RecoveryReport;
pub use reversal::WatchedStore;
pub use routing::{Matcher, RouteRule, Routed, route};
pub use settings::{ClientPolicy, Settings};

/// The gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// An acquirer link could not start.
    #[error("acquirer {name}: {source}")]
    Link {
        /// Its name.
        name: String,
        /// Why.
        source: LinkError,
    },
    /// A route names an acquirer that is not configured.
    #[error("a route names acquirer {0:?}, which is not configured")]
    UnknownAcquirer(String),
    /// Start-up recovery could not read or write the journal.
    #[error("recovery: {0}")]
    Recovery(#[from] JournalError),
}

/// What a reversal undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reverses {
    Payment(PaymentId),
    Refund(RefundId),
}

struct Inner {
    settings: Settings,
    journal: Arc<dyn Journal>,
    store: Arc<WatchedStore>,
    quoter: Quoter,
    quotes: QuoteStore,
    links: HashMap<String, Link>,
    /// DE32 / DE41 per acquirer (to rebuild a journaled 0200).
    terminals: HashMap<String, Terminal>,
    /// decode id → decoded merchant.
    decodes: caches::Merchants,
    /// quote id → the decoded merchant it prices.
    quoted: caches::Merchants,
    /// Approved payments still inside the cancel window: what a cancel reverses.
    approvals: caches::Approvals,
    /// Queued reversal → what it undoes.
    reversals: Mutex<HashMap<ReversalId, Reverses>>,
    /// Wallet requests being handled in this process (`once::Claim`).
    claims: Mutex<std::collections::HashSet<crate::journal::IdempotencyKey>>,
}

/// The pipeline. Cheap to clone; implements [`Pipeline`].
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("country", &self.inner.settings.country)
            .field("currency", &self.inner.settings.currency)
            .field("acquirers", &self.inner.links.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gateway {
    /// Starts the pipeline: installs the notice rules on the journal (`notices.rs`; what recovery
    /// resolves notifies too), recovers the journal's unresolved work, starts one link per acquirer
    /// (with the journal as its durable reversal queue; pending reversals resume), and watches
    /// reversals. Must be called inside a tokio runtime.
    pub async fn start(
        settings: Settings,
        journal: Arc<dyn Journal>,
        quoter: Quoter,
        quotes: QuoteStore,
        acquirers: Vec<(String, LinkConfig)>,
    ) -> Result<(Gateway, RecoveryReport), GatewayError> {
        for r in &settings.routes {
            if !acquirers.iter().any(|(n, _)| *n == r.acquirer) {
                return Err(GatewayError::UnknownAcquirer(r.acquirer.clone()));
            }
        }
        let terminals = acquirers
            .iter()
            .map(|(n, c)| (n.clone(), c.terminal.clone()))
            .collect();
        // Before recovery: what recovery resolves notifies the wallet too.
        journal.set_notice_rules(notices::rules());
        let (store, resolved) = WatchedStore::new(Arc::clone(&journal));
        // On a shared journal only this instance's own (a restart under its name); the others'
        // are taken over when their lease expires (`takeover.rs`).
        let unresolved = journal.unresolved_mine().await?;
        let mut links = HashMap::new();
        for (name, config) in acquirers {
            let link = Link::start(config, Arc::clone(&store) as Arc<dyn ReversalStore>).map_err(
                |source| GatewayError::Link {
                    name: name.clone(),
                    source,
                },
            )?;
            links.insert(name, link);
        }
        let cancel_window = settings.cancel_window;
        let memory = settings.memory;
        let inner = Arc::new(Inner {
            decodes: caches::merchants(memory.decodes_bytes, settings.decode_ttl),
            quoted: caches::merchants(memory.quoted_bytes, quotes_ttl(&quoter)),
            approvals: caches::approvals(
                memory.approvals_bytes,
                cancel_window.max(Duration::from_secs(1)),
            ),
            reversals: Mutex::new(HashMap::new()),
            claims: Mutex::new(std::collections::HashSet::new()),
            settings,
            journal,
            store,
            quoter,
            quotes,
            links,
            terminals,
        });
        for (name, link) in &inner.links {
            link.set_advice_handler(merchant::Advices::shared(&inner, name));
        }
        let gateway = Gateway { inner };
        let report = gateway.recover(unresolved).await?;
        tokio::spawn(watch_reversals(Arc::downgrade(&gateway.inner), resolved));
        tokio::spawn(purge_idempotency(Arc::downgrade(&gateway.inner)));
        if let Some(me) = gateway.inner.journal.instance() {
            let lease = Duration::from_millis(me.lease_ms);
            tokio::spawn(takeover::run(Arc::downgrade(&gateway.inner), lease));
        }
        Ok((gateway, report))
    }

    /// Ready when every acquirer link is signed on: at least one connection of each pool.
    pub fn readiness(&self) -> Readiness {
        let weak = Arc::downgrade(&self.inner);
        Arc::new(move || {
            let inner = weak.upgrade().ok_or_else(|| "gateway stopped".to_owned())?;
            match inner.links.iter().find(|(_, l)| !l.is_ready()) {
                Some((name, link)) => Err(format!(
                    "acquirer {name} not signed on (0 of {} links){}",
                    link.ready_links().1,
                    link.last_error()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                )),
                None => Ok(()),
            }
        })
    }

    /// Waits until every acquirer link is signed on, at most `limit` each.
    pub async fn ready(&self, limit: Duration) -> Result<(), GatewayError> {
        for (name, link) in &self.inner.links {
            link.ready(limit)
                .await
                .map_err(|source| GatewayError::Link {
                    name: name.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// A handle that does not keep the gateway alive (for the metrics probe).
    pub fn downgrade(&self) -> WeakGateway {
        WeakGateway(Arc::downgrade(&self.inner))
    }

    /// Each acquirer link by name, and whether each connection of its pool is signed on now (for
    /// the metrics).
    pub fn link_states(&self) -> Vec<(String, Vec<bool>)> {
        let mut out: Vec<(String, Vec<bool>)> = self
            .inner
            .links
            .iter()
            .map(|(name, link)| {
                let members = link.members().into_iter().map(|m| m.ready).collect();
                (name.clone(), members)
            })
            .collect();
        out.sort();
        out
    }

    /// The journal.
    pub fn journal(&self) -> &Arc<dyn Journal> {
        &self.inner.journal
    }

    /// The calling client's policy; a client not configured is refused.
    fn policy(&self, ctx: &RequestContext) -> Result<settings::ClientPolicy, ApiError> {
        self.inner
            .settings
            .clients
            .get(&ctx.client_id)
            .copied()
            .ok_or_else(|| ApiError::AccessDenied {
                reason: format!(
                    "client {} is not configured for this gateway",
                    ctx.client_id
                ),
            })
    }

    fn link(&self, name: &str) -> Result<&Link, ApiError> {
        self.inner
            .links
            .get(name)
            .ok_or_else(|| errors::internal(format!("no acquirer link {name:?}")))
    }

    /// The 0200 a journaled payment was sent as (see `acquirer::rebuild`).
    fn rebuild_request(&self, p: &Payment) -> Result<Message, ApiError> {
        let terminal = self
            .inner
            .terminals
            .get(&p.routing.acquirer)
            .ok_or_else(|| errors::internal(format!("no acquirer {:?}", p.routing.acquirer)))?;
        acquirer::rebuild(p, terminal)
            .map_err(|e| errors::internal(format!("rebuilding the 0200 of {}: {e}", p.id)))
    }

    /// The 0200 a journaled refund of `p` was sent as: the refund's amounts and request id, the
    /// payment's merchant and rate, the refund's journaled trace.
    fn rebuild_refund_request(
        &self,
        p: &Payment,
        r: &crate::journal::Refund,
    ) -> Result<Message, ApiError> {
        let terminal = self
            .inner
            .terminals
            .get(&p.routing.acquirer)
            .ok_or_else(|| errors::internal(format!("no acquirer {:?}", p.routing.acquirer)))?;
        let trace = acquirer::trace_of(&r.acquirer).ok_or_else(|| {
            errors::internal(format!("refund {}: no STAN / DE7 / RRN journaled", r.id))
        })?;
        let purchase = acquirer::purchase(
            p,
            crate::acquirer::message::Kind::Refund,
            r.amount,
            r.payer_amount,
            &r.request_id,
        );
        crate::acquirer::message::purchase_request(&purchase, terminal, &trace)
            .map_err(|e| errors::internal(format!("rebuilding the 0200 of refund {}: {e}", r.id)))
    }

    fn track(&self, id: ReversalId, what: Reverses) {
        lock(&self.inner.reversals).insert(id, what);
    }

    /// Brings a REVERSING payment up to date with its reversal in the store.
    async fn settle(&self, payment: Payment) -> Result<Payment, ApiError> {
        if payment.state != PaymentState::Reversing {
            return Ok(payment);
        }
        let Some(id) = payment.reversal.as_ref().and_then(|r| r.reversal_id) else {
            return Ok(payment);
        };
        let record = self
            .inner
            .store
            .get(ReversalId(id))
            .map_err(|e| errors::internal(format!("reversal store: {e}")))?;
        let event = match record.map(|r| r.state) {
            Some(ReversalState::Acknowledged { code }) => PaymentEvent::Reversed {
                response_code: code,
            },
            Some(ReversalState::ManualReview) => PaymentEvent::ManualReview {
                note: format!("reversal {id} reached its attempt bound without a 0410"),
            },
            Some(ReversalState::Pending) | None => return Ok(payment),
        };
        self.apply(payment.id, event).await
    }

    /// Applies `event`; if another path applied it first, reads the payment back.
    async fn apply(&self, id: PaymentId, event: PaymentEvent) -> Result<Payment, ApiError> {
        let j = &self.inner.journal;
        match j.update_payment(id, event).await {
            Ok(p) => Ok(p),
            Err(e @ JournalError::IllegalTransition { .. }) => j
                .payment(id)
                .await
                .map_err(errors::journal)?
                .ok_or_else(|| errors::journal(e)),
            Err(e) => Err(errors::journal(e)),
        }
    }

    async fn on_resolved(&self, id: ReversalId, state: ReversalState) {
        let what = lock(&self.inner.reversals).remove(&id);
        let result = match (what, state) {
            (Some(Reverses::Payment(p)), ReversalState::Acknowledged { code }) => self
                .apply(
                    p,
                    PaymentEvent::Reversed {
                        response_code: code,
                    },
                )
                .await
                .map(drop),
            (Some(Reverses::Payment(p)), ReversalState::ManualReview) => self
                .apply(
                    p,
                    PaymentEvent::ManualReview {
                        note: format!("reversal {} reached its attempt bound", id.0),
                    },
                )
                .await
                .map(drop),
            (Some(Reverses::Refund(r)), ReversalState::Acknowledged { code }) => self
                .inner
                .journal
                .update_refund(
                    r,
                    RefundEvent::Declined {
                        acquirer: crate::journal::AcquirerData {
                            response_code: Some(code),
                            ..Default::default()
                        },
                    },
                )
                .await
                .map(drop)
                .map_err(errors::journal),
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!("reversal {}: recording its resolution: {e}", id.0);
        }
    }
}

/// A [`Gateway`] that may have stopped.
#[derive(Clone)]
pub struct WeakGateway(Weak<Inner>);

impl WeakGateway {
    /// The gateway, while it runs.
    pub fn upgrade(&self) -> Option<Gateway> {
        self.0.upgrade().map(|inner| Gateway { inner })
    }
}

fn quotes_ttl(quoter: &Quoter) -> Duration {
    quoter.policy().lifetime + Duration::from_secs(60)
}

async fn watch_reversals(
    inner: Weak<Inner>,
    mut resolved: mpsc::UnboundedReceiver<(ReversalId, ReversalState)>,
) {
    while let Some((id, state)) = resolved.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        Gateway { inner }.on_resolved(id, state).await;
    }
}

/// Removes expired idempotency records once an hour (the journal keeps them 7 days by default).
async fn purge_idempotency(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        loop {
            match inner.journal.purge_expired().await {
                Ok(n) if n == crate::journal::PURGE_LIMIT => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!("purging idempotency records: {e}");
                    break;
                }
            }
        }
    }
}

/// The pipeline's operations. Each future owns a clone of the gateway (one `Arc`), so a scheme's
/// dispatcher can run it in its own task.
impl Pipeline for Gateway {
    fn decode(
        self: Arc<Self>,
        ctx: RequestContext,
        req: DecodeRequest,
    ) -> BoxFuture<'static, Handled<DecodeResponse>> {
        Box::pin(async move { self.decode_code(ctx, req).await })
    }

    fn quote(
        self: Arc<Self>,
        ctx: RequestContext,
        req: QuoteRequest,
    ) -> BoxFuture<'static, Handled<QuoteResponse>> {
        Box::pin(async move { self.make_quote(ctx, req).await })
    }

    fn pay(
        self: Arc<Self>,
        ctx: RequestContext,
        req: PaymentRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>> {
        Box::pin(async move { self.pay_quote(ctx, req).await })
    }

    fn inquire_payment(
        self: Arc<Self>,
        ctx: RequestContext,
        req: PaymentInquiryRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>> {
        Box::pin(async move { self.inquire(ctx, req).await })
    }

    fn cancel(
        self: Arc<Self>,
        ctx: RequestContext,
        req: CancelRequest,
    ) -> BoxFuture<'static, Handled<CancelResponse>> {
        Box::pin(async move { self.cancel_payment(ctx, req).await })
    }

    fn refund(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RefundRequest,
    ) -> BoxFuture<'static, Handled<RefundResponse>> {
        Box::pin(async move { self.refund_payment(ctx, req).await })
    }

    fn inquire_refund(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RefundInquiryRequest,
    ) -> BoxFuture<'static, Handled<RefundResponse>> {
        Box::pin(async move { self.inquire_refund_of(ctx, req).await })
    }

    fn order(
        self: Arc<Self>,
        ctx: RequestContext,
        req: OrderRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>> {
        Box::pin(async move { self.make_order(ctx, req).await })
    }

    fn order_result(
        self: Arc<Self>,
        ctx: RequestContext,
        req: OrderResultRequest,
    ) -> BoxFuture<'static, Handled<PaymentResponse>> {
        Box::pin(async move { self.wallet_result(ctx, req).await })
    }
}
