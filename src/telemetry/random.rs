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

/// `bytes` as a (v4) UUID, hyphenated, lower case (the version and variant bits set over them,
/// RFC 9562 §5.4). Written digit by digit into one 36-byte string: the `uuid` crate's `Display`
/// goes through the formatting machinery, a few hundred instructions on every request and decode.
pub fn uuid_v4_of(mut bytes: [u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        if let Some(pair) = text.get_mut(at..at + 2) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0x0f)];
        }
        at += 2;
    }
    // Hex digits and hyphens: ASCII, so the lossy conversion copies it unchanged.
    String::from_utf8_lossy(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_uuids_are_the_uuid_crates() {
        for seed in [[0u8; 16], [0xff; 16], *b"0123456789abcdef"] {
            let ours = uuid_v4_of(seed);
            let theirs = uuid::Builder::from_random_bytes(seed)
                .into_uuid()
                .hyphenated()
                .to_string();
            assert_eq!(ours, theirs);
        }
    }

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
