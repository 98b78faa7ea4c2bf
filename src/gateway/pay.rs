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

use crate::acquirer::link::Outcome;
use crate::acquirer::message::Kind;
use crate::fx::QuoteId;
use crate::journal::{
    AcquirerData, CustomerId, NewPayment, Origin, Payment, PaymentEvent, PaymentId, PaymentState,
    QuoteSnapshot, RequestKind, Routing,
};
use crate::payment::{
    AcquirerResult, Merchant, Money, PaymentInquiryRequest, PaymentRef, PaymentRequest,
    PaymentResponse, PaymentStatus,
};
use crate::payment::{Answer, ApiError, Handled, RequestContext};

use super::acquirer;
use super::once::Ran;
use super::{Gateway, Reverses, errors, ids};

/// The wallet-facing status of a payment state.
pub(super) fn status_of(state: PaymentState) -> PaymentStatus {
    match state {
        PaymentState::Success | PaymentState::PartiallyRefunded | PaymentState::Refunded => {
            PaymentStatus::Success
        }
        PaymentState::Failed => PaymentStatus::Fail,
        PaymentState::Reversed => PaymentStatus::Reversed,
        PaymentState::Cancelled => PaymentStatus::Cancelled,
        PaymentState::Quoted
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

impl Gateway {
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
        let first = async {
            match tracing::Instrument::instrument(self.pay_new(&ctx, &req), span).await {
                Ok(answer) => Ran::Answered(answer),
                Err((e, false)) => Ran::Refused(e),
                Err((e, true)) => Ran::Journaled(e),
            }
        };
        let replay = async || {
            let p = self
                .inner
                .journal
                .payment_by_request(&ctx.client_id, req.payment_request_id.as_str())
                .await
                .map_err(errors::journal)?
                .ok_or_else(|| errors::internal("payment answered but not journaled"))?;
            // The payment as it stands now: a repeat sees PROCESSING turn into REVERSED.
            answer_of(&self.settle(p).await?)
        };
        self.once(
            &ctx,
            RequestKind::Payment,
            req.payment_request_id.as_str(),
            first,
            replay,
        )
        .await
    }

    /// A first request. `Err((e, true))`: the payment was journaled, keep the request in flight
    /// (recovery completes it).
    async fn pay_new(
        &self,
        ctx: &RequestContext,
        req: &PaymentRequest,
    ) -> Result<Answer<PaymentResponse>, (ApiError, bool)> {
        let before = |e| (e, false);
        let after = |e| (e, true);
        let policy = self.policy(ctx).map_err(before)?;
        let quote_id = QuoteId::from_str(req.quote_id.as_str())
            .map_err(errors::fx)
            .map_err(before)?;
        let quotes = &self.inner.quotes;
        let quote = quotes.get(&quote_id).map_err(errors::fx).map_err(before)?;
        let decoded = self
            .inner
            .quoted
            .get(req.quote_id.as_str())
            .filter(|d| d.client_id == ctx.client_id)
            .ok_or_else(|| {
                before(ApiError::OrderNotFound {
                    what: "quote",
                    id: req.quote_id.to_string(),
                })
            })?;
        if let Some(max) = policy.max_per_transaction
            && quote.merchant_amount.minor() > max
        {
            return Err(before(ApiError::AmountExceedLimit {
                limit: format!(
                    "per transaction: {} is above {max} minor units",
                    quote.merchant_amount
                ),
            }));
        }
        // The pay budget starts now and covers the wait for the link too. A link that is down
        // answers F SERVICE_UNAVAILABLE before anything is journaled: the quote stays usable and
        // the wallet may retry the same request.
        let deadline = tokio::time::Instant::now() + self.inner.settings.pay_budget;
        let link = self.link(&decoded.routed.acquirer).map_err(before)?;
        link.ready(self.inner.settings.pay_budget)
            .await
            .map_err(|e| before(errors::link(None, &e)))?;
        let quote = quotes
            .consume(&quote_id)
            .map_err(errors::fx)
            .map_err(before)?;
        let j = &self.inner.journal;
        let intent = NewPayment {
            client_id: ctx.client_id.clone(),
            request_id: req.payment_request_id.to_string(),
            customer: CustomerId::new(req.customer_id.expose()),
            quote: QuoteSnapshot::of(&quote),
            routing: Routing {
                acquirer: decoded.routed.acquirer.clone(),
                merchant_id: decoded.routed.merchant_id.clone(),
                terminal_id: decoded.routed.terminal_id.clone(),
                scheme: decoded.routed.matched.clone(),
                qr_reference: decoded.reference_label.clone(),
            },
            limits: policy.daily,
            origin: Origin::new(ctx.scheme, ctx.scheme_ref.clone())
                .with_request_id(&ctx.request_id),
            merchant: decoded.merchant(),
        };
        let payment = j
            .record_intent(intent)
            .await
            .map_err(errors::journal)
            .map_err(before)?;
        let id = payment.id;
        tracing::Span::current().record("payment_id", tracing::field::display(id));
        let purchase = acquirer::purchase(
            &payment,
            Kind::Purchase,
            quote.merchant_amount,
            quote.payer_amount,
            req.payment_request_id.as_str(),
        );
        let trace = link.next_trace();
        tracing::Span::current().record("stan", trace.stan.de11().as_str());
        j.update_payment(
            id,
            PaymentEvent::Sent {
                acquirer: acquirer::data_of(&trace),
            },
        )
        .await
        .map_err(errors::journal)
        .map_err(after)?;
        let in_flight = crate::telemetry::metrics::global().in_flight(&decoded.routed.acquirer);
        in_flight.inc();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let outcome = link.authorise_traced(&purchase, trace, left).await;
        in_flight.dec();
        let unknown = |e: ApiError| (errors::unknown_outcome(format!("payment {id}"), &e), true);
        let (payment, outcome_error) = match outcome {
            Err(e) => {
                let p = j
                    .update_payment(
                        id,
                        PaymentEvent::NotSent {
                            reason: e.to_string(),
                        },
                    )
                    .await
                    .map_err(errors::journal)
                    .map_err(unknown)?;
                (p, Some(errors::link(Some(id), &e)))
            }
            Ok(Outcome::Approved(a)) => {
                tracing::Span::current().record("rrn", a.rrn.as_str());
                let data = AcquirerData {
                    stan: Some(a.stan.de11()),
                    transmitted: a.request.text(7).map(str::to_owned),
                    rrn: Some(a.rrn.clone()),
                    auth_code: a.auth_code.clone(),
                    response_code: Some(a.code.as_str().to_owned()),
                };
                let p = j
                    .update_payment(id, PaymentEvent::Approved { acquirer: data })
                    .await
                    .map_err(errors::journal)
                    .map_err(unknown)?;
                self.inner.approvals.insert(id, a);
                (p, None)
            }
            Ok(Outcome::Declined(d)) => {
                let code = d.code.as_str().to_owned();
                let data = AcquirerData {
                    response_code: Some(code.clone()),
                    ..AcquirerData::default()
                };
                let p = j
                    .update_payment(id, PaymentEvent::Declined { acquirer: data })
                    .await
                    .map_err(errors::journal)
                    .map_err(unknown)?;
                (
                    p,
                    Some(ApiError::AcquirerDeclined {
                        response_code: code,
                    }),
                )
            }
            Ok(Outcome::Unknown(u)) => {
                let p = self
                    .record_unknown(id, u.cause.to_string(), u.stan.de11(), u.reversal)
                    .await
                    .map_err(unknown)?;
                (
                    p,
                    Some(ApiError::AcquirerTimeout {
                        payment_id: id.to_string(),
                        cause: u.cause.to_string(),
                    }),
                )
            }
        };
        let mut body = response_of(&payment).map_err(after)?;
        if matches!(outcome_error, Some(ApiError::AcquirerTimeout { .. })) {
            // The answer to this pay is "unknown, inquire": PROCESSING even if the reversal has
            // already been acknowledged (the inquiry then shows REVERSED).
            body.payment_status = PaymentStatus::Processing;
        }
        Ok(Answer {
            body,
            outcome: outcome_error,
        })
    }

    /// UNKNOWN, then REVERSING with the queued reversal (or MANUAL_REVIEW without one).
    async fn record_unknown(
        &self,
        id: PaymentId,
        cause: String,
        stan: String,
        reversal: Option<crate::acquirer::reversal::ReversalId>,
    ) -> Result<Payment, ApiError> {
        let j = &self.inner.journal;
        j.update_payment(
            id,
            PaymentEvent::Unknown {
                cause,
                acquirer: AcquirerData {
                    stan: Some(stan),
                    ..AcquirerData::default()
                },
            },
        )
        .await
        .map_err(errors::journal)?;
        let Some(rid) = reversal else {
            return self
                .apply(
                    id,
                    PaymentEvent::ManualReview {
                        note: "the reversal could not be queued".to_owned(),
                    },
                )
                .await;
        };
        self.track(rid, Reverses::Payment(id));
        let p = self
            .apply(
                id,
                PaymentEvent::Reversing {
                    reversal_id: Some(rid.0),
                },
            )
            .await?;
        self.settle(p).await
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
