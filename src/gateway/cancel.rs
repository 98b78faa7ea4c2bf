//! `cancel`: before the cut-off (`cancel_window` after the payment), an approved payment is
//! reversed (0400, DE39 17) and ends CANCELLED; after it, CANCEL_WINDOW_EXCEED (refund instead).
//!
//! The answer waits for the 0410 at most the pay budget: CANCELLED → S; still reversing → U
//! (ACQUIRER_TIMEOUT, PROCESSING) while the reversal goes on; a later inquiry or cancel shows the
//! end. A repeated cancel answers the payment's current state. Concurrent cancels of one payment
//! are serialised by the journal's idempotency record (the second gets RETRY_LATER).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::acquirer::message::ReversalReason;

use crate::journal::{Payment, PaymentEvent, PaymentState, RequestKind};
use crate::payment::{Answer, ApiError, Handled, RequestContext};
use crate::payment::{CancelRequest, CancelResponse, PaymentRef, PaymentStatus};
use crate::time::format_rfc3339;

use super::once::Ran;
use super::pay::status_of;
use super::{Gateway, Reverses, errors, ids};

fn answer(p: &Payment) -> Handled<CancelResponse> {
    let body = CancelResponse {
        payment_id: ids::wire(&p.id.to_string())?,
        payment_request_id: ids::wire(&p.request_id)?,
        payment_status: status_of(p.state),
    };
    Ok(match p.state {
        PaymentState::Cancelled => Answer::ok(body),
        PaymentState::Reversing => Answer::failed(
            body,
            ApiError::AcquirerTimeout {
                payment_id: p.id.to_string(),
                cause: "the cancel's reversal is not acknowledged yet".to_owned(),
            },
        ),
        _ => Answer::failed(
            body,
            ApiError::ParamIllegal {
                field: "paymentRequestId".to_owned(),
                reason: format!("payment {} is {} and cannot be cancelled", p.id, p.state),
            },
        ),
    })
}

impl Gateway {
    pub(super) async fn cancel_payment(
        &self,
        ctx: RequestContext,
        req: CancelRequest,
    ) -> Handled<CancelResponse> {
        self.policy(&ctx)?;
        let by = PaymentRef::RequestId(req.payment_request_id.clone());
        let p = self.find_payment(&ctx, &by).await?;
        let p = self.settle(p).await?;
        if matches!(p.state, PaymentState::Cancelled | PaymentState::Reversing) {
            return answer(&p);
        }
        let first = async {
            match self.cancel_new(p).await {
                // Cancelled, or the reversal running: the cancel happened, repeats replay it.
                Ok(a)
                    if a.outcome.is_none()
                        || matches!(a.body.payment_status, PaymentStatus::Processing) =>
                {
                    Ran::Answered(a)
                }
                // Refused for the payment's state now: asking again may be answered otherwise.
                Ok(a) => Ran::Retryable(a),
                Err(e) => Ran::Refused(e),
            }
        };
        let replay = async || {
            let p = self.find_payment(&ctx, &by).await?;
            answer(&self.settle(p).await?)
        };
        self.once(
            &ctx,
            RequestKind::Cancel,
            req.payment_request_id.as_str(),
            first,
            replay,
        )
        .await
    }

    async fn cancel_new(&self, p: Payment) -> Handled<CancelResponse> {
        if p.state != PaymentState::Success {
            return answer(&p);
        }
        let window = self.inner.settings.cancel_window;
        let paid_at = UNIX_EPOCH + Duration::from_millis(p.created_at_ms);
        let cut_off = paid_at + window;
        if SystemTime::now() > cut_off {
            return Err(ApiError::CancelWindowExceed {
                payment_id: p.id.to_string(),
                cut_off: format_rfc3339(cut_off),
            });
        }
        let link = self.link(&p.routing.acquirer)?;
        let queued = match self.inner.approvals.get(&p.id) {
            Some(approval) => link.cancel(&approval),
            // Approved before a restart: the 0200 rebuilt from the journal.
            None => link.reverse(&self.rebuild_request(&p)?, ReversalReason::Cancelled),
        };
        let rid = queued.map_err(|e| errors::link(None, &e))?;
        self.track(rid, Reverses::Payment(p.id));
        let pid = p.id;
        let unknown = |e: ApiError| errors::unknown_outcome(format!("cancel of payment {pid}"), &e);
        let mut p = self
            .apply(
                pid,
                PaymentEvent::Reversing {
                    reversal_id: Some(rid.0),
                },
            )
            .await
            .map_err(unknown)?;
        self.inner.approvals.invalidate(&p.id);
        let deadline = Instant::now() + self.inner.settings.pay_budget;
        loop {
            p = self.settle(p).await.map_err(unknown)?;
            if p.state != PaymentState::Reversing || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answer(&p)
    }
}
