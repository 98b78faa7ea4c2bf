//! Random 16-byte ids (request ids, decode ids) from the OS generator, drawn in blocks.
//!
//! One `getrandom` system call per id showed up on every request (issue 16, defect 6): each thread
//! fills a block of [`BLOCK`] bytes at once and hands out 16 at a time, wiping what it hands out.
//! The ids stay unpredictable (OS CSPRNG output) and are never handed out twice; a block costs one
//! call per `BLOCK / 16` ids.

use std::cell::RefCell;

use ring::rand::{SecureRandom, SystemRandom};

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

/// 16 random bytes from this thread's block (refilled from the OS when spent); `None` when the OS
/// generator fails.
pub fn random16() -> Option<[u8; 16]> {
    POOL.with(|pool| {
        let mut p = pool.borrow_mut();
        if p.used + 16 > BLOCK {
            SystemRandom::new().fill(&mut p.bytes).ok()?;
            p.used = 0;
        }
        let at = p.used;
        let taken = p.bytes.get_mut(at..at + 16)?;
        let mut out = [0u8; 16];
        out.copy_from_slice(taken);
        taken.fill(0);
        p.used = at + 16;
        Some(out)
    })
}

/// A random (v4) UUID, hyphenated; `None` when the OS generator fails.
pub fn uuid_v4() -> Option<String> {
    random16().map(uuid_v4_of)
}

/// `bytes` as a (v4) UUID, hyphenated (the version and variant bits set over them).
pub fn uuid_v4_of(bytes: [u8; 16]) -> String {
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_across_many_blocks_and_threads() {
        let per_thread = BLOCK / 16 * 5 + 3;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || (0..per_thread).map(|_| uuid_v4()).collect::<Vec<_>>())
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
