//! Which state changes the wallet is told about after its request was answered, and what it is
//! told: the journal asks these rules inside the write transaction of every payment and refund
//! event (`journal::NoticeRules`), so the notice and the state change commit together.
//!
//! * A payment that ends REVERSED (its pay was answered U / PROCESSING, or never answered before a
//!   restart) or CANCELLED (whether the cancel was answered S or PROCESSING).
//! * A refund that ends SUCCESS or FAILED, every time: wallets treat refunds as asynchronous.
//! * Not a payment whose pay answer carried its final state (SUCCESS, FAIL).
//! * A refund that started at the merchant (reported by the acquirer): the wallet is asked to
//!   credit the payer (`RefundCredit`, notice id `N-<refund id>-CREDIT`), in the payment's scheme.
//! * A payment of a wallet that debits its user first (Alipay+ MPP, `aplus`) that ends FAILED,
//!   REVERSED or CANCELLED: a `PaymentCancel` (the wallet's `cancelPayment`), never a result.
//! * A payment order of such a wallet (ORDERED): a `PaymentInquiry` (the wallet's
//!   `inquiryPayment`, notice id `N-<payment id>-INQUIRY`), due at the order's expiry; the
//!   deliverer drops it (NOT_NEEDED) if the wallet's result came first.
//!
//! The notice id is `N-<payment or refund id>-<state>`: one state change, one id, stable across
//! retries and restarts (the wallet dedupes on it).

use std::sync::Arc;

use crate::journal::{
    NoticeDraft, NoticeKind, NoticeRules, Payment, PaymentState, Refund, RefundState,
};

/// The gateway's notice rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Notices;

/// The rules, shared for [`RedbJournal::set_notice_rules`](crate::journal::RedbJournal::set_notice_rules).
pub fn rules() -> Arc<dyn NoticeRules> {
    Arc::new(Notices)
}

fn draft<T: serde::Serialize>(
    kind: NoticeKind,
    id: String,
    state: &str,
    body: Result<T, crate::payment::ApiError>,
) -> Option<NoticeDraft> {
    let rendered = body
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::to_string(&b).map_err(|e| e.to_string()));
    match rendered {
        Ok(event) => Some(NoticeDraft {
            notice_id: format!("N-{id}-{state}"),
            kind,
            event,
        }),
        Err(e) => {
            // Ids were checked when the request came in: this is a bug, and the wallet can still
            // learn the state by inquiry. The state change must not be refused for it.
            tracing::error!("notice for {id} ({state}) not rendered: {e}");
            None
        }
    }
}

impl NoticeRules for Notices {
    fn payment(&self, before: &Payment, after: &Payment) -> Option<NoticeDraft> {
        if crate::payment::DEBITS_FIRST.contains(&after.origin.scheme.as_str()) {
            // The wallet debited its user before the 0200: a payment that ends without the
            // merchant being paid (declined, failed before sending, reversed, cancelled) makes
            // the gateway call the wallet's cancelPayment so the user is made whole.
            if before.state == after.state
                || !matches!(
                    after.state,
                    PaymentState::Failed | PaymentState::Reversed | PaymentState::Cancelled
                )
            {
                return None;
            }
            return draft(
                NoticeKind::PaymentCancel,
                after.id.to_string(),
                after.state.as_str(),
                super::pay::response_of(after),
            );
        }
        if before.state == after.state
            || !matches!(
                after.state,
                PaymentState::Reversed | PaymentState::Cancelled
            )
        {
            return None;
        }
        draft(
            NoticeKind::Payment,
            after.id.to_string(),
            after.state.as_str(),
            super::pay::response_of(after),
        )
    }

    fn refund(&self, before: &Refund, after: &Refund) -> Option<NoticeDraft> {
        if !before.state.is_unresolved()
            || !matches!(after.state, RefundState::Success | RefundState::Failed)
        {
            return None;
        }
        draft(
            NoticeKind::Refund,
            after.id.to_string(),
            after.state.as_str(),
            super::refund::response_of(after),
        )
    }

    fn order(&self, order: &Payment) -> Option<NoticeDraft> {
        // An order of a wallet that debits first: if no result came by the order's expiry (the
        // notice is due then), the wallet is asked what became of it (inquiryPayment).
        if !crate::payment::DEBITS_FIRST.contains(&order.origin.scheme.as_str()) {
            return None;
        }
        draft(
            NoticeKind::PaymentInquiry,
            order.id.to_string(),
            "INQUIRY",
            super::pay::response_of(order),
        )
    }

    fn refund_credit(&self, _payment: &Payment, refund: &Refund) -> Option<NoticeDraft> {
        draft(
            NoticeKind::RefundCredit,
            refund.id.to_string(),
            "CREDIT",
            super::refund::response_of(refund),
        )
    }
}
