//! STAN allocation: 000001..=999999, unique per link per UTC day. The counter restarts at 1 when the
//! day changes; should a link send more than 999,999 messages in one day it wraps and skips numbers
//! still in flight.

use crate::acquirer::message::Stan;

#[derive(Debug)]
pub(crate) struct StanClock {
    day: u64,
    next: u32,
    wrapped: bool,
}

impl StanClock {
    pub(crate) fn new() -> Self {
        StanClock {
            day: u64::MAX,
            next: 1,
            wrapped: false,
        }
    }

    /// The next STAN on `day`; `in_use` is consulted only after a wrap.
    pub(crate) fn next(&mut self, day: u64, in_use: impl Fn(Stan) -> bool) -> Stan {
        if day != self.day {
            self.day = day;
            self.next = 1;
            self.wrapped = false;
        }
        for _ in 0..999_999 {
            let n = self.next;
            self.next = if n >= 999_999 {
                self.wrapped = true;
                1
            } else {
                n + 1
            };
            let stan = Stan::new(n).unwrap_or(Stan::MIN);
            if !self.wrapped || !in_use(stan) {
                return stan;
            }
        }
        Stan::MIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_one_and_restarts_each_day() {
        let mut c = StanClock::new();
        assert_eq!(c.next(10, |_| false).get(), 1);
        assert_eq!(c.next(10, |_| false).get(), 2);
        assert_eq!(c.next(11, |_| false).get(), 1);
    }

    #[test]
    fn after_a_wrap_skips_numbers_in_flight() {
        let mut c = StanClock::new();
        c.next(1, |_| false);
        c.next = 999_999;
        assert_eq!(c.next(1, |_| false).get(), 999_999);
        // 1 and 2 are still in flight.
        assert_eq!(c.next(1, |s| s.get() <= 2).get(), 3);
    }
}
