//! STAN allocation: 000001..=999999, unique per link per UTC day, also across restarts.
//!
//! Numbers are taken in blocks of [`BLOCK`] reserved in the link's store
//! ([`ReversalStore::reserve_stans`](crate::acquirer::reversal::ReversalStore::reserve_stans), one
//! durable write per block with the journal): a restarted process continues after the last block
//! reserved that day instead of at 000001, so neither STANs nor the RRNs built from them (DE37 =
//! `YDDDhh` + STAN) repeat within a day. A restart skips the rest of its block (at most
//! `BLOCK - 1` numbers). The counter restarts at 1 when the UTC day changes; past 999,999 numbers
//! in one day it wraps and skips numbers still in flight.
//!
//! Should the store fail, numbers continue in memory past the block (logged; the next number
//! retries the reservation): a message is never refused for want of a STAN.

use crate::acquirer::message::Stan;
use crate::acquirer::reversal::StoreError;

/// Numbers reserved per store write.
pub(crate) const BLOCK: u32 = 1000;

const MAX: u64 = 999_999;

#[derive(Debug)]
pub(crate) struct StanClock {
    day: u64,
    /// Next sequence number of the day (from 1; past 999,999 after a wrap).
    next: u64,
    /// End (exclusive) of the reserved block.
    end: u64,
}

impl StanClock {
    pub(crate) fn new() -> Self {
        StanClock {
            day: u64::MAX,
            next: 1,
            end: 1,
        }
    }

    /// The next STAN on `day`. `reserve(day, count)` reserves a block and returns its first
    /// number; `in_use` is consulted only after a wrap.
    pub(crate) fn next(
        &mut self,
        day: u64,
        mut reserve: impl FnMut(u64, u32) -> Result<u64, StoreError>,
        in_use: impl Fn(Stan) -> bool,
    ) -> Stan {
        if day != self.day {
            self.day = day;
            self.next = 1;
            self.end = 1;
        }
        for _ in 0..MAX {
            if self.next >= self.end {
                match reserve(day, BLOCK) {
                    Ok(first) => {
                        self.next = first.max(self.next);
                        self.end = self.next + u64::from(BLOCK);
                    }
                    Err(e) => tracing::error!(
                        "STAN block not reserved ({e}); continuing at {} in memory: STANs may \
                         repeat after a restart today",
                        self.next
                    ),
                }
            }
            let n = self.next;
            self.next += 1;
            let stan =
                Stan::new(u32::try_from((n - 1) % MAX + 1).unwrap_or(1)).unwrap_or(Stan::MIN);
            if n <= MAX || !in_use(stan) {
                return stan;
            }
        }
        Stan::MIN
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::acquirer::reversal::{MemoryReversalStore, ReversalStore};

    fn take(c: &mut StanClock, store: &MemoryReversalStore, day: u64) -> u32 {
        c.next(
            day,
            |d, n| store.reserve_stans("70200001/QRB00001", d, n),
            |_| false,
        )
        .get()
    }

    #[test]
    fn counts_from_one_and_restarts_each_day() {
        let store = MemoryReversalStore::new();
        let mut c = StanClock::new();
        assert_eq!(take(&mut c, &store, 10), 1);
        assert_eq!(take(&mut c, &store, 10), 2);
        assert_eq!(take(&mut c, &store, 11), 1);
    }

    #[test]
    fn a_restart_on_the_same_day_continues_after_the_reserved_block() {
        let store = MemoryReversalStore::new();
        let mut seen = HashSet::new();
        for _restart in 0..3 {
            let mut c = StanClock::new();
            for _ in 0..1500 {
                assert!(seen.insert(take(&mut c, &store, 7)), "a STAN repeated");
            }
        }
        // The next day starts again at 1.
        assert_eq!(take(&mut StanClock::new(), &store, 8), 1);
    }

    #[test]
    fn after_a_wrap_skips_numbers_in_flight() {
        let mut c = StanClock::new();
        let reserve = |_: u64, _: u32| Ok(999_999);
        assert_eq!(c.next(1, reserve, |_| false).get(), 999_999);
        // 1 and 2 are still in flight.
        assert_eq!(c.next(1, reserve, |s| s.get() <= 2).get(), 3);
    }

    #[test]
    fn a_failing_store_does_not_stop_numbering() {
        let mut c = StanClock::new();
        let fail = |_: u64, _: u32| Err(StoreError::Backend("disk full".to_owned()));
        assert_eq!(c.next(1, fail, |_| false).get(), 1);
        assert_eq!(c.next(1, fail, |_| false).get(), 2);
    }
}
