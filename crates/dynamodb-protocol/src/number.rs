//! DynamoDB numbers (`N`): decimal text, never a float.
//!
//! DynamoDB keeps up to 38 significant digits with a magnitude between
//! 1e-130 and 9.99…e125, and answers with its own normal form (`1e21` comes
//! back as `1000000000000000000000`, `1.50` as `1.5`). We check the limits
//! before sending, so the caller gets a precise message instead of a
//! generic ValidationException, and compare numbers by value, not by text.

/// Most significant digits DynamoDB stores.
pub const MAX_DIGITS: usize = 38;
/// Largest decimal exponent of the first digit (9.99…e125).
const MAX_EXPONENT: i64 = 125;
/// Smallest decimal exponent of the first digit (1e-130).
const MIN_EXPONENT: i64 = -130;

/// A decimal as sign, significant digits (no leading or trailing zeros) and
/// the power of ten of the last digit. Zero has no digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl Decimal {
    /// Parses decimal text leniently (`+1`, `.5`, `5.`, `1E3` are accepted),
    /// because numbers written by other clients arrive in DynamoDB's form
    /// and we only need their value.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => {
                let exp_text = &rest[at + 1..];
                let digits = exp_text.strip_prefix(['+', '-']).unwrap_or(exp_text);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                // Longer exponents are far outside any range we care about;
                // saturate instead of overflowing.
                let magnitude: i64 = digits.parse().unwrap_or(i64::MAX / 4).min(i64::MAX / 4);
                let exponent = if exp_text.starts_with('-') {
                    -magnitude
                } else {
                    magnitude
                };
                (&rest[..at], exponent)
            }
            None => (rest, 0),
        };
        let (int_part, frac_part) = match mantissa.split_once('.') {
            Some((i, f)) => (i, f),
            None => (mantissa, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        if !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let all = format!("{int_part}{frac_part}");
        let frac_len = i64::try_from(frac_part.len()).ok()?;
        let trimmed_start = all.trim_start_matches('0');
        let trimmed = trimmed_start.trim_end_matches('0');
        if trimmed.is_empty() {
            return Some(Self {
                negative: false,
                digits: String::new(),
                exponent: 0,
            });
        }
        let trailing = i64::try_from(trimmed_start.len() - trimmed.len()).ok()?;
        Some(Self {
            negative,
            digits: trimmed.to_string(),
            exponent: exponent - frac_len + trailing,
        })
    }

    /// The power of ten of the first significant digit.
    fn leading_exponent(&self) -> i64 {
        self.exponent + i64::try_from(self.digits.len()).unwrap_or(i64::MAX / 4) - 1
    }

    /// DynamoDB's own normal form: plain decimal notation, no exponent, no
    /// redundant zeros (`1e3` is `1000`, `-0.250` is `-0.25`, `-0` is `0`).
    fn to_plain(&self) -> String {
        if self.digits.is_empty() {
            return "0".into();
        }
        let sign = if self.negative { "-" } else { "" };
        let digits = &self.digits;
        let len = i64::try_from(digits.len()).unwrap_or(i64::MAX / 4);
        if self.exponent >= 0 {
            let zeros = usize::try_from(self.exponent).unwrap_or(0);
            format!("{sign}{digits}{}", "0".repeat(zeros))
        } else if len > -self.exponent {
            let split = usize::try_from(len + self.exponent).unwrap_or(0);
            format!("{sign}{}.{}", &digits[..split], &digits[split..])
        } else {
            let zeros = usize::try_from(-self.exponent - len).unwrap_or(0);
            format!("{sign}0.{}{digits}", "0".repeat(zeros))
        }
    }

    /// Plain JSON text of the value (`-0.00025`, `1000`), used when a number
    /// from elsewhere is not already a JSON literal.
    pub(crate) fn to_json_text(&self) -> String {
        if self.digits.is_empty() {
            return "0".into();
        }
        let sign = if self.negative { "-" } else { "" };
        // Scientific form keeps absurd exponents short.
        format!("{sign}{}e{}", self.digits, self.exponent)
    }
}

/// The number `text` (a JSON number literal) as DynamoDB will store it:
/// its normal form, so that what a write returns equals what a later read
/// returns. The error says why it does not fit, for an `invalid-input`
/// message.
pub fn to_dynamodb(text: &str) -> Result<String, String> {
    check(text)?;
    Decimal::parse(text)
        .map(|d| d.to_plain())
        .ok_or_else(|| format!("`{}` is not a number", short(text)))
}

/// Checks that `text` (a JSON number literal) fits a DynamoDB number;
/// the error says what is wrong, for an `invalid-input` message.
pub fn check(text: &str) -> Result<(), String> {
    let Some(decimal) = Decimal::parse(text) else {
        return Err(format!("`{}` is not a number", short(text)));
    };
    if decimal.digits.len() > MAX_DIGITS {
        return Err(format!(
            "the number `{}` has {} significant digits; DynamoDB stores at most {MAX_DIGITS}",
            short(text),
            decimal.digits.len()
        ));
    }
    if !decimal.digits.is_empty() {
        let exponent = decimal.leading_exponent();
        if exponent > MAX_EXPONENT {
            return Err(format!(
                "the number `{}` is too large for DynamoDB (largest magnitude is about 1e126)",
                short(text)
            ));
        }
        if exponent < MIN_EXPONENT {
            return Err(format!(
                "the number `{}` is too small for DynamoDB (smallest non-zero magnitude is 1e-130)",
                short(text)
            ));
        }
    }
    Ok(())
}

/// Whether two number texts have the same value (`1.50` and `1.5`).
pub fn same_value(a: &str, b: &str) -> bool {
    match (Decimal::parse(a), Decimal::parse(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

/// A number from DynamoDB as a JSON literal: kept as is when it is one
/// (DynamoDB's own answers always are), rewritten otherwise.
pub fn to_json_literal(text: &str) -> Option<String> {
    if serde_json::from_str::<serde_json::Number>(text).is_ok() {
        return Some(text.to_string());
    }
    Decimal::parse(text).map(|d| d.to_json_text())
}

/// An integer text from DynamoDB as `i64` (for `expiresAt`), truncating a
/// fraction; `None` when it is not a number or does not fit.
pub fn to_i64(text: &str) -> Option<i64> {
    if let Ok(v) = text.parse::<i64>() {
        return Some(v);
    }
    let d = Decimal::parse(text)?;
    if d.digits.is_empty() {
        return Some(0);
    }
    let whole_digits = d.leading_exponent() + 1;
    if whole_digits <= 0 {
        return Some(0);
    }
    if whole_digits > 19 {
        return None;
    }
    let mut text = String::new();
    for i in 0..whole_digits {
        let idx = usize::try_from(i).ok()?;
        text.push(d.digits.as_bytes().get(idx).map_or('0', |b| char::from(*b)));
    }
    let v: i64 = text.parse().ok()?;
    Some(if d.negative { -v } else { v })
}

/// At most 48 characters of a number, for messages.
fn short(text: &str) -> String {
    if text.chars().count() <= 48 {
        text.to_string()
    } else {
        let head: String = text.chars().take(45).collect();
        format!("{head}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_match_dynamodb() {
        // Each case was checked against DynamoDB Local 3.3.1.
        for ok in [
            "0",
            "-0",
            "0.000",
            "1e21",
            "1.50",
            "1E+5",
            "-0.25e-3",
            "12345678901234567890123456789012345678",
            "1e125",
            "9.9999999999999999999999999999999999999e125",
            "1e-130",
            "1000000000000000000000000000000000000000000000000",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("123456789012345678901234567890123456789", "significant"),
            ("1234567890123456789012345678901234567890000", "significant"),
            ("1e126", "too large"),
            ("-1e126", "too large"),
            ("1e-131", "too small"),
            ("1e999999999999999999999999", "too large"),
            ("1e-999999999999999999999999", "too small"),
            ("abc", "not a number"),
        ] {
            let e = check(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn normal_form_is_dynamodbs() {
        // Each pair was seen from DynamoDB Local 3.3.1.
        for (sent, stored) in [
            ("1e21", "1000000000000000000000"),
            ("1.50", "1.5"),
            ("-0", "0"),
            ("1E+5", "100000"),
            ("0.000", "0"),
            ("-0.25e-3", "-0.00025"),
            (
                "12345678901234567890123456789012345678",
                "12345678901234567890123456789012345678",
            ),
            ("5", "5"),
            ("100", "100"),
            ("1.0", "1"),
            ("0.1", "0.1"),
            ("123.456", "123.456"),
        ] {
            assert_eq!(to_dynamodb(sent).as_deref(), Ok(stored), "{sent}");
        }
        assert_eq!(
            to_dynamodb("1e-130").unwrap(),
            format!("0.{}1", "0".repeat(129))
        );
        assert_eq!(
            to_dynamodb("1e125").unwrap(),
            format!("1{}", "0".repeat(125))
        );
    }

    #[test]
    fn compares_by_value() {
        assert!(same_value("1.50", "1.5"));
        assert!(same_value("1e21", "1000000000000000000000"));
        assert!(same_value("-0", "0"));
        assert!(same_value("-0.25e-3", "-0.00025"));
        assert!(!same_value("1", "-1"));
        assert!(!same_value("10", "1"));
    }

    #[test]
    fn reads_foreign_forms() {
        assert_eq!(to_json_literal("5").as_deref(), Some("5"));
        assert_eq!(to_json_literal(".5").as_deref(), Some("5e-1"));
        assert_eq!(to_json_literal("+7").as_deref(), Some("7e0"));
        assert_eq!(to_json_literal("x"), None);
        assert_eq!(to_i64("1770000000"), Some(1_770_000_000));
        assert_eq!(to_i64("1770000000.9"), Some(1_770_000_000));
        assert_eq!(to_i64("1.77e9"), Some(1_770_000_000));
        assert_eq!(to_i64("-5"), Some(-5));
        assert_eq!(to_i64("0.1"), Some(0));
        assert_eq!(to_i64("1e30"), None);
    }
}
