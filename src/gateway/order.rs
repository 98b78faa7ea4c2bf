//! Payment orders of wallets that debit their user first (Alipay+ MPP, `payment::DEBITS_FIRST`):
//! the order is journaled when the wallet scans, and the authorisation follows the wallet's result.
//!
//! ```text
//! order         check (policy, quote, merchant, per-transaction limit) → consume the quote
//!               → journal ORDERED (+ daily limits) with its inquiry notice due at the quote's
//!               expiry + ORDER_INQUIRY_GRACE, one transaction → the order (PROCESSING)
//! order_result  the wallet's result (its notification, or its answer to our inquiry):
//!   Debited     ORDERED: link ready → journal ORDERED → SENT + request in flight (write 1)
//!               → 0200 → outcome + answer (write 2): a decline / reversal makes PaymentCancel
//!               SENT: RETRY_LATER (being authorised); later states: the answer as it stands;
//!               CLOSED, or CANCELLED without a 0200: ORDER_NOT_EXIST (the order is closed)
//!   NotDebited  ORDERED → CLOSED (no money moved; daily limits given back)
//!   Unknown     ORDERED → CANCELLED (+ PaymentCancel: the wallet gives back what it debited)
//! ```
//! Every step is durable before the next: a restart finds the order in the journal (a
//! notification after it proceeds; the inquiry notice stays due), and a payment SENT when the
//! process stopped is reversed by recovery, which cancels on the wallet's side.

use std::time::{Duration, SystemTime};

use crate::journal::{
    BodyHash, DebitOrder, IdempotencyKey, JournalError, Opened, Payment, PaymentEvent,
    PaymentState, RequestKind,
};
use crate::payment::{
    Answer, ApiError, Handled, OrderRequest, OrderResultRequest, PaymentRequest, PaymentResponse,
    RequestContext, WalletResult,
};

use super::pay::{answer_of, response_of};
use super::{Gateway, acquirer, errors};

/// How long after an order's expiry (its quote's) the wallet is asked what became of it, if it
/// has not told us: a notification sent right at the expiry still arrives first.
pub const ORDER_INQUIRY_GRACE: Duration = Duration::from_secs(5);

/// Whether the order was ever handed to the acquirer (its history has SENT).
fn was_sent(p: &Payment) -> bool {
    p.history.iter().any(|c| c.state == PaymentState::Sent)
}

impl Gateway {
    /// A durable payment order for a quote (spec/schemes/aplus.md §4).
    pub(super) async fn make_order(
        &self,
        ctx: RequestContext,
        req: OrderRequest,
    ) -> Handled<PaymentResponse> {
        let pay = PaymentRequest {
            payment_request_id: req.payment_request_id,
            quote_id: req.quote_id,
            customer_id: req.customer_id,
        };
        let checked = self.check(&ctx, &pay).await?;
        // An aplus order is made in the same request as its decode and quote (userInitiatedPay),
        // so its quote is this instance's; a quote found only in a shared journal is not consumed
        // by `record_order` (single use is enforced by `open_payment`), so it is not taken here.
        if checked.shared.is_some() {
            return Err(errors::internal(
                "an order's quote must be this instance's (it was found only in the shared journal)",
            ));
        }
        let expires = self
            .inner
            .quotes
            .get(&checked.quote_id)
            .map_err(errors::fx)?
            .expires_at;
        let new = self.intent(&ctx, &pay, &checked)?;
        let inquire_at = (expires + ORDER_INQUIRY_GRACE)
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let j = &self.inner.journal;
        match j.record_order(new, inquire_at).await {
            Ok(p) => Ok(Answer::ok(response_of(&p)?)),
            Err(JournalError::Duplicate { .. }) => {
                let p = j
                    .payment_by_request(&ctx.client_id, pay.payment_request_id.as_str())
                    .await
                    .map_err(errors::journal)?
                    .ok_or_else(|| errors::internal("order duplicate but not journaled"))?;
                Ok(Answer::ok(response_of(&p)?))
            }
            Err(e) => Err(errors::journal(e)),
        }
    }

    /// The wallet's result for an order.
    pub(super) async fn wallet_result(
        &self,
        ctx: RequestContext,
        req: OrderResultRequest,
    ) -> Handled<PaymentResponse> {
        self.policy(&ctx)?;
        let id = req.payment_request_id.as_str();
        let key = IdempotencyKey::new(ctx.client_id.as_str(), RequestKind::Payment, id);
        let Some(_claim) = self.claim(&key) else {
            return Err(ApiError::RetryLater {
                request_id: id.to_owned(),
            });
        };
        let closed = || ApiError::OrderNotFound {
            what: "open payment order",
            id: id.to_owned(),
        };
        let p = self
            .inner
            .journal
            .payment_by_request(&ctx.client_id, id)
            .await
            .map_err(errors::journal)?
            .ok_or_else(|| ApiError::OrderNotFound {
                what: "payment order",
                id: id.to_owned(),
            })?;
        same(&req, &p)?;
        match (&req.result, p.state) {
            (WalletResult::Debited, PaymentState::Ordered) => {
                let span = tracing::info_span!(
                    "payment",
                    payment_request_id = %id,
                    payment_id = %p.id,
                    stan = tracing::field::Empty,
                    rrn = tracing::field::Empty,
                );
                tracing::Instrument::instrument(self.debit(&ctx, key, p), span).await
            }
            (WalletResult::Debited, PaymentState::Sent) => Err(ApiError::RetryLater {
                request_id: id.to_owned(),
            }),
            (WalletResult::Debited, _) if !was_sent(&p) => Err(closed()),
            (WalletResult::Debited, _) => {
                if let (Some(now), Some(then)) = (&ctx.scheme_ref, &p.origin.scheme_ref)
                    && now != then
                {
                    return Err(ApiError::RepeatRequestInconsistent {
                        request_id: id.to_owned(),
                    });
                }
                answer_of(&self.settle(p).await?)
            }
            (WalletResult::NotDebited { reason }, PaymentState::Ordered) => {
                let p = self
                    .apply(
                        p.id,
                        PaymentEvent::Closed {
                            reason: format!("the wallet did not debit its user: {reason}"),
                        },
                    )
                    .await?;
                self.after_order(p)
            }
            (WalletResult::Unknown { reason }, PaymentState::Ordered) => {
                let p = self
                    .apply(
                        p.id,
                        PaymentEvent::OrderCancelled {
                            reason: reason.clone(),
                        },
                    )
                    .await?;
                self.after_order(p)
            }
            // The order was closed or cancelled before: nothing left to do.
            (WalletResult::NotDebited { .. } | WalletResult::Unknown { .. }, _)
                if !was_sent(&p) =>
            {
                Ok(Answer::ok(response_of(&p)?))
            }
            // The wallet said it debited (or we asked it to cancel after the acquirer failed):
            // a "not debited" now contradicts it; an unknown changes nothing.
            (WalletResult::NotDebited { .. }, _) => Err(ApiError::RepeatRequestInconsistent {
                request_id: id.to_owned(),
            }),
            (WalletResult::Unknown { .. }, _) => Ok(Answer::ok(response_of(&p)?)),
        }
    }

    /// An order CLOSED or CANCELLED (or found so after a race): the order as it stands.
    fn after_order(&self, p: Payment) -> Handled<PaymentResponse> {
        Ok(Answer::ok(response_of(&p)?))
    }

    /// The wallet debited its user for an ORDERED payment: write 1 (ORDERED → SENT, the request
    /// in flight), the 0200, write 2 (outcome, answer) — as a pay.
    async fn debit(
        &self,
        ctx: &RequestContext,
        key: IdempotencyKey,
        order: Payment,
    ) -> Handled<PaymentResponse> {
        // The pay budget starts now and covers the wait for the link too.
        let deadline = tokio::time::Instant::now() + self.inner.settings.pay_budget;
        let link = self.link(&order.routing.acquirer)?;
        link.ready(self.inner.settings.pay_budget)
            .await
            .map_err(|e| errors::link(None, &e))?;
        let trace = link.next_trace();
        let debit = DebitOrder {
            request: key.clone(),
            body: BodyHash::of(ctx.body_sha256.as_bytes()),
            scheme_ref: ctx.scheme_ref.clone(),
            sent: acquirer::data_of(&trace),
        };
        let j = &self.inner.journal;
        let payment = match j.debit_order(debit).await {
            Ok(Opened::Sent(p)) => *p,
            // Another instance moved the order meanwhile: answer from the payment as it stands.
            Ok(Opened::Repeat(_)) | Err(JournalError::IllegalTransition { .. }) => {
                let p = j
                    .payment(order.id)
                    .await
                    .map_err(errors::journal)?
                    .ok_or_else(|| errors::internal("order vanished"))?;
                return match p.state {
                    PaymentState::Sent => Err(ApiError::RetryLater {
                        request_id: key.request_id.clone(),
                    }),
                    _ if !was_sent(&p) => Err(ApiError::OrderNotFound {
                        what: "open payment order",
                        id: key.request_id.clone(),
                    }),
                    _ => answer_of(&p),
                };
            }
            Err(e) => return Err(errors::journal(e)),
        };
        tracing::Span::current().record("stan", trace.stan.de11().as_str());
        let id = payment.id;
        let outcome = self.authorise(link, &payment, trace, deadline).await;
        let ending = self.ending(id, outcome);
        let payment = self.finish(&key, id, &ending).await?;
        self.after_answer(&payment, ending)
    }
}

/// The wallet's repeat of the amounts and the user must be the order's.
fn same(req: &OrderResultRequest, p: &Payment) -> Result<(), ApiError> {
    let id = &p.request_id;
    let check = |field: &str, sent: Option<crate::money::Amount>, ours| match sent {
        Some(sent) if sent != ours => Err(ApiError::param(
            field,
            format!("{sent} is not the order's {ours} (paymentRequestId {id})"),
        )),
        _ => Ok(()),
    };
    check(
        "paymentAmount",
        req.merchant_amount.map(|m| m.0),
        p.quote.merchant_amount,
    )?;
    check(
        "payToAmount",
        req.payer_amount.map(|m| m.0),
        p.quote.payer_amount,
    )?;
    if let Some(c) = &req.customer_id
        && c.expose() != p.customer.expose()
    {
        return Err(ApiError::param(
            "customerId",
            "is not the user who scanned the code",
        ));
    }
    Ok(())
}
