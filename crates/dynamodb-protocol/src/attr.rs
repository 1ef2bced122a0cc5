//! Items as DynamoDB attribute values, and back.
//!
//! The table shape is the seed's (table `Items`, key `itemId`), so that
//! boto3 reads our items naturally and we read theirs:
//!
//! | item field | attribute | type |
//! |---|---|---|
//! | `id` | `itemId` | `S` (partition key) |
//! | `created_at`, `updated_at` | `createdAt`, `updatedAt` | `S`, fixed-width RFC 3339 |
//! | `version` | `version` | `N`, a counter |
//! | `user_id`, `status` | `userId`, `status` | `S` (GSI keys) |
//! | both `user_id` and `status` | `__userStatus__` | `S`, `userId` U+001F `status` (GSI key, never a free attribute) |
//! | `expires_at` | `expiresAt` | `N`, epoch seconds (the TTL attribute) |
//! | free attributes | their own name | `NULL`, `BOOL`, `N`, `S`, `L`, `M` |
//!
//! Reading is lenient, because other writers share the table:
//! - `SS`, `NS` and `BS` sets become JSON arrays (of strings, numbers and
//!   base64 text); `B` becomes its base64 text. Writing such an item back
//!   through the API stores lists and strings, not sets.
//! - a missing `version` reads as `"0"`; expected version `"0"` matches it.
//! - `createdAt` without a time zone (Python's `datetime.utcnow().isoformat()`)
//!   is read as UTC and shown in our fixed-width form; a missing or
//!   unreadable one reads as the epoch. A missing `updatedAt` reads as
//!   `createdAt`.
//! - a foreign attribute named `id` is dropped (the API's `id` is `itemId`).
//!
//! Idempotency records (WIT `apply-once`, see `ops::once`) share the table
//! but are no items: their `itemId` is [`RECORD_PREFIX`] and the key
//! (`once/<key>`; an item id never holds `/`), and they carry only
//! [`FINGERPRINT`], [`EXPIRES_AT`] (so TTL removes them) and [`WRITTEN`],
//! none of the index keys, so no query lists them.
//!
//! Numbers go through as decimal text, never through a float, in
//! DynamoDB's own normal form (`1.50` is stored as `1.5`, `1e21` as
//! `1000000000000000000000`), which we write ourselves so that what a write
//! returns is what later reads return: the value is exact, the spelling is
//! DynamoDB's.

use std::collections::BTreeMap;

use item_model::once::Record;
use item_model::{Attribute, IndexName, Item, StoreError, Timestamp, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::number;

/// The partition key.
pub const ITEM_ID: &str = "itemId";
/// The sort key of every index: RFC 3339 UTC with microseconds, so that
/// text order is time order.
pub const CREATED_AT: &str = "createdAt";
/// When the item was last written (same form as [`CREATED_AT`]).
pub const UPDATED_AT: &str = "updatedAt";
/// The number every write increments; conditions on it make `If-Match`.
pub const VERSION: &str = "version";
/// The partition key of the `byUser` index.
pub const USER_ID: &str = "userId";
/// The partition key of the `byStatus` index (a DynamoDB reserved word:
/// always sent through a `#name` placeholder).
pub const STATUS: &str = "status";
/// The partition key of the `byUserStatus` index: `userId`, U+001F and
/// `status` (item_model's `IndexKey::partition`), kept on every item that
/// has both. Its name has the reserved `__name__` form, so that no free
/// attribute can be called so.
pub const USER_STATUS: &str = "__userStatus__";
/// The TTL attribute (epoch seconds).
pub const EXPIRES_AT: &str = "expiresAt";

/// What starts the `itemId` of an idempotency record.
pub const RECORD_PREFIX: &str = "once/";
/// A record's request fingerprint (`S`).
pub const FINGERPRINT: &str = "fingerprint";
/// A record's result, as `Written::encode` wrote it (`S`).
pub const WRITTEN: &str = "written";

/// One DynamoDB attribute value in its JSON wire form (`{"S": "x"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttributeValue {
    /// A string.
    S(String),
    /// Decimal text.
    N(String),
    /// Base64 text, as on the wire.
    B(String),
    /// A boolean.
    #[serde(rename = "BOOL")]
    Bool(bool),
    /// Null (DynamoDB sends `{"NULL": true}`).
    #[serde(rename = "NULL")]
    Null(bool),
    /// A list of any values.
    L(Vec<AttributeValue>),
    /// A map of named values.
    M(BTreeMap<String, AttributeValue>),
    /// A string set (only ever written by other clients; read as a list).
    #[serde(rename = "SS")]
    Ss(Vec<String>),
    /// A number set (other clients only; read as a list).
    #[serde(rename = "NS")]
    Ns(Vec<String>),
    /// A binary set (other clients only; read as a list of base64 texts).
    #[serde(rename = "BS")]
    Bs(Vec<String>),
}

/// An item or key as DynamoDB sends it.
pub type AttributeMap = BTreeMap<String, AttributeValue>;

impl AttributeValue {
    /// A string value.
    pub fn s(text: impl Into<String>) -> Self {
        AttributeValue::S(text.into())
    }

    /// An integer as `N`.
    pub fn int(value: i64) -> Self {
        AttributeValue::N(value.to_string())
    }

    fn as_s(&self) -> Option<&str> {
        match self {
            AttributeValue::S(s) => Some(s),
            _ => None,
        }
    }
}

/// The key of an item.
pub fn key(id: &str) -> AttributeMap {
    BTreeMap::from([(ITEM_ID.to_string(), AttributeValue::s(id))])
}

/// The key of the idempotency record of `once_key`.
pub fn record_key(once_key: &str) -> AttributeMap {
    key(&format!("{RECORD_PREFIX}{once_key}"))
}

/// The idempotency record of `once_key` as stored.
pub fn record_to_map(once_key: &str, record: &Record) -> AttributeMap {
    let mut map = record_key(once_key);
    map.insert(FINGERPRINT.into(), AttributeValue::s(&record.fingerprint));
    map.insert(EXPIRES_AT.into(), AttributeValue::int(record.expires_at));
    map.insert(WRITTEN.into(), AttributeValue::s(&record.written));
    map
}

/// An idempotency record read from the table; one without its three
/// attributes is damaged (a backend error: its write was applied, its
/// answer is lost).
pub fn record_from_map(map: &AttributeMap) -> Result<Record, StoreError> {
    let text = |name: &str| map.get(name).and_then(AttributeValue::as_s);
    let expires_at = match map.get(EXPIRES_AT) {
        Some(AttributeValue::N(n)) => number::to_i64(n),
        _ => None,
    };
    match (text(FINGERPRINT), expires_at, text(WRITTEN)) {
        (Some(fingerprint), Some(expires_at), Some(written)) => Ok(Record {
            fingerprint: fingerprint.to_string(),
            expires_at,
            written: written.to_string(),
        }),
        _ => Err(StoreError::Backend(
            "DynamoDB holds a damaged idempotency record".into(),
        )),
    }
}

fn invalid(name: &str, why: String) -> StoreError {
    StoreError::InvalidInput(format!("attribute `{name}`: {why}"))
}

/// A free attribute's value as an attribute value; numbers outside
/// DynamoDB's range are `invalid-input`.
pub fn value_to_av(name: &str, value: &Value) -> Result<AttributeValue, StoreError> {
    Ok(match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => {
            AttributeValue::N(number::to_dynamodb(n).map_err(|e| invalid(name, e))?)
        }
        Value::Text(s) => AttributeValue::S(s.clone()),
        Value::Json(text) => {
            let json: Json = serde_json::from_str(text)
                .map_err(|_| invalid(name, "the json case must hold valid JSON".into()))?;
            json_to_av(name, &json)?
        }
    })
}

fn json_to_av(name: &str, json: &Json) -> Result<AttributeValue, StoreError> {
    Ok(match json {
        Json::Null => AttributeValue::Null(true),
        Json::Bool(b) => AttributeValue::Bool(*b),
        Json::Number(n) => {
            // With serde_json's arbitrary_precision this is the literal text.
            let text = n.to_string();
            AttributeValue::N(number::to_dynamodb(&text).map_err(|e| invalid(name, e))?)
        }
        Json::String(s) => AttributeValue::S(s.clone()),
        Json::Array(items) => AttributeValue::L(
            items
                .iter()
                .map(|j| json_to_av(name, j))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(fields) => AttributeValue::M(
            fields
                .iter()
                .map(|(k, j)| Ok((k.clone(), json_to_av(name, j)?)))
                .collect::<Result<_, StoreError>>()?,
        ),
    })
}

fn number_json(text: &str) -> Json {
    number::to_json_literal(text)
        .and_then(|t| t.parse::<serde_json::Number>().ok())
        .map_or_else(|| Json::String(text.to_string()), Json::Number)
}

fn av_to_json(av: &AttributeValue) -> Json {
    match av {
        AttributeValue::S(s) | AttributeValue::B(s) => Json::String(s.clone()),
        AttributeValue::N(n) => number_json(n),
        AttributeValue::Bool(b) => Json::Bool(*b),
        AttributeValue::Null(_) => Json::Null,
        AttributeValue::L(items) => Json::Array(items.iter().map(av_to_json).collect()),
        AttributeValue::M(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), av_to_json(v)))
                .collect(),
        ),
        AttributeValue::Ss(items) | AttributeValue::Bs(items) => {
            Json::Array(items.iter().cloned().map(Json::String).collect())
        }
        AttributeValue::Ns(items) => Json::Array(items.iter().map(|n| number_json(n)).collect()),
    }
}

/// An attribute value as a free attribute's value (see the module docs for
/// sets and binaries).
pub fn av_to_value(av: &AttributeValue) -> Value {
    match av {
        AttributeValue::S(s) | AttributeValue::B(s) => Value::Text(s.clone()),
        AttributeValue::N(n) => match number::to_json_literal(n) {
            Some(literal) => Value::Number(literal),
            None => Value::Text(n.clone()),
        },
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        nested => Value::Json(av_to_json(nested).to_string()),
    }
}

/// A stored item as the attribute map written to the table.
pub fn item_to_map(item: &Item) -> Result<AttributeMap, StoreError> {
    let mut map = AttributeMap::new();
    for attribute in &item.attributes {
        map.insert(
            attribute.name.clone(),
            value_to_av(&attribute.name, &attribute.value)?,
        );
    }
    map.insert(ITEM_ID.into(), AttributeValue::s(&item.id));
    map.insert(CREATED_AT.into(), AttributeValue::s(&item.created_at));
    map.insert(UPDATED_AT.into(), AttributeValue::s(&item.updated_at));
    map.insert(VERSION.into(), version_av(&item.version));
    if let Some(user_id) = &item.user_id {
        map.insert(USER_ID.into(), AttributeValue::s(user_id));
    }
    if let Some(status) = &item.status {
        map.insert(STATUS.into(), AttributeValue::s(status));
    }
    if let Some(user_status) = item.index_partition(IndexName::ByUserStatus) {
        map.insert(USER_STATUS.into(), AttributeValue::s(user_status));
    }
    if let Some(expires_at) = item.expires_at {
        map.insert(EXPIRES_AT.into(), AttributeValue::int(expires_at));
    }
    Ok(map)
}

/// A version as stored: our counters are `N`; any other text can only be a
/// foreign version (or a caller's guess that matches nothing) and stays `S`.
pub fn version_av(version: &str) -> AttributeValue {
    let canonical = !version.is_empty()
        && version.len() <= 38
        && version.bytes().all(|b| b.is_ascii_digit())
        && (version == "0" || !version.starts_with('0'));
    if canonical {
        AttributeValue::N(version.to_string())
    } else {
        AttributeValue::S(version.to_string())
    }
}

/// The version after `current` (`None`: no version attribute, read as 0).
pub fn next_version(current: Option<&AttributeValue>) -> String {
    let parsed = match current {
        Some(AttributeValue::N(n)) => n.parse::<u128>().ok(),
        None => Some(0),
        _ => None,
    };
    // A version we cannot count on (foreign text) restarts at 1: still a
    // change, which is all the ETag needs.
    parsed
        .and_then(|v| v.checked_add(1))
        .unwrap_or(1)
        .to_string()
}

/// A time written by someone else, in our fixed-width form: RFC 3339, or
/// ISO 8601 without a zone (read as UTC, as boto3 users write
/// `datetime.utcnow().isoformat()`), or epoch seconds.
fn normalise_time(av: &AttributeValue) -> Option<String> {
    let text = match av {
        AttributeValue::S(s) => s.trim(),
        AttributeValue::N(n) => {
            return number::to_i64(n)
                .filter(|s| (0..253_402_300_800).contains(s))
                .map(|s| Timestamp::from_unix_seconds(s).to_string());
        }
        _ => return None,
    };
    if let Ok(t) = Timestamp::parse(text) {
        return Some(t.to_string());
    }
    let text = text.replacen(' ', "T", 1);
    [format!("{text}Z"), format!("{text}T00:00:00Z")]
        .iter()
        .find_map(|candidate| Timestamp::parse(candidate).ok())
        .map(|t| t.to_string())
}

/// An item read from the table. Fails only without a string `itemId`.
pub fn item_from_map(map: &AttributeMap) -> Result<Item, StoreError> {
    let id = map
        .get(ITEM_ID)
        .and_then(AttributeValue::as_s)
        .ok_or_else(|| {
            StoreError::Backend("DynamoDB returned an item without a string itemId".into())
        })?
        .to_string();
    let created_at = map
        .get(CREATED_AT)
        .and_then(normalise_time)
        .unwrap_or_else(|| Timestamp::from_micros(0).to_string());
    let updated_at = map
        .get(UPDATED_AT)
        .and_then(normalise_time)
        .unwrap_or_else(|| created_at.clone());
    let version = match map.get(VERSION) {
        None => "0".to_string(),
        Some(AttributeValue::N(n) | AttributeValue::S(n)) => n.clone(),
        Some(other) => av_to_json(other).to_string(),
    };
    let text = |name: &str| {
        map.get(name)
            .and_then(AttributeValue::as_s)
            .map(String::from)
    };
    let expires_at = match map.get(EXPIRES_AT) {
        Some(AttributeValue::N(n)) => number::to_i64(n),
        _ => None,
    };
    let attributes = map
        .iter()
        .filter(|(name, _)| {
            !item_model::RESERVED_NAMES.contains(&name.as_str()) && name.as_str() != USER_STATUS
        })
        .map(|(name, av)| Attribute::new(name.clone(), av_to_value(av)))
        .collect();
    Ok(Item {
        id,
        created_at,
        updated_at,
        version,
        user_id: text(USER_ID),
        status: text(STATUS),
        expires_at,
        attributes,
    })
}

/// Whether two attribute values are equal, numbers compared by value (so
/// that DynamoDB's normal form equals the text we sent).
pub fn same_value(a: &AttributeValue, b: &AttributeValue) -> bool {
    use AttributeValue as A;
    match (a, b) {
        (A::N(x), A::N(y)) => number::same_value(x, y),
        (A::L(x), A::L(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q)),
        (A::M(x), A::M(y)) => same_map(x, y),
        _ => a == b,
    }
}

/// Whether two attribute maps are equal, numbers compared by value.
pub fn same_map(a: &AttributeMap, b: &AttributeMap) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| same_value(v, w)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use item_model::NewItem;
    use proptest::prelude::*;
    use serde_json::json;

    fn round_trip(value: &Value) -> Value {
        av_to_value(&value_to_av("a", value).unwrap())
    }

    #[test]
    fn wire_form() {
        let av = value_to_av("a", &Value::Json(r#"[1,{"b":null,"c":true}]"#.into())).unwrap();
        assert_eq!(
            serde_json::to_value(&av).unwrap(),
            json!({"L": [{"N": "1"}, {"M": {"b": {"NULL": true}, "c": {"BOOL": true}}}]})
        );
        let back: AttributeValue = serde_json::from_str(r#"{"NS": ["1", "2.50"]}"#).unwrap();
        assert_eq!(back, AttributeValue::Ns(vec!["1".into(), "2.50".into()]));
    }

    #[test]
    fn numbers_are_exact_and_checked() {
        let big = "12345678901234567890123456789012345678";
        assert_eq!(
            round_trip(&Value::Number(big.into())),
            Value::Number(big.into())
        );
        let nested = format!(r#"{{"x":[{big},-0.000123,1.50,2e3]}}"#);
        assert_eq!(
            round_trip(&Value::Json(nested)),
            Value::Json(format!(r#"{{"x":[{big},-0.000123,1.5,2000]}}"#))
        );
        let e = value_to_av("price", &Value::Number("1e400".into())).unwrap_err();
        assert!(
            matches!(&e, StoreError::InvalidInput(m) if m.contains("price") && m.contains("too large")),
            "{e}"
        );
        let e = value_to_av("tags", &Value::Json("[1e-200]".into())).unwrap_err();
        assert!(
            matches!(&e, StoreError::InvalidInput(m) if m.contains("too small")),
            "{e}"
        );
    }

    #[test]
    fn foreign_types_are_readable() {
        let text = |v: Value| match v {
            Value::Json(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            text(av_to_value(&AttributeValue::Ss(vec![
                "a".into(),
                "b".into()
            ]))),
            r#"["a","b"]"#
        );
        assert_eq!(
            text(av_to_value(&AttributeValue::Ns(vec![
                "1".into(),
                "2.5".into()
            ]))),
            "[1,2.5]"
        );
        assert_eq!(
            text(av_to_value(&AttributeValue::Bs(vec!["AAE=".into()]))),
            r#"["AAE="]"#
        );
        assert_eq!(
            av_to_value(&AttributeValue::B("AAE=".into())),
            Value::Text("AAE=".into())
        );
    }

    #[test]
    fn reads_a_boto3_item_in_the_seed_shape() {
        let map: AttributeMap = serde_json::from_value(json!({
            "itemId": {"S": "item-123"},
            "name": {"S": "My Item"},
            "description": {"S": "A great item"},
            "createdAt": {"S": "2026-02-08T10:00:00.123456"},
            "likes": {"N": "5"},
            "tags": {"SS": ["x", "y"]},
            "id": {"S": "ignored"},
        }))
        .unwrap();
        let item = item_from_map(&map).unwrap();
        assert_eq!(item.id, "item-123");
        assert_eq!(item.created_at, "2026-02-08T10:00:00.123456Z");
        assert_eq!(item.updated_at, item.created_at);
        assert_eq!(item.version, "0");
        assert_eq!(item.attribute("likes"), Some(&Value::Number("5".into())));
        assert_eq!(item.attribute("id"), None);
        assert_eq!(item.attributes.len(), 4);

        let whole_second: AttributeMap = serde_json::from_value(
            json!({"itemId": {"S": "a"}, "createdAt": {"S": "2026-02-08T10:00:00"}}),
        )
        .unwrap();
        assert_eq!(
            item_from_map(&whole_second).unwrap().created_at,
            "2026-02-08T10:00:00.000000Z"
        );
        let no_key: AttributeMap = serde_json::from_value(json!({"name": {"S": "x"}})).unwrap();
        assert!(matches!(
            item_from_map(&no_key),
            Err(StoreError::Backend(_))
        ));
    }

    #[test]
    fn item_round_trip() {
        let item = Item {
            id: "a".into(),
            created_at: "2026-02-08T10:00:00.000001Z".into(),
            updated_at: "2026-02-08T10:00:00.000002Z".into(),
            version: "3".into(),
            user_id: Some("u1".into()),
            status: Some("active".into()),
            expires_at: Some(1_900_000_000),
            attributes: vec![
                Attribute::new("likes", Value::Number("5".into())),
                Attribute::new("name", Value::Text("n".into())),
            ],
        };
        let map = item_to_map(&item).unwrap();
        assert_eq!(map[VERSION], AttributeValue::N("3".into()));
        assert_eq!(map[EXPIRES_AT], AttributeValue::N("1900000000".into()));
        assert_eq!(map[USER_STATUS], AttributeValue::s("u1\u{1f}active"));
        // The index key is never a free attribute.
        assert_eq!(item_from_map(&map).unwrap(), item);
    }

    #[test]
    fn the_user_status_key_is_written_only_with_both_fields() {
        let cases = [
            (Some("u1"), Some("active"), Some("u1\u{1f}active")),
            (Some("u1"), None, None),
            (None, Some("active"), None),
            (None, None, None),
        ];
        for (user_id, status, expected) in cases {
            let item = NewItem {
                id: "a".into(),
                user_id: user_id.map(String::from),
                status: status.map(String::from),
                ..Default::default()
            }
            .into_item("t".into(), "t".into(), "1".into());
            let map = item_to_map(&item).unwrap();
            assert_eq!(
                map.get(USER_STATUS),
                expected.map(AttributeValue::s).as_ref(),
                "{user_id:?} {status:?}"
            );
            assert_eq!(item_from_map(&map).unwrap().attribute(USER_STATUS), None);
        }
    }

    #[test]
    fn versions() {
        assert_eq!(version_av("12"), AttributeValue::N("12".into()));
        assert_eq!(version_av("012"), AttributeValue::S("012".into()));
        assert_eq!(version_av("x"), AttributeValue::S("x".into()));
        assert_eq!(next_version(None), "1");
        assert_eq!(next_version(Some(&AttributeValue::N("41".into()))), "42");
        assert_eq!(next_version(Some(&AttributeValue::S("x".into()))), "1");
    }

    fn json_strategy() -> impl Strategy<Value = Json> {
        let number = prop_oneof![
            any::<i64>().prop_map(|i| i.to_string()),
            // Up to 38 significant digits, with a fraction and an exponent.
            ("[1-9][0-9]{0,30}", "[0-9]{0,7}", -90i32..90).prop_map(|(i, f, e)| {
                let frac = if f.is_empty() {
                    String::new()
                } else {
                    format!(".{f}")
                };
                format!("{i}{frac}e{e}")
            }),
        ]
        .prop_map(|text| Json::Number(text.parse().unwrap()));
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            number,
            ".{0,12}".prop_map(Json::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
                prop::collection::btree_map(".{0,8}", inner, 0..6)
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Equal JSON, numbers compared by value.
    fn same_json(a: &Json, b: &Json) -> bool {
        match (a, b) {
            (Json::Number(x), Json::Number(y)) => {
                number::same_value(&x.to_string(), &y.to_string())
            }
            (Json::Array(x), Json::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
            }
            (Json::Object(x), Json::Object(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
            }
            _ => a == b,
        }
    }

    proptest! {
        #[test]
        fn values_round_trip(json in json_strategy()) {
            let value = item_model::json::value_from_json(json.clone());
            let back = round_trip(&value);
            let out = item_model::json::value_to_json(&back);
            prop_assert!(same_json(&out, &json), "{} != {}", out, json);
            // Normal forms are fixed points.
            prop_assert_eq!(round_trip(&back), back);
        }

        #[test]
        fn wire_round_trip(json in json_strategy()) {
            let value = item_model::json::value_from_json(json);
            let av = value_to_av("a", &value).unwrap();
            let text = serde_json::to_string(&av).unwrap();
            let parsed: AttributeValue = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(parsed, av);
        }
    }
}
