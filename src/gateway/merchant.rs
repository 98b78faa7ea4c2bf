//! Refunds that start at the merchant: the cashier refunds, the domestic acquirer tells us (a 0220
//! refund advice on the link, `acquirer::advice`; or an operator acting for it), and the wallet is
//! asked to credit its payer (a `RefundCredit` notice, journal `NoticeKind::RefundCredit`).
//!
//! ```text
//! original (payment id, or the RRN of its 0200 on this acquirer's link) → payment
//!   → journal.record_merchant_refund: checks (acquirer, state, currency, amount left),
//!     refund SUCCESS + payment refunded total/state + RefundCredit notice, one transaction
//!   → the deliverer (notify/) sends the credit in the payment's scheme until acknowledged
//! ```
//!
//! Exactly once: one refund per (acquirer, reference); a repeat answers the first and changes
//! nothing. Refused refunds change nothing. The accepted refund is durable before the caller is
//! answered, so once an acquirer is told "accepted", delivering the credit is ours.

use std::sync::{Arc, Weak};

use crate::acquirer::advice::{AdviceFuture, AdviceHandler, OriginalData, RefundAdvice, codes};
use crate::acquirer::message::ResponseCode;
use crate::journal::{
    AcquirerData, JournalError, MerchantRefundRecorded, NewMerchantRefund, PaymentId, PaymentState,
};
use crate::money::Amount;

use super::{Gateway, Inner};

/// Which payment a merchant refund refunds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Original {
    /// Our payment id.
    Payment(PaymentId),
    /// The RRN (DE37) of the payment's 0200 on the acquirer's link.
    Rrn(String),
    /// The STAN (DE11) and DE7 of the payment's 0200, as an advice's DE90 names it.
    Trace(OriginalData),
}

/// A refund the merchant made at its acquirer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantRefund {
    /// The acquirer (`[[acquirers]] name`) reporting it; it must be the payment's.
    pub acquirer: String,
    /// The payment refunded.
    pub original: Original,
    /// The merchant the acquirer names (DE42), if any: it must be the payment's.
    pub merchant_id: Option<String>,
    /// The acquirer's reference for the refund (1 to 64 of `A-Z a-z 0-9 - _ . :`): a repeat with
    /// the same reference is the same refund.
    pub reference: String,
    /// How much, in the payment's merchant currency.
    pub amount: Amount,
    /// Why (may be empty).
    pub reason: String,
    /// What the acquirer sent (STAN, DE7, RRN, auth code, response code of its message).
    pub trace: AcquirerData,
}

/// Why a merchant refund was not journaled. Nothing changed in any case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerchantRefundError {
    /// No payment of this acquirer is known by that id or RRN.
    #[error("no payment {0} on this acquirer")]
    UnknownPayment(String),
    /// The payment's own outcome is still open (QUOTED, SENT, UNKNOWN, REVERSING): not decided
    /// now. An advice is left unanswered, so the acquirer repeats it.
    #[error("payment {payment} is {state}: its own outcome is still open")]
    Open {
        /// The payment.
        payment: PaymentId,
        /// Its state.
        state: PaymentState,
    },
    /// The payment moved no money that could be refunded (failed, reversed, cancelled).
    #[error("payment {payment} cannot be refunded in state {state}")]
    NotRefundable {
        /// The payment.
        payment: PaymentId,
        /// Its state.
        state: PaymentState,
    },
    /// More than is left of the payment (the original amount minus its refunds).
    #[error("refund of {requested} minor units exceeds the {remaining} left of payment {payment}")]
    Exceeds {
        /// The payment.
        payment: PaymentId,
        /// Asked, merchant minor units.
        requested: u64,
        /// Left, merchant minor units.
        remaining: u64,
    },
    /// Not the payment's currency, zero, or a reference we cannot store.
    #[error("{0}")]
    Invalid(String),
    /// The reference was used before for another payment or amount.
    #[error("reference {0} was used before for another refund")]
    Inconsistent(String),
    /// The journal could not record it now (try again: nothing was accepted).
    #[error("journal unavailable: {0}")]
    Unavailable(String),
}

impl MerchantRefundError {
    /// The DE39 that answers an advice refused for this (spec/acquirer-iso8583.md §3a).
    pub fn response_code(&self) -> ResponseCode {
        match self {
            MerchantRefundError::UnknownPayment(_) => codes::original_not_found(),
            MerchantRefundError::NotRefundable { .. } => codes::invalid_transaction(),
            MerchantRefundError::Exceeds { .. } | MerchantRefundError::Invalid(_) => {
                codes::invalid_amount()
            }
            MerchantRefundError::Inconsistent(_) => codes::duplicate(),
            MerchantRefundError::Unavailable(_) | MerchantRefundError::Open { .. } => {
                codes::malfunction()
            }
        }
    }

    fn of(e: JournalError, original: &str) -> Self {
        match e {
            JournalError::NotFound { .. } => {
                MerchantRefundError::UnknownPayment(original.to_owned())
            }
            JournalError::NotRefundable { payment, state } if state.is_unresolved() => {
                MerchantRefundError::Open { payment, state }
            }
            JournalError::NotRefundable { payment, state } => {
                MerchantRefundError::NotRefundable { payment, state }
            }
            JournalError::RefundExceedsPayment {
                payment,
                requested,
                remaining,
            } => MerchantRefundError::Exceeds {
                payment,
                requested,
                remaining,
            },
            JournalError::Duplicate { key, .. } => MerchantRefundError::Inconsistent(key),
            JournalError::Invalid { what, detail } => {
                MerchantRefundError::Invalid(format!("{what}: {detail}"))
            }
            other => MerchantRefundError::Unavailable(other.to_string()),
        }
    }
}

impl Gateway {
    /// Journals a refund the merchant made at its acquirer and, in the same transaction, the
    /// `RefundCredit` notice to the payment's wallet (in the payment's scheme, to its client).
    /// Returns once both are durable; a repeat of the reference returns the first refund with
    /// `repeat` set. Used by the acquirer links' advice handler and by operators' tools.
    pub async fn merchant_refund(
        &self,
        refund: MerchantRefund,
    ) -> Result<MerchantRefundRecorded, MerchantRefundError> {
        let j = &self.inner.journal;
        let by_ref = async |reference: String, named: String| {
            j.payment_by_acquirer_ref(&refund.acquirer, &reference)
                .await
                .map(|p| (p.map(|p| p.id), named.clone()))
                .map_err(|e| MerchantRefundError::of(e, &named))
        };
        let (payment_id, named) = match &refund.original {
            Original::Payment(id) => (Some(*id), id.to_string()),
            Original::Rrn(rrn) => by_ref(rrn.clone(), format!("with RRN {rrn}")).await?,
            Original::Trace(o) => {
                by_ref(
                    o.trace_key(),
                    format!("with STAN {} at {}", o.stan, o.transmitted),
                )
                .await?
            }
        };
        let Some(payment_id) = payment_id else {
            return Err(MerchantRefundError::UnknownPayment(named));
        };
        let recorded = j
            .record_merchant_refund(NewMerchantRefund {
                payment_id,
                acquirer: refund.acquirer.clone(),
                merchant_id: refund.merchant_id.clone(),
                reference: refund.reference.clone(),
                amount: refund.amount,
                reason: refund.reason,
                trace: refund.trace,
            })
            .await
            .map_err(|e| MerchantRefundError::of(e, &named))?;
        let r = &recorded.refund;
        if recorded.repeat {
            tracing::info!(
                acquirer = %refund.acquirer,
                reference = %refund.reference,
                refund_id = %r.id,
                "merchant refund repeated; already journaled, nothing changed"
            );
        } else {
            tracing::info!(
                acquirer = %refund.acquirer,
                reference = %refund.reference,
                refund_id = %r.id,
                payment_id = %r.payment_id,
                amount = r.amount.minor(),
                currency = %r.amount.currency(),
                scheme = %r.origin.scheme,
                "merchant refund journaled; the wallet is asked to credit the payer"
            );
        }
        Ok(recorded)
    }
}

/// The refund advices of one acquirer's link, acted on by the gateway.
pub(super) struct Advices {
    pub(super) inner: Weak<Inner>,
    pub(super) acquirer: String,
}

impl Advices {
    pub(super) fn shared(inner: &Arc<Inner>, acquirer: &str) -> Arc<dyn AdviceHandler> {
        Arc::new(Advices {
            inner: Arc::downgrade(inner),
            acquirer: acquirer.to_owned(),
        })
    }
}

impl AdviceHandler for Advices {
    fn refund_advice(&self, advice: RefundAdvice) -> AdviceFuture {
        let inner = self.inner.upgrade();
        let acquirer = self.acquirer.clone();
        Box::pin(async move {
            match inner {
                Some(inner) => Gateway { inner }.refund_advice(&acquirer, advice).await,
                // Shutting down: not accepted now; the acquirer repeats it.
                None => Some(codes::malfunction()),
            }
        })
    }
}

impl Gateway {
    /// A refund advice (0220 / 0221) from `acquirer`'s link: the merchant refund it reports,
    /// journaled with its wallet credit; the DE39 to answer (`00` once durable, or why not), or
    /// `None` while the payment's own outcome is still open (the acquirer repeats the advice).
    pub async fn refund_advice(&self, acquirer: &str, a: RefundAdvice) -> Option<ResponseCode> {
        let Ok(amount) = Amount::from_minor(a.amount, a.currency) else {
            return Some(codes::invalid_amount());
        };
        let refund = MerchantRefund {
            acquirer: acquirer.to_owned(),
            original: Original::Trace(a.original.clone()),
            merchant_id: Some(a.merchant_id.clone()).filter(|m| !m.is_empty()),
            reference: a.rrn.clone(),
            amount,
            reason: String::new(),
            trace: AcquirerData {
                stan: Some(a.stan.clone()),
                transmitted: Some(a.transmitted.clone()),
                rrn: Some(a.rrn.clone()),
                auth_code: a.auth_code.clone(),
                response_code: Some(codes::accepted().as_str().to_owned()),
            },
        };
        let count = |outcome: &str| {
            crate::telemetry::metrics::global()
                .refund_advices
                .get_or_create(&crate::telemetry::metrics::OutcomeLabels {
                    outcome: outcome.to_owned(),
                })
                .inc();
        };
        match self.merchant_refund(refund).await {
            Ok(r) => {
                count(if r.repeat { "repeat" } else { "accepted" });
                Some(codes::accepted())
            }
            Err(e @ MerchantRefundError::Open { .. }) => {
                count("pending");
                tracing::info!(
                    acquirer,
                    rrn = %a.rrn,
                    "refund advice left unanswered for now: {e}; the acquirer repeats it"
                );
                None
            }
            Err(e) => {
                let code = e.response_code();
                if matches!(e, MerchantRefundError::Unavailable(_)) {
                    count("not_accepted");
                    tracing::error!(
                        acquirer,
                        rrn = %a.rrn,
                        "refund advice not accepted ({}): {e}; the acquirer repeats it",
                        code.as_str()
                    );
                } else {
                    count("refused");
                    tracing::warn!(
                        acquirer,
                        rrn = %a.rrn,
                        repeat = a.repeat,
                        "refund advice refused with {}: {e}",
                        code.as_str()
                    );
                }
                Some(code)
            }
        }
    }
}
