//! The canonical payment: the room every other room above the leaves meets in (the seam).
//!
//! In: nothing: this room does no I/O. Schemes build its requests from a wallet's message; the
//! gateway implements its [`Pipeline`].
//! Out: typed canonical requests and responses, their ids, the canonical errors and result codes.
//! Errors: [`ApiError`] — what went wrong and on which [`Side`] — with its [`ResultCode`] (S/F/U).
//! Spec: `spec/gateway.md` (operations and states), `spec/errors.md` (result codes).
//!
//! ```text
//! ops/       the canonical operations: decode, quote, pay, inquiry, cancel, refund (+ fields,
//!            Money, typed ids); Wallet API v1 is their JSON form
//! error      ApiError, Side, ResultCode, AuthFault
//! pipeline   Pipeline (the one trait the gateway implements), RequestContext, Answer, Readiness
//! outbound   the other direction: WalletCall, Notice (what the gateway sends to a wallet)
//! ```
//!
//! Imports only leaves (`money`, `time`); `scheme`, `gateway`, `notify` and `server` import it.

pub mod error;
pub mod ops;
pub mod outbound;
pub mod pipeline;

pub use error::{ApiError, AuthFault, ResultCode, Side};
pub use ops::*;
pub use outbound::{DEBITS_FIRST, InquiryAnswer, Notice, NoticeEvent, WalletCall};
pub use pipeline::{Answer, BoxFuture, Handled, Pipeline, Readiness, RequestContext, always_ready};
