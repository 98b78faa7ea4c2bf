//! The outbound half of the seam: what the gateway sends *to* a wallet, in canonical form. Each
//! scheme renders a [`Notice`] in its own language (and judges the wallet's answer); the journal's
//! outbox makes it durable and the `notify` room delivers it, retried with backoff until the wallet
//! acknowledges it, parked for an operator after a bound.
//!
//! ```text
//! WalletCall       tells / asks                           e.g. in a wallet network
//! PaymentResult    a payment's final state (notification) native notice, ISO 20022 pacs.002
//! RefundResult     a refund's final state                 native notice
//! RefundCredit     credit this refund to the payer        Alipay+ `refund`, ISO 20022 pacs.004
//! PaymentInquiry   what is this payment's status with you Alipay+ `inquiryPayment`
//! PaymentCancel    cancel this payment on your side       Alipay+ `cancelPayment`
//! ```
//!
//! A scheme declares the calls it can make (`Scheme::calls`); a notice of a call its scheme
//! cannot make is parked with that reason, never dropped.

use super::ops::{PaymentResponse, RefundResponse, WalletResult};

/// The schemes (registry names) whose wallets debit their user *before* the gateway authorises
/// (Alipay+ MPP merchant-presented mode: `notifyPayment` S comes first). For their payments the
/// wallet is told no result; a payment that ends without the merchant being paid (FAILED,
/// REVERSED, CANCELLED) makes a [`WalletCall::PaymentCancel`] so the user is made whole.
pub const DEBITS_FIRST: &[&str] = &["aplus"];

/// What the gateway asks or tells a wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WalletCall {
    /// Tell a payment's final state, reached after the wallet's request was answered.
    PaymentResult,
    /// Tell a refund's final state.
    RefundResult,
    /// Ask the wallet to credit a refund to its payer (a refund that started at the merchant).
    RefundCredit,
    /// Ask the wallet for a payment's status on its side (no result arrived in time).
    PaymentInquiry,
    /// Ask the wallet to cancel a payment on its side, so that the payer is made whole (the
    /// domestic side failed after the wallet debited its user).
    PaymentCancel,
}

impl WalletCall {
    /// Every call, in the order of the table above.
    pub const ALL: [WalletCall; 5] = [
        WalletCall::PaymentResult,
        WalletCall::RefundResult,
        WalletCall::RefundCredit,
        WalletCall::PaymentInquiry,
        WalletCall::PaymentCancel,
    ];

    /// The name in logs and errors (`PAYMENT_CANCEL`).
    pub fn as_str(self) -> &'static str {
        match self {
            WalletCall::PaymentResult => "PAYMENT_RESULT",
            WalletCall::RefundResult => "REFUND_RESULT",
            WalletCall::RefundCredit => "REFUND_CREDIT",
            WalletCall::PaymentInquiry => "PAYMENT_INQUIRY",
            WalletCall::PaymentCancel => "PAYMENT_CANCEL",
        }
    }
}

impl std::fmt::Display for WalletCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message the gateway sends to a wallet: what it asks or tells ([`WalletCall`]), about which
/// payment or refund, to whom. Journaled (durable, in the outbox, in the transaction of the state
/// change that causes it) before the first delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// What the gateway asks or tells the wallet.
    pub call: WalletCall,
    /// The scheme the original request came in (`aplus`).
    pub scheme: String,
    /// The wallet client to notify.
    pub client_id: String,
    /// What the scheme recorded with the original request (e.g. the pacs.008 MsgId); opaque here.
    pub scheme_ref: Option<String>,
    /// Our notice id (stable across retries: the wallet dedupes on it).
    pub notice_id: String,
    /// What happened.
    pub event: NoticeEvent,
}

/// The payment or refund a notice is about, in canonical form (its state as of the change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeEvent {
    /// A payment's final state (SUCCESS, FAIL, REVERSED, CANCELLED).
    Payment(Box<PaymentResponse>),
    /// A refund's final state (SUCCESS, FAIL, REVERSED).
    Refund(RefundResponse),
}

/// A wallet's answer to a [`WalletCall::PaymentInquiry`] about a payment order, as its scheme
/// reads it: what became of the order on the wallet's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InquiryAnswer {
    /// Debited, not debited, or not known yet (processing, or an answer that says nothing).
    pub result: WalletResult,
    /// What the scheme keeps with the payment now (e.g. with the wallet's payment id), if the
    /// answer taught it anything.
    pub scheme_ref: Option<String>,
}
