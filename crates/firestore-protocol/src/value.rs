//! Firestore typed values (REST `Value` JSON) to and from item values.
//!
//! Writing:
//!
//! | item value | Firestore value |
//! |---|---|
//! | `Null` | `nullValue` |
//! | `Bool` | `booleanValue` |
//! | `Number`, an integer literal within i64 (`5`, `-12`) | `integerValue` (a string, as the REST API wants) |
//! | `Number`, any other literal that a double holds exactly (`19.99`, `1e3`, `2.0`, `1e21`) | `doubleValue` |
//! | `Number`, any other literal (`12345678901234567890123`, `0.1000000000000000055511151231257827`, `1e400`) | refused: `InvalidInput` |
//! | `Text` | `stringValue` |
//! | `Json` array / object | `arrayValue` / `mapValue`, recursively, with the same number rule |
//!
//! The precision rule: Firestore has only int64 and double, and the item
//! store promises that numbers keep their exact value. So a literal that is
//! not an integer within i64 is stored as a double only when the double
//! read from it, printed in its shortest round-trip form, denotes the same
//! decimal value as the literal (`19.99` reads back as `19.99`); otherwise
//! (too many significant digits, beyond the double range, an underflow to
//! zero) the write is refused as invalid input rather than silently
//! rounded. A value read back is the shortest form, so `2.0` reads back as
//! `2.0` and `1e3` as `1000.0`: the same value, another spelling.
//! Arrays directly inside arrays and map keys that are empty or of the form
//! `__x__` are refused too: Firestore cannot store them.
//!
//! Reading maps every Firestore type to JSON, including the ones this
//! service never writes (documents written by other clients):
//! `timestampValue` becomes its RFC 3339 text, `bytesValue` its base64 text,
//! `referenceValue` the referenced document's name, `geoPointValue` an object
//! `{"latitude": .., "longitude": ..}`, and a non-finite double the strings
//! `"NaN"`, `"Infinity"`, `"-Infinity"` (as Firestore's own JSON spells them).
//! Doubles are re-printed in the shortest form that reads back to the same
//! double, so the text does not depend on how a server prints them.

use item_model::json::value_from_json;
use item_model::{StoreError, Value};
use serde_json::{Map, Number, Value as Json, json};

use crate::instant::parse_instant;

type Result<T> = std::result::Result<T, StoreError>;

/// The Firestore value of an attribute. `name` is for messages.
pub(crate) fn encode(name: &str, value: &Value) -> Result<Json> {
    match value {
        Value::Null => Ok(json!({ "nullValue": null })),
        Value::Bool(b) => Ok(json!({ "booleanValue": b })),
        Value::Number(literal) => encode_number(name, literal),
        Value::Text(text) => Ok(json!({ "stringValue": text })),
        Value::Json(text) => {
            let parsed: Json = serde_json::from_str(text).map_err(|_| {
                StoreError::invalid(format!(
                    "attribute `{name}`: the json case is not valid JSON"
                ))
            })?;
            encode_json(name, &parsed, false)
        }
    }
}

/// The number rule of the module docs.
fn encode_number(name: &str, literal: &str) -> Result<Json> {
    let digits = literal.strip_prefix('-').unwrap_or(literal);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(int) = literal.parse::<i64>()
    {
        return Ok(json!({ "integerValue": int.to_string() }));
    }
    let not_exact = || {
        StoreError::invalid(format!(
            "attribute `{name}`: Firestore stores numbers as 64-bit integers or doubles; `{literal}` cannot be stored exactly"
        ))
    };
    let double = literal.parse::<f64>().map_err(|_| not_exact())?;
    // `{:e}` prints the shortest digits that read back to the same double.
    let shortest = format!("{double:e}");
    match (Decimal::parse(literal), Decimal::parse(&shortest)) {
        (Some(given), Some(stored)) if double.is_finite() && given == stored => {}
        _ => return Err(not_exact()),
    }
    let number = Number::from_f64(double).ok_or_else(not_exact)?;
    Ok(json!({ "doubleValue": number }))
}

/// At least one ASCII digit and nothing else.
fn digits_only(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// The exact value of a decimal literal: `digits × 10^exponent`, with no
/// leading or trailing zeros in `digits`, so equal values compare equal
/// however they are spelled (`1e3`, `1000`, `1000.00`).
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    /// Empty for zero.
    digits: String,
    exponent: i64,
}

impl Decimal {
    /// A JSON number literal (`-12.5e-3`); `None` for anything else or an
    /// exponent beyond i64.
    fn parse(literal: &str) -> Option<Self> {
        let (negative, rest) = match literal.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, literal),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => {
                let text = &rest[at + 1..];
                let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
                if !digits_only(unsigned) {
                    return None;
                }
                (&rest[..at], text.parse::<i64>().ok()?)
            }
            None => (rest, 0),
        };
        let (whole, fraction) = match mantissa.split_once('.') {
            Some((whole, fraction)) if digits_only(fraction) => (whole, fraction),
            Some(_) => return None,
            None => (mantissa, ""),
        };
        if !digits_only(whole) {
            return None;
        }
        let fraction_len = i64::try_from(fraction.len()).ok()?;
        let joined = format!("{whole}{fraction}");
        let significant = joined.trim_start_matches('0');
        let trimmed = significant.trim_end_matches('0');
        let trailing = i64::try_from(significant.len() - trimmed.len()).ok()?;
        let exponent = exponent.checked_sub(fraction_len)?.checked_add(trailing)?;
        Some(if trimmed.is_empty() {
            Self {
                negative: false,
                digits: String::new(),
                exponent: 0,
            }
        } else {
            Self {
                negative,
                digits: trimmed.to_owned(),
                exponent,
            }
        })
    }
}

fn encode_json(name: &str, json: &Json, in_array: bool) -> Result<Json> {
    Ok(match json {
        Json::Null => json!({ "nullValue": null }),
        Json::Bool(b) => json!({ "booleanValue": b }),
        Json::Number(n) => encode_number(name, &n.to_string())?,
        Json::String(s) => json!({ "stringValue": s }),
        Json::Array(items) => {
            if in_array {
                return Err(StoreError::invalid(format!(
                    "attribute `{name}`: Firestore cannot store an array directly inside an array; wrap the inner array in an object"
                )));
            }
            let values = items
                .iter()
                .map(|item| encode_json(name, item, true))
                .collect::<Result<Vec<_>>>()?;
            json!({ "arrayValue": { "values": values } })
        }
        Json::Object(object) => {
            let mut fields = Map::new();
            for (key, value) in object {
                if key.is_empty()
                    || (key.len() >= 4 && key.starts_with("__") && key.ends_with("__"))
                {
                    return Err(StoreError::invalid(format!(
                        "attribute `{name}`: Firestore does not allow the map key `{key}` (empty or of the form __x__)"
                    )));
                }
                fields.insert(key.clone(), encode_json(name, value, false)?);
            }
            json!({ "mapValue": { "fields": fields } })
        }
    })
}

/// The item value of a Firestore value (see the module docs).
pub(crate) fn decode(value: &Json) -> Value {
    value_from_json(to_json(value))
}

/// A Firestore value as plain JSON.
pub(crate) fn to_json(value: &Json) -> Json {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return Json::Null;
    };
    match kind.as_str() {
        "nullValue" => Json::Null,
        "booleanValue" => Json::Bool(inner.as_bool().unwrap_or(false)),
        "integerValue" => integer(inner).map_or(Json::Null, |i| Json::Number(i.into())),
        "doubleValue" => double_to_json(inner),
        "timestampValue" | "stringValue" | "bytesValue" | "referenceValue" => {
            Json::String(inner.as_str().unwrap_or_default().to_owned())
        }
        "geoPointValue" => {
            let coordinate = |key: &str| double_to_json(inner.get(key).unwrap_or(&json!(0.0)));
            json!({ "latitude": coordinate("latitude"), "longitude": coordinate("longitude") })
        }
        "arrayValue" => Json::Array(
            inner
                .get("values")
                .and_then(Json::as_array)
                .map(|values| values.iter().map(to_json).collect())
                .unwrap_or_default(),
        ),
        "mapValue" => Json::Object(
            inner
                .get("fields")
                .and_then(Json::as_object)
                .map(|fields| {
                    fields
                        .iter()
                        .map(|(key, value)| (key.clone(), to_json(value)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        // A type newer than this code: show it as Firestore wrote it.
        _ => value.clone(),
    }
}

/// An `integerValue` (a JSON string, or a number from lenient servers).
pub(crate) fn integer(inner: &Json) -> Option<i64> {
    match inner {
        Json::String(s) => s.parse().ok(),
        Json::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// A `doubleValue` (a JSON number, or `"NaN"` / `"Infinity"` / `"-Infinity"`).
fn double(inner: &Json) -> Option<f64> {
    match inner {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => s.parse().ok(),
        },
        _ => None,
    }
}

fn double_to_json(inner: &Json) -> Json {
    match double(inner) {
        Some(d) => match Number::from_f64(d) {
            Some(n) => Json::Number(n),
            None if d.is_nan() => Json::String("NaN".into()),
            None if d > 0.0 => Json::String("Infinity".into()),
            None => Json::String("-Infinity".into()),
        },
        None => Json::Null,
    }
}

/// Whether two Firestore values hold the same data, however a server
/// printed them (double and timestamp spellings differ between servers).
pub(crate) fn same(a: &Json, b: &Json) -> bool {
    let (Some((ka, va)), Some((kb, vb))) = (
        a.as_object().and_then(|o| o.iter().next()),
        b.as_object().and_then(|o| o.iter().next()),
    ) else {
        return a == b;
    };
    if ka != kb {
        return false;
    }
    match ka.as_str() {
        "integerValue" => integer(va) == integer(vb),
        "doubleValue" => match (double(va), double(vb)) {
            (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
            _ => false,
        },
        "timestampValue" => {
            let instant = |v: &Json| v.as_str().and_then(parse_instant);
            instant(va).is_some() && instant(va) == instant(vb)
        }
        "arrayValue" => {
            let values = |v: &Json| {
                v.get("values")
                    .and_then(Json::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            let (xs, ys) = (values(va), values(vb));
            xs.len() == ys.len() && xs.iter().zip(&ys).all(|(x, y)| same(x, y))
        }
        "mapValue" => {
            let fields = |v: &Json| {
                v.get("fields")
                    .and_then(Json::as_object)
                    .cloned()
                    .unwrap_or_default()
            };
            same_fields(&fields(va), &fields(vb))
        }
        _ => va == vb,
    }
}

/// Whether two documents' field maps hold the same data.
pub(crate) fn same_fields(a: &Map<String, Json>, b: &Map<String, Json>) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(key, x)| b.get(key).is_some_and(|y| same(x, y)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(literal: &str) -> Json {
        encode("n", &Value::Number(literal.into())).unwrap()
    }

    #[test]
    fn integers_within_i64_stay_integers() {
        assert_eq!(number("5"), json!({"integerValue": "5"}));
        assert_eq!(number("-12"), json!({"integerValue": "-12"}));
        assert_eq!(
            number("9223372036854775807"),
            json!({"integerValue": "9223372036854775807"})
        );
        assert_eq!(number("-0"), json!({"integerValue": "0"}));
    }

    #[test]
    fn other_numbers_become_doubles() {
        assert_eq!(number("19.99").to_string(), r#"{"doubleValue":19.99}"#);
        assert_eq!(number("2.0").to_string(), r#"{"doubleValue":2.0}"#);
        assert_eq!(number("1e3").to_string(), r#"{"doubleValue":1000.0}"#);
        assert_eq!(number("-0.000001").to_string(), r#"{"doubleValue":-1e-6}"#);
        assert_eq!(number("1e21").to_string(), r#"{"doubleValue":1e+21}"#);
        assert_eq!(number("1E+21").to_string(), r#"{"doubleValue":1e+21}"#);
        assert_eq!(number("0.5e1").to_string(), r#"{"doubleValue":5.0}"#);
        // Beyond i64 but exactly a double.
        assert_eq!(
            number("100000000000000000000000").to_string(),
            r#"{"doubleValue":1e+23}"#
        );
        assert_eq!(number("-0.0").to_string(), r#"{"doubleValue":-0.0}"#);
        assert_eq!(number("0e5").to_string(), r#"{"doubleValue":0.0}"#);
    }

    #[test]
    fn numbers_a_double_would_round_are_refused() {
        for literal in [
            "12345678901234567890123",
            "0.1000000000000000055511151231257827",
            // 2^63: within a double, but its shortest form is 9.223372036854776e18.
            "9223372036854775808",
            "-9223372036854775809",
            "1.00000000000000001",
            "1e400",
            "-1e400",
            // Underflows to zero.
            "1e-400",
            "1e99999999999999999999",
        ] {
            match encode("n", &Value::Number(literal.into())) {
                Err(StoreError::InvalidInput(message)) => {
                    assert_eq!(
                        message,
                        format!(
                            "attribute `n`: Firestore stores numbers as 64-bit integers or doubles; `{literal}` cannot be stored exactly"
                        )
                    );
                }
                other => panic!("{literal}: {other:?}"),
            }
        }
        // Inside JSON too, with the literal as written.
        let nested = encode(
            "list",
            &Value::Json(r#"[1, {"big": 12345678901234567890123}]"#.into()),
        );
        assert!(
            matches!(&nested, Err(StoreError::InvalidInput(m)) if m.contains("`12345678901234567890123`")),
            "{nested:?}"
        );
    }

    #[test]
    fn decimals_compare_by_value() {
        let d = |s: &str| Decimal::parse(s).unwrap();
        assert_eq!(d("1e3"), d("1000"));
        assert_eq!(d("1000.000"), d("1e3"));
        assert_eq!(d("0.00120"), d("1.2e-3"));
        assert_eq!(d("-0"), d("0.0e7"));
        assert_ne!(d("-1"), d("1"));
        assert_ne!(d("0.1"), d("0.10000000000000001"));
        for bad in ["", "-", ".5", "1.", "1e", "e5", "1x", "--1", "1e+-2"] {
            assert_eq!(Decimal::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn nested_values_round_trip() {
        let text = r#"{"a":[1,"two",{"three":3.5}],"b":null,"c":true,"d":{}}"#;
        let encoded = encode("x", &Value::Json(text.into())).unwrap();
        assert_eq!(
            encoded["mapValue"]["fields"]["a"]["arrayValue"]["values"][0],
            json!({"integerValue": "1"})
        );
        assert_eq!(decode(&encoded), Value::Json(text.into()));
        let list = encode("x", &Value::Json("[]".into())).unwrap();
        assert_eq!(decode(&list), Value::Json("[]".into()));
    }

    #[test]
    fn what_firestore_cannot_store_is_refused() {
        for bad in [r#"[[1]]"#, r#"{"a":[[1]]}"#, r#"{"":1}"#, r#"{"__x__":1}"#] {
            assert!(
                matches!(
                    encode("x", &Value::Json(bad.into())),
                    Err(StoreError::InvalidInput(_))
                ),
                "{bad}"
            );
        }
        // An array inside a map inside an array is fine.
        assert!(encode("x", &Value::Json(r#"[{"a":[1]}]"#.into())).is_ok());
    }

    #[test]
    fn foreign_types_read_as_json() {
        let read = |v: Json| decode(&v);
        assert_eq!(
            read(json!({"timestampValue": "2026-02-08T10:00:00.123456Z"})),
            Value::Text("2026-02-08T10:00:00.123456Z".into())
        );
        assert_eq!(
            read(json!({"bytesValue": "AAE="})),
            Value::Text("AAE=".into())
        );
        assert_eq!(
            read(json!({"referenceValue": "projects/p/databases/(default)/documents/items/x"})),
            Value::Text("projects/p/databases/(default)/documents/items/x".into())
        );
        assert_eq!(
            read(json!({"geoPointValue": {"latitude": 1.5}})),
            Value::Json(r#"{"latitude":1.5,"longitude":0.0}"#.into())
        );
        assert_eq!(
            read(json!({"doubleValue": "NaN"})),
            Value::Text("NaN".into())
        );
        assert_eq!(
            read(json!({"doubleValue": "-Infinity"})),
            Value::Text("-Infinity".into())
        );
        // The emulator prints doubles the Java way.
        let java: Json = serde_json::from_str(r#"{"doubleValue": 1.0E308}"#).unwrap();
        assert_eq!(read(java), Value::Number("1e+308".into()));
        assert_eq!(
            read(json!({"integerValue": "42"})),
            Value::Number("42".into())
        );
        assert_eq!(
            read(json!({"somethingNew": {"x": 1}})),
            Value::Json(r#"{"somethingNew":{"x":1}}"#.into())
        );
    }

    #[test]
    fn sameness_ignores_spelling() {
        let java: Json = serde_json::from_str(r#"{"doubleValue": 1.0E-6}"#).unwrap();
        assert!(same(&java, &number("0.000001")));
        assert!(same(
            &json!({"timestampValue": "2026-02-08T10:00:00Z"}),
            &json!({"timestampValue": "2026-02-08T10:00:00.000000Z"})
        ));
        assert!(!same(&number("1"), &number("1.0")));
        assert!(same(
            &json!({"arrayValue": {}}),
            &json!({"arrayValue": {"values": []}})
        ));
    }
}
