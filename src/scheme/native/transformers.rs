//! Wallet API v1 on the wire. Its request and response fields are the canonical payment's own
//! serde form (`payment::ops`), so the only native wire types are the route table and the envelope
//! around every answer: `{"result": {resultStatus, resultCode, resultMessage}, <fields>}`.

use hyper::StatusCode;
use serde::Serialize;

use crate::payment::{Answer, Handled};
use crate::payment::{ApiError, ResultCode, Side};
use crate::payment::{Envelope, ResultInfo};

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
                ResultCode::Success.result("success"),
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
