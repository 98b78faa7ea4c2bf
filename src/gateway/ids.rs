//! Ids the pipeline makes (decode ids): random UUIDs from the OS generator.

use ring::rand::{SecureRandom, SystemRandom};

use crate::payment::ApiError;
use crate::payment::RequestId;

use super::errors;

/// A new random (v4) UUID, hyphenated.
pub fn new_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| errors::internal("the OS random generator failed"))?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string())
}

/// An id of ours as a wire id.
pub fn wire(id: &str) -> Result<RequestId, ApiError> {
    RequestId::new(id).map_err(|e| errors::internal(format!("id {id:?}: {e}")))
}
