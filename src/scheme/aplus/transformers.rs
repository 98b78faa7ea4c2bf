//! The aplus scheme on the wire: its request and response types (all prefixed `Aplus`, JSON,
//! camelCase, every value a JSON string or an object of strings), their conversion to and from the
//! canonical operations, and the one mapping of canonical outcomes to aplus result codes.
//! Written form: `spec/schemes/aplus.md`.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use crate::money::{Amount, Currency};
use crate::payment::ApiError;
use crate::payment::{
    AcquirerResult, CancelRequest, CancelResponse, CodeType, CodeValue, CustomerId, DecodeResponse,
    Money, PaymentInquiryRequest, PaymentRef, PaymentRequest, PaymentResponse, PaymentStatus,
    QuoteResponse, RefundInquiryRequest, RefundRef, RefundRequest, RefundResponse, RefundStatus,
    RequestId, ResultStatus, Text,
};
use crate::scheme::native::auth::AuthFault;

/// The aplus routes: `POST /schemes/aplus/v1/payments/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AplusRoute {
    /// `userInitiatedPay`: the scanned code (and the amount, for static codes) → order and quote.
    UserInitiatedPay,
    /// `pay`: pay a quote.
    Pay,
    /// `inquiryPayment`.
    InquiryPayment,
    /// `cancelPayment`.
    CancelPayment,
    /// `refund`.
    Refund,
    /// `inquiryRefund`.
    InquiryRefund,
}

impl AplusRoute {
    /// Every route.
    pub const ALL: [AplusRoute; 6] = [
        AplusRoute::UserInitiatedPay,
        AplusRoute::Pay,
        AplusRoute::InquiryPayment,
        AplusRoute::CancelPayment,
        AplusRoute::Refund,
        AplusRoute::InquiryRefund,
    ];

    /// The last path segment.
    pub fn name(self) -> &'static str {
        match self {
            AplusRoute::UserInitiatedPay => "userInitiatedPay",
            AplusRoute::Pay => "pay",
            AplusRoute::InquiryPayment => "inquiryPayment",
            AplusRoute::CancelPayment => "cancelPayment",
            AplusRoute::Refund => "refund",
            AplusRoute::InquiryRefund => "inquiryRefund",
        }
    }

    /// The route named `name`.
    pub fn from_name(name: &str) -> Option<AplusRoute> {
        AplusRoute::ALL.into_iter().find(|r| r.name() == name)
    }

    /// True for the refund routes (their "in process" code is `REFUND_IN_PROCESS`).
    pub fn is_refund(self) -> bool {
        match self {
            AplusRoute::Refund | AplusRoute::InquiryRefund => true,
            AplusRoute::UserInitiatedPay
            | AplusRoute::Pay
            | AplusRoute::InquiryPayment
            | AplusRoute::CancelPayment => false,
        }
    }
}

/// Every aplus result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AplusCode {
    /// Done.
    Success,
    /// A field is missing or wrong (the message names it); also an unreadable or oversize body.
    ParamIllegal,
    /// Identified, but not allowed (client certificate does not match the client id).
    AccessDenied,
    /// Signature missing, malformed, wrong, or replayed.
    InvalidSignature,
    /// The client has no public key with that `keyVersion`.
    KeyNotFound,
    /// Unknown `client-id`.
    ClientInvalid,
    /// `request-time` unreadable or outside ±5 min of our clock.
    RequestTimeInvalid,
    /// Same request id, different body.
    RepeatReqInconsistent,
    /// The payment's outcome is not known yet: inquire.
    PaymentInProcess,
    /// The refund's outcome is not known yet: inquire.
    RefundInProcess,
    /// The code is not a valid EMVCo merchant code, or not one of this market.
    InvalidCode,
    /// No acquirer serves the merchant in the code.
    MerchantNotRegistered,
    /// The quote expired or was already used: ask userInitiatedPay again.
    QuoteExpired,
    /// No usable rate for the currency pair.
    CurrencyNotSupport,
    /// A per-payment or daily limit would be exceeded (or the issuer declined for a limit).
    UserAmountExceedLimit,
    /// The acquirer declined with DE39 51.
    UserBalanceNotEnough,
    /// Failed for certain (another decline, a reversed payment, a service not ready).
    ProcessFail,
    /// Cancel after the cut-off: refund instead.
    CancelWindowExceed,
    /// The refunds would exceed the payment.
    RefundAmountExceed,
    /// No such payment, refund or quote for this client.
    OrderNotExist,
    /// The payment was cancelled.
    OrderIsClosed,
    /// No such route.
    NotFound,
    /// The route takes `POST` only.
    MethodNotSupported,
    /// The body is not `application/json`.
    MediaTypeNotAcceptable,
    /// Anything else; the outcome is unknown: inquire before retrying.
    UnknownException,
}

impl AplusCode {
    /// The `resultCode` text.
    pub fn as_str(self) -> &'static str {
        match self {
            AplusCode::Success => "SUCCESS",
            AplusCode::ParamIllegal => "PARAM_ILLEGAL",
            AplusCode::AccessDenied => "ACCESS_DENIED",
            AplusCode::InvalidSignature => "INVALID_SIGNATURE",
            AplusCode::KeyNotFound => "KEY_NOT_FOUND",
            AplusCode::ClientInvalid => "CLIENT_INVALID",
            AplusCode::RequestTimeInvalid => "REQUEST_TIME_INVALID",
            AplusCode::RepeatReqInconsistent => "REPEAT_REQ_INCONSISTENT",
            AplusCode::PaymentInProcess => "PAYMENT_IN_PROCESS",
            AplusCode::RefundInProcess => "REFUND_IN_PROCESS",
            AplusCode::InvalidCode => "INVALID_CODE",
            AplusCode::MerchantNotRegistered => "MERCHANT_NOT_REGISTERED",
            AplusCode::QuoteExpired => "QUOTE_EXPIRED",
            AplusCode::CurrencyNotSupport => "CURRENCY_NOT_SUPPORT",
            AplusCode::UserAmountExceedLimit => "USER_AMOUNT_EXCEED_LIMIT",
            AplusCode::UserBalanceNotEnough => "USER_BALANCE_NOT_ENOUGH",
            AplusCode::ProcessFail => "PROCESS_FAIL",
            AplusCode::CancelWindowExceed => "CANCEL_WINDOW_EXCEED",
            AplusCode::RefundAmountExceed => "REFUND_AMOUNT_EXCEED",
            AplusCode::OrderNotExist => "ORDER_NOT_EXIST",
            AplusCode::OrderIsClosed => "ORDER_IS_CLOSED",
            AplusCode::NotFound => "NOT_FOUND",
            AplusCode::MethodNotSupported => "METHOD_NOT_SUPPORTED",
            AplusCode::MediaTypeNotAcceptable => "MEDIA_TYPE_NOT_ACCEPTABLE",
            AplusCode::UnknownException => "UNKNOWN_EXCEPTION",
        }
    }

    /// S, F or U.
    pub fn status(self) -> ResultStatus {
        match self {
            AplusCode::Success => ResultStatus::S,
            AplusCode::PaymentInProcess
            | AplusCode::RefundInProcess
            | AplusCode::UnknownException => ResultStatus::U,
            AplusCode::ParamIllegal
            | AplusCode::AccessDenied
            | AplusCode::InvalidSignature
            | AplusCode::KeyNotFound
            | AplusCode::ClientInvalid
            | AplusCode::RequestTimeInvalid
            | AplusCode::RepeatReqInconsistent
            | AplusCode::InvalidCode
            | AplusCode::MerchantNotRegistered
            | AplusCode::QuoteExpired
            | AplusCode::CurrencyNotSupport
            | AplusCode::UserAmountExceedLimit
            | AplusCode::UserBalanceNotEnough
            | AplusCode::ProcessFail
            | AplusCode::CancelWindowExceed
            | AplusCode::RefundAmountExceed
            | AplusCode::OrderNotExist
            | AplusCode::OrderIsClosed
            | AplusCode::NotFound
            | AplusCode::MethodNotSupported
            | AplusCode::MediaTypeNotAcceptable => ResultStatus::F,
        }
    }

    /// The `result` object with this code.
    pub fn result(self, message: impl Into<String>) -> AplusResult {
        AplusResult {
            result_status: self.status(),
            result_code: self.as_str().to_owned(),
            result_message: message.into(),
        }
    }
}

/// What can go wrong in an aplus request: a canonical error, or one only aplus has.
#[derive(Debug)]
pub enum AplusFault {
    /// A canonical error (from the pipeline, the server or our own checks).
    Api(ApiError),
    /// `content-type` is not `application/json`.
    MediaType {
        /// As sent.
        got: String,
    },
}

impl From<ApiError> for AplusFault {
    fn from(e: ApiError) -> Self {
        AplusFault::Api(e)
    }
}

impl std::fmt::Display for AplusFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AplusFault::Api(e) => write!(f, "{e}"),
            AplusFault::MediaType { got } => {
                write!(f, "content-type: must be application/json, got {got:?}")
            }
        }
    }
}

/// The aplus code for a declined authorisation (ISO 8583 DE39).
pub fn decline_code(response_code: &str) -> AplusCode {
    match response_code {
        "51" => AplusCode::UserBalanceNotEnough,
        "61" | "65" => AplusCode::UserAmountExceedLimit,
        _ => AplusCode::ProcessFail,
    }
}

/// The aplus code of a canonical error on `route`.
pub fn code_of(e: &ApiError, route: AplusRoute) -> AplusCode {
    let in_process = if route.is_refund() {
        AplusCode::RefundInProcess
    } else {
        AplusCode::PaymentInProcess
    };
    match e {
        ApiError::ParamIllegal { .. } => AplusCode::ParamIllegal,
        ApiError::AccessDenied { .. } => AplusCode::AccessDenied,
        ApiError::InvalidSignature(fault) => match fault {
            AuthFault::MissingHeader("client-id") => AplusCode::ClientInvalid,
            AuthFault::MissingHeader("request-time") => AplusCode::RequestTimeInvalid,
            AuthFault::MissingHeader(_) => AplusCode::InvalidSignature,
            AuthFault::MalformedHeader {
                header: "request-time",
                ..
            } => AplusCode::RequestTimeInvalid,
            AuthFault::MalformedHeader {
                header: "client-id",
                ..
            } => AplusCode::ClientInvalid,
            AuthFault::MalformedHeader { .. } => AplusCode::InvalidSignature,
            AuthFault::UnknownClient(_) => AplusCode::ClientInvalid,
            AuthFault::UnknownKey { .. } => AplusCode::KeyNotFound,
            AuthFault::StaleRequestTime { .. } => AplusCode::RequestTimeInvalid,
            AuthFault::Mismatch | AuthFault::Replayed => AplusCode::InvalidSignature,
        },
        ApiError::RepeatRequestInconsistent { .. } => AplusCode::RepeatReqInconsistent,
        ApiError::RetryLater { .. } => in_process,
        ApiError::QrInvalid { .. } | ApiError::QrNotSupported { .. } => AplusCode::InvalidCode,
        ApiError::MerchantNotRoutable { .. } => AplusCode::MerchantNotRegistered,
        ApiError::QuoteExpired { .. } | ApiError::QuoteConsumed { .. } => AplusCode::QuoteExpired,
        ApiError::RateUnavailable { .. } => AplusCode::CurrencyNotSupport,
        ApiError::AmountExceedLimit { .. } => AplusCode::UserAmountExceedLimit,
        ApiError::AcquirerDeclined { response_code } => decline_code(response_code),
        ApiError::AcquirerTimeout { .. } => in_process,
        ApiError::CancelWindowExceed { .. } => AplusCode::CancelWindowExceed,
        ApiError::RefundAmountExceed { .. } => AplusCode::RefundAmountExceed,
        ApiError::OrderNotFound { .. } => AplusCode::OrderNotExist,
        ApiError::RequestTooLarge { .. } | ApiError::RequestTimeout { .. } => {
            AplusCode::ParamIllegal
        }
        ApiError::NotFound { .. } => AplusCode::NotFound,
        ApiError::MethodNotAllowed { .. } => AplusCode::MethodNotSupported,
        ApiError::Unavailable { .. } => AplusCode::ProcessFail,
        ApiError::Unknown { .. } => AplusCode::UnknownException,
    }
}

/// The HTTP status of a canonical error: 200 for every business result (Alipay+ style), 4xx only
/// when the request was malformed, not authenticated, not routed, or not read.
pub fn http_of(e: &ApiError) -> StatusCode {
    match e {
        ApiError::ParamIllegal { .. } => StatusCode::BAD_REQUEST,
        ApiError::InvalidSignature(_) => StatusCode::UNAUTHORIZED,
        ApiError::AccessDenied { .. } => StatusCode::FORBIDDEN,
        ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
        ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        ApiError::RequestTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
        ApiError::RepeatRequestInconsistent { .. }
        | ApiError::RetryLater { .. }
        | ApiError::QrInvalid { .. }
        | ApiError::QrNotSupported { .. }
        | ApiError::MerchantNotRoutable { .. }
        | ApiError::QuoteExpired { .. }
        | ApiError::QuoteConsumed { .. }
        | ApiError::RateUnavailable { .. }
        | ApiError::AmountExceedLimit { .. }
        | ApiError::AcquirerDeclined { .. }
        | ApiError::AcquirerTimeout { .. }
        | ApiError::CancelWindowExceed { .. }
        | ApiError::RefundAmountExceed { .. }
        | ApiError::OrderNotFound { .. }
        | ApiError::Unavailable { .. }
        | ApiError::Unknown { .. } => StatusCode::OK,
    }
}

/// The HTTP status and `result` of a fault on `route`.
pub fn result_of(fault: &AplusFault, route: AplusRoute) -> (StatusCode, AplusResult) {
    match fault {
        AplusFault::Api(e) => (http_of(e), code_of(e, route).result(e.to_string())),
        AplusFault::MediaType { .. } => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AplusCode::MediaTypeNotAcceptable.result(fault.to_string()),
        ),
    }
}

/// `{"resultStatus","resultCode","resultMessage"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AplusResult {
    /// S / F / U.
    pub result_status: ResultStatus,
    /// `SUCCESS`, `PARAM_ILLEGAL`, ...
    pub result_code: String,
    /// What was wrong and where.
    pub result_message: String,
}

impl AplusResult {
    /// `SUCCESS`.
    pub fn success() -> Self {
        AplusCode::Success.result("success")
    }
}

/// Money: `{"currency":"SGD","value":"1250"}`, value in minor units of the currency's ISO 4217
/// exponent, as a string of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AplusAmount(pub Money);

impl AplusAmount {
    /// The amount.
    pub fn amount(self) -> Amount {
        self.0.0
    }
}

impl From<Money> for AplusAmount {
    fn from(m: Money) -> Self {
        AplusAmount(m)
    }
}

/// A currency: ISO 4217 alpha-3 (`MYR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AplusCurrency(pub Currency);

impl<'de> Deserialize<'de> for AplusCurrency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::from_code(&s)
            .map(AplusCurrency)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for AplusCurrency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.code())
    }
}

// ---------------------------------------------------------------------------------------------
// userInitiatedPay
// ---------------------------------------------------------------------------------------------

/// `userInitiatedPay` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AplusUserInitiatedPayRequest {
    /// The scanned code, as scanned.
    pub code_value: CodeValue,
    /// The payer at the wallet.
    pub customer_id: CustomerId,
    /// The wallet's currency; defaults to the client's `pay_to_currency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_to_currency: Option<AplusCurrency>,
    /// The amount the payer entered (static codes), in the merchant currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_amount: Option<AplusAmount>,
}

/// `merchantAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusAddress {
    /// ISO 3166-1 alpha-2 (EMV 58).
    pub region: String,
    /// EMV 60.
    pub city: String,
}

/// `merchant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusMerchant {
    /// EMV 59.
    pub merchant_name: String,
    /// EMV 52.
    #[serde(rename = "merchantMCC")]
    pub merchant_mcc: String,
    /// EMV 58 and 60.
    pub merchant_address: AplusAddress,
    /// The merchant id of the routed template.
    pub merchant_id: String,
}

/// `order`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusOrder {
    /// `"<merchant name> (<domestic scheme>)"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_description: Option<String>,
    /// The merchant.
    pub merchant: AplusMerchant,
    /// The amount to pay in the merchant currency (dynamic code, or the amount the payer entered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_amount: Option<AplusAmount>,
}

/// `paymentQuote` in a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusQuote {
    /// Single-use: pay with it.
    pub quote_id: RequestId,
    /// `SGD/MYR`: merchant currency / wallet currency.
    pub quote_currency_pair: String,
    /// Wallet currency units per merchant currency unit (markup included), a decimal string.
    pub quote_price: String,
    /// When the quote was made (ISO 8601).
    pub quote_start_time: String,
    /// Pay before this (ISO 8601).
    pub quote_expiry_time: String,
}

impl AplusQuote {
    /// From a canonical quote made at `start`.
    pub fn of(q: &QuoteResponse, start: String) -> Self {
        AplusQuote {
            quote_id: q.quote_id.clone(),
            quote_currency_pair: format!(
                "{}/{}",
                q.merchant_amount.0.currency().code(),
                q.payer_amount.0.currency().code()
            ),
            quote_price: q.rate.clone(),
            quote_start_time: start,
            quote_expiry_time: q.expires_at.clone(),
        }
    }
}

/// `userInitiatedPay` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusUserInitiatedPayResponse {
    /// The result.
    pub result: AplusResult,
    /// `STATIC` (the payer enters the amount) or `DYNAMIC`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_type: Option<String>,
    /// The domestic scheme of the routed template (`SGQR`, `PAYNOW`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_scheme: Option<String>,
    /// The order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<AplusOrder>,
    /// The quote (when the amount is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_quote: Option<AplusQuote>,
    /// The amount the payer pays in the wallet currency (when the amount is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pay_to_amount: Option<AplusAmount>,
}

impl AplusUserInitiatedPayResponse {
    /// Only a result.
    pub fn failed(result: AplusResult) -> Self {
        AplusUserInitiatedPayResponse {
            result,
            code_type: None,
            code_scheme: None,
            order: None,
            payment_quote: None,
            pay_to_amount: None,
        }
    }

    /// From a decode (and the quote, when there is one).
    pub fn of(
        d: &DecodeResponse,
        order_amount: Option<Amount>,
        quote: Option<(&QuoteResponse, String)>,
    ) -> Self {
        let code_type = match d.code_type {
            CodeType::Static => "STATIC",
            CodeType::Dynamic => "DYNAMIC",
        };
        let order_amount = quote
            .as_ref()
            .map(|(q, _)| q.merchant_amount)
            .or(d.amount)
            .or(order_amount.map(Money));
        AplusUserInitiatedPayResponse {
            result: AplusResult::success(),
            code_type: Some(code_type.to_owned()),
            code_scheme: Some(d.scheme.clone()),
            order: Some(AplusOrder {
                order_description: Some(format!("{} ({})", d.merchant.name, d.scheme)),
                merchant: AplusMerchant {
                    merchant_name: d.merchant.name.clone(),
                    merchant_mcc: d.merchant.mcc.clone(),
                    merchant_address: AplusAddress {
                        region: d.merchant.country.clone(),
                        city: d.merchant.city.clone(),
                    },
                    merchant_id: d.merchant.merchant_id.clone(),
                },
                order_amount: order_amount.map(AplusAmount),
            }),
            pay_to_amount: quote.as_ref().map(|(q, _)| AplusAmount(q.payer_amount)),
            payment_quote: quote.map(|(q, start)| AplusQuote::of(q, start)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// pay, inquiryPayment, cancelPayment
// ---------------------------------------------------------------------------------------------

/// `paymentQuote` in a pay request: the quote id decides; the other fields are echoed back by
/// wallets and not checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AplusQuoteRef {
    /// From userInitiatedPay.
    pub quote_id: RequestId,
    /// Echo (not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_currency_pair: Option<String>,
    /// Echo (not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_price: Option<String>,
    /// Echo (not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_start_time: Option<String>,
    /// Echo (not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_expiry_time: Option<String>,
}

/// `pay` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AplusPayRequest {
    /// The wallet's idempotent request id.
    pub payment_request_id: RequestId,
    /// The quote to pay.
    pub payment_quote: AplusQuoteRef,
    /// In the merchant currency: must equal the quote's.
    pub payment_amount: AplusAmount,
    /// In the wallet currency: must equal the quote's.
    pub pay_to_amount: AplusAmount,
    /// The payer (the one who called userInitiatedPay).
    pub customer_id: CustomerId,
    /// When the wallet created the payment (ISO 8601, informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request_time: Option<String>,
}

impl From<&AplusPayRequest> for PaymentRequest {
    fn from(r: &AplusPayRequest) -> Self {
        PaymentRequest {
            payment_request_id: r.payment_request_id.clone(),
            quote_id: r.payment_quote.quote_id.clone(),
            customer_id: r.customer_id.clone(),
        }
    }
}

/// `inquiryPayment` request: exactly one of the two ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AplusInquiryPaymentRequest {
    /// The wallet's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request_id: Option<RequestId>,
    /// Our payment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<RequestId>,
}

impl TryFrom<AplusInquiryPaymentRequest> for PaymentInquiryRequest {
    type Error = ApiError;
    fn try_from(r: AplusInquiryPaymentRequest) -> Result<Self, ApiError> {
        let payment = match (r.payment_request_id, r.payment_id) {
            (Some(id), None) => PaymentRef::RequestId(id),
            (None, Some(id)) => PaymentRef::PaymentId(id),
            (Some(_), Some(_)) => {
                return Err(ApiError::param(
                    "paymentId",
                    "give paymentRequestId or paymentId, not both",
                ));
            }
            (None, None) => {
                return Err(ApiError::param(
                    "paymentRequestId",
                    "missing: give paymentRequestId or paymentId",
                ));
            }
        };
        Ok(PaymentInquiryRequest { payment })
    }
}

/// `cancelPayment` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AplusCancelPaymentRequest {
    /// The wallet's request id of the payment.
    pub payment_request_id: RequestId,
}

impl From<AplusCancelPaymentRequest> for CancelRequest {
    fn from(r: AplusCancelPaymentRequest) -> Self {
        CancelRequest {
            payment_request_id: r.payment_request_id,
        }
    }
}

/// The acquirer's answer (ISO 8583 fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusAcquirerResult {
    /// DE11.
    pub stan: String,
    /// DE37.
    pub rrn: String,
    /// DE38.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_code: Option<String>,
    /// DE39.
    pub response_code: String,
}

impl From<&AcquirerResult> for AplusAcquirerResult {
    fn from(a: &AcquirerResult) -> Self {
        AplusAcquirerResult {
            stan: a.stan.clone(),
            rrn: a.rrn.clone(),
            auth_code: a.auth_code.clone(),
            response_code: a.response_code.clone(),
        }
    }
}

/// `paymentStatus` text.
pub fn payment_status(s: PaymentStatus) -> &'static str {
    match s {
        PaymentStatus::Success => "SUCCESS",
        PaymentStatus::Fail => "FAIL",
        PaymentStatus::Processing => "PROCESSING",
        PaymentStatus::Reversed => "REVERSED",
        PaymentStatus::Cancelled => "CANCELLED",
    }
}

/// The result a payment's status means (inquiry `paymentResult`, notifications).
pub fn payment_result(p: &PaymentResponse) -> AplusResult {
    match p.payment_status {
        PaymentStatus::Success => AplusResult::success(),
        PaymentStatus::Fail => match &p.acquirer {
            Some(a) => decline_code(&a.response_code).result(format!(
                "declined by the acquirer (response code {})",
                a.response_code
            )),
            None => AplusCode::ProcessFail.result("failed before reaching the acquirer"),
        },
        PaymentStatus::Processing => {
            AplusCode::PaymentInProcess.result("the outcome is not known yet; inquire again later")
        }
        PaymentStatus::Reversed => AplusCode::ProcessFail.result(
            "the acquirer did not answer in time; the payment was reversed, nothing charged",
        ),
        PaymentStatus::Cancelled => {
            AplusCode::OrderIsClosed.result("the payment was cancelled, nothing charged")
        }
    }
}

/// `pay` and `inquiryPayment` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusPaymentResponse {
    /// The result of this request.
    pub result: AplusResult,
    /// inquiryPayment only: the result of the payment asked about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_result: Option<AplusResult>,
    /// Our payment id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<RequestId>,
    /// The wallet's request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_request_id: Option<RequestId>,
    /// `SUCCESS`, `FAIL`, `PROCESSING`, `REVERSED`, `CANCELLED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<String>,
    /// Merchant currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_amount: Option<AplusAmount>,
    /// Wallet currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pay_to_amount: Option<AplusAmount>,
    /// Refunded so far, merchant currency (inquiry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refunded_amount: Option<AplusAmount>,
    /// The acquirer's answer, once there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acquirer_result: Option<AplusAcquirerResult>,
}

impl AplusPaymentResponse {
    /// Only a result.
    pub fn failed(result: AplusResult) -> Self {
        AplusPaymentResponse {
            result,
            payment_result: None,
            payment_id: None,
            payment_request_id: None,
            payment_status: None,
            payment_amount: None,
            pay_to_amount: None,
            refunded_amount: None,
            acquirer_result: None,
        }
    }

    /// A canonical payment with this request's `result`.
    pub fn of(p: &PaymentResponse, result: AplusResult, with_payment_result: bool) -> Self {
        AplusPaymentResponse {
            result,
            payment_result: with_payment_result.then(|| payment_result(p)),
            payment_id: Some(p.payment_id.clone()),
            payment_request_id: Some(p.payment_request_id.clone()),
            payment_status: Some(payment_status(p.payment_status).to_owned()),
            payment_amount: Some(AplusAmount(p.merchant_amount)),
            pay_to_amount: Some(AplusAmount(p.payer_amount)),
            refunded_amount: p.refunded_amount.map(AplusAmount),
            acquirer_result: p.acquirer.as_ref().map(AplusAcquirerResult::from),
        }
    }
}

/// `cancelPayment` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusCancelPaymentResponse {
    /// S: cancelled; U: the reversal is still running (inquire); F: not cancellable.
    pub result: AplusResult,
    /// Our payment id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<RequestId>,
    /// The wallet's request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_request_id: Option<RequestId>,
    /// `CANCELLED`, or `PROCESSING` while the reversal runs (or the payment's current status).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<String>,
}

impl AplusCancelPaymentResponse {
    /// Only a result.
    pub fn failed(result: AplusResult) -> Self {
        AplusCancelPaymentResponse {
            result,
            payment_id: None,
            payment_request_id: None,
            payment_status: None,
        }
    }

    /// A canonical cancel answer with `result`.
    pub fn of(c: &CancelResponse, result: AplusResult) -> Self {
        AplusCancelPaymentResponse {
            result,
            payment_id: Some(c.payment_id.clone()),
            payment_request_id: Some(c.payment_request_id.clone()),
            payment_status: Some(payment_status(c.payment_status).to_owned()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// refund, inquiryRefund
// ---------------------------------------------------------------------------------------------

/// `refund` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AplusRefundRequest {
    /// The wallet's idempotent request id.
    pub refund_request_id: RequestId,
    /// Our payment id.
    pub payment_id: RequestId,
    /// In the merchant currency.
    pub refund_amount: AplusAmount,
    /// Why (at most 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<Text>,
}

impl From<AplusRefundRequest> for RefundRequest {
    fn from(r: AplusRefundRequest) -> Self {
        RefundRequest {
            refund_request_id: r.refund_request_id,
            payment_id: r.payment_id,
            refund_amount: r.refund_amount.0,
            reason: r.refund_reason,
        }
    }
}

/// `inquiryRefund` request: exactly one of the two ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AplusInquiryRefundRequest {
    /// The wallet's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_request_id: Option<RequestId>,
    /// Our refund id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<RequestId>,
}

impl TryFrom<AplusInquiryRefundRequest> for RefundInquiryRequest {
    type Error = ApiError;
    fn try_from(r: AplusInquiryRefundRequest) -> Result<Self, ApiError> {
        let refund = match (r.refund_request_id, r.refund_id) {
            (Some(id), None) => RefundRef::RequestId(id),
            (None, Some(id)) => RefundRef::RefundId(id),
            (Some(_), Some(_)) => {
                return Err(ApiError::param(
                    "refundId",
                    "give refundRequestId or refundId, not both",
                ));
            }
            (None, None) => {
                return Err(ApiError::param(
                    "refundRequestId",
                    "missing: give refundRequestId or refundId",
                ));
            }
        };
        Ok(RefundInquiryRequest { refund })
    }
}

/// `refundStatus` text.
pub fn refund_status(s: RefundStatus) -> &'static str {
    match s {
        RefundStatus::Success => "SUCCESS",
        RefundStatus::Fail => "FAIL",
        RefundStatus::Processing => "PROCESSING",
    }
}

/// The result a refund's status means (inquiry `refundResult`, notifications).
pub fn refund_result(r: &RefundResponse) -> AplusResult {
    match r.refund_status {
        RefundStatus::Success => AplusResult::success(),
        RefundStatus::Fail => AplusCode::ProcessFail.result("the refund failed, nothing refunded"),
        RefundStatus::Processing => {
            AplusCode::RefundInProcess.result("the outcome is not known yet; inquire again later")
        }
    }
}

/// `refund` and `inquiryRefund` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusRefundResponse {
    /// The result of this request.
    pub result: AplusResult,
    /// inquiryRefund only: the result of the refund asked about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_result: Option<AplusResult>,
    /// Our refund id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<RequestId>,
    /// The wallet's request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_request_id: Option<RequestId>,
    /// The refunded payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<RequestId>,
    /// `SUCCESS`, `FAIL`, `PROCESSING`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_status: Option<String>,
    /// Merchant currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<AplusAmount>,
    /// Wallet currency, at the payment's rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_to_amount: Option<AplusAmount>,
}

impl AplusRefundResponse {
    /// Only a result.
    pub fn failed(result: AplusResult) -> Self {
        AplusRefundResponse {
            result,
            refund_result: None,
            refund_id: None,
            refund_request_id: None,
            payment_id: None,
            refund_status: None,
            refund_amount: None,
            refund_to_amount: None,
        }
    }

    /// A canonical refund with this request's `result`.
    pub fn of(r: &RefundResponse, result: AplusResult, with_refund_result: bool) -> Self {
        AplusRefundResponse {
            result,
            refund_result: with_refund_result.then(|| refund_result(r)),
            refund_id: Some(r.refund_id.clone()),
            refund_request_id: Some(r.refund_request_id.clone()),
            payment_id: Some(r.payment_id.clone()),
            refund_status: Some(refund_status(r.refund_status).to_owned()),
            refund_amount: Some(AplusAmount(r.refund_amount)),
            refund_to_amount: Some(AplusAmount(r.payer_refund_amount)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// notifications
// ---------------------------------------------------------------------------------------------

/// `notifyPayment` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusNotifyPayment {
    /// `PAYMENT_RESULT`.
    pub notify_type: &'static str,
    /// Our notice id (stable across retries: dedupe on it).
    pub notify_id: String,
    /// Our payment id.
    pub payment_id: RequestId,
    /// The wallet's request id.
    pub payment_request_id: RequestId,
    /// The payment's result.
    pub payment_result: AplusResult,
    /// `SUCCESS`, `FAIL`, `REVERSED`, `CANCELLED`.
    pub payment_status: String,
    /// Merchant currency.
    pub payment_amount: AplusAmount,
    /// Wallet currency.
    pub pay_to_amount: AplusAmount,
    /// The acquirer's answer, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acquirer_result: Option<AplusAcquirerResult>,
}

impl AplusNotifyPayment {
    /// From a canonical payment.
    pub fn of(notify_id: &str, p: &PaymentResponse) -> Self {
        AplusNotifyPayment {
            notify_type: "PAYMENT_RESULT",
            notify_id: notify_id.to_owned(),
            payment_id: p.payment_id.clone(),
            payment_request_id: p.payment_request_id.clone(),
            payment_result: payment_result(p),
            payment_status: payment_status(p.payment_status).to_owned(),
            payment_amount: AplusAmount(p.merchant_amount),
            pay_to_amount: AplusAmount(p.payer_amount),
            acquirer_result: p.acquirer.as_ref().map(AplusAcquirerResult::from),
        }
    }
}

/// `notifyRefund` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusNotifyRefund {
    /// `REFUND_RESULT`.
    pub notify_type: &'static str,
    /// Our notice id.
    pub notify_id: String,
    /// Our refund id.
    pub refund_id: RequestId,
    /// The wallet's request id.
    pub refund_request_id: RequestId,
    /// The refunded payment.
    pub payment_id: RequestId,
    /// The refund's result.
    pub refund_result: AplusResult,
    /// `SUCCESS`, `FAIL`.
    pub refund_status: String,
    /// Merchant currency.
    pub refund_amount: AplusAmount,
    /// Wallet currency.
    pub refund_to_amount: AplusAmount,
}

impl AplusNotifyRefund {
    /// From a canonical refund.
    pub fn of(notify_id: &str, r: &RefundResponse) -> Self {
        AplusNotifyRefund {
            notify_type: "REFUND_RESULT",
            notify_id: notify_id.to_owned(),
            refund_id: r.refund_id.clone(),
            refund_request_id: r.refund_request_id.clone(),
            payment_id: r.payment_id.clone(),
            refund_result: refund_result(r),
            refund_status: refund_status(r.refund_status).to_owned(),
            refund_amount: AplusAmount(r.refund_amount),
            refund_to_amount: AplusAmount(r.payer_refund_amount),
        }
    }
}

/// The wallet's answer to a notification: `{"result": {"resultStatus": "S", ...}}` (other fields
/// ignored; the answer's own signature is not required).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AplusNotifyAck {
    /// The wallet's result.
    pub result: AplusAckResult,
}

/// The part of the wallet's `result` an acknowledgement needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusAckResult {
    /// `S` acknowledges.
    pub result_status: ResultStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::parse_json;
    use std::time::Duration;

    fn id(s: &str) -> RequestId {
        RequestId::new(s).unwrap()
    }

    fn sgd(minor: u64) -> Money {
        Money(Amount::from_minor(minor, Currency::from_code("SGD").unwrap()).unwrap())
    }

    fn myr(minor: u64) -> Money {
        Money(Amount::from_minor(minor, Currency::from_code("MYR").unwrap()).unwrap())
    }

    fn every_error() -> Vec<ApiError> {
        use crate::payment::Side;
        vec![
            ApiError::param("x", "y"),
            ApiError::AccessDenied { reason: "r".into() },
            ApiError::InvalidSignature(AuthFault::Mismatch),
            ApiError::RepeatRequestInconsistent {
                request_id: "r".into(),
            },
            ApiError::RetryLater {
                request_id: "r".into(),
            },
            ApiError::QrInvalid { detail: "d".into() },
            ApiError::QrNotSupported { reason: "r".into() },
            ApiError::MerchantNotRoutable { reason: "r".into() },
            ApiError::QuoteExpired {
                quote_id: "q".into(),
                expired_at: "t".into(),
            },
            ApiError::QuoteConsumed {
                quote_id: "q".into(),
            },
            ApiError::RateUnavailable {
                pair: "p".into(),
                reason: "r".into(),
            },
            ApiError::AmountExceedLimit { limit: "l".into() },
            ApiError::AcquirerDeclined {
                response_code: "05".into(),
            },
            ApiError::AcquirerTimeout {
                payment_id: "p".into(),
                cause: "no answer".into(),
            },
            ApiError::CancelWindowExceed {
                payment_id: "p".into(),
                cut_off: "c".into(),
            },
            ApiError::RefundAmountExceed {
                payment_id: "p".into(),
                requested: "r".into(),
                refundable: "f".into(),
            },
            ApiError::OrderNotFound {
                what: "payment",
                id: "p".into(),
            },
            ApiError::RequestTooLarge { limit: 1 },
            ApiError::RequestTimeout {
                after: Duration::from_secs(1),
            },
            ApiError::NotFound { path: "/x".into() },
            ApiError::MethodNotAllowed {
                method: "GET".into(),
                path: "/x".into(),
                allowed: "POST",
            },
            ApiError::Unavailable { reason: "r".into() },
            ApiError::Unknown {
                side: Side::Gateway,
                reason: "r".into(),
            },
        ]
    }

    #[test]
    fn unknown_outcomes_stay_u_and_only_success_is_s() {
        // The canonical S/F/U must survive the translation: a U never becomes F.
        for e in every_error() {
            for route in AplusRoute::ALL {
                let code = code_of(&e, route);
                assert_eq!(
                    code.status(),
                    e.code().status(),
                    "{e:?} on {route:?} became {}",
                    code.as_str()
                );
            }
        }
    }

    #[test]
    fn business_results_are_http_200_and_refusals_are_4xx() {
        for e in every_error() {
            let http = http_of(&e);
            let refusal = matches!(
                e,
                ApiError::ParamIllegal { .. }
                    | ApiError::InvalidSignature(_)
                    | ApiError::AccessDenied { .. }
                    | ApiError::NotFound { .. }
                    | ApiError::MethodNotAllowed { .. }
                    | ApiError::RequestTooLarge { .. }
                    | ApiError::RequestTimeout { .. }
            );
            assert_eq!(http.is_client_error(), refusal, "{e:?}");
            assert_eq!(http == StatusCode::OK, !refusal, "{e:?}");
        }
    }

    #[test]
    fn named_codes_for_the_cases_wallets_act_on() {
        let r = AplusRoute::Pay;
        let cases: [(ApiError, &str); 9] = [
            (
                ApiError::AcquirerDeclined {
                    response_code: "51".into(),
                },
                "USER_BALANCE_NOT_ENOUGH",
            ),
            (
                ApiError::AcquirerTimeout {
                    payment_id: "p".into(),
                    cause: "no answer".into(),
                },
                "PAYMENT_IN_PROCESS",
            ),
            (
                ApiError::InvalidSignature(AuthFault::Replayed),
                "INVALID_SIGNATURE",
            ),
            (
                ApiError::InvalidSignature(AuthFault::UnknownClient("c".into())),
                "CLIENT_INVALID",
            ),
            (
                ApiError::InvalidSignature(AuthFault::UnknownKey {
                    client_id: "c".into(),
                    algorithm: "RSA256",
                    key_version: 9,
                }),
                "KEY_NOT_FOUND",
            ),
            (
                ApiError::InvalidSignature(AuthFault::StaleRequestTime {
                    request_time: "t".into(),
                    now: "n".into(),
                    window: Duration::from_secs(300),
                }),
                "REQUEST_TIME_INVALID",
            ),
            (
                ApiError::RepeatRequestInconsistent {
                    request_id: "r".into(),
                },
                "REPEAT_REQ_INCONSISTENT",
            ),
            (
                ApiError::OrderNotFound {
                    what: "payment",
                    id: "p".into(),
                },
                "ORDER_NOT_EXIST",
            ),
            (
                ApiError::QrInvalid {
                    detail: "crc".into(),
                },
                "INVALID_CODE",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(code_of(&e, r).as_str(), want, "{e:?}");
        }
        assert_eq!(
            code_of(
                &ApiError::AcquirerTimeout {
                    payment_id: "p".into(),
                    cause: "no answer".into(),
                },
                AplusRoute::Refund
            )
            .as_str(),
            "REFUND_IN_PROCESS"
        );
        let (http, res) = result_of(
            &AplusFault::MediaType {
                got: "text/plain".into(),
            },
            r,
        );
        assert_eq!(http, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(res.result_code, "MEDIA_TYPE_NOT_ACCEPTABLE");
        assert!(res.result_message.contains("text/plain"));
    }

    #[test]
    fn pay_request_parses_with_amounts_as_strings_and_names_bad_fields() {
        let body = include_bytes!("../../../testdata/schemes/aplus/requests/pay.json");
        let r: AplusPayRequest = parse_json(body).unwrap();
        assert_eq!(r.payment_amount.amount().minor(), 1250);
        assert_eq!(r.pay_to_amount.amount().currency().code(), "MYR");
        let canonical = PaymentRequest::from(&r);
        assert_eq!(canonical.quote_id.as_str(), "Q-EXAMPLE-1");
        assert_eq!(canonical.payment_request_id.as_str(), "pay-20261121-0001");
        for (bad, field) in [
            (
                r#"{"paymentRequestId":"p","paymentQuote":{"quoteId":"q"},"paymentAmount":{"currency":"SGD","value":1250},"payToAmount":{"currency":"MYR","value":"1"},"customerId":"c"}"#,
                "paymentAmount",
            ),
            (
                r#"{"paymentRequestId":"p","paymentQuote":{"quoteId":"q"},"paymentAmount":{"currency":"SGD","value":"12.50"},"payToAmount":{"currency":"MYR","value":"1"},"customerId":"c"}"#,
                "paymentAmount",
            ),
            (
                r#"{"paymentRequestId":"p","paymentQuote":{"quoteId":"q","x":"1"},"paymentAmount":{"currency":"SGD","value":"1"},"payToAmount":{"currency":"MYR","value":"1"},"customerId":"c"}"#,
                "paymentQuote",
            ),
            (
                r#"{"paymentRequestId":"p p","paymentQuote":{"quoteId":"q"},"paymentAmount":{"currency":"SGD","value":"1"},"payToAmount":{"currency":"MYR","value":"1"},"customerId":"c"}"#,
                "paymentRequestId",
            ),
            (
                r#"{"paymentRequestId":"p","paymentQuote":{"quoteId":"q"},"paymentAmount":{"currency":"SGD","value":"1"},"payToAmount":{"currency":"XYZ","value":"1"},"customerId":"c"}"#,
                "payToAmount",
            ),
        ] {
            match parse_json::<AplusPayRequest>(bad.as_bytes()) {
                Err(ApiError::ParamIllegal { field: f, reason }) => {
                    assert!(f.starts_with(field), "{bad}: field {f} ({reason})")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn inquiry_needs_exactly_one_id() {
        let both = AplusInquiryPaymentRequest {
            payment_request_id: Some(id("a")),
            payment_id: Some(id("b")),
        };
        assert!(PaymentInquiryRequest::try_from(both).is_err());
        let none = AplusInquiryPaymentRequest {
            payment_request_id: None,
            payment_id: None,
        };
        assert!(matches!(
            PaymentInquiryRequest::try_from(none),
            Err(ApiError::ParamIllegal { field, .. }) if field == "paymentRequestId"
        ));
        let one = AplusInquiryPaymentRequest {
            payment_request_id: None,
            payment_id: Some(id("b")),
        };
        assert_eq!(
            PaymentInquiryRequest::try_from(one).unwrap().payment,
            PaymentRef::PaymentId(id("b"))
        );
        let r: AplusInquiryRefundRequest = parse_json(br#"{"refundRequestId":"r-1"}"#).unwrap();
        assert_eq!(
            RefundInquiryRequest::try_from(r).unwrap().refund,
            RefundRef::RequestId(id("r-1"))
        );
    }

    fn payment(status: PaymentStatus, de39: Option<&str>) -> PaymentResponse {
        PaymentResponse {
            merchant: None,
            scheme_ref: None,
            payment_id: id("P1"),
            payment_request_id: id("pay-1"),
            payment_status: status,
            merchant_amount: sgd(1250),
            payer_amount: myr(4314),
            refunded_amount: None,
            acquirer: de39.map(|c| AcquirerResult {
                stan: "000001".into(),
                rrn: "123456789012".into(),
                auth_code: None,
                response_code: c.into(),
            }),
        }
    }

    #[test]
    fn payment_responses_render_every_field_as_a_string() {
        let p = payment(PaymentStatus::Fail, Some("51"));
        let v = serde_json::to_value(AplusPaymentResponse::of(&p, AplusResult::success(), true))
            .unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "result": {"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"},
                "paymentResult": {"resultStatus":"F","resultCode":"USER_BALANCE_NOT_ENOUGH",
                    "resultMessage":"declined by the acquirer (response code 51)"},
                "paymentId":"P1","paymentRequestId":"pay-1","paymentStatus":"FAIL",
                "paymentAmount":{"currency":"SGD","value":"1250"},
                "payToAmount":{"currency":"MYR","value":"4314"},
                "acquirerResult":{"stan":"000001","rrn":"123456789012","responseCode":"51"}
            })
        );
        for (status, code) in [
            (PaymentStatus::Success, "SUCCESS"),
            (PaymentStatus::Processing, "PAYMENT_IN_PROCESS"),
            (PaymentStatus::Reversed, "PROCESS_FAIL"),
            (PaymentStatus::Cancelled, "ORDER_IS_CLOSED"),
        ] {
            assert_eq!(payment_result(&payment(status, None)).result_code, code);
        }
    }

    #[test]
    fn refund_request_maps_to_canonical() {
        let r: AplusRefundRequest = parse_json(
            br#"{"refundRequestId":"rf-1","paymentId":"P1","refundAmount":{"currency":"SGD","value":"500"},"refundReason":"broken"}"#,
        )
        .unwrap();
        let c = RefundRequest::from(r);
        assert_eq!(c.refund_amount, sgd(500));
        assert_eq!(c.reason.unwrap().as_str(), "broken");
        assert_eq!(c.payment_id.as_str(), "P1");
    }
}
