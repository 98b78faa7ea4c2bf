//! Ids the pipeline makes (decode ids): random UUIDs from the OS generator, drawn in blocks
//! (`telemetry::random`: one system call per 64 ids, not one per decode).

use crate::payment::ApiError;
use crate::payment::RequestId;

use super::errors;

/// A new random (v4) UUID, hyphenated.
pub fn new_id() -> Result<String, ApiError> {
    crate::telemetry::random::uuid_v4()
        .ok_or_else(|| errors::internal("the OS random generator failed"))
}

/// An id of ours as a wire id.
pub fn wire(id: &str) -> Result<RequestId, ApiError> {
    RequestId::new(id).map_err(|e| errors::internal(format!("id {id:?}: {e}")))
}
