//! Time leaf: an injectable clock, and the text forms every room reads and writes, on the `time`
//! crate (calendar, leap years, ranges): `YYYY-MM-DD` feed dates, RFC 3339 / ISO 8601 date-times
//! (`2026-11-21T12:40:00.123Z`, `2026-11-21T20:40:00+08:00`) in the flavours the schemes accept
//! ([`Syntax`]), and ([`fields`]) the ISO 8583 DE7/DE12/DE13 calendar fields. No time zone
//! database: instants are UTC. Imports no other room.
//!
//! Inside this crate the leaf is `crate::time`; the external crate is `::time`.

pub mod fields;

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::time::macros::format_description;
use ::time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

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

/// Which date-time texts a reader accepts beyond `YYYY-MM-DDThh:mm:ss` (upper-case `T`, ASCII
/// digits, calendar-valid, seconds 00–59).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syntax {
    /// A fraction of a second, `.` and 1–9 digits, may follow the seconds.
    pub fraction: bool,
    /// What may follow the time of day.
    pub zone: Zone,
}

/// The zone part of a date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// `Z` only (UTC).
    Utc,
    /// `Z` or an offset `±hh:mm` (hours 00–14, minutes 00–59).
    UtcOrOffset,
    /// `Z`, an offset, or nothing (a local time, as ISO 20022's `ISODateTime` allows).
    Optional,
}

impl Syntax {
    /// Feed and configuration timestamps: `2026-11-20T15:00:00Z`, whole seconds.
    pub const FEED: Syntax = Syntax {
        fraction: false,
        zone: Zone::Utc,
    };
    /// RFC 3339 UTC with an optional fraction (`request-time`, `response-time`).
    pub const RFC3339_UTC: Syntax = Syntax {
        fraction: true,
        zone: Zone::Utc,
    };
    /// ISO 8601 with a fraction and an offset (`2026-11-21T20:40:00+08:00`).
    pub const ISO_OFFSET: Syntax = Syntax {
        fraction: true,
        zone: Zone::UtcOrOffset,
    };
    /// ISO 20022 `ISODateTime`: as [`Syntax::ISO_OFFSET`], the zone optional.
    pub const ISO_DATE_TIME: Syntax = Syntax {
        fraction: true,
        zone: Zone::Optional,
    };
}

/// A date-time as read: the wall-clock fields and, unless it was a local time, its offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Date and time of day, with nanoseconds.
    pub local: PrimitiveDateTime,
    /// `Some(UTC)` for `Z`, `Some(offset)` for `±hh:mm`, `None` for a local time.
    pub offset: Option<UtcOffset>,
}

impl DateTime {
    /// The instant meant, for a zoned time in 1970 or later.
    pub fn instant(&self) -> Option<SystemTime> {
        let at = self.local.assume_offset(self.offset?);
        let secs = u64::try_from(at.unix_timestamp()).ok()?;
        UNIX_EPOCH.checked_add(Duration::new(secs, at.nanosecond()))
    }
}

/// Reads `YYYY-MM-DDThh:mm:ss[.fffffffff][zone]` as `syntax` allows. `None` on anything else: a
/// lower-case `t` or `z`, a space, a date that does not exist, hour 24, second 60, a fraction of 0
/// or more than 9 digits, `+0800`, an offset beyond ±14:59.
pub fn parse_date_time(text: &str, syntax: Syntax) -> Option<DateTime> {
    let (base, rest) = (text.get(..19)?, text.get(19..)?);
    if !base.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let local = PrimitiveDateTime::parse(
        base,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    )
    .ok()?;
    let (nanos, zone) = match rest.strip_prefix('.') {
        Some(after) if syntax.fraction => {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if !(1..=9).contains(&digits) {
                return None;
            }
            let (fraction, zone) = after.split_at(digits);
            (format!("{fraction:0<9}").parse::<u32>().ok()?, zone)
        }
        Some(_) => return None,
        None => (0, rest),
    };
    let local = local.replace_nanosecond(nanos).ok()?;
    let offset = match (zone, syntax.zone) {
        ("Z", _) => Some(UtcOffset::UTC),
        ("", Zone::Optional) => None,
        (_, Zone::Utc) | ("", _) => return None,
        (offset, _) => Some(parse_offset(offset)?),
    };
    Some(DateTime { local, offset })
}

/// `±hh:mm`, hours 00–14.
fn parse_offset(text: &str) -> Option<UtcOffset> {
    if text.len() != 6 {
        return None;
    }
    let offset = UtcOffset::parse(
        text,
        format_description!("[offset_hour sign:mandatory]:[offset_minute]"),
    )
    .ok()?;
    (offset.whole_hours().unsigned_abs() <= 14).then_some(offset)
}

/// Parses `YYYY-MM-DD` (a feed date) as midnight UTC of that day. Years 1970–9999 only.
pub fn parse_date(s: &str) -> Option<SystemTime> {
    if s.len() != 10 || !s.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let date = Date::parse(s, format_description!("[year]-[month]-[day]")).ok()?;
    DateTime {
        local: date.midnight(),
        offset: Some(UtcOffset::UTC),
    }
    .instant()
}

/// Parses a feed time: a date (`2026-11-20`, midnight UTC) or a UTC timestamp with whole seconds
/// (`2026-11-20T15:00:00Z`).
pub fn parse_timestamp(s: &str) -> Option<SystemTime> {
    if s.contains('T') {
        parse_date_time(s, Syntax::FEED)?.instant()
    } else {
        parse_date(s)
    }
}

/// Parses RFC 3339 UTC: `YYYY-MM-DDThh:mm:ss[.fraction]Z` (1–9 fraction digits), 1970 or later.
pub fn parse_rfc3339_utc(text: &str) -> Option<SystemTime> {
    parse_date_time(text, Syntax::RFC3339_UTC)?.instant()
}

/// Parses ISO 8601 with seconds, an optional fraction (1–9 digits) and a zone (`Z` or `±hh:mm`):
/// `2026-11-21T20:40:00+08:00`, `2026-11-21T12:40:00.123Z`.
pub fn parse_iso_offset(text: &str) -> Option<SystemTime> {
    parse_date_time(text, Syntax::ISO_OFFSET)?.instant()
}

/// `t` in UTC, clamped to 1970-01-01 .. 9999-12-31T23:59:59.999999999.
fn utc(t: SystemTime) -> OffsetDateTime {
    let nanos = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or_else(|_| PrimitiveDateTime::MAX.assume_utc())
}

/// `YYYY-MM-DDThh:mm:ss` with room for a suffix. Digits are written by hand: `format!` with six
/// padded integers cost about 4,000 instructions, and every decode and quote answer carries a
/// timestamp (issue 16). The calendar itself is the `time` crate's.
fn whole_seconds(at: OffsetDateTime) -> String {
    let mut s = String::with_capacity(24);
    push_digits(&mut s, u32::try_from(at.year()).unwrap_or(0), 4);
    s.push('-');
    push_digits(&mut s, u32::from(u8::from(at.month())), 2);
    s.push('-');
    push_digits(&mut s, u32::from(at.day()), 2);
    s.push('T');
    push_digits(&mut s, u32::from(at.hour()), 2);
    s.push(':');
    push_digits(&mut s, u32::from(at.minute()), 2);
    s.push(':');
    push_digits(&mut s, u32::from(at.second()), 2);
    s
}

/// `v` in decimal, zero-padded to at least `width` digits (as `{:0width$}`).
fn push_digits(out: &mut String, v: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut i = buf.len();
    let mut n = v;
    while n > 0 {
        i -= 1;
        buf[i] = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
    }
    let start = i.min(buf.len().saturating_sub(width));
    out.extend(buf[start..].iter().map(|&b| char::from(b)));
}

/// Formats a time as an RFC 3339 UTC timestamp with whole seconds: `2026-11-20T00:00:00Z`.
/// Times before 1970 print as the epoch.
pub fn format_rfc3339(t: SystemTime) -> String {
    let mut s = whole_seconds(utc(t));
    s.push('Z');
    s
}

/// Formats a time as RFC 3339 UTC with milliseconds: `2026-11-21T10:40:00.123Z` (the
/// `request-time` / `response-time` of the schemes). Times before 1970 print as the epoch.
pub fn format_rfc3339_millis(t: SystemTime) -> String {
    let at = utc(t);
    let mut s = whole_seconds(at);
    s.push('.');
    push_digits(&mut s, u32::from(at.millisecond()), 3);
    s.push('Z');
    s
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
    fn timestamps_format_as_the_time_crate_does() {
        // The reference: the `time` crate's calendar fields through `format!`'s padding.
        let reference = |at: OffsetDateTime| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second(),
                at.millisecond()
            )
        };
        // Instants spread over 1970 to 9999, each with some milliseconds.
        let mut secs: u64 = 0;
        for i in 0..2_000u64 {
            let t = UNIX_EPOCH + Duration::from_millis(secs * 1000 + (i * 7) % 1000);
            let want = reference(utc(t));
            assert_eq!(format_rfc3339_millis(t), want, "{secs}");
            assert_eq!(format_rfc3339(t), format!("{}Z", &want[..19]), "{secs}");
            secs = (secs + 126_229_871 + i * 86_399) % 253_402_300_800;
        }
        assert_eq!(
            format_rfc3339(UNIX_EPOCH + Duration::from_secs(253_402_300_799)),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
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

    #[test]
    fn each_syntax_accepts_its_own_flavour_only() {
        let utc = parse_rfc3339_utc("2026-11-21T10:40:00.5Z").unwrap();
        assert_eq!(
            utc.duration_since(parse_timestamp("2026-11-21T10:40:00Z").unwrap())
                .ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(format_rfc3339_millis(utc), "2026-11-21T10:40:00.500Z");
        assert_eq!(parse_rfc3339_utc("2026-11-21T10:40:00+00:00"), None);
        assert_eq!(parse_rfc3339_utc("2026-11-21T10:40:00.1234567890Z"), None);
        assert_eq!(parse_rfc3339_utc("2026-11-21t10:40:00Z"), None);
        assert_eq!(parse_rfc3339_utc("2026-11-21T10:40:00z"), None);
        assert_eq!(parse_rfc3339_utc("2026-11-21T10:40:60Z"), None);
        assert_eq!(parse_rfc3339_utc("+026-11-21T10:40:00Z"), None);
        assert_eq!(
            parse_iso_offset("2026-11-21T23:40:00+14:00"),
            parse_timestamp("2026-11-21T09:40:00Z")
        );
        assert_eq!(parse_iso_offset("2026-11-21T23:40:00-15:00"), None);
        assert_eq!(parse_iso_offset("2026-11-21T23:40:00"), None);
        // A local time is a valid ISODateTime but names no instant.
        let local = parse_date_time("2024-02-29T10:40:00.123", Syntax::ISO_DATE_TIME).unwrap();
        assert_eq!(local.offset, None);
        assert_eq!(local.instant(), None);
        assert_eq!(local.local.nanosecond(), 123_000_000);
        assert_eq!(
            parse_date_time("2026-02-29T10:40:00", Syntax::ISO_DATE_TIME),
            None
        );
        // Before 1970 is a valid date-time but not an instant of ours.
        let old = parse_date_time("1969-12-31T23:59:59Z", Syntax::RFC3339_UTC).unwrap();
        assert_eq!(old.instant(), None);
    }

    #[test]
    fn formatting_clamps_to_the_representable_range() {
        assert_eq!(
            format_rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00Z"
        );
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(format_rfc3339(far), "9999-12-31T23:59:59Z");
        assert_eq!(format_rfc3339_millis(far), "9999-12-31T23:59:59.999Z");
    }
}
