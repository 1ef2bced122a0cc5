//! The one way the service writes time: RFC 3339, UTC, microseconds, fixed
//! width (`2026-02-08T10:00:00.000000Z`). Fixed width makes text order equal
//! time order, which DynamoDB's string sort keys and the cursors rely on.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A point in time with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    micros: i64,
}

/// Text that [`Timestamp::parse`] could not read; carries the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an RFC 3339 timestamp such as 2026-02-08T10:00:00Z")]
pub struct TimestampError(String);

const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

impl Timestamp {
    /// The current time from the system clock (wasi:clocks inside a component).
    pub fn now() -> Self {
        let micros = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(_) => 0,
        };
        Self { micros }
    }

    /// From microseconds since the Unix epoch (what [`Self::as_micros`] gives).
    pub fn from_micros(micros: i64) -> Self {
        Self { micros }
    }

    /// From whole seconds since the Unix epoch (an `expires_at`), saturating.
    pub fn from_unix_seconds(seconds: i64) -> Self {
        Self {
            micros: seconds.saturating_mul(1_000_000),
        }
    }

    /// Microseconds since the Unix epoch; negative before 1970.
    pub fn as_micros(self) -> i64 {
        self.micros
    }

    /// Whole seconds since the epoch (rounded down).
    pub fn unix_seconds(self) -> i64 {
        self.micros.div_euclid(1_000_000)
    }

    /// Parses any RFC 3339 timestamp (any offset, any fraction); finer than
    /// microsecond digits are dropped.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let parsed =
            OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TimestampError(text.into()))?;
        let nanos = parsed.unix_timestamp_nanos();
        let micros =
            i64::try_from(nanos.div_euclid(1000)).map_err(|_| TimestampError(text.into()))?;
        if !(0..=253_402_300_799_999_999).contains(&micros) {
            // Outside years 1970..=9999 the fixed-width form would not sort.
            return Err(TimestampError(text.into()));
        }
        Ok(Self { micros })
    }

    /// Whether `text` is a timestamp in this type's one spelling (fixed
    /// width, UTC, microseconds), as stores write it and positions must be.
    pub fn is_canonical(text: &str) -> bool {
        Self::parse(text).is_ok_and(|t| t.to_string() == text)
    }

    fn datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.micros) * 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(UtcOffset::UTC)
    }

    /// RFC 3339 with whole seconds only (`2026-02-08T10:00:00Z`), for
    /// second-precision fields such as `expiresAt`.
    pub fn to_seconds_string(self) -> String {
        Timestamp::from_unix_seconds(self.unix_seconds())
            .datetime()
            .format(&Rfc3339)
            .unwrap_or_default()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.datetime().format(FORMAT).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_fixed_width_utc() {
        let t = Timestamp::parse("2026-02-08T11:00:00.5+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-02-08T10:00:00.500000Z");
        assert_eq!(t.to_seconds_string(), "2026-02-08T10:00:00Z");
        assert_eq!(
            Timestamp::from_micros(0).to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for bad in [
            "",
            "2026-02-08",
            "2026-02-08T10:00:00",
            "yesterday",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn text_order_is_time_order(a in 0i64..253_402_300_799_999_999, b in 0i64..253_402_300_799_999_999) {
            let (ta, tb) = (Timestamp::from_micros(a), Timestamp::from_micros(b));
            prop_assert_eq!(ta.cmp(&tb), ta.to_string().cmp(&tb.to_string()));
            prop_assert_eq!(Timestamp::parse(&ta.to_string()).unwrap(), ta);
        }
    }
}
