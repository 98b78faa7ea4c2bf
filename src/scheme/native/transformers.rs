//! Wallet API v1 on the wire. Its request and response fields are the canonical payment's own
//! serde form (`payment::ops`), so the only native wire types are the route table and the envelope
//! around every answer: `{"result": {resultStatus, resultCode, resultMessage}, <fields>}`.

use hyper::StatusCode;
use serde::Serialize;

use crate::money::Currency;
use crate::payment::{Answer, Handled};
use crate::payment::{ApiError, ResultCode, Side};
use crate::payment::{CodeType, DecodeRequest, DecodeResponse, Envelope, ResultInfo, ResultStatus};
use crate::payment::{CodeValue, CustomerId, RequestId};
use crate::scheme::json::{flat_strings, parse_json};
use crate::telemetry::json::push_str;

/// The `resultMessage` of a success.
const SUCCESS_MESSAGE: &str = "success";

/// The Wallet API v1 routes (all `POST`, JSON in and out).
pub use crate::scheme::native::Route as NativeRoute;

/// A rendered native response: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeReply {
    /// HTTP status (from the result code).
    pub status: StatusCode,
    /// `{"result": ..., <fields>}`.
    pub body: Vec<u8>,
}

impl From<&ApiError> for NativeReply {
    fn from(error: &ApiError) -> Self {
        let (status, result) = error.to_result();
        NativeReply {
            status,
            body: serde_json::json!({ "result": result })
                .to_string()
                .into_bytes(),
        }
    }
}

impl<T: Serialize> TryFrom<Answer<T>> for NativeReply {
    type Error = ApiError;
    fn try_from(answer: Answer<T>) -> Result<Self, ApiError> {
        let (status, result): (StatusCode, ResultInfo) = match &answer.outcome {
            None => (
                ResultCode::Success.http_status(),
                ResultCode::Success.result(SUCCESS_MESSAGE),
            ),
            Some(e) => e.to_result(),
        };
        // Room for a typical answer up front (a decode's is about 400 bytes), instead of
        // growing from empty through several reallocations.
        let mut body = Vec::with_capacity(512);
        serde_json::to_writer(
            &mut body,
            &Envelope {
                result: &result,
                body: &answer.body,
            },
        )
        .map_err(|e| ApiError::Unknown {
            side: Side::Gateway,
            reason: format!("response not serialisable: {e}"),
        })?;
        Ok(NativeReply { status, body })
    }
}

/// Renders a handled call: its answer, or its error.
pub fn render<T: Serialize>(handled: Handled<T>) -> NativeReply {
    match handled.and_then(NativeReply::try_from) {
        Ok(reply) => reply,
        Err(e) => {
            if e.side() != Side::Wallet {
                tracing::warn!("native: {e}");
            }
            NativeReply::from(&e)
        }
    }
}

/// Reads a decode request: the usual flat body of four plain strings directly (then checked by
/// the same constructors serde uses), anything else, or anything they refuse, through
/// [`parse_json`] with its errors. Serde's visitors were about 6 % of a decode's instructions.
pub fn parse_decode(body: &[u8]) -> Result<DecodeRequest, ApiError> {
    let direct = || {
        let [id, customer, code, currency] = flat_strings(
            body,
            [
                "decodeRequestId",
                "customerId",
                "codeValue",
                "payerCurrency",
            ],
        )?;
        Some(DecodeRequest {
            decode_request_id: RequestId::try_from(id.to_owned()).ok()?,
            customer_id: CustomerId::try_from(customer.to_owned()).ok()?,
            code_value: CodeValue::try_from(code.to_owned()).ok()?,
            payer_currency: Currency::from_code(currency).ok()?,
        })
    };
    direct().map_or_else(|| parse_json(body), Ok)
}

/// Renders a decode: a success written by hand into one buffer, the same bytes serde writes for
/// it through [`render`] (the tests compare them), at a fraction of the instructions: serde's
/// per-field machinery was about a tenth of a decode's (issue 16, defect 6). Anything else goes
/// through [`render`].
pub fn render_decode(handled: Handled<DecodeResponse>) -> NativeReply {
    match handled {
        Ok(Answer {
            body,
            outcome: None,
        }) => NativeReply {
            status: ResultCode::Success.http_status(),
            body: decode_success(&body).into_bytes(),
        },
        other => render(other),
    }
}

/// `{"result":{...S, SUCCESS...},"decodeId":...,"expiresAt":...}`, in the order and form of the
/// serde derives of `Envelope`, `ResultInfo` and `DecodeResponse`.
fn decode_success(d: &DecodeResponse) -> String {
    let mut out = String::with_capacity(512);
    let success = ResultCode::Success;
    out.push_str("{\"result\":{\"resultStatus\":");
    push_str(
        &mut out,
        match success.status() {
            ResultStatus::S => "S",
            ResultStatus::F => "F",
            ResultStatus::U => "U",
        },
    );
    out.push_str(",\"resultCode\":");
    push_str(&mut out, success.as_str());
    out.push_str(",\"resultMessage\":");
    push_str(&mut out, SUCCESS_MESSAGE);
    out.push_str("},\"decodeId\":");
    push_str(&mut out, d.decode_id.as_str());
    out.push_str(",\"codeType\":");
    push_str(
        &mut out,
        match d.code_type {
            CodeType::Static => "STATIC",
            CodeType::Dynamic => "DYNAMIC",
        },
    );
    out.push_str(",\"scheme\":");
    push_str(&mut out, &d.scheme);
    let m = &d.merchant;
    out.push_str(",\"merchant\":{\"name\":");
    push_str(&mut out, &m.name);
    out.push_str(",\"city\":");
    push_str(&mut out, &m.city);
    out.push_str(",\"country\":");
    push_str(&mut out, &m.country);
    out.push_str(",\"mcc\":");
    push_str(&mut out, &m.mcc);
    out.push_str(",\"merchantId\":");
    push_str(&mut out, &m.merchant_id);
    out.push('}');
    if let Some(amount) = &d.amount {
        out.push_str(",\"amount\":{\"currency\":");
        push_str(&mut out, amount.0.currency().code());
        out.push_str(",\"value\":\"");
        // Digits need no escaping.
        let _ = std::fmt::Write::write_fmt(&mut out, format_args!("{}", amount.0.minor()));
        out.push('"');
        out.push('}');
    }
    out.push_str(",\"expiresAt\":");
    push_str(&mut out, &d.expires_at);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Amount;
    use crate::payment::{Merchant, Money};

    /// What a parse gave, comparable (the customer id exposed, the error as its Debug form).
    fn seen(r: Result<DecodeRequest, ApiError>) -> Result<[String; 4], String> {
        r.map(|d| {
            [
                d.decode_request_id.as_str().to_owned(),
                d.customer_id.expose().to_owned(),
                d.code_value.as_str().to_owned(),
                d.payer_currency.code().to_owned(),
            ]
        })
        .map_err(|e| format!("{e:?}"))
    }

    proptest::proptest! {
        #[test]
        fn a_decode_request_read_directly_is_what_serde_reads(
            id in "[A-Za-z0-9:._-]{0,66}|\\PC{0,3}",
            customer in "[!-~]{0,66}| ",
            code in "\\PC{0,3}|[0-9A-Z]{1,520}",
            currency in "MYR|SGD|XXX|myr|[A-Z]{3}",
            spaces in " {0,2}",
            swap in proptest::bool::ANY,
        ) {
            let mut members = [
                format!("\"decodeRequestId\":{}", serde_json::to_string(&id).unwrap_or_default()),
                format!("\"customerId\":{spaces}{}", serde_json::to_string(&customer).unwrap_or_default()),
                format!("\"codeValue\":{}", serde_json::to_string(&code).unwrap_or_default()),
                format!("\"payerCurrency\" :\"{currency}\""),
            ];
            if swap {
                members.reverse();
            }
            let body = format!("{{{spaces}{}}}", members.join(&format!(",{spaces}")));
            let direct = seen(parse_decode(body.as_bytes()));
            let serde = seen(parse_json::<DecodeRequest>(body.as_bytes()));
            proptest::prop_assert_eq!(direct, serde, "{}", body);
        }
    }

    #[test]
    fn a_refused_decode_request_names_its_field_as_before() {
        for body in [
            &br#"{"decodeRequestId":"d 1","customerId":"c","codeValue":"x","payerCurrency":"MYR"}"#[..],
            br#"{"decodeRequestId":"d1","customerId":"c","codeValue":"x","payerCurrency":"MYR","extra":"1"}"#,
            br#"{"decodeRequestId":"d1","customerId":"c","codeValue":"x"}"#,
            br#"{"decodeRequestId":"d1","customerId":"c","codeValue":"x","payerCurrency":"ZZZ"}"#,
        ] {
            let direct = seen(parse_decode(body));
            assert!(direct.is_err(), "{}", String::from_utf8_lossy(body));
            assert_eq!(direct, seen(parse_json::<DecodeRequest>(body)));
        }
    }

    fn answer(name: &str, city: &str, amount: Option<u64>) -> DecodeResponse {
        DecodeResponse {
            decode_id: RequestId::new("8f3c2a9e-1b7d-4c5e-9a0f-2d6b8e4c1a37")
                .unwrap_or_else(|e| panic!("{e}")),
            code_type: if amount.is_some() {
                CodeType::Dynamic
            } else {
                CodeType::Static
            },
            scheme: "PAYNOW".to_owned(),
            merchant: Merchant {
                name: name.to_owned(),
                city: city.to_owned(),
                country: "SG".to_owned(),
                mcc: "5812".to_owned(),
                merchant_id: "M0001\"x".to_owned(),
            },
            amount: amount.map(|minor| {
                Money(
                    Amount::from_minor(
                        minor,
                        Currency::from_code("SGD").unwrap_or_else(|e| panic!("{e}")),
                    )
                    .unwrap_or_else(|e| panic!("{e}")),
                )
            }),
            expires_at: "2026-12-06T03:15:00.000Z".to_owned(),
        }
    }

    proptest::proptest! {
        #[test]
        fn a_decode_rendered_by_hand_is_what_serde_renders(
            name in "\\PC{0,40}|[\\x00-\\x7f]{0,40}",
            city in "\\PC{0,20}",
            amount in proptest::option::of(0u64..10_000_000_000),
        ) {
            let d = answer(&name, &city, amount);
            let by_hand = render_decode(Ok(Answer::ok(d.clone())));
            let by_serde = render(Ok(Answer::ok(d)));
            proptest::prop_assert_eq!(by_hand.status, by_serde.status);
            proptest::prop_assert_eq!(
                String::from_utf8_lossy(&by_hand.body),
                String::from_utf8_lossy(&by_serde.body)
            );
        }
    }

    #[test]
    fn a_refused_decode_is_rendered_as_before() {
        let e = || ApiError::QrNotSupported {
            reason: "the code is from MY (58)".to_owned(),
        };
        let by_hand = render_decode(Err(e()));
        let by_serde = render::<DecodeResponse>(Err(e()));
        assert_eq!(by_hand, by_serde);
    }
}
