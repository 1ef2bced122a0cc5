//! The one grammar of durations in settings (`--queue-timeout 500ms`,
//! `EDGE_ITEMS_BACKEND_TIMEOUT=2s`, `EDGE_ITEMS_IDEMPOTENCY_TTL=24h`), the
//! same in the host, the api component and the adapters.

use std::time::Duration;

/// A duration such as `30`, `1.5`, `30s`, `500ms`, `2m`, `24h` or `7d` (a
/// number without unit is seconds); zero is allowed. `None` for anything
/// else: signs, exponents, `inf`, unknown units.
pub fn parse(text: &str) -> Option<Duration> {
    let trimmed = text.trim();
    let (number, seconds_per_unit) = if let Some(n) = trimmed.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = trimmed.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = trimmed.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = trimmed.strip_suffix('h') {
        (n, 3600.0)
    } else if let Some(n) = trimmed.strip_suffix('d') {
        (n, 86_400.0)
    } else {
        (trimmed, 1.0)
    };
    let number = number.trim();
    // Digits and at most one point: no signs, exponents, `inf` or `NaN`.
    let plain = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.matches('.').count() <= 1
        && number != ".";
    if !plain {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    Duration::try_from_secs_f64(value * seconds_per_unit).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_plain_seconds() {
        let cases = [
            ("30", 30_000),
            ("1.5", 1_500),
            ("30s", 30_000),
            ("500ms", 500),
            ("2m", 120_000),
            ("24h", 86_400_000),
            ("7d", 604_800_000),
            (" 0 ", 0),
        ];
        for (text, millis) in cases {
            assert_eq!(parse(text), Some(Duration::from_millis(millis)), "{text}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "", ".", "-1", "1e3", "inf", "NaN", "5w", "1.2.3", "ms", "1 h x",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
