//! Firestore timestamps: RFC 3339 with up to nanosecond digits, years 1 to
//! 9999 (Firestore's range).

use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

const MICROS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
const NANOS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");
const SECONDS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// Earliest and latest second Firestore stores (0001-01-01, 9999-12-31).
pub(crate) const MIN_SECONDS: i64 = -62_135_596_800;
pub(crate) const MAX_SECONDS: i64 = 253_402_300_799;

/// Nanoseconds since the epoch of an RFC 3339 timestamp.
pub(crate) fn parse_instant(text: &str) -> Option<i128> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp_nanos)
}

fn datetime(nanos: i128) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .map(|t| t.to_offset(UtcOffset::UTC))
}

/// One spelling per instant: six fraction digits when the instant is whole
/// microseconds (all Firestore stores), nine otherwise. Versions are built
/// with it, so equal instants give equal version strings.
pub(crate) fn rfc3339_nanos(nanos: i128) -> String {
    let format = if nanos % 1000 == 0 { MICROS } else { NANOS };
    datetime(nanos)
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

/// Whole seconds, for `expiresAt` (`None` outside Firestore's range).
pub(crate) fn rfc3339_seconds(seconds: i64) -> Option<String> {
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&seconds) {
        return None;
    }
    datetime(i128::from(seconds) * 1_000_000_000).and_then(|t| t.format(SECONDS).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_per_instant() {
        let a = parse_instant("2026-11-26T20:05:41.994951Z").unwrap();
        let b = parse_instant("2026-11-26T21:05:41.994951000+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(rfc3339_nanos(a), "2026-11-26T20:05:41.994951Z");
        assert_eq!(rfc3339_nanos(a + 1), "2026-11-26T20:05:41.994951001Z");
        assert_eq!(parse_instant("yesterday"), None);
    }

    #[test]
    fn seconds_in_range_only() {
        assert_eq!(rfc3339_seconds(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339_seconds(MIN_SECONDS).as_deref(),
            Some("0001-01-01T00:00:00Z")
        );
        assert_eq!(rfc3339_seconds(MAX_SECONDS + 1), None);
    }
}
