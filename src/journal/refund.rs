//! The refund record and its state machine.
//!
//! ```text
//! PENDING ──Approved──► SUCCESS
//!    ├──────Declined──► FAILED        (its amount is released for other refunds)
//!    └──────Unknown───► UNKNOWN ──Approved / Declined──► SUCCESS / FAILED   (after inquiry)
//! ```
//!
//! A refund reserves its amount when it is created: the journal checks, in the same write
//! transaction, that the payment's non-failed refunds plus this one stay within the original
//! merchant amount. The payer-currency amount is the payer's share at the original quote, see
//! [`payer_share`].

use std::fmt;

use serde::{Deserialize, Serialize};

use super::JournalError;
use super::codec;
use super::ids::{PaymentId, RefundId};
use super::outbox::Origin;
use super::payment::AcquirerData;
use crate::money::Amount;

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundState {
    /// Reserved; being sent to the acquirer.
    Pending,
    /// The acquirer approved it.
    Success,
    /// Declined or never sent; its amount no longer counts against the payment.
    Failed,
    /// No usable answer; still counts against the payment until resolved.
    Unknown,
}

impl RefundState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundState::Pending => "PENDING",
            RefundState::Success => "SUCCESS",
            RefundState::Failed => "FAILED",
            RefundState::Unknown => "UNKNOWN",
        }
    }

    /// Whether the outcome is still open (PENDING, UNKNOWN).
    pub fn is_unresolved(self) -> bool {
        matches!(self, RefundState::Pending | RefundState::Unknown)
    }
}

impl fmt::Display for RefundState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refund to reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    /// The wallet client.
    pub client_id: String,
    /// The wallet's refund request id: one refund per (client, request id).
    pub request_id: String,
    /// The payment refunded (it must belong to the same client).
    pub payment_id: PaymentId,
    /// How much, in the merchant's currency (the payment's merchant amount currency).
    pub amount: Amount,
    /// Why (free text from the wallet).
    pub reason: String,
    /// The scheme the request came in, for notifications.
    pub origin: Origin,
    /// The trace of the refund's 0200 (STAN, DE7, RRN), journaled with the reservation before the
    /// 0200 is handed to the link, so recovery can reverse a refund in flight at a crash.
    pub trace: AcquirerData,
}

/// What happened to a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundEvent {
    /// PENDING or UNKNOWN → SUCCESS.
    Approved {
        /// STAN, RRN, auth code, response code.
        acquirer: AcquirerData,
    },
    /// PENDING or UNKNOWN → FAILED (declined, or never sent).
    Declined {
        /// STAN, RRN, response code (may be empty when never sent).
        acquirer: AcquirerData,
    },
    /// PENDING → UNKNOWN.
    Unknown {
        /// Why.
        cause: String,
        /// What is known of the message.
        acquirer: AcquirerData,
    },
}

impl RefundEvent {
    /// The event's name, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            RefundEvent::Approved { .. } => "Approved",
            RefundEvent::Declined { .. } => "Declined",
            RefundEvent::Unknown { .. } => "Unknown",
        }
    }
}

/// A journaled refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// Our id.
    pub id: RefundId,
    /// The wallet client.
    pub client_id: String,
    /// The wallet's refund request id.
    pub request_id: String,
    /// The payment refunded.
    pub payment_id: PaymentId,
    /// Merchant currency.
    #[serde(with = "codec::amount")]
    pub amount: Amount,
    /// Payer currency, at the original quote (see [`payer_share`]).
    #[serde(with = "codec::amount")]
    pub payer_amount: Amount,
    /// Why.
    pub reason: String,
    /// The scheme the request came in (records from before schemes: native, no reference).
    #[serde(default)]
    pub origin: Origin,
    /// Where it stands.
    pub state: RefundState,
    /// What the acquirer said.
    #[serde(default)]
    pub acquirer: AcquirerData,
    /// The last cause given with an unknown outcome.
    #[serde(default)]
    pub note: Option<String>,
    /// When reserved, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Last change, ms since the Unix epoch.
    pub updated_at_ms: u64,
    /// Who started it: the wallet (records from before version 4), or the merchant at the acquirer.
    #[serde(default, skip_serializing_if = "Initiator::is_wallet")]
    pub initiator: Initiator,
}

/// Who started a refund.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Initiator {
    /// The wallet asked (`/v1/refunds`, a scheme's refund): we sent the 0200 to the acquirer.
    #[default]
    Wallet,
    /// The merchant refunded at its acquirer, which told us (a 0220 refund advice, or an operator
    /// acting for it); the wallet is asked to credit the payer (a `RefundCredit` notice).
    Merchant {
        /// The acquirer link name (`[[acquirers]] name`) the refund came from.
        acquirer: String,
        /// The acquirer's reference for the refund (its DE37), unique per acquirer: a repeat
        /// with the same reference is the same refund.
        reference: String,
    },
}

impl Initiator {
    /// Whether the wallet started it.
    pub fn is_wallet(&self) -> bool {
        matches!(self, Initiator::Wallet)
    }
}

/// A refund that started at the merchant, as its acquirer reports it: already done on the
/// domestic side (the merchant's account is debited), to be credited to the payer by the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMerchantRefund {
    /// The payment refunded (found from the advice's original data elements).
    pub payment_id: PaymentId,
    /// The acquirer link it came from; it must be the payment's acquirer.
    pub acquirer: String,
    /// The merchant the acquirer names (DE42), if any; it must be the payment's routed merchant.
    pub merchant_id: Option<String>,
    /// The acquirer's reference for this refund (1 to 64 of `A-Z a-z 0-9 - _ . :`): one refund per
    /// (acquirer, reference); a repeat returns the first.
    pub reference: String,
    /// How much, in the payment's merchant currency.
    pub amount: Amount,
    /// Why (from the acquirer or operator; may be empty).
    pub reason: String,
    /// What the acquirer sent (the advice's STAN, DE7, RRN, auth code).
    pub trace: AcquirerData,
}

/// A merchant refund journaled (SUCCESS, with its `RefundCredit` notice), or found again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantRefundRecorded {
    /// The refund.
    pub refund: Refund,
    /// True when this (acquirer, reference) was journaled before: nothing changed now.
    pub repeat: bool,
}

impl Refund {
    /// The refund after `event`, or [`JournalError::IllegalRefundTransition`].
    pub fn apply(&self, event: RefundEvent, now_ms: u64) -> Result<Refund, JournalError> {
        use RefundEvent as E;
        use RefundState as S;
        let state = match (self.state, &event) {
            (S::Pending | S::Unknown, E::Approved { .. }) => S::Success,
            (S::Pending | S::Unknown, E::Declined { .. }) => S::Failed,
            (S::Pending, E::Unknown { .. }) => S::Unknown,
            _ => {
                return Err(JournalError::IllegalRefundTransition {
                    refund: self.id,
                    from: self.state,
                    event: event.name(),
                });
            }
        };
        let mut next = self.clone();
        match event {
            E::Approved { acquirer } | E::Declined { acquirer } => next.acquirer.merge(acquirer),
            E::Unknown { cause, acquirer } => {
                next.acquirer.merge(acquirer);
                next.note = Some(cause);
            }
        }
        next.state = state;
        next.updated_at_ms = now_ms;
        Ok(next)
    }
}

/// The payer-currency part of refunding `refund` merchant units when `before` were already
/// reserved by earlier refunds: `P(before + refund) − P(before)` with
/// `P(x) = round_half_up(payer_amount × x / merchant_amount)`, exact integer arithmetic.
///
/// `payer_amount` is the quote's `merchant_amount × rate`, rounded once; sharing it out in
/// proportion keeps the original rate (within one minor unit per piece) and makes refunds that add
/// up to the whole merchant amount add up to exactly the whole payer amount, however they are
/// split. Fees are not refunded.
pub fn payer_share(
    merchant_amount: u64,
    payer_amount: u64,
    before: u64,
    refund: u64,
) -> Option<u64> {
    let p = |x: u64| -> Option<u64> {
        if merchant_amount == 0 {
            return None;
        }
        let num = u128::from(payer_amount).checked_mul(u128::from(x))?;
        let den = u128::from(merchant_amount);
        let q = num / den;
        let r = num % den;
        let rounded = if r * 2 >= den { q + 1 } else { q };
        u64::try_from(rounded).ok()
    };
    let after = before.checked_add(refund)?;
    if after > merchant_amount {
        return None;
    }
    p(after)?.checked_sub(p(before)?)
}

#[cfg(test)]
mod tests {
    use super::payer_share;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        /// However the merchant amount is split, the payer pieces add up to the payer amount and
        /// each is within one minor unit of its exact proportion.
        #[test]
        fn any_split_adds_up_and_each_piece_is_proportional(
            merchant in 1u64..1_000_000_000_000,
            payer in 0u64..1_000_000_000_000,
            cuts in proptest::collection::vec(any::<u64>(), 0..8),
        ) {
            // Cut points in 0..=merchant → pieces.
            let mut points: Vec<u64> = cuts
                .iter()
                .map(|c| c % (merchant + 1))
                .chain([0, merchant])
                .collect();
            points.sort_unstable();
            let mut sum = 0u64;
            for w in points.windows(2) {
                let (before, piece) = (w[0], w[1] - w[0]);
                let share = payer_share(merchant, payer, before, piece).unwrap();
                // |share − payer × piece / merchant| ≤ 1, in integers.
                let exact_num = u128::from(payer) * u128::from(piece);
                let m = u128::from(merchant);
                let lo = u128::from(share).saturating_sub(1) * m;
                let hi = (u128::from(share) + 1) * m;
                prop_assert!(lo <= exact_num && exact_num <= hi, "piece {piece} share {share}");
                sum += share;
            }
            prop_assert_eq!(sum, payer);
        }
    }

    #[test]
    fn pieces_add_up_to_the_whole_payer_amount() {
        // 100.00 SGD paid as 333.37 MYR, refunded 33.33 + 33.33 + 33.34.
        let pieces: Vec<u64> = [(0, 3333), (3333, 3333), (6666, 3334)]
            .iter()
            .map(|&(b, r)| payer_share(10_000, 33_337, b, r).unwrap())
            .collect();
        assert_eq!(pieces.iter().sum::<u64>(), 33_337);
        // Each piece is its proportion of the payer amount, within one minor unit.
        assert_eq!(pieces, vec![11_111, 11_111, 11_115]);
    }

    #[test]
    fn refusing_more_than_the_original() {
        assert_eq!(payer_share(100, 250, 60, 41), None);
        assert_eq!(payer_share(100, 250, 60, 40), Some(100));
        assert_eq!(payer_share(0, 250, 0, 0), None);
    }

    #[test]
    fn zero_exponent_payer_currency_rounds_half_up() {
        // 1.00 SGD = 113 JPY; half of it is 56.5 → 57 first, then 56.
        assert_eq!(payer_share(100, 113, 0, 50), Some(57));
        assert_eq!(payer_share(100, 113, 50, 50), Some(56));
    }
}
