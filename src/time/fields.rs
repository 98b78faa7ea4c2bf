//! UTC calendar fields for DE7 (MMDDhhmmss), DE12 (hhmmss), DE13 (MMDD), the retrieval reference number
//! and the STAN day. Pure: callers pass the instant.

use std::time::{SystemTime, UNIX_EPOCH};

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

    /// From seconds since the Unix epoch.
    pub fn from_unix(secs: u64) -> Self {
        let day = secs / 86_400;
        let rem = secs % 86_400;
        // Civil-from-days (proleptic Gregorian), after H. Hinnant's algorithm.
        let z = day as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        const CUM: [u16; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let mi = (m - 1) as usize;
        let ordinal = CUM[mi] + d as u16 + u16::from(leap && m > 2);
        UtcFields {
            day,
            year: y.max(0) as u64,
            month: m as u8,
            dom: d as u8,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
            ordinal,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_break_down_correctly() {
        // 2026-11-21T10:15:30Z = 1_795_256_130 (date -u -d 2026-11-21T10:15:30 +%s)
        let t = UtcFields::from_unix(1_795_256_130);
        assert_eq!((t.year, t.month, t.dom), (2026, 11, 21));
        assert_eq!(t.de7(), "1121101530");
        assert_eq!(t.de12(), "101530");
        assert_eq!(t.de13(), "1121");
        assert_eq!(t.ordinal, 325);
        // 2024-12-31 is day 366 of a leap year; 2000-03-01 follows a leap day.
        assert_eq!(UtcFields::from_unix(1_735_603_200).ordinal, 366);
        let m = UtcFields::from_unix(951_868_800);
        assert_eq!((m.year, m.month, m.dom), (2000, 3, 1));
    }
}
