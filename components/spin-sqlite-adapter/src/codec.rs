//! The `attributes` column: the free attributes as a JSON array of
//! `{"n": name, "v": {"t": case, "v": value}}`, the layout of the host's
//! embedded store (crates/store-embedded). Each value keeps its WIT case,
//! so a number stays its exact literal (which is what lets `increment`
//! work on it with SQLite's JSON functions) and text that looks like JSON
//! stays text.

use item_model::{Attribute, Value};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Stored {
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

pub fn encode(attributes: &[Attribute]) -> String {
    let stored: Vec<Stored> = attributes
        .iter()
        .map(|a| Stored {
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

/// The attributes of a stored column; `None` when it is damaged.
pub fn decode(text: &str) -> Option<Vec<Attribute>> {
    let stored: Vec<Stored> = serde_json::from_str(text).ok()?;
    Some(
        stored
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
            .collect(),
    )
}
