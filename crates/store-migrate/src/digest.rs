//! An item's content as one hash, equal on two stores exactly when the
//! item is the same: every field but the version (each store's own), the
//! attributes in name order, and numbers by value (Firestore keeps `1.50`
//! as the double 1.5 and gives back `1.5`; the value is the same, the
//! spelling is the store's).

use item_store::{Item, Value};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// The content hash of an item.
pub type ItemDigest = [u8; 32];

/// The content hash of `item` (see the module docs).
pub fn digest(item: &Item) -> ItemDigest {
    let mut hash = Sha256::new();
    let mut field = |tag: &str, text: &str| {
        // Length-prefixed, so that no two items share a byte stream.
        hash.update(tag.as_bytes());
        hash.update((text.len() as u64).to_be_bytes());
        hash.update(text.as_bytes());
    };
    field("id", &item.id);
    field("c", &item.created_at);
    field("u", &item.updated_at);
    field("user", item.user_id.as_deref().unwrap_or("\u{0}none"));
    field("status", item.status.as_deref().unwrap_or("\u{0}none"));
    field(
        "exp",
        &item
            .expires_at
            .map_or_else(|| "none".to_owned(), |s| s.to_string()),
    );
    let mut attributes: Vec<_> = item.attributes.iter().collect();
    attributes.sort_by(|a, b| a.name.cmp(&b.name));
    for attribute in attributes {
        field("n", &attribute.name);
        let (tag, text) = canonical_value(&attribute.value);
        field(tag, &text);
    }
    hash.finalize().into()
}

fn canonical_value(value: &Value) -> (&'static str, String) {
    match value {
        Value::Null => ("null", String::new()),
        Value::Bool(b) => ("bool", b.to_string()),
        Value::Number(literal) => ("num", canonical_number(literal)),
        Value::Text(text) => ("text", text.clone()),
        Value::Json(text) => match serde_json::from_str::<Json>(text) {
            Ok(json) => ("json", canonical_json(&json)),
            Err(_) => ("json-text", text.clone()),
        },
    }
}

/// JSON with object members in name order and numbers by value.
fn canonical_json(json: &Json) -> String {
    match json {
        Json::Number(n) => canonical_number(&n.to_string()),
        Json::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", inner.join(","))
        }
        Json::Object(members) => {
            let mut members: Vec<_> = members.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = members
                .into_iter()
                .map(|(name, value)| {
                    format!("{}:{}", Json::from(name.as_str()), canonical_json(value))
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        other => other.to_string(),
    }
}

/// A decimal literal by its exact value: `[-]0.DIGITSeEXP` with no leading
/// or trailing zeros in DIGITS (`1.50`, `15e-1` and `0.15E1` all give
/// `0.15e1`; zero is `0`). Text that is no decimal literal stays as it is.
fn canonical_number(literal: &str) -> String {
    let (negative, unsigned) = match literal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, literal),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
        None => (unsigned, "0"),
    };
    let Ok(exponent) = exponent.trim_start_matches('+').parse::<i64>() else {
        return literal.to_owned();
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return literal.to_owned();
    }
    let digits = format!("{whole}{fraction}");
    let leading = digits.len() - digits.trim_start_matches('0').len();
    let significant = digits.trim_matches('0');
    if significant.is_empty() {
        return "0".to_owned();
    }
    // The value is 0.DIGITS × 10^(exponent + whole.len()); dropping the
    // leading zeros moves the point right.
    let point = exponent + whole.len() as i64 - leading as i64;
    let sign = if negative { "-" } else { "" };
    format!("{sign}0.{significant}e{point}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use item_store::Attribute;

    fn item(attributes: Vec<Attribute>) -> Item {
        Item {
            id: "a".into(),
            created_at: "2026-01-01T00:00:00.000000Z".into(),
            updated_at: "2026-01-02T00:00:00.000000Z".into(),
            version: "1".into(),
            user_id: Some("u".into()),
            status: None,
            expires_at: None,
            attributes,
        }
    }

    #[test]
    fn numbers_compare_by_value() {
        for (a, b) in [
            ("1.50", "1.5"),
            ("15e-1", "1.5"),
            ("0.15E1", "1.5"),
            ("100", "1e2"),
            ("-0", "0"),
            ("0.000", "0"),
            ("1e21", "1000000000000000000000"),
        ] {
            assert_eq!(canonical_number(a), canonical_number(b), "{a} vs {b}");
        }
        for (a, b) in [
            ("1.5", "-1.5"),
            ("1", "10"),
            ("12345678901234567890123", "1.2345678901234568e22"),
        ] {
            assert_ne!(canonical_number(a), canonical_number(b), "{a} vs {b}");
        }
    }

    #[test]
    fn the_digest_ignores_version_and_attribute_order_only() {
        let one = item(vec![
            Attribute::new("b", Value::Number("2.0".into())),
            Attribute::new("a", Value::Json(r#"{"y":[1.0,2],"x":null}"#.into())),
        ]);
        let mut same = item(vec![
            Attribute::new("a", Value::Json(r#"{"x":null,"y":[1,2e0]}"#.into())),
            Attribute::new("b", Value::Number("2".into())),
        ]);
        same.version = "99".into();
        assert_eq!(digest(&one), digest(&same));

        let mut later = same.clone();
        later.updated_at = "2026-01-03T00:00:00.000000Z".into();
        let mut text = same.clone();
        text.attributes[1].value = Value::Text("2".into());
        let mut no_user = same.clone();
        no_user.user_id = None;
        for other in [later, text, no_user] {
            assert_ne!(digest(&one), digest(&other), "{other:?}");
        }
    }
}
