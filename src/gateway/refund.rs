//! `refund` and refund `inquiry`: partial and repeated refunds up to the original amount, each a
//! 0200 with processing code 200000 to the payment's acquirer, priced at the original quote (the
//! journal shares the payer amount out so the pieces add up exactly, and enforces the total:
//! REFUND_AMOUNT_EXCEED beyond it).
//!
//! Approved → S / SUCCESS; declined → F / ACQUIRER_DECLINED (the amount is released); unknown →
//! U / PROCESSING while the link reverses the refund's 0200 (on its 0410 the refund ends FAILED).
//! A repeated refund request answers the refund's current state.

use std::str::FromStr;

use crate::acquirer::link::Outcome;
use crate::acquirer::message::Kind;
use crate::journal::{
    AcquirerData, NewRefund, Origin, PaymentId, Refund, RefundEvent, RefundId, RefundState,
    RequestKind,
};
use crate::money::Amount;
use crate::payment::{Answer, ApiError, Handled, RequestContext};
use crate::payment::{
    Money, RefundInquiryRequest, RefundRef, RefundRequest, RefundResponse, RefundStatus,
};

use super::acquirer;
use super::once::Ran;
use super::{Gateway, Reverses, errors, ids};

pub(super) fn response_of(r: &Refund) -> Result<RefundResponse, ApiError> {
    Ok(RefundResponse {
        refund_id: ids::wire(&r.id.to_string())?,
        refund_request_id: ids::wire(&r.request_id)?,
        payment_id: ids::wire(&r.payment_id.to_string())?,
        refund_status: match r.state {
            RefundState::Success => RefundStatus::Success,
            RefundState::Failed => RefundStatus::Fail,
            RefundState::Pending | RefundState::Unknown => RefundStatus::Processing,
        },
        refund_amount: Money(r.amount),
        payer_refund_amount: Money(r.payer_amount),
    })
}

pub(super) fn answer_of(r: &Refund) -> Handled<RefundResponse> {
    let body = response_of(r)?;
    let outcome = match r.state {
        RefundState::Success => None,
        RefundState::Failed => Some(match &r.acquirer.response_code {
            Some(code) => ApiError::AcquirerDeclined {
                response_code: code.clone(),
            },
            None => ApiError::Unavailable {
                reason: r
                    .note
                    .clone()
                    .unwrap_or_else(|| "not sent to the acquirer".to_owned()),
            },
        }),
        RefundState::Pending | RefundState::Unknown => Some(ApiError::AcquirerTimeout {
            payment_id: r.payment_id.to_string(),
            cause: r
                .note
                .clone()
                .unwrap_or_else(|| "the refund's outcome is not known yet".to_owned()),
        }),
    };
    Ok(Answer { body, outcome })
}

impl Gateway {
    pub(super) async fn refund_payment(
        &self,
        ctx: RequestContext,
        req: RefundRequest,
    ) -> Handled<RefundResponse> {
        self.policy(&ctx)?;
        let first = async {
            match self.refund_new(&ctx, &req).await {
                Ok(answer) => Ran::Answered(answer),
                Err((e, false)) => Ran::Refused(e),
                Err((e, true)) => Ran::Journaled(e),
            }
        };
        let replay = async || {
            let r = self
                .inner
                .journal
                .refund_by_request(&ctx.client_id, req.refund_request_id.as_str())
                .await
                .map_err(errors::journal)?
                .ok_or_else(|| errors::internal("refund answered but not journaled"))?;
            answer_of(&r)
        };
        self.once(
            &ctx,
            RequestKind::Refund,
            req.refund_request_id.as_str(),
            first,
            replay,
        )
        .await
    }

    async fn refund_new(
        &self,
        ctx: &RequestContext,
        req: &RefundRequest,
    ) -> Result<Answer<RefundResponse>, (ApiError, bool)> {
        let before = |e| (e, false);
        let after = |e| (e, true);
        let not_found = || {
            before(ApiError::OrderNotFound {
                what: "payment",
                id: req.payment_id.to_string(),
            })
        };
        let j = &self.inner.journal;
        let pid = PaymentId::from_str(req.payment_id.as_str()).map_err(|_| not_found())?;
        let payment = j
            .payment(pid)
            .await
            .map_err(errors::journal)
            .map_err(before)?
            .filter(|p| p.client_id == ctx.client_id)
            .ok_or_else(not_found)?;
        let amount: Amount = req.refund_amount.0;
        if amount.currency() != payment.quote.merchant_amount.currency() {
            return Err(before(ApiError::ParamIllegal {
                field: "refundAmount".to_owned(),
                reason: format!(
                    "must be in the payment's merchant currency {}",
                    payment.quote.merchant_amount.currency().code()
                ),
            }));
        }
        let deadline = tokio::time::Instant::now() + self.inner.settings.pay_budget;
        let link = self.link(&payment.routing.acquirer).map_err(before)?;
        // A link that is down: F SERVICE_UNAVAILABLE before anything is reserved.
        link.ready(self.inner.settings.pay_budget)
            .await
            .map_err(|e| before(errors::link(None, &e)))?;
        let trace = link.next_trace();
        let refund = j
            .reserve_refund(NewRefund {
                client_id: ctx.client_id.clone(),
                request_id: req.refund_request_id.to_string(),
                payment_id: pid,
                amount,
                reason: req
                    .reason
                    .as_ref()
                    .map_or_else(String::new, |r| r.as_str().to_owned()),
                origin: Origin::new(ctx.scheme, ctx.scheme_ref.clone())
                    .with_request_id(&ctx.request_id),
                trace: acquirer::data_of(&trace),
            })
            .await
            .map_err(errors::journal)
            .map_err(before)?;
        let purchase = acquirer::purchase(
            &payment,
            Kind::Refund,
            refund.amount,
            refund.payer_amount,
            req.refund_request_id.as_str(),
        );
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let outcome = link.authorise_traced(&purchase, trace, left).await;
        let (event, link_error) = match outcome {
            Err(e) => (
                RefundEvent::Declined {
                    acquirer: AcquirerData::default(),
                },
                Some(errors::link(None, &e)),
            ),
            Ok(Outcome::Approved(a)) => (
                RefundEvent::Approved {
                    acquirer: AcquirerData {
                        stan: Some(a.stan.de11()),
                        transmitted: a.request.text(7).map(str::to_owned),
                        rrn: Some(a.rrn.clone()),
                        auth_code: a.auth_code.clone(),
                        response_code: Some(a.code.as_str().to_owned()),
                    },
                },
                None,
            ),
            Ok(Outcome::Declined(d)) => (
                RefundEvent::Declined {
                    acquirer: AcquirerData {
                        response_code: Some(d.code.as_str().to_owned()),
                        ..AcquirerData::default()
                    },
                },
                None,
            ),
            Ok(Outcome::Unknown(u)) => {
                if let Some(rid) = u.reversal {
                    self.track(rid, Reverses::Refund(refund.id));
                }
                (
                    RefundEvent::Unknown {
                        cause: u.cause.to_string(),
                        acquirer: AcquirerData {
                            stan: Some(u.stan.de11()),
                            ..AcquirerData::default()
                        },
                    },
                    None,
                )
            }
        };
        let rid = refund.id;
        let refund = j
            .update_refund(rid, event)
            .await
            .map_err(errors::journal)
            .map_err(|e| after(errors::unknown_outcome(format!("refund {rid}"), &e)))?;
        let mut answer = answer_of(&refund).map_err(after)?;
        if let Some(e) = link_error {
            answer.outcome = Some(e);
        }
        Ok(answer)
    }

    pub(super) async fn inquire_refund_of(
        &self,
        ctx: RequestContext,
        req: RefundInquiryRequest,
    ) -> Handled<RefundResponse> {
        self.policy(&ctx)?;
        let j = &self.inner.journal;
        let (found, id) = match &req.refund {
            RefundRef::RequestId(r) => (
                j.refund_by_request(&ctx.client_id, r.as_str())
                    .await
                    .map_err(errors::journal)?,
                r,
            ),
            RefundRef::RefundId(r) => match RefundId::from_str(r.as_str()) {
                Ok(rid) => (
                    j.refund(rid)
                        .await
                        .map_err(errors::journal)?
                        .filter(|x| x.client_id == ctx.client_id),
                    r,
                ),
                Err(_) => (None, r),
            },
        };
        let r = found.ok_or_else(|| ApiError::OrderNotFound {
            what: "refund",
            id: id.to_string(),
        })?;
        Ok(Answer::ok(response_of(&r)?))
    }
}
