//! `request-time` and `response-time`: RFC 3339 UTC with `Z`, whole seconds or a fraction.

use std::time::{Duration, SystemTime};

use crate::time::{format_rfc3339, parse_timestamp};

/// `now` as a `request-time` / `response-time` value: RFC 3339 UTC with milliseconds,
/// `2026-11-21T10:40:00.123Z`.
pub fn request_time(now: SystemTime) -> String {
    let millis = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    let whole = format_rfc3339(now);
    match whole.strip_suffix('Z') {
        Some(base) => format!("{base}.{millis:03}Z"),
        None => whole,
    }
}

/// Parses a `request-time`: `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (UTC, 1–9 fraction digits).
pub fn parse_request_time(text: &str) -> Option<SystemTime> {
    let base = text.strip_suffix('Z')?;
    let (whole, nanos) = match base.split_once('.') {
        None => (base, 0u32),
        Some((whole, fraction)) => {
            if fraction.is_empty()
                || fraction.len() > 9
                || !fraction.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let scaled = format!("{fraction:0<9}");
            (whole, scaled.parse().ok()?)
        }
    };
    if whole.len() != 19 || !whole.contains('T') {
        return None;
    }
    parse_timestamp(&format!("{whole}Z"))?.checked_add(Duration::from_nanos(u64::from(nanos)))
}
