//! `pay` and payment `inquiry`.
//!
//! ```text
//! once (client, paymentRequestId, body hash)   ─ Replay → the answer of the payment as it is now
//!   │                                          ─ Inconsistent → REPEAT_REQ_INCONSISTENT
//!   │                                          ─ InFlight → RETRY_LATER
//!   New → quote (QUOTE_EXPIRED / QUOTE_CONSUMED) → per-transaction limit
//!       → the link signed on within the pay budget (else F SERVICE_UNAVAILABLE, nothing kept)
//!       → consume the quote → journal intent QUOTED (+ daily limits, atomically) → SENT
//!       → link.authorise_within(what is left of the pay budget)
//!       → journal SUCCESS / FAILED / UNKNOWN (+ REVERSING with the queued reversal);
//!         FAILED too when the link sent nothing after all (it went down in between):
//!         F SERVICE_UNAVAILABLE, the daily limits released, nothing to reverse
//!       → answer S / F (ACQUIRER_DECLINED) / U (ACQUIRER_TIMEOUT, PROCESSING) → complete(begin)
//! ```
//! Errors before the intent leave nothing behind: the idempotency record is abandoned so the
//! wallet may retry the same request id.

use std::str::FromStr;

use std::sync::Arc;

use crate::acquirer::link::{Link, LinkError, Outcome};
use crate::acquirer::message::{Approval, Kind, Trace};
use crate::fx::QuoteId;
use crate::journal::{
    AcquirerData, Begin, BodyHash, CustomerId, FinishPayment, IdempotencyKey, NewPayment,
    OpenPayment, Opened, Origin, Payment, PaymentEvent, PaymentId, PaymentState, QuoteSnapshot,
    Render, RequestKind, Routing,
};
use crate::payment::{
    AcquirerResult, Merchant, Money, PaymentInquiryRequest, PaymentRef, PaymentRequest,
    PaymentResponse, PaymentStatus,
};
use crate::payment::{Answer, ApiError, Handled, RequestContext};

use super::acquirer;
use super::once;
use super::settings::ClientPolicy;
use super::{Decoded, Gateway, Reverses, errors, ids};

/// The wallet-facing status of a payment state.
pub(super) fn status_of(state: PaymentState) -> PaymentStatus {
    match state {
        PaymentState::Success | PaymentState::PartiallyRefunded | PaymentState::Refunded => {
            PaymentStatus::Success
        }
        PaymentState::Failed | PaymentState::Closed => PaymentStatus::Fail,
        PaymentState::Reversed => PaymentStatus::Reversed,
        PaymentState::Cancelled => PaymentStatus::Cancelled,
        PaymentState::Ordered
        | PaymentState::Quoted
        | PaymentState::Sent
        | PaymentState::Unknown
        | PaymentState::Reversing
        | PaymentState::ManualReview => PaymentStatus::Processing,
    }
}

/// The response fields for a journaled payment.
pub(super) fn response_of(p: &Payment) -> Result<PaymentResponse, ApiError> {
    let a = &p.acquirer;
    let acquirer = match (&a.stan, &a.rrn, &a.response_code) {
        (Some(stan), Some(rrn), Some(code)) => Some(AcquirerResult {
            stan: stan.clone(),
            rrn: rrn.clone(),
            auth_code: a.auth_code.clone(),
            response_code: code.clone(),
        }),
        _ => None,
    };
    // Records from before the merchant was journaled have an empty one: say nothing then.
    let merchant = Some(p.merchant.clone()).filter(|m| *m != Merchant::default());
    Ok(PaymentResponse {
        merchant,
        payment_id: ids::wire(&p.id.to_string())?,
        payment_request_id: ids::wire(&p.request_id)?,
        payment_status: status_of(p.state),
        merchant_amount: Money(p.quote.merchant_amount),
        payer_amount: Money(p.quote.payer_amount),
        refunded_amount: (!p.refunded.is_zero()).then_some(Money(p.refunded)),
        acquirer,
        scheme_ref: p.origin.scheme_ref.clone(),
    })
}

/// The answer for a payment's current state, as a new pay would have given it.
pub(super) fn answer_of(p: &Payment) -> Handled<PaymentResponse> {
    let body = response_of(p)?;
    let outcome = match body.payment_status {
        PaymentStatus::Success => None,
        PaymentStatus::Fail => Some(match &p.acquirer.response_code {
            Some(code) => ApiError::AcquirerDeclined {
                response_code: code.clone(),
            },
            None => ApiError::Unavailable {
                reason: p
                    .note
                    .clone()
                    .unwrap_or_else(|| "not sent to the acquirer".to_owned()),
            },
        }),
        PaymentStatus::Processing | PaymentStatus::Reversed | PaymentStatus::Cancelled => {
            Some(ApiError::AcquirerTimeout {
                payment_id: p.id.to_string(),
                cause: open_cause(p),
            })
        }
    };
    Ok(Answer { body, outcome })
}

/// Why a payment's outcome was (or is) open, as journaled with its last state change.
fn open_cause(p: &Payment) -> String {
    p.note
        .clone()
        .unwrap_or_else(|| "the outcome is not known yet".to_owned())
}

/// A pay request checked against its quote and the client's policy; nothing consumed or
/// written yet.
pub(super) struct Checked {
    pub(super) policy: ClientPolicy,
    pub(super) quote_id: QuoteId,
    pub(super) decoded: Arc<Decoded>,
    /// A quote made on another instance, found in the shared journal (not in this process's
    /// quote store): the journal consumes it with the payment's first write.
    pub(super) shared: Option<QuoteSnapshot>,
}

/// How the acquirer's answer ends a payment: the events to journal and what the wallet is told.
pub(super) struct Ending {
    events: Vec<PaymentEvent>,
    /// `None`: S.
    outcome: Option<ApiError>,
    /// An approval, kept for a cancel inside the window.
    approval: Option<Approval>,
}

impl Ending {
    /// U: the answer says PROCESSING whatever the journal reached meanwhile.
    fn is_unknown(&self) -> bool {
        matches!(self.outcome, Some(ApiError::AcquirerTimeout { .. }))
    }
}

/// The response to a pay from the payment as journaled; PROCESSING for an unknown outcome even
/// if the reversal has already been acknowledged (the inquiry then shows REVERSED).
fn answered(p: &Payment, unknown: bool) -> Result<PaymentResponse, ApiError> {
    let mut body = response_of(p)?;
    if unknown {
        body.payment_status = PaymentStatus::Processing;
    }
    Ok(body)
}

impl Gateway {
    /// `pay`: one request id, one payment, at most two durable writes before the answer.
    ///
    /// ```text
    /// claim the request id in this process (a concurrent twin: RETRY_LATER)
    /// → read its idempotency record: a repeat is answered from the payment as it is now
    /// → check → link ready → consume the quote → open (write 1) → authorise → finish (write 2)
    /// ```
    pub(super) async fn pay_quote(
        &self,
        ctx: RequestContext,
        req: PaymentRequest,
    ) -> Handled<PaymentResponse> {
        self.policy(&ctx)?;
        let span = tracing::info_span!(
            "payment",
            payment_request_id = %req.payment_request_id,
            payment_id = tracing::field::Empty,
            stan = tracing::field::Empty,
            rrn = tracing::field::Empty,
        );
        let request_id = req.payment_request_id.as_str();
        let key = IdempotencyKey::new(ctx.client_id.as_str(), RequestKind::Payment, request_id);
        let body = BodyHash::of(ctx.body_sha256.as_bytes());
        let Some(_claim) = self.claim(&key) else {
            return Err(ApiError::RetryLater {
                request_id: request_id.to_owned(),
            });
        };
        let seen = self
            .inner
            .journal
            .request(&key, body)
            .await
            .map_err(errors::journal)?;
        if let Some(seen) = seen {
            return self.repeat(&ctx, &req, seen).await;
        }
        tracing::Instrument::instrument(self.pay_new(&ctx, &req, key, body), span).await
    }

    /// A request id seen before: the payment as it stands now (a repeat sees PROCESSING turn
    /// into REVERSED), or why not.
    async fn repeat(
        &self,
        ctx: &RequestContext,
        req: &PaymentRequest,
        seen: Begin,
    ) -> Handled<PaymentResponse> {
        let request_id = req.payment_request_id.as_str();
        match seen {
            Begin::Replay(_) => {
                let p = self
                    .inner
                    .journal
                    .payment_by_request(&ctx.client_id, request_id)
                    .await
                    .map_err(errors::journal)?
                    .ok_or_else(|| errors::internal("payment answered but not journaled"))?;
                answer_of(&self.settle(p).await?)
            }
            Begin::Inconsistent => Err(ApiError::RepeatRequestInconsistent {
                request_id: request_id.to_owned(),
            }),
            Begin::InFlight | Begin::New => Err(ApiError::RetryLater {
                request_id: request_id.to_owned(),
            }),
        }
    }

    /// A first request. Errors before [`Gateway::open`] leave nothing behind (the wallet may
    /// retry the same request id); after it the request stays in flight and recovery ends it.
    async fn pay_new(
        &self,
        ctx: &RequestContext,
        req: &PaymentRequest,
        key: IdempotencyKey,
        body: BodyHash,
    ) -> Handled<PaymentResponse> {
        let checked = self.check(ctx, req).await?;
        // The pay budget starts now and covers the wait for the link too.
        let deadline = tokio::time::Instant::now() + self.inner.settings.pay_budget;
        let link = self.ready_link(&checked).await?;
        let intent = self.intent(ctx, req, &checked)?;
        let (payment, trace) = match self.open(link, key.clone(), body, intent).await? {
            Ok(sent) => sent,
            Err(seen) => return self.repeat(ctx, req, seen).await,
        };
        let id = payment.id;
        let outcome = self.authorise(link, &payment, trace, deadline).await;
        let ending = self.ending(id, outcome);
        let payment = self.finish(&key, id, &ending).await?;
        self.after_answer(&payment, ending)
    }

    /// Policy, quote, decoded merchant (this client's), per-transaction limit.
    pub(super) async fn check(
        &self,
        ctx: &RequestContext,
        req: &PaymentRequest,
    ) -> Result<Checked, ApiError> {
        let policy = self.policy(ctx)?;
        let quote_id = QuoteId::from_str(req.quote_id.as_str()).map_err(errors::fx)?;
        let (merchant_amount, decoded, shared) = match self.inner.quotes.get(&quote_id) {
            Ok(quote) => (
                quote.merchant_amount,
                self.inner.quoted.get(req.quote_id.as_str()),
                None,
            ),
            // Quoted on another instance of a shared journal.
            Err(crate::fx::FxError::QuoteNotFound { .. }) if self.shares() => {
                match self.shared_quote(req.quote_id.as_str()).await? {
                    Some(found) if found.expires_at <= std::time::SystemTime::now() => {
                        return Err(ApiError::QuoteExpired {
                            quote_id: req.quote_id.to_string(),
                            expired_at: crate::time::format_rfc3339(found.expires_at),
                        });
                    }
                    Some(found) => (
                        found.quote.merchant_amount,
                        Some(found.decoded),
                        Some(found.quote),
                    ),
                    None => {
                        return Err(errors::fx(crate::fx::FxError::QuoteNotFound {
                            id: req.quote_id.to_string(),
                        }));
                    }
                }
            }
            Err(e) => return Err(errors::fx(e)),
        };
        let decoded = decoded
            .filter(|d| d.client_id == ctx.client_id)
            .ok_or_else(|| ApiError::OrderNotFound {
                what: "quote",
                id: req.quote_id.to_string(),
            })?;
        if let Some(max) = policy.max_per_transaction
            && merchant_amount.minor() > max
        {
            return Err(ApiError::AmountExceedLimit {
                limit: format!("per transaction: {merchant_amount} is above {max} minor units"),
            });
        }
        Ok(Checked {
            policy,
            quote_id,
            decoded,
            shared,
        })
    }

    /// The merchant's acquirer link, signed on within the pay budget. A link that is down
    /// answers F SERVICE_UNAVAILABLE before anything is journaled: the quote stays usable.
    async fn ready_link(&self, checked: &Checked) -> Result<&Link, ApiError> {
        let link = self.link(&checked.decoded.routed.acquirer)?;
        link.ready(self.inner.settings.pay_budget)
            .await
            .map_err(|e| errors::link(None, &e))?;
        Ok(link)
    }

    /// Consumes the quote (single use) and describes the payment to journal.
    pub(super) fn intent(
        &self,
        ctx: &RequestContext,
        req: &PaymentRequest,
        checked: &Checked,
    ) -> Result<NewPayment, ApiError> {
        let quote = match &checked.shared {
            // The journal consumes it (`OpenPayment::shared_quote`).
            Some(snapshot) => snapshot.clone(),
            None => {
                let local = self
                    .inner
                    .quotes
                    .consume(&checked.quote_id)
                    .map_err(errors::fx)?;
                QuoteSnapshot::of(&local)
            }
        };
        let decoded = &checked.decoded;
        Ok(NewPayment {
            client_id: ctx.client_id.clone(),
            request_id: req.payment_request_id.to_string(),
            customer: CustomerId::new(req.customer_id.expose()),
            quote,
            routing: Routing {
                acquirer: decoded.routed.acquirer.clone(),
                merchant_id: decoded.routed.merchant_id.clone(),
                terminal_id: decoded.routed.terminal_id.clone(),
                scheme: decoded.routed.matched.clone(),
                qr_reference: decoded.reference_label.clone(),
            },
            limits: checked.policy.daily,
            origin: Origin::new(ctx.scheme, ctx.scheme_ref.clone())
                .with_request_id(&ctx.request_id),
            merchant: decoded.merchant(),
        })
    }

    /// Write 1: the request in flight, the intent (daily limits) and SENT with the trace of the
    /// 0200 about to leave. `Err(seen)`: the request id was used meanwhile (nothing written).
    async fn open(
        &self,
        link: &Link,
        request: IdempotencyKey,
        body: BodyHash,
        payment: NewPayment,
    ) -> Result<Result<(Payment, Trace), Begin>, ApiError> {
        let trace = link.next_trace();
        let open = OpenPayment {
            request,
            body,
            payment,
            sent: acquirer::data_of(&trace),
            shared_quote: self.shares(),
        };
        match self
            .inner
            .journal
            .open_payment(open)
            .await
            .map_err(errors::journal)?
        {
            Opened::Sent(p) => {
                let span = tracing::Span::current();
                span.record("payment_id", tracing::field::display(p.id));
                span.record("stan", trace.stan.de11().as_str());
                Ok(Ok((*p, trace)))
            }
            Opened::Repeat(seen) => Ok(Err(seen)),
        }
    }

    /// The 0200 over the link, within what is left of the pay budget.
    pub(super) async fn authorise(
        &self,
        link: &Link,
        payment: &Payment,
        trace: Trace,
        deadline: tokio::time::Instant,
    ) -> Result<Outcome, LinkError> {
        let purchase = acquirer::purchase(
            payment,
            Kind::Purchase,
            payment.quote.merchant_amount,
            payment.quote.payer_amount,
            &payment.request_id,
        );
        let metrics = crate::telemetry::metrics::global();
        let in_flight = metrics.in_flight(&payment.routing.acquirer);
        in_flight.inc();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let outcome = link.authorise_traced(&purchase, trace, left).await;
        in_flight.dec();
        outcome
    }

    /// What the link's answer means for the payment and the wallet. An unknown outcome's
    /// reversal is watched from here on (its resolution moves the payment on).
    pub(super) fn ending(&self, id: PaymentId, outcome: Result<Outcome, LinkError>) -> Ending {
        match outcome {
            // The link handed nothing to a connection (it went down meanwhile): F, no reversal.
            Err(e) => Ending {
                events: vec![PaymentEvent::NotSent {
                    reason: e.to_string(),
                }],
                outcome: Some(errors::link(Some(id), &e)),
                approval: None,
            },
            Ok(Outcome::Approved(a)) => {
                tracing::Span::current().record("rrn", a.rrn.as_str());
                let data = AcquirerData {
                    stan: Some(a.stan.de11()),
                    transmitted: a.request.text(7).map(str::to_owned),
                    rrn: Some(a.rrn.clone()),
                    auth_code: a.auth_code.clone(),
                    response_code: Some(a.code.as_str().to_owned()),
                };
                Ending {
                    events: vec![PaymentEvent::Approved { acquirer: data }],
                    outcome: None,
                    approval: Some(a),
                }
            }
            Ok(Outcome::Declined(d)) => {
                let code = d.code.as_str().to_owned();
                let data = AcquirerData {
                    response_code: Some(code.clone()),
                    ..AcquirerData::default()
                };
                Ending {
                    events: vec![PaymentEvent::Declined { acquirer: data }],
                    outcome: Some(ApiError::AcquirerDeclined {
                        response_code: code,
                    }),
                    approval: None,
                }
            }
            Ok(Outcome::Unknown(u)) => {
                let cause = u.cause.to_string();
                let unknown = PaymentEvent::Unknown {
                    cause: cause.clone(),
                    acquirer: AcquirerData {
                        stan: Some(u.stan.de11()),
                        ..AcquirerData::default()
                    },
                };
                // UNKNOWN, then REVERSING with the queued reversal (MANUAL_REVIEW without one).
                let next = match u.reversal {
                    Some(rid) => {
                        self.track(rid, Reverses::Payment(id));
                        PaymentEvent::Reversing {
                            reversal_id: Some(rid.0),
                        }
                    }
                    None => PaymentEvent::ManualReview {
                        note: "the reversal could not be queued".to_owned(),
                    },
                };
                Ending {
                    events: vec![unknown, next],
                    outcome: Some(ApiError::AcquirerTimeout {
                        payment_id: id.to_string(),
                        cause,
                    }),
                    approval: None,
                }
            }
        }
    }

    /// Write 2: the outcome and the request completed with the answer, before the wallet is
    /// answered. A failure leaves the request in flight (recovery ends it): U.
    pub(super) async fn finish(
        &self,
        request: &IdempotencyKey,
        id: PaymentId,
        ending: &Ending,
    ) -> Result<Payment, ApiError> {
        let unknown = ending.is_unknown();
        let (status, code, message) = match &ending.outcome {
            None => (200, "SUCCESS", String::new()),
            Some(e) => (
                e.code().http_status().as_u16(),
                e.code().as_str(),
                e.to_string(),
            ),
        };
        let answer = Render::new(move |p: &Payment| match answered(p, unknown) {
            Ok(body) => once::stored(status, code, message, &body),
            Err(e) => once::stored(status, code, format!("{message} ({e})"), &()),
        });
        let finish = FinishPayment {
            id,
            events: ending.events.clone(),
            request: request.clone(),
            answer,
        };
        self.inner
            .journal
            .finish_payment(finish)
            .await
            .map_err(|e| errors::unknown_outcome(format!("payment {id}"), &errors::journal(e)))
    }

    /// The answer, from the journaled payment; an approval is kept for a cancel.
    pub(super) fn after_answer(
        &self,
        payment: &Payment,
        ending: Ending,
    ) -> Handled<PaymentResponse> {
        let unknown = ending.is_unknown();
        if let Some(a) = ending.approval {
            self.inner.approvals.insert(payment.id, a);
        }
        if unknown && payment.state == PaymentState::Reversing {
            // The reversal may have been acknowledged before the payment reached REVERSING
            // (its resolution found nothing to move then): bring the record up to date, off
            // the answer's path.
            let gateway = self.clone();
            let p = payment.clone();
            tokio::spawn(async move {
                if let Err(e) = gateway.settle(p).await {
                    tracing::warn!("settling a reversed payment: {e}");
                }
            });
        }
        Ok(Answer {
            body: answered(payment, unknown)?,
            outcome: ending.outcome,
        })
    }

    pub(super) async fn find_payment(
        &self,
        ctx: &RequestContext,
        by: &PaymentRef,
    ) -> Result<Payment, ApiError> {
        let j = &self.inner.journal;
        let (found, id) = match by {
            PaymentRef::RequestId(r) => (
                j.payment_by_request(&ctx.client_id, r.as_str())
                    .await
                    .map_err(errors::journal)?,
                r,
            ),
            PaymentRef::PaymentId(p) => match PaymentId::from_str(p.as_str()) {
                Ok(pid) => (
                    j.payment(pid)
                        .await
                        .map_err(errors::journal)?
                        .filter(|x| x.client_id == ctx.client_id),
                    p,
                ),
                Err(_) => (None, p),
            },
        };
        found.ok_or_else(|| ApiError::OrderNotFound {
            what: "payment",
            id: id.to_string(),
        })
    }

    pub(super) async fn inquire(
        &self,
        ctx: RequestContext,
        req: PaymentInquiryRequest,
    ) -> Handled<PaymentResponse> {
        self.policy(&ctx)?;
        let p = self.find_payment(&ctx, &req.payment).await?;
        let p = self.settle(p).await?;
        Ok(Answer::ok(response_of(&p)?))
    }
}
