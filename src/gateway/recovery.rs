//! Start-up recovery: what the journal says was left unresolved when the process last stopped.
//!
//! | found | done |
//! | --- | --- |
//! | payment QUOTED | `NotSent` → FAILED (nothing reached the acquirer) |
//! | payment SENT | the 0200 may have gone out → UNKNOWN → reversal of the 0200 rebuilt from the journal → REVERSING |
//! | payment UNKNOWN with a pending reversal of its STAN and RRN | → REVERSING (the link resumes the reversal) |
//! | payment UNKNOWN without one | reversal of the rebuilt 0200 → REVERSING |
//! | (no trace journaled, no link) | → MANUAL_REVIEW |
//! | payment REVERSING | watched; settled at once if its reversal was resolved meanwhile |
//! | refund PENDING | → UNKNOWN (its 0200 may have gone out) → a reversal of the refund's 0200 rebuilt from the journal; on the 0410 the refund is FAILED and its amount released |
//! | refund UNKNOWN with a pending reversal of its STAN and RRN | watched (the link resumes the reversal) |
//! | refund UNKNOWN without one | a reversal of the rebuilt 0200 |
//! | refund without a journaled trace (records from before traces were journaled) | UNKNOWN, for an operator |
//! | wallet request in flight | completed with the current answer if its payment / refund exists, else abandoned |

use crate::acquirer::message::ReversalReason;
use crate::acquirer::reversal::ReversalId;
use crate::journal::{
    AcquirerData, IdempotencyKey, Journal, JournalError, PaymentEvent, PaymentState, RefundEvent,
    RefundState, RequestKind, Unresolved,
};

use super::once::store;
use super::pay;
use super::refund;
use super::{Gateway, Reverses};

/// What recovery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// QUOTED payments marked FAILED.
    pub failed_unsent: usize,
    /// Payments whose reversal is (still) running.
    pub reversing: usize,
    /// Payments left for manual review.
    pub manual_review: usize,
    /// Refunds marked UNKNOWN.
    pub refunds_unknown: usize,
    /// Refunds whose reversal is (still) running.
    pub refunds_reversing: usize,
    /// Wallet requests completed or abandoned.
    pub requests_closed: usize,
}

impl Gateway {
    pub(super) async fn recover(&self, u: Unresolved) -> Result<RecoveryReport, JournalError> {
        let j = &self.inner.journal;
        let mut report = RecoveryReport::default();
        for p in u.payments {
            match p.state {
                PaymentState::Quoted => {
                    j.update_payment(
                        p.id,
                        PaymentEvent::NotSent {
                            reason: "the gateway stopped before sending".to_owned(),
                        },
                    )
                    .await?;
                    report.failed_unsent += 1;
                }
                PaymentState::Sent => {
                    let p = j
                        .update_payment(
                            p.id,
                            PaymentEvent::Unknown {
                                cause: "the gateway stopped while the 0200 was in flight"
                                    .to_owned(),
                                acquirer: AcquirerData::default(),
                            },
                        )
                        .await?;
                    self.reverse_after_restart(&p, &mut report).await?;
                }
                PaymentState::Unknown => {
                    // STAN and RRN together (the RRN carries the day and hour): a STAN alone
                    // repeats every day.
                    let pending = u.reversals.iter().find(|r| {
                        p.acquirer.stan.as_deref() == Some(r.reversal.original_stan.as_str())
                            && p.acquirer.rrn.as_deref() == Some(r.reversal.original_rrn.as_str())
                    });
                    match pending {
                        Some(r) => {
                            self.track(r.id, Reverses::Payment(p.id));
                            j.update_payment(
                                p.id,
                                PaymentEvent::Reversing {
                                    reversal_id: Some(r.id.0),
                                },
                            )
                            .await?;
                            report.reversing += 1;
                        }
                        None => self.reverse_after_restart(&p, &mut report).await?,
                    }
                }
                PaymentState::Reversing => {
                    if let Some(id) = p.reversal.as_ref().and_then(|r| r.reversal_id) {
                        self.track(ReversalId(id), Reverses::Payment(p.id));
                    }
                    if let Err(e) = self.settle(p).await {
                        tracing::warn!("recovery: settling a reversal: {e}");
                    }
                    report.reversing += 1;
                }
                _ => {}
            }
        }
        for r in u.refunds {
            let r = if r.state == RefundState::Pending {
                report.refunds_unknown += 1;
                j.update_refund(
                    r.id,
                    RefundEvent::Unknown {
                        cause: "the gateway stopped while the refund was in flight".to_owned(),
                        acquirer: AcquirerData::default(),
                    },
                )
                .await?
            } else {
                r
            };
            if r.state != RefundState::Unknown {
                continue;
            }
            let pending = u.reversals.iter().find(|v| {
                r.acquirer.stan.as_deref() == Some(v.reversal.original_stan.as_str())
                    && r.acquirer.rrn.as_deref() == Some(v.reversal.original_rrn.as_str())
            });
            if let Some(v) = pending {
                self.track(v.id, Reverses::Refund(r.id));
                report.refunds_reversing += 1;
                continue;
            }
            match self.reverse_refund_after_restart(&r).await {
                Ok(id) => {
                    self.track(id, Reverses::Refund(r.id));
                    report.refunds_reversing += 1;
                }
                Err(e) => tracing::error!(
                    "recovery: refund {} stays UNKNOWN for an operator: {e}",
                    r.id
                ),
            }
        }
        for key in u.in_flight {
            self.close_request(key).await?;
            report.requests_closed += 1;
        }
        Ok(report)
    }

    /// Queues a reversal of an UNKNOWN payment's 0200 rebuilt from the journal (REVERSING), or
    /// flags it for manual review when the journal lacks its trace.
    async fn reverse_after_restart(
        &self,
        p: &crate::journal::Payment,
        report: &mut RecoveryReport,
    ) -> Result<(), JournalError> {
        let j = &self.inner.journal;
        let queued = self.rebuild_request(p).and_then(|m| {
            self.link(&p.routing.acquirer)?
                .reverse(&m, ReversalReason::ConnectionLost)
                .map_err(|e| super::errors::link(None, &e))
        });
        match queued {
            Ok(id) => {
                self.track(id, Reverses::Payment(p.id));
                j.update_payment(
                    p.id,
                    PaymentEvent::Reversing {
                        reversal_id: Some(id.0),
                    },
                )
                .await?;
                report.reversing += 1;
            }
            Err(e) => {
                j.update_payment(
                    p.id,
                    PaymentEvent::ManualReview {
                        note: format!("no reversal could be queued after a restart: {e}"),
                    },
                )
                .await?;
                report.manual_review += 1;
            }
        }
        Ok(())
    }

    /// Queues a reversal of an UNKNOWN refund's 0200, rebuilt from the journal.
    async fn reverse_refund_after_restart(
        &self,
        r: &crate::journal::Refund,
    ) -> Result<ReversalId, String> {
        let payment = self
            .inner
            .journal
            .payment(r.payment_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("its payment {} is not in the journal", r.payment_id))?;
        let request = self
            .rebuild_refund_request(&payment, r)
            .map_err(|e| e.to_string())?;
        self.link(&payment.routing.acquirer)
            .map_err(|e| e.to_string())?
            .reverse(&request, ReversalReason::ConnectionLost)
            .map_err(|e| e.to_string())
    }

    async fn close_request(&self, key: IdempotencyKey) -> Result<(), JournalError> {
        let j = &self.inner.journal;
        let answer = match key.kind {
            RequestKind::Payment => j
                .payment_by_request(&key.client_id, &key.request_id)
                .await?
                .and_then(|p| pay::answer_of(&p).ok())
                .map(|a| store(&a)),
            RequestKind::Refund => j
                .refund_by_request(&key.client_id, &key.request_id)
                .await?
                .and_then(|r| refund::answer_of(&r).ok())
                .map(|a| store(&a)),
            _ => None,
        };
        match answer {
            Some(stored) => j.complete(key, stored).await,
            None => j.abandon(key).await.map(drop),
        }
    }
}
