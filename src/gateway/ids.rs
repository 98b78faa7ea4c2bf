//! Ids the pipeline makes (decode ids): random UUIDs from the OS generator, drawn in blocks.
//!
//! One `getrandom` per decode was a system call on every decode (issue 16, defect 6): each thread
//! now fills a block of [`BLOCK`] bytes at once and hands out 16 at a time, wiping what it hands
//! out. The ids stay unpredictable (OS CSPRNG output, never reused); a block costs one call per
//! `BLOCK / 16` ids.

use std::cell::RefCell;

use ring::rand::{SecureRandom, SystemRandom};

use crate::payment::ApiError;
use crate::payment::RequestId;

use super::errors;

/// Random bytes fetched per system call.
pub const BLOCK: usize = 1024;

struct Pool {
    bytes: [u8; BLOCK],
    /// Bytes of `bytes` already handed out (and wiped).
    used: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            bytes: [0; BLOCK],
            used: BLOCK,
        })
    };
}

/// 16 random bytes from this thread's block (refilled from the OS when spent).
fn random16() -> Result<[u8; 16], ApiError> {
    POOL.with(|pool| {
        let mut p = pool.borrow_mut();
        if p.used + 16 > BLOCK {
            SystemRandom::new()
                .fill(&mut p.bytes)
                .map_err(|_| errors::internal("the OS random generator failed"))?;
            p.used = 0;
        }
        let at = p.used;
        let mut out = [0u8; 16];
        let taken = p
            .bytes
            .get_mut(at..at + 16)
            .ok_or_else(|| errors::internal("random block out of range"))?;
        out.copy_from_slice(taken);
        taken.fill(0);
        p.used = at + 16;
        Ok(out)
    })
}

/// A new random (v4) UUID, hyphenated.
pub fn new_id() -> Result<String, ApiError> {
    let bytes = random16()?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string())
}

/// An id of ours as a wire id.
pub fn wire(id: &str) -> Result<RequestId, ApiError> {
    RequestId::new(id).map_err(|e| errors::internal(format!("id {id:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_across_many_blocks_and_threads() {
        let per_thread = BLOCK / 16 * 5 + 3;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || (0..per_thread).map(|_| new_id()).collect::<Vec<_>>())
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for t in threads {
            for id in t.join().unwrap_or_default() {
                let id = id.unwrap_or_default();
                assert_eq!(id.len(), 36);
                assert_eq!(id.as_bytes()[14], b'4', "version 4: {id}");
                assert!(all.insert(id), "an id came twice");
            }
        }
        assert_eq!(all.len(), 4 * per_thread);
    }
}
