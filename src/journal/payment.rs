//! The payment record and its state machine (`spec/journal.md` §3).
//!
//! ```text
//! ORDERED ─Debited─► SENT   (a debits-first scheme's order: the wallet debited its user)
//!   ├─Closed─► CLOSED          (the wallet did not debit: no money moved anywhere)
//!   └─OrderCancelled─► CANCELLED (the wallet's result stayed unknown: it is asked to cancel)
//! QUOTED ─Sent─► SENT ─Approved─► SUCCESS ─refund ok─► PARTIALLY_REFUNDED ─refunds = original─► REFUNDED
//!   │              │                 │        (one refund of the whole amount: SUCCESS ─► REFUNDED)
//!   NotSent        ├─Declined─► FAILED   (SENT ─NotSent─► FAILED too: the link sent nothing)
//!   ▼              │                 └─Reversing (a cancel; no refund reserved)─► REVERSING ─Reversed─► CANCELLED
//! FAILED           └─Unknown─► UNKNOWN ─Reversing─► REVERSING ─Reversed─► REVERSED
//!                                │                      │
//!                                └─ManualReview─► MANUAL_REVIEW ◄─ManualReview─┘
//! ```
//!
//! [`Payment::apply`] is pure: it checks the transition and returns the new record, or
//! [`JournalError::IllegalTransition`]; the store runs it inside the write transaction.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::JournalError;
use super::codec;
use super::ids::{CustomerId, PaymentId};
use super::outbox::Origin;
use crate::fx::Quote;
use crate::money::Amount;
use crate::payment::Merchant;

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentState {
    /// A payment order handed to a wallet that debits its user first (Alipay+ MPP), waiting for
    /// its result: nothing sent to the acquirer, nothing debited that we know of.
    Ordered,
    /// An order the wallet did not pay (it said so, or its answer to our inquiry did): no money
    /// moved anywhere.
    Closed,
    /// Intent recorded; nothing sent to the acquirer yet.
    Quoted,
    /// The authorisation is about to be, or has been, handed to the acquirer link.
    Sent,
    /// Approved by the acquirer.
    Success,
    /// Declined, or never sent: no money moved.
    Failed,
    /// No usable answer: a reversal must follow.
    Unknown,
    /// A reversal (of an unknown outcome, or a cancel of an approval) is running.
    Reversing,
    /// The reversal of an unknown outcome was acknowledged: no money moved.
    Reversed,
    /// The cancel (reversal of an approval) was acknowledged: the money went back.
    Cancelled,
    /// The reversal bound was hit, or no reversal could be queued: a person must look.
    ManualReview,
    /// Part of the amount was refunded.
    PartiallyRefunded,
    /// The whole amount was refunded.
    Refunded,
}

impl PaymentState {
    /// The wire name (`PARTIALLY_REFUNDED`).
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Ordered => "ORDERED",
            PaymentState::Closed => "CLOSED",
            PaymentState::Quoted => "QUOTED",
            PaymentState::Sent => "SENT",
            PaymentState::Success => "SUCCESS",
            PaymentState::Failed => "FAILED",
            PaymentState::Unknown => "UNKNOWN",
            PaymentState::Reversing => "REVERSING",
            PaymentState::Reversed => "REVERSED",
            PaymentState::Cancelled => "CANCELLED",
            PaymentState::ManualReview => "MANUAL_REVIEW",
            PaymentState::PartiallyRefunded => "PARTIALLY_REFUNDED",
            PaymentState::Refunded => "REFUNDED",
        }
    }

    /// Whether the outcome is still open and recovery must act on it (SENT, UNKNOWN, REVERSING;
    /// QUOTED too: nothing was sent, and recovery marks it failed). Not ORDERED: its inquiry
    /// notice, due at the order's expiry, resolves it.
    pub fn is_unresolved(self) -> bool {
        matches!(
            self,
            PaymentState::Quoted
                | PaymentState::Sent
                | PaymentState::Unknown
                | PaymentState::Reversing
        )
    }
}

impl fmt::Display for PaymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The quote the payment was priced with, as it was (quotes themselves are short-lived).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteSnapshot {
    /// The quote's id (UUIDv7 text).
    pub quote_id: String,
    /// What the merchant is paid.
    #[serde(with = "codec::amount")]
    pub merchant_amount: Amount,
    /// `merchant_amount × rate`, rounded: what the payer pays before fees.
    #[serde(with = "codec::amount")]
    pub payer_amount: Amount,
    /// Fixed fees in the payer's currency (not refunded).
    #[serde(with = "codec::amount")]
    pub fees: Amount,
    /// Payer units per merchant unit at the source's mid rate.
    #[serde(with = "codec::decimal")]
    pub mid_rate: Decimal,
    /// `mid_rate` marked up.
    #[serde(with = "codec::decimal")]
    pub rate: Decimal,
    /// Markup over the mid rate, basis points.
    pub markup_bps: u32,
    /// The rate source's name.
    pub rate_source: String,
    /// The rate's as-of time, ms since the Unix epoch.
    pub rate_as_of_ms: u64,
}

impl QuoteSnapshot {
    /// The parts of `quote` the journal keeps.
    pub fn of(quote: &Quote) -> Self {
        QuoteSnapshot {
            quote_id: quote.id.to_string(),
            merchant_amount: quote.merchant_amount,
            payer_amount: quote.payer_amount,
            fees: quote.fees,
            mid_rate: quote.mid_rate,
            rate: quote.rate,
            markup_bps: quote.markup_bps,
            rate_source: quote.rate_source.to_string(),
            rate_as_of_ms: super::unix_ms(quote.rate_as_of),
        }
    }
}

/// Where the payment goes: the acquirer link and the merchant as the QR named it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Routing {
    /// The configured acquirer link's name.
    pub acquirer: String,
    /// The merchant id at the acquirer (DE42).
    pub merchant_id: String,
    /// The terminal id, when the QR carries one.
    #[serde(default)]
    pub terminal_id: Option<String>,
    /// The QR scheme or merchant-account template (e.g. `SG.PAYNOW`).
    pub scheme: String,
    /// The QR's reference label (EMV 62.05), when present.
    #[serde(default)]
    pub qr_reference: Option<String>,
}

/// What the acquirer said and how the message was identified. Every field is optional: they are
/// learnt over the payment's life and merged (a later value replaces an earlier one).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AcquirerData {
    /// DE11 STAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stan: Option<String>,
    /// DE7 transmission date and time, `MMDDhhmmss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transmitted: Option<String>,
    /// DE37 retrieval reference number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrn: Option<String>,
    /// DE38 authorisation code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_code: Option<String>,
    /// DE39 response code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<String>,
}

impl AcquirerData {
    /// Takes every field `patch` has.
    pub fn merge(&mut self, patch: AcquirerData) {
        let AcquirerData {
            stan,
            transmitted,
            rrn,
            auth_code,
            response_code,
        } = patch;
        for (slot, new) in [
            (&mut self.stan, stan),
            (&mut self.transmitted, transmitted),
            (&mut self.rrn, rrn),
            (&mut self.auth_code, auth_code),
            (&mut self.response_code, response_code),
        ] {
            if new.is_some() {
                *slot = new;
            }
        }
    }
}

/// What is recorded before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    /// The wallet client (from its credentials).
    pub client_id: String,
    /// The wallet's payment request id: one payment per (client, request id).
    pub request_id: String,
    /// The payer, as the wallet identifies them.
    pub customer: CustomerId,
    /// The quote it is priced with.
    pub quote: QuoteSnapshot,
    /// Where it goes.
    pub routing: Routing,
    /// The customer's daily limits, checked in the same transaction that records the intent.
    pub limits: DailyLimits,
    /// The scheme the request came in, for notifications.
    pub origin: Origin,
    /// The merchant as the code named it (EMV 59, 60, 58, 52; merchant id of the routed template).
    pub merchant: Merchant,
}

/// Daily limits per (client, customer, merchant currency, UTC day). Checked atomically when the
/// intent is recorded, so concurrent payments cannot overshoot them. A payment counts from its
/// intent; it stops counting when it ends FAILED, REVERSED or CANCELLED (no money moved or it went
/// back). Refunds do not give the allowance back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DailyLimits {
    /// Most payments a day.
    pub max_count: Option<u32>,
    /// Most merchant-currency minor units a day.
    pub max_amount: Option<u64>,
}

/// What a customer used on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DailyUsage {
    /// Payments counted.
    pub count: u32,
    /// Their merchant amounts, minor units.
    pub amount: u64,
}

/// The UTC day of `t`: days since 1970-01-01.
pub fn utc_day(t: std::time::SystemTime) -> u64 {
    super::unix_ms(t) / 86_400_000
}

/// Whether a payment in `state` still counts against its customer's daily limits.
pub(crate) fn counts_against_limits(state: PaymentState) -> bool {
    !matches!(
        state,
        PaymentState::Failed
            | PaymentState::Reversed
            | PaymentState::Cancelled
            | PaymentState::Closed
    )
}

/// Why a reversal runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReversalPurpose {
    /// The outcome was unknown.
    Unknown,
    /// The wallet cancelled an approved payment before cut-off.
    Cancel,
}

/// The reversal running (or run) for a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReversalLink {
    /// The reversal queue's id, when one was queued.
    pub reversal_id: Option<u64>,
    /// Why.
    pub purpose: ReversalPurpose,
}

/// One state change, kept for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    /// The state entered.
    pub state: PaymentState,
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
}

/// A journaled payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Our id.
    pub id: PaymentId,
    /// The wallet client.
    pub client_id: String,
    /// The wallet's payment request id.
    pub request_id: String,
    /// The payer (redacted in `Debug`).
    pub customer: CustomerId,
    /// The quote it was priced with.
    pub quote: QuoteSnapshot,
    /// Where it went.
    pub routing: Routing,
    /// The merchant as the code named it (records from before this field: empty, MCC `""`).
    #[serde(default)]
    pub merchant: Merchant,
    /// The scheme the request came in (records from before schemes: native, no reference).
    #[serde(default)]
    pub origin: Origin,
    /// What the acquirer said.
    #[serde(default)]
    pub acquirer: AcquirerData,
    /// Where it stands.
    pub state: PaymentState,
    /// The reversal, once one started.
    #[serde(default)]
    pub reversal: Option<ReversalLink>,
    /// The last reason given with a failure, unknown outcome or manual review.
    #[serde(default)]
    pub note: Option<String>,
    /// Refunded so far (successful refunds), merchant currency.
    #[serde(with = "codec::amount")]
    pub refunded: Amount,
    /// Reserved by refunds that have not failed (pending, unknown or successful), merchant
    /// currency; never above the merchant amount.
    #[serde(with = "codec::amount")]
    pub refunds_reserved: Amount,
    /// When recorded, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Last change, ms since the Unix epoch.
    pub updated_at_ms: u64,
    /// Every state entered, in order (starting with QUOTED, or ORDERED for an order).
    pub history: Vec<StateChange>,
}

/// What happened to a payment. Each event applies in some states only (see the module diagram).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentEvent {
    /// ORDERED → SENT: the wallet debited its user (its notification, or its answer to our
    /// inquiry); the authorisation is about to be handed to the link (durable before it is sent).
    Debited {
        /// The scheme's reference, now with the wallet's own payment id (replaces the order's).
        scheme_ref: Option<String>,
        /// Whatever is known of the 0200 already.
        acquirer: AcquirerData,
    },
    /// ORDERED → CLOSED: the wallet did not debit its user.
    Closed {
        /// Why (the wallet's result code).
        reason: String,
    },
    /// ORDERED → CANCELLED: the wallet's result stayed unknown past the inquiry bound; it is
    /// asked to cancel (so a user it did debit is made whole).
    OrderCancelled {
        /// Why.
        reason: String,
    },
    /// QUOTED → SENT: about to hand the authorisation to the link (durable before it is sent).
    Sent {
        /// Whatever is known of the message already.
        acquirer: AcquirerData,
    },
    /// QUOTED or SENT → FAILED: nothing reached the acquirer (the link refused before sending:
    /// down, not signed on within the budget, busy). From SENT only on the link's word that
    /// nothing was handed to a connection.
    NotSent {
        /// Why.
        reason: String,
    },
    /// SENT → SUCCESS.
    Approved {
        /// STAN, RRN, auth code, response code.
        acquirer: AcquirerData,
    },
    /// SENT → FAILED: declined, no money moved.
    Declined {
        /// STAN, RRN, response code.
        acquirer: AcquirerData,
    },
    /// SENT → UNKNOWN: no usable answer.
    Unknown {
        /// Why (timeout, connection lost, unusable answer).
        cause: String,
        /// What is known of the message.
        acquirer: AcquirerData,
    },
    /// UNKNOWN → REVERSING (purpose unknown), or SUCCESS → REVERSING (a cancel; only when no
    /// refund has been reserved).
    Reversing {
        /// The reversal queue's id.
        reversal_id: Option<u64>,
    },
    /// REVERSING → REVERSED (unknown outcome reversed) or CANCELLED (cancel acknowledged).
    Reversed {
        /// DE39 of the 0410.
        response_code: String,
    },
    /// UNKNOWN or REVERSING → MANUAL_REVIEW.
    ManualReview {
        /// Why.
        note: String,
    },
    /// MANUAL_REVIEW → SUCCESS (the acquirer says the authorisation stands) or REVERSED /
    /// CANCELLED (it does not, or its reversal went through): an operator's resolution
    /// (`qrbridge admin review resolve`).
    Resolved {
        /// Whether the authorisation stands at the acquirer.
        approved: bool,
        /// The operator's note (who asked whom, reference).
        note: String,
    },
}

impl PaymentEvent {
    /// The event's name, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            PaymentEvent::Debited { .. } => "Debited",
            PaymentEvent::Closed { .. } => "Closed",
            PaymentEvent::OrderCancelled { .. } => "OrderCancelled",
            PaymentEvent::Sent { .. } => "Sent",
            PaymentEvent::NotSent { .. } => "NotSent",
            PaymentEvent::Approved { .. } => "Approved",
            PaymentEvent::Declined { .. } => "Declined",
            PaymentEvent::Unknown { .. } => "Unknown",
            PaymentEvent::Reversing { .. } => "Reversing",
            PaymentEvent::Reversed { .. } => "Reversed",
            PaymentEvent::ManualReview { .. } => "ManualReview",
            PaymentEvent::Resolved { .. } => "Resolved",
        }
    }
}

impl Payment {
    /// A new payment in state QUOTED.
    pub(crate) fn new(id: PaymentId, new: NewPayment, now_ms: u64) -> Self {
        let currency = new.quote.merchant_amount.currency();
        Payment {
            id,
            client_id: new.client_id,
            request_id: new.request_id,
            customer: new.customer,
            quote: new.quote,
            routing: new.routing,
            merchant: new.merchant,
            origin: new.origin,
            acquirer: AcquirerData::default(),
            state: PaymentState::Quoted,
            reversal: None,
            note: None,
            refunded: Amount::zero(currency),
            refunds_reserved: Amount::zero(currency),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            history: vec![StateChange {
                state: PaymentState::Quoted,
                at_ms: now_ms,
            }],
        }
    }

    /// A new payment (as [`Payment::new`] made it) as a payment order in state ORDERED (a
    /// debits-first scheme: the wallet pays later).
    pub(crate) fn into_ordered(mut self) -> Self {
        self.state = PaymentState::Ordered;
        self.history = vec![StateChange {
            state: PaymentState::Ordered,
            at_ms: self.created_at_ms,
        }];
        self
    }

    /// The payment after `event`, or [`JournalError::IllegalTransition`] (and no change).
    pub fn apply(&self, event: PaymentEvent, now_ms: u64) -> Result<Payment, JournalError> {
        use PaymentEvent as E;
        use PaymentState as S;
        let illegal = || JournalError::IllegalTransition {
            payment: self.id,
            from: self.state,
            event: event.name(),
        };
        let mut next = self.clone();
        let state = match (self.state, &event) {
            (S::Ordered, E::Debited { .. }) => S::Sent,
            (S::Ordered, E::Closed { .. }) => S::Closed,
            (S::Ordered, E::OrderCancelled { .. }) => S::Cancelled,
            (S::Quoted, E::Sent { .. }) => S::Sent,
            (S::Quoted | S::Sent, E::NotSent { .. }) => S::Failed,
            (S::Sent, E::Approved { .. }) => S::Success,
            (S::Sent, E::Declined { .. }) => S::Failed,
            (S::Sent, E::Unknown { .. }) => S::Unknown,
            (S::Unknown, E::Reversing { .. }) => S::Reversing,
            (S::Success, E::Reversing { .. }) if self.refunds_reserved.is_zero() => S::Reversing,
            (S::Reversing, E::Reversed { .. }) => match &self.reversal {
                Some(ReversalLink {
                    purpose: ReversalPurpose::Cancel,
                    ..
                }) => S::Cancelled,
                _ => S::Reversed,
            },
            (S::Unknown | S::Reversing, E::ManualReview { .. }) => S::ManualReview,
            (S::ManualReview, E::Resolved { approved: true, .. }) => S::Success,
            (
                S::ManualReview,
                E::Resolved {
                    approved: false, ..
                },
            ) => match &self.reversal {
                Some(ReversalLink {
                    purpose: ReversalPurpose::Cancel,
                    ..
                }) => S::Cancelled,
                _ => S::Reversed,
            },
            _ => return Err(illegal()),
        };
        match event {
            E::Debited {
                scheme_ref,
                acquirer,
            } => {
                if scheme_ref.is_some() {
                    next.origin.scheme_ref = scheme_ref;
                }
                next.acquirer.merge(acquirer);
            }
            E::Closed { reason } | E::OrderCancelled { reason } => next.note = Some(reason),
            E::Sent { acquirer } | E::Approved { acquirer } | E::Declined { acquirer } => {
                next.acquirer.merge(acquirer);
            }
            E::Unknown { cause, acquirer } => {
                next.acquirer.merge(acquirer);
                next.note = Some(cause);
            }
            E::NotSent { reason } => next.note = Some(reason),
            E::Reversing { reversal_id } => {
                next.reversal = Some(ReversalLink {
                    reversal_id,
                    purpose: if self.state == S::Success {
                        ReversalPurpose::Cancel
                    } else {
                        ReversalPurpose::Unknown
                    },
                });
            }
            E::Reversed { response_code } => {
                next.note = Some(format!("reversal acknowledged with DE39 {response_code}"));
            }
            E::ManualReview { note } => next.note = Some(note),
            E::Resolved { note, .. } => {
                next.note = Some(format!("resolved by an operator: {note}"))
            }
        }
        next.enter(state, now_ms);
        Ok(next)
    }

    pub(crate) fn enter(&mut self, state: PaymentState, now_ms: u64) {
        self.state = state;
        self.updated_at_ms = now_ms;
        self.history.push(StateChange {
            state,
            at_ms: now_ms,
        });
    }

    /// What is left to refund: the merchant amount minus every non-failed refund.
    pub fn refundable(&self) -> u64 {
        self.quote
            .merchant_amount
            .minor()
            .saturating_sub(self.refunds_reserved.minor())
    }
}
