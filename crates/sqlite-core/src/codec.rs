//! The `attributes` column: the free attributes as a JSON array of
//! `{"n": name, "v": {"t": case, "v": value}}`. Each value keeps its WIT
//! case, so a number stays its exact literal (which is what lets
//! `increment` add to it with SQLite's JSON functions, see `items`) and text
//! that looks like JSON stays text.

use item_model::{Attribute, Value};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct StoredAttribute {
    #[serde(rename = "n")]
    name: String,
    #[serde(rename = "v")]
    value: StoredValue,
}

/// One `value` case; numbers and nested JSON are kept as their text.
#[derive(Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "lowercase")]
enum StoredValue {
    Null,
    Bool(bool),
    Number(String),
    Text(String),
    Json(String),
}

/// Why a stored attribute list could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("damaged attributes column: {0}")]
pub struct DecodeError(#[from] serde_json::Error);

/// The column text of `attributes`.
pub(crate) fn encode(attributes: &[Attribute]) -> String {
    let stored: Vec<StoredAttribute> = attributes
        .iter()
        .map(|a| StoredAttribute {
            name: a.name.clone(),
            value: match &a.value {
                Value::Null => StoredValue::Null,
                Value::Bool(b) => StoredValue::Bool(*b),
                Value::Number(n) => StoredValue::Number(n.clone()),
                Value::Text(s) => StoredValue::Text(s.clone()),
                Value::Json(j) => StoredValue::Json(j.clone()),
            },
        })
        .collect();
    // Serialising plain strings and bools cannot fail.
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into())
}

/// The attributes of a column's text.
pub(crate) fn decode(text: &str) -> Result<Vec<Attribute>, DecodeError> {
    let stored: Vec<StoredAttribute> = serde_json::from_str(text)?;
    Ok(stored
        .into_iter()
        .map(|s| {
            Attribute::new(
                s.name,
                match s.value {
                    StoredValue::Null => Value::Null,
                    StoredValue::Bool(b) => Value::Bool(b),
                    StoredValue::Number(n) => Value::Number(n),
                    StoredValue::Text(t) => Value::Text(t),
                    StoredValue::Json(j) => Value::Json(j),
                },
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_round_trips() {
        let attributes = vec![
            Attribute::new("null", Value::Null),
            Attribute::new("bool", Value::Bool(true)),
            Attribute::new("big", Value::Number("12345678901234567890.5".into())),
            Attribute::new("exp", Value::Number("1e400".into())),
            Attribute::new("text", Value::Text("[1, 2]".into())),
            Attribute::new("json", Value::Json(r#"{"a":[1,null]}"#.into())),
        ];
        assert_eq!(decode(&encode(&attributes)).unwrap(), attributes);
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
    }

    #[test]
    fn damage_is_an_error() {
        assert!(decode("{").is_err());
        assert!(decode(r#"[{"n":"a","v":{"t":"float","v":1}}]"#).is_err());
    }
}
