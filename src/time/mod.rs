//! Time leaf: an injectable clock, and the text forms every room reads and writes (`YYYY-MM-DD`
//! feed dates, RFC 3339 UTC timestamps; [`fields`]: ISO 8583 DE7/DE12/DE13 calendar fields). No
//! time zone database: everything is UTC. Imports no other room.

pub mod fields;

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the FX room reads "now" from: the system clock in production, a hand-moved clock in tests.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to (tests, simulations, replays).
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: SystemTime) -> Self {
        ManualClock(Mutex::new(at))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: SystemTime) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of `days_from_civil`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYY-MM-DD` (a feed date) as midnight UTC of that day. Years 1970–9999 only.
pub fn parse_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = number(s.get(0..4)?)?;
    let m = number(s.get(5..7)?)?;
    let d = number(s.get(8..10)?)?;
    if y < 1970 || !(1..=12).contains(&m) || d < 1 || d > days_in_month(i64::from(y), m) {
        return None;
    }
    let days = u64::try_from(days_from_civil(i64::from(y), m, d)).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(days * 86_400))
}

/// Parses a feed time: a date (`2026-11-20`, midnight UTC) or a UTC timestamp
/// (`2026-11-20T15:00:00Z`).
pub fn parse_timestamp(s: &str) -> Option<SystemTime> {
    let (date, time) = match s.split_once('T') {
        None => return parse_date(s),
        Some(parts) => parts,
    };
    let day = parse_date(date)?;
    let time = time.strip_suffix('Z')?;
    let mut parts = time.split(':');
    let (h, m, sec) = (
        number(parts.next()?)?,
        number(parts.next()?)?,
        number(parts.next()?)?,
    );
    if parts.next().is_some() || time.len() != 8 || h > 23 || m > 59 || sec > 59 {
        return None;
    }
    day.checked_add(Duration::from_secs(u64::from(h * 3600 + m * 60 + sec)))
}

/// Formats a time as an RFC 3339 UTC timestamp with whole seconds: `2026-11-20T00:00:00Z`.
/// Times before 1970 print as the epoch.
pub fn format_rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `later - earlier`, or zero when `later` is not later.
pub(crate) fn elapsed(earlier: SystemTime, later: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_day_counts() {
        for (s, days) in [
            ("1970-01-01", 0u64),
            ("2000-02-29", 11_016),
            ("2026-11-20", 20_777),
            ("9999-12-31", 2_932_896),
        ] {
            let t = parse_date(s).unwrap();
            assert_eq!(
                t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
                days * 86_400,
                "{s}"
            );
            assert_eq!(format_rfc3339(t), format!("{s}T00:00:00Z"));
        }
    }

    #[test]
    fn refuses_impossible_dates() {
        for s in [
            "2026-02-29",
            "2100-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "1969-12-31",
            "2026-1-01",
            "2026/01/01",
            "２０２６-01-01",
            "",
            "2026-01-0+",
        ] {
            assert_eq!(parse_date(s), None, "{s}");
        }
    }

    #[test]
    fn timestamps_carry_the_time_of_day() {
        let t = parse_timestamp("2026-11-20T15:04:05Z").unwrap();
        assert_eq!(format_rfc3339(t), "2026-11-20T15:04:05Z");
        assert_eq!(parse_timestamp("2026-11-20"), parse_date("2026-11-20"));
        for s in [
            "2026-11-20T15:04:05",
            "2026-11-20T24:00:00Z",
            "2026-11-20T1:2:3Z",
            "2026-11-20T15:04:05+01:00",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
    }
}
