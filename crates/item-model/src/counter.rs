//! The rules of `increment` (WIT `store.increment`), the same on every
//! backend: an absent attribute counts as 0, only a whole number within
//! 64 bits can be incremented, and a sum that leaves 64 bits is refused.
//! Backends that add inside the database (DynamoDB `ADD`, Firestore's
//! `increment` transform, SQLite's JSON functions) use these to explain a
//! refusal in the same words.

use crate::{StoreError, Value};

/// The integer an increment of `attribute` starts from, given its current
/// value: 0 when absent, the number when it is a whole 64-bit number, and
/// otherwise an `invalid-input` error saying why it cannot be incremented.
pub fn start_value(attribute: &str, value: Option<&Value>) -> Result<i64, StoreError> {
    let literal = match value {
        None => return Ok(0),
        Some(Value::Number(literal)) => literal,
        Some(other) => return Err(not_a_number(attribute, Some(kind(other)))),
    };
    literal.parse::<i64>().map_err(|_| {
        let digits = literal.strip_prefix('-').unwrap_or(literal);
        let message = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            format!(
                "attribute `{attribute}` ({literal}) is outside the range of 64-bit integers, \
                 so it cannot be incremented"
            )
        } else {
            format!(
                "attribute `{attribute}` ({literal}) is not a whole number, so it cannot be \
                 incremented"
            )
        };
        StoreError::InvalidInput(message)
    })
}

/// `value + delta`, or the `invalid-input` error an overflow gives.
pub fn add(attribute: &str, value: i64, delta: i64) -> Result<i64, StoreError> {
    value.checked_add(delta).ok_or_else(|| {
        StoreError::invalid(format!(
            "adding {delta} to attribute `{attribute}` ({value}) overflows a 64-bit integer"
        ))
    })
}

/// The error for an attribute that is not a number, for backends that
/// learn it from the database's refusal: `kind` names what it is when
/// known (`"a string"`, ...).
pub fn not_a_number(attribute: &str, kind: Option<&str>) -> StoreError {
    StoreError::invalid(match kind {
        Some(kind) => {
            format!("attribute `{attribute}` is {kind}, not a number, so it cannot be incremented")
        }
        None => format!("attribute `{attribute}` is not a number, so it cannot be incremented"),
    })
}

/// How a non-numeric value is named in error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Text(_) => "a string",
        Value::Json(_) => "an array or object",
        Value::Number(_) => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(n: &str) -> Value {
        Value::Number(n.into())
    }

    #[test]
    fn absent_counts_as_zero_and_whole_numbers_count() {
        assert_eq!(start_value("likes", None), Ok(0));
        assert_eq!(start_value("likes", Some(&number("-42"))), Ok(-42));
        assert_eq!(
            start_value("likes", Some(&number("9223372036854775807"))),
            Ok(i64::MAX)
        );
    }

    #[test]
    fn other_values_are_refused_with_a_reason() {
        let text = start_value("likes", Some(&Value::Text("5".into()))).unwrap_err();
        assert!(matches!(&text, StoreError::InvalidInput(m) if m.contains("is a string")));
        let big = start_value("likes", Some(&number("9223372036854775808"))).unwrap_err();
        assert!(matches!(&big, StoreError::InvalidInput(m) if m.contains("outside the range")));
        let fraction = start_value("likes", Some(&number("1.5"))).unwrap_err();
        assert!(
            matches!(&fraction, StoreError::InvalidInput(m) if m.contains("not a whole number"))
        );
        let unknown = not_a_number("likes", None);
        assert!(
            matches!(&unknown, StoreError::InvalidInput(m) if m.contains("`likes` is not a number"))
        );
    }

    #[test]
    fn overflow_is_refused() {
        assert_eq!(add("likes", 1, 2), Ok(3));
        assert!(matches!(
            add("likes", i64::MAX, 1),
            Err(StoreError::InvalidInput(m)) if m.contains("overflows")
        ));
    }
}
