//! The log lines and counters of journaled state changes. The journal writer calls these after a
//! batch is committed, so each durable change is logged exactly once, whichever path made it
//! (a request, a reversal finishing in the background, start-up recovery). Each line names the
//! payment (`payment_id`, `payment_request_id`, `client_id`, `scheme`), the HTTP request that
//! created it (`request_id`) and the acquirer trace (`stan`, `rrn`) when known. States that need
//! a person are logged at `error` with an `action` field saying what to do (spec/operations.md §1).

use super::{NoticeKind, NoticeState, OutboxNotice, Payment, PaymentState, Refund, RefundState};

use crate::telemetry::metrics;

/// What an operator does about a payment in MANUAL_REVIEW.
pub const MANUAL_REVIEW_ACTION: &str = "ask the acquirer whether the authorisation (STAN/RRN) \
     stands; then `qrbridge admin review resolve PAYMENT_ID --outcome reversed|approved --note TEXT`";

/// What an operator does about a parked notice.
pub const PARKED_ACTION: &str = "check the wallet's notify_url and its acknowledgement; then \
     `qrbridge admin notices requeue NOTICE_ID` (or tell the wallet to inquire)";

/// A payment entered `p.state`.
pub fn payment_changed(p: &Payment) {
    let request_id = p.origin.request_id.as_deref().unwrap_or("");
    let stan = p.acquirer.stan.as_deref().unwrap_or("");
    let rrn = p.acquirer.rrn.as_deref().unwrap_or("");
    let code = p.acquirer.response_code.as_deref().unwrap_or("");
    let note = p.note.as_deref().unwrap_or("");
    let previous = p
        .history
        .iter()
        .rev()
        .nth(1)
        .map(|c| c.state.as_str())
        .unwrap_or("");
    macro_rules! line {
        ($level:ident, $($rest:tt)*) => {
            tracing::$level!(
                target: "qrbridge::payment",
                payment_id = %p.id,
                payment_request_id = %p.request_id,
                client_id = %p.client_id,
                scheme = %p.origin.scheme,
                request_id,
                state = p.state.as_str(),
                previous,
                stan,
                rrn,
                acquirer = %p.routing.acquirer,
                $($rest)*
            )
        };
    }
    let m = metrics::global();
    if matches!(
        p.state,
        PaymentState::Success | PaymentState::Failed | PaymentState::Unknown
    ) && matches!(previous, "SENT" | "QUOTED")
    {
        // Intent to outcome, from the record's own times (ms); an order's time waiting for the
        // wallet's result is not the gateway's.
        let intent = p
            .history
            .iter()
            .find(|c| matches!(c.state, PaymentState::Quoted | PaymentState::Sent))
            .map_or(p.created_at_ms, |c| c.at_ms);
        let ms = p.updated_at_ms.saturating_sub(intent);
        m.payment_duration
            .observe(std::time::Duration::from_millis(ms).as_secs_f64());
    }
    match p.state {
        PaymentState::Ordered => line!(
            debug,
            amount = %p.quote.merchant_amount,
            "payment order recorded: waiting for the wallet's result"
        ),
        PaymentState::Closed => {
            m.payment("order_closed");
            line!(
                info,
                note,
                "payment order closed: the wallet did not debit its user"
            );
        }
        PaymentState::Cancelled if previous == "ORDERED" => {
            // A person may need to look: the wallet never told us whether it debited its user.
            m.payment("order_cancelled");
            line!(
                warn,
                note,
                "payment order cancelled: the wallet's result stayed unknown; it is asked to \
                 cancel (cancelPayment) so a debited user is made whole"
            );
        }
        PaymentState::Quoted => line!(debug, amount = %p.quote.merchant_amount, "payment recorded"),
        PaymentState::Sent => line!(debug, "authorisation (0200) sent"),
        PaymentState::Success if previous == "SENT" => {
            m.payment("approved");
            line!(
                info,
                response_code = code,
                auth_code = p.acquirer.auth_code.as_deref().unwrap_or(""),
                "payment approved"
            );
        }
        PaymentState::Failed if !code.is_empty() => {
            m.payment("declined");
            line!(
                info,
                response_code = code,
                "payment declined by the acquirer"
            );
        }
        PaymentState::Failed => {
            m.payment("not_sent");
            line!(warn, note, "payment failed before reaching the acquirer");
        }
        PaymentState::Unknown => {
            m.payment("unknown");
            line!(
                warn,
                note,
                "no usable answer from the acquirer: the payment will be reversed"
            );
        }
        PaymentState::Reversing => line!(info, "reversal (0400) queued"),
        PaymentState::Reversed => {
            m.reversal("reversed");
            line!(
                info,
                response_code = code,
                "payment reversed: no money moved"
            );
        }
        PaymentState::Cancelled => {
            m.reversal("cancelled");
            line!(info, "payment cancelled: the money went back");
        }
        PaymentState::ManualReview => {
            m.reversal("manual_review");
            m.manual_review.inc();
            line!(
                error,
                note,
                action = MANUAL_REVIEW_ACTION,
                "payment needs MANUAL REVIEW: its outcome at the acquirer is not known"
            );
        }
        PaymentState::Success | PaymentState::PartiallyRefunded | PaymentState::Refunded => {
            line!(info, refunded = %p.refunded, "payment updated");
        }
    }
}

/// A refund entered `r.state`.
pub fn refund_changed(r: &Refund) {
    let request_id = r.origin.request_id.as_deref().unwrap_or("");
    let stan = r.acquirer.stan.as_deref().unwrap_or("");
    let rrn = r.acquirer.rrn.as_deref().unwrap_or("");
    let code = r.acquirer.response_code.as_deref().unwrap_or("");
    macro_rules! line {
        ($level:ident, $($rest:tt)*) => {
            tracing::$level!(
                target: "qrbridge::refund",
                refund_id = %r.id,
                refund_request_id = %r.request_id,
                payment_id = %r.payment_id,
                client_id = %r.client_id,
                scheme = %r.origin.scheme,
                request_id,
                state = r.state.as_str(),
                amount = %r.amount,
                stan,
                rrn,
                $($rest)*
            )
        };
    }
    match r.state {
        RefundState::Pending => line!(debug, "refund recorded"),
        RefundState::Success => line!(info, response_code = code, "refund approved"),
        RefundState::Failed => line!(
            info,
            response_code = code,
            note = r.note.as_deref().unwrap_or(""),
            "refund failed"
        ),
        RefundState::Unknown => line!(
            warn,
            note = r.note.as_deref().unwrap_or(""),
            "no usable answer to the refund: it will be reversed"
        ),
    }
}

macro_rules! notice_line {
    ($level:ident, $n:expr, $($rest:tt)*) => {{
        let n: &OutboxNotice = $n;
        let (payment_id, refund_id) = match n.kind {
            NoticeKind::Payment | NoticeKind::PaymentInquiry | NoticeKind::PaymentCancel => {
                (n.subject.as_str(), "")
            }
            NoticeKind::Refund | NoticeKind::RefundCredit => ("", n.subject.as_str()),
        };
        tracing::$level!(
            target: "qrbridge::notify",
            notice_id = %n.notice_id,
            payment_id,
            refund_id,
            client_id = %n.client_id,
            scheme = %n.scheme,
            request_id = n.request_id.as_deref().unwrap_or(""),
            state = ?n.state,
            attempts = n.attempts,
            last_error = n.last_error.as_deref().unwrap_or(""),
            $($rest)*
        )
    }};
}

/// A notice changed in the journal (written, attempted, parked, requeued).
pub fn notice_changed(n: &OutboxNotice) {
    match n.state {
        NoticeState::Parked => {
            metrics::global().notification("parked");
            notice_line!(
                error,
                n,
                action = PARKED_ACTION,
                "notice PARKED: the wallet never acknowledged it"
            );
        }
        NoticeState::Pending if n.attempts == 0 => notice_line!(debug, n, "notice queued"),
        _ => {}
    }
}

/// The deliverer recorded an attempt on `n` (now in its new state); `next_in_ms` is the wait
/// before the next attempt when it failed.
pub fn notice_attempted(n: &OutboxNotice, next_in_ms: u64) {
    let m = metrics::global();
    match n.state {
        NoticeState::Sent => {
            m.notification("sent");
            notice_line!(info, n, "notification acknowledged by the wallet");
        }
        NoticeState::Pending => {
            m.notification("failed");
            notice_line!(warn, n, next_in_ms, "notification attempt failed; retrying");
        }
        NoticeState::Parked => m.notification("failed"),
        NoticeState::NotNeeded => {
            notice_line!(debug, n, "the client takes no notifications in this scheme")
        }
    }
}
