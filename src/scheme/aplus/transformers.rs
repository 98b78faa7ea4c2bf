//! The aplus scheme on the wire: the Alipay+ MPP API's request and response types (all prefixed
//! `Aplus`, JSON, camelCase, every value a JSON string or an object of strings), their conversion
//! to and from the canonical operations, and the one mapping of canonical outcomes to Alipay+
//! result codes. Written form: `spec/schemes/aplus.md`.
//!
//! Requests from wallets are read leniently, as the Alipay+ docs ask of every party: optional
//! fields may be absent or `null`, and fields we do not know are ignored (and logged by name,
//! [`unknown_fields`]), never refused.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use crate::money::{Amount, Currency};
use crate::payment::ApiError;
use crate::payment::{
    CodeValue, CustomerId, DecodeResponse, Money, QuoteResponse, RefundResponse, RequestId,
    ResultStatus, WalletResult,
};
use crate::scheme::native::auth::AuthFault;

/// The inbound APIs (wallet → gateway): `POST /schemes/aplus/aps/api/v1/payments/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AplusRoute {
    /// `userInitiatedPay`: the scanned code → the order, the quote and our `paymentRequestId`.
    UserInitiatedPay,
    /// `notifyPayment`: the wallet's result (it debited its user, or not) for our order.
    NotifyPayment,
}

impl AplusRoute {
    /// Every route.
    pub const ALL: [AplusRoute; 2] = [AplusRoute::UserInitiatedPay, AplusRoute::NotifyPayment];

    /// The last path segment (the official API name).
    pub fn name(self) -> &'static str {
        match self {
            AplusRoute::UserInitiatedPay => "userInitiatedPay",
            AplusRoute::NotifyPayment => "notifyPayment",
        }
    }

    /// The route named `name`.
    pub fn from_name(name: &str) -> Option<AplusRoute> {
        AplusRoute::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The top-level fields the official request of this API has (others are ignored, logged).
    pub fn known_fields(self) -> &'static [&'static str] {
        match self {
            AplusRoute::UserInitiatedPay => AplusUserInitiatedPayRequest::FIELDS,
            AplusRoute::NotifyPayment => AplusNotifyPaymentRequest::FIELDS,
        }
    }
}

/// The calls the gateway makes to a wallet (gateway → wallet): each POSTed to the client's
/// `wallet_api_url` followed by the official API name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AplusWalletApi {
    /// `inquiryPayment`: what became of this order on your side.
    InquiryPayment,
    /// `cancelPayment`: cancel this payment and make your user whole.
    CancelPayment,
    /// `refund`: credit this refund to your user.
    Refund,
}

impl AplusWalletApi {
    /// The official API name.
    pub fn name(self) -> &'static str {
        match self {
            AplusWalletApi::InquiryPayment => "inquiryPayment",
            AplusWalletApi::CancelPayment => "cancelPayment",
            AplusWalletApi::Refund => "refund",
        }
    }
}

/// The names of the top-level fields of `value` (a JSON object) that are not in `known` (at most
/// 16, each cut to 64 characters: they go to the log).
pub fn unknown_fields(value: &serde_json::Value, known: &[&str]) -> Vec<String> {
    value
        .as_object()
        .map(|o| {
            o.keys()
                .filter(|k| !known.contains(&k.as_str()))
                .take(16)
                .map(|k| k.chars().take(64).collect())
                .collect()
        })
        .unwrap_or_default()
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
    /// Unknown `client-id` (Alipay+ `INVALID_CLIENT`).
    InvalidClient,
    /// `request-time` unreadable or outside ±5 min of our clock.
    RequestTimeInvalid,
    /// Same request id, different body.
    RepeatReqInconsistent,
    /// The payment's outcome is not known yet: inquire.
    PaymentInProcess,
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
    /// No such API under the prefix (Alipay+ `INVALID_API`).
    InvalidApi,
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
            AplusCode::InvalidClient => "INVALID_CLIENT",
            AplusCode::RequestTimeInvalid => "REQUEST_TIME_INVALID",
            AplusCode::RepeatReqInconsistent => "REPEAT_REQ_INCONSISTENT",
            AplusCode::PaymentInProcess => "PAYMENT_IN_PROCESS",
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
            AplusCode::InvalidApi => "INVALID_API",
            AplusCode::MethodNotSupported => "METHOD_NOT_SUPPORTED",
            AplusCode::MediaTypeNotAcceptable => "MEDIA_TYPE_NOT_ACCEPTABLE",
            AplusCode::UnknownException => "UNKNOWN_EXCEPTION",
        }
    }

    /// S, F or U.
    pub fn status(self) -> ResultStatus {
        match self {
            AplusCode::Success => ResultStatus::S,
            AplusCode::PaymentInProcess | AplusCode::UnknownException => ResultStatus::U,
            AplusCode::ParamIllegal
            | AplusCode::AccessDenied
            | AplusCode::InvalidSignature
            | AplusCode::KeyNotFound
            | AplusCode::InvalidClient
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
            | AplusCode::InvalidApi
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
    /// A notification for a payment order we cannot act on (`ORDER_IS_CLOSED`).
    Closed {
        /// Our id of the order.
        payment_request_id: String,
        /// Why.
        reason: String,
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
            AplusFault::Closed {
                payment_request_id,
                reason,
            } => write!(
                f,
                "paymentRequestId {payment_request_id}: the order is closed ({reason}); \
                 nothing was sent to the merchant's acquirer: give your user the money back"
            ),
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

/// The aplus code of a canonical error.
pub fn code_of(e: &ApiError) -> AplusCode {
    let in_process = AplusCode::PaymentInProcess;
    match e {
        ApiError::ParamIllegal { .. } => AplusCode::ParamIllegal,
        ApiError::AccessDenied { .. } => AplusCode::AccessDenied,
        ApiError::InvalidSignature(fault) => match fault {
            AuthFault::MissingHeader("client-id") => AplusCode::InvalidClient,
            AuthFault::MissingHeader("request-time") => AplusCode::RequestTimeInvalid,
            AuthFault::MissingHeader(_) => AplusCode::InvalidSignature,
            AuthFault::MalformedHeader {
                header: "request-time",
                ..
            } => AplusCode::RequestTimeInvalid,
            AuthFault::MalformedHeader {
                header: "client-id",
                ..
            } => AplusCode::InvalidClient,
            AuthFault::MalformedHeader { .. } => AplusCode::InvalidSignature,
            AuthFault::UnknownClient(_) => AplusCode::InvalidClient,
            AuthFault::UnknownKey { .. } => AplusCode::KeyNotFound,
            AuthFault::StaleRequestTime { .. } => AplusCode::RequestTimeInvalid,
            AuthFault::Mismatch | AuthFault::Replayed => AplusCode::InvalidSignature,
            // Turned into ApiError::Unavailable by From<AuthFault>; mapped as that is.
            AuthFault::ReplayMemoryFull => AplusCode::ProcessFail,
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
        ApiError::NotFound { .. } => AplusCode::InvalidApi,
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

/// The HTTP status and `result` of a fault.
pub fn result_of(fault: &AplusFault) -> (StatusCode, AplusResult) {
    match fault {
        AplusFault::Api(e) => (http_of(e), code_of(e).result(e.to_string())),
        AplusFault::MediaType { .. } => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AplusCode::MediaTypeNotAcceptable.result(fault.to_string()),
        ),
        AplusFault::Closed { .. } => (
            StatusCode::OK,
            AplusCode::OrderIsClosed.result(fault.to_string()),
        ),
    }
}

/// `{"resultStatus","resultCode","resultMessage"}`.
/// Read leniently (a wallet's `result` may omit `resultMessage`, send it `null`, or add fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusResult {
    /// S / F / U.
    pub result_status: ResultStatus,
    /// `SUCCESS`, `PARAM_ILLEGAL`, ...
    pub result_code: String,
    /// What was wrong and where.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub result_message: String,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl AplusResult {
    /// `SUCCESS`.
    pub fn success() -> Self {
        AplusCode::Success.result("success")
    }
}

// ---------------------------------------------------------------------------------------------
// The models: Amount, Merchant, Order, Quote
// ---------------------------------------------------------------------------------------------

/// `Amount`: `{"currency":"SGD","value":"1250"}`, value in minor units of the currency's ISO 4217
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

/// `Address` (in `Merchant.merchantAddress`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusAddress {
    /// ISO 3166-1 alpha-2 (EMV 58).
    pub region: String,
    /// EMV 60.
    pub city: String,
}

/// `Merchant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusMerchant {
    /// The merchant id of the routed domestic template.
    pub reference_merchant_id: String,
    /// EMV 59.
    pub merchant_name: String,
    /// EMV 52.
    #[serde(rename = "merchantMCC")]
    pub merchant_mcc: String,
    /// EMV 58 and 60.
    pub merchant_address: AplusAddress,
}

/// `Order`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusOrder {
    /// `"<merchant name> (<domestic scheme>)"`.
    pub order_description: String,
    /// The amount to pay in the merchant currency (absent: a static code, the payer enters it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_amount: Option<AplusAmount>,
    /// The merchant.
    pub merchant: AplusMerchant,
}

/// `Quote` (`paymentQuote`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusQuote {
    /// The quote.
    pub quote_id: RequestId,
    /// `SGD/MYR`: merchant currency / wallet currency.
    pub quote_currency_pair: String,
    /// Wallet currency units per merchant currency unit (markup included), a decimal string.
    pub quote_price: String,
    /// When the quote was made (ISO 8601).
    pub quote_start_time: String,
    /// When it ends (ISO 8601).
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

// ---------------------------------------------------------------------------------------------
// userInitiatedPay (wallet → gateway)
// ---------------------------------------------------------------------------------------------

/// `userInitiatedPay` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusUserInitiatedPayRequest {
    /// The scanned code, as scanned (≤ 512 characters).
    pub code_value: CodeValue,
    /// The user at the wallet (≤ 64 characters).
    pub customer_id: CustomerId,
    /// Key-value information the wallet passes through (≤ 20000 characters): kept with the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_through_info: Option<String>,
    /// Our extension for EMVCo static codes: the amount the user entered, in the merchant
    /// currency. Absent (the official request): the code's own amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_amount: Option<AplusAmount>,
}

impl AplusUserInitiatedPayRequest {
    /// The top-level fields we read.
    pub const FIELDS: &'static [&'static str] =
        &["codeValue", "customerId", "passThroughInfo", "orderAmount"];
    /// The official bound of `passThroughInfo`.
    pub const MAX_PASS_THROUGH: usize = 20_000;

    /// The checks serde cannot express.
    pub fn check(&self) -> Result<(), ApiError> {
        if let Some(p) = &self.pass_through_info
            && p.chars().count() > Self::MAX_PASS_THROUGH
        {
            return Err(ApiError::param(
                "passThroughInfo",
                format!("longer than {} characters", Self::MAX_PASS_THROUGH),
            ));
        }
        Ok(())
    }
}

/// `userInitiatedPay` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusUserInitiatedPayResponse {
    /// The result.
    pub result: AplusResult,
    /// Our id of the payment order: the wallet notifies its result for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request_id: Option<RequestId>,
    /// The order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<AplusOrder>,
    /// What the merchant receives, in the merchant currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_amount: Option<AplusAmount>,
    /// What the wallet debits its user, in the wallet currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_to_amount: Option<AplusAmount>,
    /// The rate behind `payToAmount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_quote: Option<AplusQuote>,
    /// The wallet must notify its result before this (ISO 8601); after it, the gateway asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_expiry_time: Option<String>,
    /// `acquirerId` and `pspId`, when configured.
    #[serde(flatten)]
    pub ids: AplusIds,
    /// Where the wallet sends its notifyPayment, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_notify_url: Option<String>,
}

impl AplusUserInitiatedPayResponse {
    /// Only a result.
    pub fn failed(result: AplusResult) -> Self {
        AplusUserInitiatedPayResponse {
            result,
            payment_request_id: None,
            order: None,
            payment_amount: None,
            pay_to_amount: None,
            payment_quote: None,
            payment_expiry_time: None,
            ids: AplusIds::default(),
            payment_notify_url: None,
        }
    }

    /// The order of a decoded code, without a payment (a static code, no amount yet).
    pub fn order_only(d: &DecodeResponse) -> Self {
        AplusUserInitiatedPayResponse {
            order: Some(order_of(d, d.amount)),
            ..Self::failed(AplusResult::success())
        }
    }

    /// The payment order: decode, quote, our `paymentRequestId`, its expiry.
    pub fn of(
        d: &DecodeResponse,
        q: &QuoteResponse,
        payment_request_id: RequestId,
        start: String,
    ) -> Self {
        AplusUserInitiatedPayResponse {
            result: AplusResult::success(),
            payment_request_id: Some(payment_request_id),
            order: Some(order_of(d, Some(q.merchant_amount))),
            payment_amount: Some(AplusAmount(q.merchant_amount)),
            pay_to_amount: Some(AplusAmount(q.payer_amount)),
            payment_expiry_time: Some(q.expires_at.clone()),
            payment_quote: Some(AplusQuote::of(q, start)),
            ids: AplusIds::default(),
            payment_notify_url: None,
        }
    }
}

fn order_of(d: &DecodeResponse, amount: Option<Money>) -> AplusOrder {
    AplusOrder {
        order_description: format!("{} ({})", d.merchant.name, d.scheme),
        order_amount: amount.map(AplusAmount),
        merchant: AplusMerchant {
            reference_merchant_id: d.merchant.merchant_id.clone(),
            merchant_name: d.merchant.name.clone(),
            merchant_mcc: d.merchant.mcc.clone(),
            merchant_address: AplusAddress {
                region: d.merchant.country.clone(),
                city: d.merchant.city.clone(),
            },
        },
    }
}

// ---------------------------------------------------------------------------------------------
// notifyPayment (wallet → gateway)
// ---------------------------------------------------------------------------------------------

/// An id the wallet assigned (its `paymentId`): 1–64 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AplusWalletId(String);

impl AplusWalletId {
    /// Checks `s`.
    pub fn new(s: impl Into<String>) -> Result<Self, String> {
        let s = s.into();
        if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "must be 1 to 64 visible ASCII characters, got {} characters",
                s.chars().count()
            ));
        }
        Ok(AplusWalletId(s))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AplusWalletId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        AplusWalletId::new(s)
    }
}

impl From<AplusWalletId> for String {
    fn from(id: AplusWalletId) -> String {
        id.0
    }
}

/// `notifyPayment` request: the wallet's result for our payment order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusNotifyPaymentRequest {
    /// S: the wallet debited its user; F: it did not (U is not allowed here).
    pub payment_result: AplusResult,
    /// Our id, from userInitiatedPay.
    pub payment_request_id: RequestId,
    /// The wallet's id of the payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<AplusWalletId>,
    /// When the payment reached its final state at the wallet (ISO 8601; informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_time: Option<String>,
    /// Merchant currency: must equal the order's when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_amount: Option<AplusAmount>,
    /// Wallet currency: must equal the order's when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_to_amount: Option<AplusAmount>,
    /// The user: must equal the order's when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
}

impl AplusNotifyPaymentRequest {
    /// The top-level fields we read.
    pub const FIELDS: &'static [&'static str] = &[
        "paymentResult",
        "paymentRequestId",
        "paymentId",
        "paymentTime",
        "paymentAmount",
        "payToAmount",
        "customerId",
    ];

    /// The checks serde cannot express.
    pub fn check(&self) -> Result<(), ApiError> {
        if self.payment_result.result_status == ResultStatus::U {
            return Err(ApiError::param(
                "paymentResult.resultStatus",
                "must be S or F in a notification (U is not a result)",
            ));
        }
        Ok(())
    }

    /// The idempotency digest: the fields the Alipay+ docs check for consistency on a repeat
    /// (`paymentResult`, `paymentId`, `paymentAmount`, `payToAmount`, `customerId`), so a repeat
    /// that differs only in other fields is the same notification.
    pub fn digest(&self) -> String {
        let amount =
            |a: &Option<AplusAmount>| a.map(|a| a.amount().to_string()).unwrap_or_default();
        let key = format!(
            "{:?}|{}|{}|{}|{}|{}",
            self.payment_result.result_status,
            self.payment_result.result_code,
            self.payment_id
                .as_ref()
                .map(AplusWalletId::as_str)
                .unwrap_or(""),
            amount(&self.payment_amount),
            amount(&self.pay_to_amount),
            self.customer_id.as_ref().map(|c| c.expose()).unwrap_or(""),
        );
        crate::scheme::native::auth::body_digest(key.as_bytes())
    }
}

/// The answer to `notifyPayment`, and a wallet's answer to `cancelPayment`: `{"result": ...}`
/// (other fields ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AplusResultOnly {
    /// The result.
    pub result: AplusResult,
}

// ---------------------------------------------------------------------------------------------
// Calls to the wallet (gateway → wallet)
// ---------------------------------------------------------------------------------------------

/// What the scheme keeps with a payment (the canonical `scheme_ref`, opaque to the pipeline): the
/// ids the calls to the wallet about it carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusRef {
    /// Our `paymentRequestId`.
    pub payment_request_id: RequestId,
    /// The wallet's `paymentId`, from its notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<AplusWalletId>,
}

impl AplusRef {
    /// As stored.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// From a stored `scheme_ref`.
    pub fn decode(s: &str) -> Option<AplusRef> {
        serde_json::from_str(s).ok()
    }
}

/// The ids Alipay+ assigns to the two sides of a payment, as configured for the gateway
/// (`acquirerId`: the acquiring side, us) and for each wallet (`pspId`), and where the wallet
/// notifies (`paymentNotifyUrl`). Each is sent only when configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusIds {
    /// The acquiring side's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquirer_id: Option<String>,
    /// The wallet's (MPP's) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_id: Option<String>,
}

/// `cancelPayment` and `inquiryPayment` requests (gateway → wallet), with `acquirerId` and `pspId`
/// when configured (spec §5: omitted otherwise, a deviation from the official request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusPaymentCall {
    /// `acquirerId`, `pspId`, when configured.
    #[serde(flatten)]
    pub ids: AplusIds,
    /// Our id of the payment order.
    pub payment_request_id: RequestId,
    /// The wallet's id, when it told us.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<AplusWalletId>,
}

/// `refund` request (gateway → wallet): credit a merchant refund to the user. The official
/// request requires `acquirerId`, `pspId` and `paymentId`: the first two are sent when configured,
/// `paymentId` when the wallet gave one (spec §5: otherwise omitted, a deviation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusRefundCall {
    /// `acquirerId`, `pspId`, when configured.
    #[serde(flatten)]
    pub ids: AplusIds,
    /// Our refund id (the wallet's idempotency key).
    pub refund_request_id: RequestId,
    /// Our id of the refunded payment order.
    pub payment_request_id: RequestId,
    /// The wallet's id of the payment, when it told us.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<AplusWalletId>,
    /// In the merchant currency.
    pub refund_amount: AplusAmount,
    /// What the user gets back, in the wallet currency (at the payment's rate): our extension.
    pub refund_to_amount: AplusAmount,
    /// When we asked (ISO 8601).
    pub refund_request_time: String,
}

impl AplusRefundCall {
    /// From a canonical refund of the payment `of`.
    pub fn of(r: &RefundResponse, of: &AplusRef, ids: AplusIds, now: String) -> Self {
        AplusRefundCall {
            ids,
            refund_request_id: r.refund_id.clone(),
            payment_request_id: of.payment_request_id.clone(),
            payment_id: of.payment_id.clone(),
            refund_amount: AplusAmount(r.refund_amount),
            refund_to_amount: AplusAmount(r.payer_refund_amount),
            refund_request_time: now,
        }
    }
}

/// The wallet's answer to `inquiryPayment`: `result` is the inquiry's; `paymentResult` what became
/// of the payment (S debited, F not, U not known yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AplusInquiryPaymentAnswer {
    /// The inquiry's result.
    pub result: AplusResult,
    /// The payment's result.
    #[serde(default)]
    pub payment_result: Option<AplusResult>,
    /// The wallet's payment id.
    #[serde(default)]
    pub payment_id: Option<AplusWalletId>,
    /// `SUCCESS`, `FAIL`, `PROCESSING`, `CANCELLED` (`PENDING`): the payment status some
    /// Alipay+ inquiry answers carry instead of (or besides) `paymentResult`; read when present.
    #[serde(default)]
    pub payment_status: Option<String>,
}

impl AplusInquiryPaymentAnswer {
    /// What became of the order: `paymentResult` S debited, F not; or `paymentStatus` SUCCESS
    /// debited, FAIL / CANCELLED not; an inquiry answered F `ORDER_NOT_EXIST` (the wallet never
    /// saw the order) not debited; anything else (U, PROCESSING, PENDING, another F) not known.
    pub fn wallet_result(&self) -> WalletResult {
        let unknown = |why: String| WalletResult::Unknown { reason: why };
        match self.result.result_status {
            ResultStatus::S => {}
            ResultStatus::F if self.result.result_code == "ORDER_NOT_EXIST" => {
                return WalletResult::NotDebited {
                    reason: "ORDER_NOT_EXIST".to_owned(),
                };
            }
            _ => {
                return unknown(format!(
                    "inquiryPayment answered {:?} {}",
                    self.result.result_status, self.result.result_code
                ));
            }
        }
        if let Some(p) = &self.payment_result {
            return match p.result_status {
                ResultStatus::S => WalletResult::Debited,
                ResultStatus::F => WalletResult::NotDebited {
                    reason: p.result_code.clone(),
                },
                ResultStatus::U => unknown(format!("paymentResult U {}", p.result_code)),
            };
        }
        match self.payment_status.as_deref() {
            Some("SUCCESS") => WalletResult::Debited,
            Some(s @ ("FAIL" | "CANCELLED")) => WalletResult::NotDebited {
                reason: s.to_owned(),
            },
            Some(other) => unknown(format!("paymentStatus {other}")),
            None => unknown("neither paymentResult nor paymentStatus".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::parse_json;
    use serde_json::json;

    #[test]
    fn the_official_user_initiated_pay_body_parses_with_pass_through_info_and_extras_ignored() {
        let body = include_bytes!("../../../testdata/schemes/aplus/requests/userInitiatedPay.json");
        let r: AplusUserInitiatedPayRequest = parse_json(body).unwrap();
        assert_eq!(r.customer_id.expose(), "my-customer-1");
        assert!(r.pass_through_info.is_some());
        assert_eq!(r.order_amount, None);
        // Optional fields null; a field Alipay+ may add tomorrow: accepted, and named for the log.
        let v = json!({"codeValue": "000201", "customerId": "c", "passThroughInfo": null,
                       "orderAmount": null, "newAlipayPlusField": {"a": "b"}});
        let r: AplusUserInitiatedPayRequest = parse_json(v.to_string().as_bytes()).unwrap();
        assert_eq!((r.pass_through_info, r.order_amount), (None, None));
        assert_eq!(
            unknown_fields(&v, AplusRoute::UserInitiatedPay.known_fields()),
            vec!["newAlipayPlusField".to_owned()]
        );
        // A required field missing is named.
        let e =
            parse_json::<AplusUserInitiatedPayRequest>(br#"{"codeValue":"000201"}"#).unwrap_err();
        assert!(e.to_string().contains("customerId"), "{e}");
        let long = AplusUserInitiatedPayRequest {
            pass_through_info: Some("x".repeat(20_001)),
            ..r_min()
        };
        assert!(
            long.check()
                .unwrap_err()
                .to_string()
                .contains("passThroughInfo")
        );
    }

    fn r_min() -> AplusUserInitiatedPayRequest {
        parse_json(br#"{"codeValue":"000201","customerId":"c"}"#).unwrap()
    }

    #[test]
    fn an_inquiry_answer_says_debited_not_debited_or_not_known() {
        let read = |v: serde_json::Value| {
            serde_json::from_value::<AplusInquiryPaymentAnswer>(v)
                .unwrap()
                .wallet_result()
        };
        let ok = json!({"resultStatus": "S", "resultCode": "SUCCESS", "resultMessage": "success"});
        // paymentResult, as the MPP side's inquiryPayment answers.
        assert_eq!(
            read(json!({"result": ok, "paymentResult": ok, "paymentId": "W-1"})),
            WalletResult::Debited
        );
        assert_eq!(
            read(json!({"result": ok, "paymentResult":
                {"resultStatus": "F", "resultCode": "USER_BALANCE_NOT_ENOUGH"}})),
            WalletResult::NotDebited {
                reason: "USER_BALANCE_NOT_ENOUGH".to_owned()
            }
        );
        assert!(matches!(
            read(json!({"result": ok, "paymentResult":
                {"resultStatus": "U", "resultCode": "PAYMENT_IN_PROCESS"}})),
            WalletResult::Unknown { .. }
        ));
        // paymentStatus, as other Alipay+ inquiry answers carry it.
        assert_eq!(
            read(json!({"result": ok, "paymentStatus": "SUCCESS"})),
            WalletResult::Debited
        );
        assert_eq!(
            read(json!({"result": ok, "paymentStatus": "FAIL"})),
            WalletResult::NotDebited {
                reason: "FAIL".to_owned()
            }
        );
        assert!(matches!(
            read(json!({"result": ok, "paymentStatus": "PROCESSING"})),
            WalletResult::Unknown { .. }
        ));
        // The wallet never saw the order: nothing was debited.
        assert_eq!(
            read(json!({"result": {"resultStatus": "F", "resultCode": "ORDER_NOT_EXIST"}})),
            WalletResult::NotDebited {
                reason: "ORDER_NOT_EXIST".to_owned()
            }
        );
        // The inquiry itself failed or is unknown, or says nothing: not known.
        for v in [
            json!({"result": {"resultStatus": "U", "resultCode": "UNKNOWN_EXCEPTION"}}),
            json!({"result": {"resultStatus": "F", "resultCode": "PARAM_ILLEGAL"}}),
            json!({"result": ok}),
        ] {
            assert!(
                matches!(read(v.clone()), WalletResult::Unknown { .. }),
                "{v}"
            );
        }
    }

    #[test]
    fn notify_payment_reads_the_official_body_and_refuses_a_u_result() {
        let body = include_bytes!("../../../testdata/schemes/aplus/requests/notifyPayment.json");
        let r: AplusNotifyPaymentRequest = parse_json(body).unwrap();
        assert_eq!(r.payment_result.result_status, ResultStatus::S);
        assert!(r.check().is_ok());
        assert_eq!(r.payment_amount.unwrap().amount().minor(), 1250);
        // The digest covers the fields the docs check on a repeat, not the others.
        let mut later = r.clone();
        later.payment_time = Some("2026-12-05T21:00:00Z".to_owned());
        assert_eq!(later.digest(), r.digest());
        let mut other = r.clone();
        other.payment_id = Some(AplusWalletId::new("another").unwrap());
        assert_ne!(other.digest(), r.digest());
        let u = json!({"paymentRequestId": "APR1",
                       "paymentResult": {"resultStatus": "U", "resultCode": "PAYMENT_IN_PROCESS"}});
        let r: AplusNotifyPaymentRequest = parse_json(u.to_string().as_bytes()).unwrap();
        assert!(
            r.check()
                .unwrap_err()
                .to_string()
                .contains("paymentResult.resultStatus")
        );
    }

    #[test]
    fn official_result_codes_for_the_cases_wallets_act_on() {
        use std::time::Duration;
        let cases = [
            (
                ApiError::InvalidSignature(AuthFault::UnknownClient("c".into())),
                "INVALID_CLIENT",
                StatusCode::UNAUTHORIZED,
            ),
            (
                ApiError::NotFound { path: "/x".into() },
                "INVALID_API",
                StatusCode::NOT_FOUND,
            ),
            (
                ApiError::param("customerId", "missing"),
                "PARAM_ILLEGAL",
                StatusCode::BAD_REQUEST,
            ),
            (
                ApiError::InvalidSignature(AuthFault::StaleRequestTime {
                    request_time: "t".into(),
                    now: "n".into(),
                    window: Duration::from_secs(300),
                }),
                "REQUEST_TIME_INVALID",
                StatusCode::UNAUTHORIZED,
            ),
            (
                ApiError::RepeatRequestInconsistent {
                    request_id: "r".into(),
                },
                "REPEAT_REQ_INCONSISTENT",
                StatusCode::OK,
            ),
            (
                ApiError::AcquirerTimeout {
                    payment_id: "p".into(),
                    cause: "c".into(),
                },
                "PAYMENT_IN_PROCESS",
                StatusCode::OK,
            ),
        ];
        for (e, code, http) in cases {
            let status = e.code().status();
            let shown = format!("{e:?}");
            let (got_http, result) = result_of(&AplusFault::Api(e));
            assert_eq!(
                (result.result_code.as_str(), got_http),
                (code, http),
                "{shown}"
            );
            // The canonical S/F/U survives: a U never becomes F.
            assert_eq!(result.result_status, status, "{shown}");
        }
        let (http, closed) = result_of(&AplusFault::Closed {
            payment_request_id: "APR1".into(),
            reason: "quote expired".into(),
        });
        assert_eq!(
            (http, closed.result_code.as_str()),
            (StatusCode::OK, "ORDER_IS_CLOSED")
        );
        assert!(closed.result_message.contains("APR1"));
    }

    #[test]
    fn the_stored_reference_round_trips() {
        let r = AplusRef {
            payment_request_id: RequestId::new("APR1").unwrap(),
            payment_id: Some(AplusWalletId::new("w-1").unwrap()),
        };
        assert_eq!(AplusRef::decode(&r.encode()), Some(r));
        assert_eq!(AplusRef::decode("MSG-0001"), None);
        assert!(AplusWalletId::new("").is_err());
        assert!(AplusWalletId::new("a b").is_err());
        assert!(AplusWalletId::new("x".repeat(65)).is_err());
    }
}
