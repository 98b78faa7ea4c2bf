//! The ONE error → response mapping: [`ApiError`] (what went wrong, and on which [`Side`]) →
//! [`ResultCode`] → HTTP status + `result` JSON. Every match here lists every variant; adding a code
//! without deciding its status, S/F/U and wallet advice does not compile. `spec/errors.md` is the
//! written form of this file.

use std::time::Duration;

use hyper::StatusCode;

use super::ops::{ResultInfo, ResultStatus};

/// Why a request's authentication failed. Messages name the header and the reason, never a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFault {
    /// A required header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but not usable.
    #[error("header {header}: {reason}")]
    MalformedHeader {
        /// Which header.
        header: &'static str,
        /// Why.
        reason: String,
    },
    /// No credentials for this client id.
    #[error("unknown client id {0:?}")]
    UnknownClient(String),
    /// The client has no key with this version, or not for this algorithm.
    #[error("client {client_id:?} has no {algorithm} key with keyVersion {key_version}")]
    UnknownKey {
        /// Client.
        client_id: String,
        /// Algorithm claimed.
        algorithm: &'static str,
        /// Version claimed.
        key_version: u32,
    },
    /// `request-time` is further than the window from our clock.
    #[error(
        "request-time {request_time} is outside ±{} s of the gateway's clock ({now})",
        window.as_secs()
    )]
    StaleRequestTime {
        /// As sent.
        request_time: String,
        /// Our time.
        now: String,
        /// The window.
        window: Duration,
    },
    /// The signature does not verify.
    #[error("signature does not match the canonical request (see spec/auth.md)")]
    Mismatch,
    /// This exact signature was already accepted once.
    #[error("signature already used: a replayed request")]
    Replayed,
    /// The signature verifies but the replay guard is full: it cannot be remembered, so the
    /// request is refused (answered as [`ApiError::Unavailable`], never as a bad signature).
    #[error(
        "the gateway's replay memory is full: a new signature cannot be remembered, so the \
         request was not processed; retry later"
    )]
    ReplayMemoryFull,
}

/// Who failed: drives logging and alerting, never the wire text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The wallet sent something wrong (bad input, bad credentials, a business rule it broke).
    Wallet,
    /// Our gateway (configuration, journal, an internal bug).
    Gateway,
    /// The domestic acquirer (declined, timed out, unreachable).
    Acquirer,
    /// An upstream dependency that is not the acquirer (FX rate source).
    Upstream,
}

/// A Wallet API failure. Data-bearing: each variant carries what the message needs and nothing secret.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field is missing, has the wrong type or an invalid value.
    #[error("{field}: {reason}")]
    ParamIllegal {
        /// JSON path of the field (`amount.value`), or a header name, or `body`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Authenticated (or identified by certificate) but not allowed.
    #[error("access denied: {reason}")]
    AccessDenied {
        /// Why.
        reason: String,
    },
    /// Request authentication failed (missing, malformed, stale, replayed or wrong signature).
    #[error("{0}")]
    InvalidSignature(AuthFault),
    /// Same request id, different body.
    #[error("request id {request_id} was already used with a different body")]
    RepeatRequestInconsistent {
        /// The reused request id.
        request_id: String,
    },
    /// Same request id and body as a request still being processed.
    #[error("request {request_id} is still being processed; retry the same request later")]
    RetryLater {
        /// The request id.
        request_id: String,
    },
    /// The scanned code is not a valid EMVCo merchant-presented QR.
    #[error("QR code invalid: {detail}")]
    QrInvalid {
        /// The parser's error kind, ID path and offset.
        detail: String,
    },
    /// A valid code we do not accept (foreign country or currency, unsupported kind).
    #[error("QR code not supported: {reason}")]
    QrNotSupported {
        /// Why.
        reason: String,
    },
    /// No configured acquirer can route any merchant-account template in the code.
    #[error("merchant not routable: {reason}")]
    MerchantNotRoutable {
        /// Which templates were seen.
        reason: String,
    },
    /// The quote's validity ended.
    #[error("quote {quote_id} expired at {expired_at}")]
    QuoteExpired {
        /// Quote id.
        quote_id: String,
        /// RFC 3339 expiry.
        expired_at: String,
    },
    /// The quote was already used by another payment.
    #[error("quote {quote_id} was already used")]
    QuoteConsumed {
        /// Quote id.
        quote_id: String,
    },
    /// No fresh rate for the pair.
    #[error("no usable rate for {pair}: {reason}")]
    RateUnavailable {
        /// `MYR/SGD`.
        pair: String,
        /// Stale, missing, source down.
        reason: String,
    },
    /// A configured limit would be exceeded.
    #[error("limit exceeded: {limit}")]
    AmountExceedLimit {
        /// Which limit and by how much.
        limit: String,
    },
    /// The acquirer declined (a definite failure; nothing was charged).
    #[error("declined by the acquirer (response code {response_code})")]
    AcquirerDeclined {
        /// ISO 8583 DE39.
        response_code: String,
    },
    /// The acquirer's answer is unknown (no answer in time, the connection closed after the
    /// request was sent, or an answer that leaves the outcome open such as DE39 91/96/68); a
    /// reversal is running. Outcome unknown until inquiry.
    #[error(
        "payment {payment_id}: outcome unknown ({cause}); a reversal is running, query the payment later"
    )]
    AcquirerTimeout {
        /// Our payment id.
        payment_id: String,
        /// What happened, as the link saw it (`no answer within the deadline`, ...).
        cause: String,
    },
    /// Cancel requested after the cut-off: refund instead.
    #[error("payment {payment_id} can no longer be cancelled (cut-off {cut_off}); refund it")]
    CancelWindowExceed {
        /// Payment id.
        payment_id: String,
        /// RFC 3339 cut-off.
        cut_off: String,
    },
    /// Refunds would exceed the original amount.
    #[error("payment {payment_id}: refund of {requested} exceeds the refundable {refundable}")]
    RefundAmountExceed {
        /// Payment id.
        payment_id: String,
        /// Requested amount (`SGD 12.50`).
        requested: String,
        /// What is left to refund.
        refundable: String,
    },
    /// No payment / refund / decode / quote with that id for this client.
    #[error("no {what} {id}")]
    OrderNotFound {
        /// `payment`, `refund`, `decode`, `quote`.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The body exceeds the configured maximum (refused before reading it all).
    #[error("request body exceeds {limit} bytes")]
    RequestTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The request (headers or body) did not arrive within the per-request timeout.
    #[error("request not received within {} ms", after.as_millis())]
    RequestTimeout {
        /// The timeout.
        after: Duration,
    },
    /// No such route.
    #[error("no route {path}")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// The route exists but not for this method.
    #[error("{method} not allowed on {path} (use {allowed})")]
    MethodNotAllowed {
        /// Method used.
        method: String,
        /// Path.
        path: String,
        /// The allowed method.
        allowed: &'static str,
    },
    /// The gateway is not ready or is shutting down; nothing was done.
    #[error("service unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// Anything else. The outcome is unknown: the wallet must query before retrying a payment.
    #[error("unexpected failure ({side:?} side): {reason}")]
    Unknown {
        /// Who failed.
        side: Side,
        /// What happened (no secrets).
        reason: String,
    },
}

/// Every result code of Wallet API v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// The request succeeded.
    Success,
    /// See [`ApiError::ParamIllegal`].
    ParamIllegal,
    /// See [`ApiError::AccessDenied`].
    AccessDenied,
    /// See [`ApiError::InvalidSignature`].
    InvalidSignature,
    /// See [`ApiError::RepeatRequestInconsistent`].
    RepeatReqInconsistent,
    /// See [`ApiError::RetryLater`].
    RetryLater,
    /// See [`ApiError::QrInvalid`].
    QrInvalid,
    /// See [`ApiError::QrNotSupported`].
    QrNotSupported,
    /// See [`ApiError::MerchantNotRoutable`].
    MerchantNotRoutable,
    /// See [`ApiError::QuoteExpired`].
    QuoteExpired,
    /// See [`ApiError::QuoteConsumed`].
    QuoteConsumed,
    /// See [`ApiError::RateUnavailable`].
    RateUnavailable,
    /// See [`ApiError::AmountExceedLimit`].
    AmountExceedLimit,
    /// See [`ApiError::AcquirerDeclined`].
    AcquirerDeclined,
    /// See [`ApiError::AcquirerTimeout`].
    AcquirerTimeout,
    /// See [`ApiError::CancelWindowExceed`].
    CancelWindowExceed,
    /// See [`ApiError::RefundAmountExceed`].
    RefundAmountExceed,
    /// See [`ApiError::OrderNotFound`].
    OrderNotFound,
    /// See [`ApiError::RequestTooLarge`].
    RequestTooLarge,
    /// See [`ApiError::RequestTimeout`].
    RequestTimeout,
    /// See [`ApiError::NotFound`].
    NotFound,
    /// See [`ApiError::MethodNotAllowed`].
    MethodNotAllowed,
    /// See [`ApiError::Unavailable`].
    ServiceUnavailable,
    /// See [`ApiError::Unknown`].
    UnknownException,
}

impl ResultCode {
    /// Every code, in the order of `spec/errors.md`.
    pub const ALL: [ResultCode; 24] = [
        ResultCode::Success,
        ResultCode::ParamIllegal,
        ResultCode::AccessDenied,
        ResultCode::InvalidSignature,
        ResultCode::RepeatReqInconsistent,
        ResultCode::RetryLater,
        ResultCode::QrInvalid,
        ResultCode::QrNotSupported,
        ResultCode::MerchantNotRoutable,
        ResultCode::QuoteExpired,
        ResultCode::QuoteConsumed,
        ResultCode::RateUnavailable,
        ResultCode::AmountExceedLimit,
        ResultCode::AcquirerDeclined,
        ResultCode::AcquirerTimeout,
        ResultCode::CancelWindowExceed,
        ResultCode::RefundAmountExceed,
        ResultCode::OrderNotFound,
        ResultCode::RequestTooLarge,
        ResultCode::RequestTimeout,
        ResultCode::NotFound,
        ResultCode::MethodNotAllowed,
        ResultCode::ServiceUnavailable,
        ResultCode::UnknownException,
    ];

    /// The code as it appears in `resultCode`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultCode::Success => "SUCCESS",
            ResultCode::ParamIllegal => "PARAM_ILLEGAL",
            ResultCode::AccessDenied => "ACCESS_DENIED",
            ResultCode::InvalidSignature => "INVALID_SIGNATURE",
            ResultCode::RepeatReqInconsistent => "REPEAT_REQ_INCONSISTENT",
            ResultCode::RetryLater => "RETRY_LATER",
            ResultCode::QrInvalid => "QR_INVALID",
            ResultCode::QrNotSupported => "QR_NOT_SUPPORTED",
            ResultCode::MerchantNotRoutable => "MERCHANT_NOT_ROUTABLE",
            ResultCode::QuoteExpired => "QUOTE_EXPIRED",
            ResultCode::QuoteConsumed => "QUOTE_CONSUMED",
            ResultCode::RateUnavailable => "RATE_UNAVAILABLE",
            ResultCode::AmountExceedLimit => "AMOUNT_EXCEED_LIMIT",
            ResultCode::AcquirerDeclined => "ACQUIRER_DECLINED",
            ResultCode::AcquirerTimeout => "ACQUIRER_TIMEOUT",
            ResultCode::CancelWindowExceed => "CANCEL_WINDOW_EXCEED",
            ResultCode::RefundAmountExceed => "REFUND_AMOUNT_EXCEED",
            ResultCode::OrderNotFound => "ORDER_NOT_FOUND",
            ResultCode::RequestTooLarge => "REQUEST_TOO_LARGE",
            ResultCode::RequestTimeout => "REQUEST_TIMEOUT",
            ResultCode::NotFound => "NOT_FOUND",
            ResultCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ResultCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ResultCode::UnknownException => "UNKNOWN_EXCEPTION",
        }
    }

    /// S (succeeded), F (failed for certain: nothing happened, or it was undone), U (unknown: query).
    pub fn status(self) -> ResultStatus {
        match self {
            ResultCode::Success => ResultStatus::S,
            ResultCode::ParamIllegal
            | ResultCode::AccessDenied
            | ResultCode::InvalidSignature
            | ResultCode::RepeatReqInconsistent
            | ResultCode::QrInvalid
            | ResultCode::QrNotSupported
            | ResultCode::MerchantNotRoutable
            | ResultCode::QuoteExpired
            | ResultCode::QuoteConsumed
            | ResultCode::RateUnavailable
            | ResultCode::AmountExceedLimit
            | ResultCode::AcquirerDeclined
            | ResultCode::CancelWindowExceed
            | ResultCode::RefundAmountExceed
            | ResultCode::OrderNotFound
            | ResultCode::RequestTooLarge
            | ResultCode::RequestTimeout
            | ResultCode::NotFound
            | ResultCode::MethodNotAllowed
            | ResultCode::ServiceUnavailable => ResultStatus::F,
            ResultCode::RetryLater | ResultCode::AcquirerTimeout | ResultCode::UnknownException => {
                ResultStatus::U
            }
        }
    }

    /// The HTTP status. 4xx: the wallet's request is wrong or not allowed now; 2xx: processed
    /// (including a payment the acquirer declined or has not answered yet); 5xx: our side or an
    /// upstream failed. Malformed input is always 4xx.
    pub fn http_status(self) -> StatusCode {
        match self {
            ResultCode::Success | ResultCode::AcquirerDeclined => StatusCode::OK,
            ResultCode::AcquirerTimeout => StatusCode::ACCEPTED,
            ResultCode::ParamIllegal => StatusCode::BAD_REQUEST,
            ResultCode::InvalidSignature => StatusCode::UNAUTHORIZED,
            ResultCode::AccessDenied => StatusCode::FORBIDDEN,
            ResultCode::NotFound | ResultCode::OrderNotFound => StatusCode::NOT_FOUND,
            ResultCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ResultCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ResultCode::RepeatReqInconsistent
            | ResultCode::RetryLater
            | ResultCode::QuoteConsumed
            | ResultCode::CancelWindowExceed => StatusCode::CONFLICT,
            ResultCode::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ResultCode::QrInvalid
            | ResultCode::QrNotSupported
            | ResultCode::MerchantNotRoutable
            | ResultCode::QuoteExpired
            | ResultCode::AmountExceedLimit
            | ResultCode::RefundAmountExceed => StatusCode::UNPROCESSABLE_ENTITY,
            ResultCode::RateUnavailable | ResultCode::ServiceUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ResultCode::UnknownException => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `result` object for this code with `message`.
    pub fn result(self, message: impl Into<String>) -> ResultInfo {
        ResultInfo {
            result_status: self.status(),
            result_code: self,
            result_message: message.into(),
        }
    }
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<AuthFault> for ApiError {
    /// A refused signature; a full replay guard is the gateway's state, not the wallet's fault:
    /// [`ApiError::Unavailable`] (503 `SERVICE_UNAVAILABLE`, nothing was done).
    fn from(f: AuthFault) -> Self {
        match f {
            AuthFault::ReplayMemoryFull => ApiError::Unavailable {
                reason: f.to_string(),
            },
            f => ApiError::InvalidSignature(f),
        }
    }
}

impl ApiError {
    /// The result code for this error.
    pub fn code(&self) -> ResultCode {
        match self {
            ApiError::ParamIllegal { .. } => ResultCode::ParamIllegal,
            ApiError::AccessDenied { .. } => ResultCode::AccessDenied,
            ApiError::InvalidSignature(_) => ResultCode::InvalidSignature,
            ApiError::RepeatRequestInconsistent { .. } => ResultCode::RepeatReqInconsistent,
            ApiError::RetryLater { .. } => ResultCode::RetryLater,
            ApiError::QrInvalid { .. } => ResultCode::QrInvalid,
            ApiError::QrNotSupported { .. } => ResultCode::QrNotSupported,
            ApiError::MerchantNotRoutable { .. } => ResultCode::MerchantNotRoutable,
            ApiError::QuoteExpired { .. } => ResultCode::QuoteExpired,
            ApiError::QuoteConsumed { .. } => ResultCode::QuoteConsumed,
            ApiError::RateUnavailable { .. } => ResultCode::RateUnavailable,
            ApiError::AmountExceedLimit { .. } => ResultCode::AmountExceedLimit,
            ApiError::AcquirerDeclined { .. } => ResultCode::AcquirerDeclined,
            ApiError::AcquirerTimeout { .. } => ResultCode::AcquirerTimeout,
            ApiError::CancelWindowExceed { .. } => ResultCode::CancelWindowExceed,
            ApiError::RefundAmountExceed { .. } => ResultCode::RefundAmountExceed,
            ApiError::OrderNotFound { .. } => ResultCode::OrderNotFound,
            ApiError::RequestTooLarge { .. } => ResultCode::RequestTooLarge,
            ApiError::RequestTimeout { .. } => ResultCode::RequestTimeout,
            ApiError::NotFound { .. } => ResultCode::NotFound,
            ApiError::MethodNotAllowed { .. } => ResultCode::MethodNotAllowed,
            ApiError::Unavailable { .. } => ResultCode::ServiceUnavailable,
            ApiError::Unknown { .. } => ResultCode::UnknownException,
        }
    }

    /// Which side failed.
    pub fn side(&self) -> Side {
        match self {
            ApiError::ParamIllegal { .. }
            | ApiError::AccessDenied { .. }
            | ApiError::InvalidSignature(_)
            | ApiError::RepeatRequestInconsistent { .. }
            | ApiError::RetryLater { .. }
            | ApiError::QrInvalid { .. }
            | ApiError::QrNotSupported { .. }
            | ApiError::MerchantNotRoutable { .. }
            | ApiError::QuoteExpired { .. }
            | ApiError::QuoteConsumed { .. }
            | ApiError::AmountExceedLimit { .. }
            | ApiError::CancelWindowExceed { .. }
            | ApiError::RefundAmountExceed { .. }
            | ApiError::OrderNotFound { .. }
            | ApiError::RequestTooLarge { .. }
            | ApiError::RequestTimeout { .. }
            | ApiError::NotFound { .. }
            | ApiError::MethodNotAllowed { .. } => Side::Wallet,
            ApiError::AcquirerDeclined { .. } | ApiError::AcquirerTimeout { .. } => Side::Acquirer,
            ApiError::RateUnavailable { .. } => Side::Upstream,
            ApiError::Unavailable { .. } => Side::Gateway,
            ApiError::Unknown { side, .. } => *side,
        }
    }

    /// True when the outcome is unknown (U): the wallet must query, never assume failure.
    pub fn is_unknown(&self) -> bool {
        self.code().status() == ResultStatus::U
    }

    /// A `PARAM_ILLEGAL` for `field`.
    pub fn param(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::ParamIllegal {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The HTTP status and the `result` object: the one mapping.
    pub fn to_result(&self) -> (StatusCode, ResultInfo) {
        let code = self.code();
        (code.http_status(), code.result(self.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_distinct_name_and_only_success_is_s() {
        let mut names: Vec<&str> = ResultCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ResultCode::ALL.len());
        for code in ResultCode::ALL {
            assert_eq!(
                code.status() == ResultStatus::S,
                code == ResultCode::Success
            );
        }
    }

    #[test]
    fn wallet_side_errors_are_never_5xx() {
        let errors = [
            ApiError::param("amount.value", "not a number"),
            ApiError::RequestTooLarge { limit: 10 },
            ApiError::NotFound { path: "/x".into() },
            ApiError::InvalidSignature(AuthFault::Mismatch),
        ];
        for e in errors {
            assert_eq!(e.side(), Side::Wallet);
            assert!(e.to_result().0.is_client_error(), "{e}");
        }
    }

    #[test]
    fn a_full_replay_memory_is_the_gateways_503_and_other_faults_stay_401() {
        let full = ApiError::from(AuthFault::ReplayMemoryFull);
        assert_eq!(full.code(), ResultCode::ServiceUnavailable);
        assert_eq!(full.side(), Side::Gateway);
        assert!(full.to_string().contains("replay memory is full"), "{full}");
        let replayed = ApiError::from(AuthFault::Replayed);
        assert_eq!(replayed.code(), ResultCode::InvalidSignature);
    }

    #[test]
    fn acquirer_timeout_is_unknown_not_failed() {
        let e = ApiError::AcquirerTimeout {
            payment_id: "P1".into(),
            cause: "no answer from the acquirer within the deadline".into(),
        };
        assert!(e.is_unknown());
        assert_eq!(e.to_result().1.result_status, ResultStatus::U);
    }
}
