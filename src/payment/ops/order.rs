//! Payment orders of a wallet that debits its user first (Alipay+ MPP merchant-presented mode):
//! the order is made (durably) when the wallet scans, and the authorisation follows the wallet's
//! result for it — its notification, or its answer to our inquiry. No wire form of their own:
//! the scheme builds them from its messages.

use super::fields::{CustomerId, Money, RequestId};

/// Make a durable payment order for a quote: the wallet will debit its user and tell us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    /// The order's id (assigned by the scheme: Alipay+'s `paymentRequestId`); one per client.
    pub payment_request_id: RequestId,
    /// The quote it is priced with (consumed; the order's expiry is the quote's).
    pub quote_id: RequestId,
    /// The payer (must be the one who decoded).
    pub customer_id: CustomerId,
}

/// What the wallet says became of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletResult {
    /// It debited its user: the authorisation goes to the acquirer.
    Debited,
    /// It did not: the order closes, no money moved.
    NotDebited {
        /// The wallet's reason (its result code).
        reason: String,
    },
    /// Still not known after the inquiries the gateway makes: the order is cancelled on the
    /// wallet's side, so a user it did debit is made whole.
    Unknown {
        /// Why (the wallet's last answer, or none).
        reason: String,
    },
}

/// The wallet's result for an order (its notification, or its answer to our inquiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderResultRequest {
    /// The order's id.
    pub payment_request_id: RequestId,
    /// What the wallet did.
    pub result: WalletResult,
    /// The merchant amount, when the wallet repeated it (must equal the order's).
    pub merchant_amount: Option<Money>,
    /// The payer amount, when the wallet repeated it (must equal the order's).
    pub payer_amount: Option<Money>,
    /// The payer, when the wallet named them (must be the order's).
    pub customer_id: Option<CustomerId>,
}
