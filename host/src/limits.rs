//! The bounds on the work one request, one client and all requests together
//! may cause in the server, with their defaults and the parsers of their
//! flags. docs/SECURITY.md ("Limits") lists them with their flags.

use std::time::Duration;

/// Time a client has to send a request head; an idle kept-alive
/// connection is closed after it too.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Time from the request head to the last byte of its body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time from the request head to the response head.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Time from the response head to its last byte handed to the network.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections one client address (an IPv4 address, an IPv6 /64) may
/// hold open at once: above the default instance count, so one client
/// with many parallel requests is not refused before the server is busy.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1000;
/// Estimated memory the request bodies in flight may cost together: a
/// small container's share (see [`crate::admission::MEMORY_PER_BODY_BYTE`]).
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 << 20;

/// What the server bounds. The instance count and the wait for an
/// instance belong to the runtime ([`crate::runtime::RuntimeConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// See [`DEFAULT_HEADER_TIMEOUT`].
    pub header_timeout: Duration,
    /// Capped by `request_timeout`.
    pub body_timeout: Duration,
    /// See [`DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// See [`DEFAULT_WRITE_TIMEOUT`].
    pub write_timeout: Duration,
    /// 0: no cap.
    pub max_connections_per_ip: usize,
    /// 0: no budget.
    pub memory_budget: u64,
    /// The body limit the api component enforces (`--max-body-bytes`):
    /// the server reads at most one byte more before the component runs.
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            max_body_bytes: 1 << 20,
        }
    }
}

/// Why a flag's value is not a duration or a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitParseError {
    /// Not seconds, `ms` or `m`; carries the text.
    #[error("`{0}` is not a duration: write seconds (`30`, `1.5`, `30s`), `500ms` or `2m`")]
    Duration(String),
    /// A timeout of zero; carries the text.
    #[error("a timeout of zero would fail every request; give more than `{0}`")]
    ZeroTimeout(String),
    /// Not bytes or KiB/MiB/GiB; carries the text.
    #[error("`{0}` is not a size: write bytes (`1048576`) or KiB, MiB, GiB (`256MiB`)")]
    Size(String),
}

/// A duration in the grammar of [`item_model::duration::parse`] (`30`,
/// `1.5`, `500ms`, `2m`, `24h`; a number without unit is seconds); zero
/// is allowed.
pub fn parse_duration(text: &str) -> Result<Duration, LimitParseError> {
    item_model::duration::parse(text).ok_or_else(|| LimitParseError::Duration(text.to_string()))
}

/// A duration as [`parse_duration`], but more than zero.
pub fn parse_timeout(text: &str) -> Result<Duration, LimitParseError> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(LimitParseError::ZeroTimeout(text.to_string()));
    }
    Ok(duration)
}

/// A size in bytes such as `1048576`, `64KiB`, `256MiB` or `1GiB`
/// (units are powers of 1024, in any case).
pub fn parse_size(text: &str) -> Result<u64, LimitParseError> {
    let bad = || LimitParseError::Size(text.to_string());
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let (number, shift) = [("kib", 10), ("mib", 20), ("gib", 30), ("b", 0)]
        .iter()
        .find_map(|(unit, shift)| lower.strip_suffix(unit).map(|n| (n, *shift)))
        .unwrap_or((lower.as_str(), 0));
    let number = number.trim();
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let value: u64 = number.parse().map_err(|_| bad())?;
    value.checked_mul(1 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 1.5 "), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in [
            "", "s", "ms", ".", "-1", "+1", "1e3", "inf", "NaN", "1w", "1.2.3", "ten", "1 5",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        // Too large for a Duration: an error, not a panic.
        assert!(parse_duration(&"9".repeat(400)).is_err());
    }

    #[test]
    fn timeouts_are_not_zero() {
        assert_eq!(parse_timeout("0.5"), Ok(Duration::from_millis(500)));
        assert!(matches!(
            parse_timeout("0ms"),
            Err(LimitParseError::ZeroTimeout(_))
        ));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("256 mib"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in ["", "MiB", "-1", "1.5MiB", "1MB", "1 M", "lots"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert!(parse_size("99999999999999GiB").is_err(), "overflow");
    }
}
