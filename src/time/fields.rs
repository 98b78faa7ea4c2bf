//! UTC calendar fields for DE7 (MMDDhhmmss), DE12 (hhmmss), DE13 (MMDD), the retrieval reference number
//! and the STAN day. Pure: callers pass the instant.

use std::time::{SystemTime, UNIX_EPOCH};

use ::time::{OffsetDateTime, PrimitiveDateTime};

/// A UTC instant broken into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcFields {
    /// Days since 1970-01-01 (the STAN day).
    pub day: u64,
    /// Year, e.g. 2026.
    pub year: u64,
    /// 1..=12
    pub month: u8,
    /// 1..=31
    pub dom: u8,
    /// 0..=23
    pub hour: u8,
    /// 0..=59
    pub minute: u8,
    /// 0..=59
    pub second: u8,
    /// Day of the year, 1..=366.
    pub ordinal: u16,
}

impl UtcFields {
    /// Now.
    pub fn now() -> Self {
        UtcFields::from_system(SystemTime::now())
    }

    /// From a system time (times before 1970 clamp to the epoch).
    pub fn from_system(t: SystemTime) -> Self {
        UtcFields::from_unix(
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }

    /// From seconds since the Unix epoch (beyond year 9999 clamps to its last second).
    pub fn from_unix(secs: u64) -> Self {
        let at = i64::try_from(secs)
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or_else(|| PrimitiveDateTime::MAX.assume_utc());
        UtcFields {
            day: secs / 86_400,
            year: u64::try_from(at.year()).unwrap_or(0),
            month: u8::from(at.month()),
            dom: at.day(),
            hour: at.hour(),
            minute: at.minute(),
            second: at.second(),
            ordinal: at.ordinal(),
        }
    }

    /// DE7 transmission date and time, `MMDDhhmmss`.
    pub fn de7(&self) -> String {
        format!(
            "{:02}{:02}{:02}{:02}{:02}",
            self.month, self.dom, self.hour, self.minute, self.second
        )
    }

    /// DE12 local time, `hhmmss`.
    pub fn de12(&self) -> String {
        format!("{:02}{:02}{:02}", self.hour, self.minute, self.second)
    }

    /// DE13 local date, `MMDD`.
    pub fn de13(&self) -> String {
        format!("{:02}{:02}", self.month, self.dom)
    }

    /// The date as `YYYYMMDD` (a settlement file's business date).
    pub fn yyyymmdd(&self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.dom)
    }

    /// The same eight digits without a heap string (a decode compares a code's expiry date with
    /// today's on every request: `format!` cost it ≈ 1,000 instructions). Years past 9999 are
    /// written as 9999, the latest date eight digits hold.
    pub fn yyyymmdd_digits(&self) -> [u8; 8] {
        let year = self.year.min(9999);
        let mut out = [b'0'; 8];
        let mut put = |at: usize, width: usize, mut v: u64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, year);
        put(4, 2, u64::from(self.month));
        put(6, 2, u64::from(self.dom));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_by_hand_match_the_formatted_date() {
        // Every day from 1970 to 2200, and a few far-off instants.
        let mut day = 0u64;
        while day < 84_000 {
            let f = UtcFields::from_unix(day * 86_400 + 43_210);
            assert_eq!(f.yyyymmdd_digits(), f.yyyymmdd().as_bytes(), "day {day}");
            day += 1;
        }
        let last = UtcFields::from_unix(u64::MAX);
        assert_eq!(&last.yyyymmdd_digits(), b"99991231");
        let far = UtcFields {
            year: 12_345,
            ..UtcFields::from_unix(0)
        };
        assert_eq!(&far.yyyymmdd_digits(), b"99990101");
    }

    #[test]
    fn known_instants_break_down_correctly() {
        // 2026-11-21T10:15:30Z = 1_795_256_130 (date -u -d 2026-11-21T10:15:30 +%s)
        let t = UtcFields::from_unix(1_795_256_130);
        assert_eq!((t.year, t.month, t.dom), (2026, 11, 21));
        assert_eq!(t.de7(), "1121101530");
        assert_eq!(t.de12(), "101530");
        assert_eq!(t.de13(), "1121");
        assert_eq!(t.yyyymmdd(), "20261121");
        assert_eq!(t.ordinal, 325);
        // 2024-12-31 is day 366 of a leap year; 2000-03-01 follows a leap day.
        assert_eq!(UtcFields::from_unix(1_735_603_200).ordinal, 366);
        let m = UtcFields::from_unix(951_868_800);
        assert_eq!((m.year, m.month, m.dom), (2000, 3, 1));
    }
}
