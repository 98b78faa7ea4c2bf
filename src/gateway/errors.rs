//! Room errors → [`ApiError`]: the one place the pipeline translates what the parser, the FX room,
//! the journal and the acquirer link say into wallet result codes. (The server then maps each
//! `ApiError` to a status and a response, in `payment/error.rs` and the schemes.)

use crate::acquirer::link::{LinkError, LinkSide};
use crate::emv::EmvError;
use crate::fx::FxError;
use crate::journal::{JournalError, PaymentId, PaymentState};
use crate::payment::{ApiError, Side};

/// A QR code the parser refused: QR_INVALID with the kind, path and offset.
pub fn qr_invalid(e: &EmvError) -> ApiError {
    let path = e.path.to_string();
    ApiError::QrInvalid {
        detail: format!(
            "{} at {} (offset {}): {e}",
            e.kind.as_str(),
            if path.is_empty() { "payload" } else { &path },
            e.offset
        ),
    }
}

/// FX failures: quotes expired / used / unknown, rates missing or stale, bad amounts.
pub fn fx(e: FxError) -> ApiError {
    match e {
        FxError::QuoteExpired { id, expired_at } => ApiError::QuoteExpired {
            quote_id: id,
            expired_at,
        },
        FxError::QuoteConsumed { id } => ApiError::QuoteConsumed { quote_id: id },
        FxError::QuoteNotFound { id } => ApiError::OrderNotFound { what: "quote", id },
        FxError::ZeroAmount
        | FxError::Amount(_)
        | FxError::Currency(_)
        | FxError::ConversionOverflow { .. } => ApiError::ParamIllegal {
            field: "amount".to_owned(),
            reason: e.to_string(),
        },
        FxError::MissingRate { pair, .. } | FxError::RateStale { pair, .. } => {
            let reason = e.to_string();
            ApiError::RateUnavailable {
                pair: pair.to_string(),
                reason,
            }
        }
        FxError::SourceUnavailable { .. }
        | FxError::MalformedFeed { .. }
        | FxError::NonPositiveRate { .. } => ApiError::RateUnavailable {
            pair: "-".to_owned(),
            reason: e.to_string(),
        },
        FxError::MarkupTooHigh { .. }
        | FxError::RandomUnavailable
        | FxError::RefundExceedsQuote { .. } => ApiError::Unknown {
            side: Side::Gateway,
            reason: e.to_string(),
        },
    }
}

/// Journal failures. Limits and refund totals are the wallet's; the rest is ours.
pub fn journal(e: JournalError) -> ApiError {
    if e.is_limit_exceeded() {
        return ApiError::AmountExceedLimit {
            limit: e.to_string(),
        };
    }
    if let JournalError::RefundExceedsPayment {
        payment,
        requested,
        remaining,
    } = &e
    {
        return ApiError::RefundAmountExceed {
            payment_id: payment.to_string(),
            requested: format!("{requested} minor units"),
            refundable: format!("{remaining} minor units"),
        };
    }
    if let JournalError::NotRefundable {
        payment,
        state: PaymentState::Refunded,
    } = &e
    {
        return ApiError::RefundAmountExceed {
            payment_id: payment.to_string(),
            requested: "any amount".to_owned(),
            refundable: "nothing (fully refunded)".to_owned(),
        };
    }
    if let JournalError::NotRefundable { payment, state } = &e {
        return ApiError::ParamIllegal {
            field: "paymentId".to_owned(),
            reason: format!("payment {payment} is {state} and cannot be refunded"),
        };
    }
    if let JournalError::QuoteUsed { quote_id } = e {
        return ApiError::QuoteConsumed { quote_id };
    }
    if let JournalError::QuoteNotShared { quote_id } = e {
        return ApiError::OrderNotFound {
            what: "quote",
            id: quote_id,
        };
    }
    if e.is_unavailable() {
        return ApiError::Unavailable {
            reason: format!("journal: {e}"),
        };
    }
    ApiError::Unknown {
        side: Side::Gateway,
        reason: format!("journal: {e}"),
    }
}

/// A link failure: nothing reached the acquirer.
pub fn link(payment: Option<PaymentId>, e: &LinkError) -> ApiError {
    let side = match e.side() {
        LinkSide::Ours => "ours",
        LinkSide::Acquirer => "the acquirer",
        LinkSide::Network => "the network",
    };
    ApiError::Unavailable {
        reason: format!(
            "acquirer link ({side}): {e}; nothing was sent{}",
            payment
                .map(|p| format!(", payment {p} failed"))
                .unwrap_or_default()
        ),
    }
}

/// The acquirer may have acted but its answer could not be journaled: U, never F.
pub fn unknown_outcome(what: impl std::fmt::Display, e: &ApiError) -> ApiError {
    ApiError::Unknown {
        side: Side::Gateway,
        reason: format!("{what}: the outcome could not be recorded ({e}); inquire later"),
    }
}

/// Something that cannot happen with consistent data (an id that does not fit the wire, ...).
pub fn internal(reason: impl Into<String>) -> ApiError {
    ApiError::Unknown {
        side: Side::Gateway,
        reason: reason.into(),
    }
}
