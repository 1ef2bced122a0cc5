//! Request bodies: which content types are JSON, and JSON -> store input
//! with validation, before any store call. Pure, so unit tested natively.
//!
//! Status rules: bytes that are not JSON are a 400; JSON that breaks the
//! item rules (wrong types, reserved names, ids) is a 422.

use item_model::json::{BodyError, kind, new_item_from_json, patch_from_json};
use item_model::{
    BatchPut, BatchWrite, ItemPatch, MAX_BATCH_WRITES, NewItem, StoreError, Timestamp, validate,
};
use serde_json::Value as Json;

use crate::problem::{Kind, Problem};

/// Whether a `Content-Type` value is JSON: `application/json` or any
/// `application/<something>+json` (which covers `merge-patch+json`), with
/// an optional `charset=utf-8` (JSON is always UTF-8).
pub fn is_json_media_type(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let json = match essence.strip_prefix("application/") {
        Some("json") => true,
        Some(subtype) => subtype.len() > "+json".len() && subtype.ends_with("+json"),
        None => false,
    };
    let utf8 = parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    });
    json && utf8
}

/// The 415 for a body that is not declared as JSON.
pub fn unsupported_media_type(content_type: Option<&str>, patch: bool) -> Problem {
    let expected = if patch {
        "application/merge-patch+json or application/json"
    } else {
        "application/json"
    };
    Problem::new(
        Kind::UnsupportedMediaType,
        match content_type {
            Some(ct) => format!("the body is `{ct}`; send JSON with Content-Type: {expected}"),
            None => {
                format!("the body has no Content-Type; send JSON with Content-Type: {expected}")
            }
        },
    )
}

/// Parses body bytes as JSON (400 when they are not).
pub fn parse_json(bytes: &[u8]) -> Result<Json, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::new(
            Kind::MalformedJson,
            "the request body is empty; send a JSON object",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Problem::new(
            Kind::MalformedJson,
            format!("the request body is not valid JSON: {e}"),
        )
    })
}

fn invalid(message: impl Into<String>) -> Problem {
    Problem::new(Kind::InvalidBody, message)
}

fn from_body_error(e: BodyError) -> Problem {
    invalid(e.0)
}

/// Validation failures are always `InvalidInput`; anything else would be a
/// bug in item_model, reported the same way.
fn from_validation(e: StoreError) -> Problem {
    match e {
        StoreError::InvalidInput(message) => invalid(message),
        other => invalid(other.to_string()),
    }
}

/// The most attributes one write may carry: `ITEMS_MAX_ATTRIBUTES` from the
/// component's environment (default [`item_model::DEFAULT_MAX_ATTRIBUTES`],
/// at most [`item_model::MAX_ATTRIBUTES`], the stores' own ceiling).
pub fn max_attributes() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| match std::env::var("ITEMS_MAX_ATTRIBUTES") {
        Err(_) => item_model::DEFAULT_MAX_ATTRIBUTES,
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=item_model::MAX_ATTRIBUTES).contains(&n) => n,
            _ => {
                eprintln!(
                    "ITEMS_MAX_ATTRIBUTES={text:?} is not a number from 1 to {}; using {}",
                    item_model::MAX_ATTRIBUTES,
                    item_model::DEFAULT_MAX_ATTRIBUTES
                );
                item_model::DEFAULT_MAX_ATTRIBUTES
            }
        },
    })
}

/// A create (`path_id` = None) or replace body, parsed and validated.
pub fn new_item(
    json: Json,
    path_id: Option<&str>,
    generated_id: impl FnOnce() -> String,
) -> Result<NewItem, Problem> {
    let item = new_item_from_json(json, path_id, generated_id).map_err(from_body_error)?;
    validate::attribute_count(item.attributes.len(), max_attributes()).map_err(from_validation)?;
    validate::new_item(&item).map_err(from_validation)?;
    Ok(item)
}

/// A merge-patch body, parsed and validated.
pub fn patch(json: Json, path_id: &str) -> Result<ItemPatch, Problem> {
    let patch = patch_from_json(json, path_id).map_err(from_body_error)?;
    validate::attribute_count(patch.set.len() + patch.remove.len(), max_attributes())
        .map_err(from_validation)?;
    validate::patch(&patch).map_err(from_validation)?;
    Ok(patch)
}

/// The `by` of `POST /items/{id}/likes`; `None` (empty body) means 1.
pub fn likes_delta(json: Option<Json>) -> Result<i64, Problem> {
    let Some(json) = json else {
        return Ok(1);
    };
    let Json::Object(object) = json else {
        return Err(invalid(format!(
            "the body must be a JSON object such as {{\"by\": 1}}, not {}",
            kind(&json)
        )));
    };
    let mut by = 1;
    for (name, value) in object {
        if name != "by" {
            return Err(invalid(format!(
                "unknown member `{name}`; the body may only have `by`"
            )));
        }
        by = match &value {
            Json::Number(n) => n.as_i64().ok_or_else(|| {
                invalid(format!(
                    "`by` must be a whole number between {} and {}, not {n}",
                    i64::MIN,
                    i64::MAX
                ))
            })?,
            other => {
                return Err(invalid(format!(
                    "`by` must be a whole number, not {}",
                    kind(other)
                )));
            }
        };
    }
    Ok(by)
}

/// A `POST /items:batch` body: `{"put": [item, ...], "delete": [id, ...]}`,
/// puts first, then deletes, each in request order. Puts without an `id`
/// get one from `generate_id`; a put's `createdAt` is kept.
pub fn batch(
    json: Json,
    mut generate_id: impl FnMut() -> String,
) -> Result<Vec<BatchWrite>, Problem> {
    let Json::Object(object) = json else {
        return Err(invalid(format!(
            "a batch must be a JSON object {{\"put\": [...], \"delete\": [...]}}, not {}",
            kind(&json)
        )));
    };
    let mut puts = Vec::new();
    let mut deletes = Vec::new();
    for (name, value) in object {
        let list = match value {
            Json::Array(list) => list,
            Json::Null => Vec::new(),
            other => {
                return Err(invalid(format!(
                    "`{name}` must be an array, not {}",
                    kind(&other)
                )));
            }
        };
        match name.as_str() {
            "put" => puts = list,
            "delete" => deletes = list,
            _ => {
                return Err(invalid(format!(
                    "unknown member `{name}`; a batch has `put` and `delete`"
                )));
            }
        }
    }
    let total = puts.len() + deletes.len();
    if total == 0 || total > MAX_BATCH_WRITES {
        return Err(invalid(format!(
            "a batch needs 1 to {MAX_BATCH_WRITES} writes (puts and deletes together), not {total}"
        )));
    }
    let mut writes = Vec::with_capacity(total);
    for (index, json) in puts.into_iter().enumerate() {
        let put = batch_put(json, &mut generate_id)
            .map_err(|p| invalid(format!("put[{index}]: {}", p.detail)))?;
        writes.push(BatchWrite::Put(put));
    }
    for (index, json) in deletes.into_iter().enumerate() {
        let Json::String(id) = json else {
            return Err(invalid(format!(
                "delete[{index}]: must be an item id string, not {}",
                kind(&json)
            )));
        };
        validate::id(&id)
            .map_err(|e| invalid(format!("delete[{index}]: {}", from_validation(e).detail)))?;
        writes.push(BatchWrite::Delete(id));
    }
    // Cross-write rules (each id at most once).
    validate::batch(&writes).map_err(from_validation)?;
    Ok(writes)
}

fn batch_put(json: Json, generate_id: &mut impl FnMut() -> String) -> Result<BatchPut, Problem> {
    // new_item_from_json ignores `createdAt` (read-only elsewhere); a batch
    // put is an import and keeps it, in the canonical form.
    let created_at = match json.get("createdAt") {
        None | Some(Json::Null) => None,
        Some(Json::String(text)) => Some(
            Timestamp::parse(text)
                .map_err(|e| invalid(format!("`createdAt`: {e}")))?
                .to_string(),
        ),
        Some(other) => {
            return Err(invalid(format!(
                "`createdAt` must be an RFC 3339 timestamp, not {}",
                kind(other)
            )));
        }
    };
    let item = new_item(json, None, generate_id)?;
    Ok(BatchPut {
        item,
        created_at,
        updated_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "Application/JSON; charset=UTF-8",
            "application/merge-patch+json",
            "application/vnd.example+json;charset=\"utf-8\"",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "",
            "text/plain",
            "text/json",
            "application/x-www-form-urlencoded",
            "application/+json",
            "application/jsonx",
            "application/json; charset=latin1",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }

    #[test]
    fn malformed_json_is_400_and_rules_are_422() {
        assert_eq!(parse_json(b"").unwrap_err().kind, Kind::MalformedJson);
        assert_eq!(parse_json(b"{").unwrap_err().kind, Kind::MalformedJson);
        assert_eq!(parse_json(b"{} x").unwrap_err().kind, Kind::MalformedJson);
        assert!(parse_json(b" {\"a\": 1} ").is_ok());
        let err = new_item(json!({"userId": 1}), None, || "g".into()).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidBody);
        let err = new_item(json!({"__x__": 1}), None, || "g".into()).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidBody);
        let err = new_item(json!({"id": "a/b"}), None, || "g".into()).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidBody);
        let err = new_item(json!({"id": "b"}), Some("a"), || "g".into()).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidBody);
        assert_eq!(
            new_item(json!({"name": "n"}), None, || "g".into())
                .unwrap()
                .id,
            "g"
        );
        assert_eq!(
            patch(json!({"userId": ""}), "a").unwrap_err().kind,
            Kind::InvalidBody
        );
    }

    #[test]
    fn likes_body() {
        assert_eq!(likes_delta(None), Ok(1));
        assert_eq!(likes_delta(Some(json!({}))), Ok(1));
        assert_eq!(likes_delta(Some(json!({"by": -3}))), Ok(-3));
        for bad in [
            json!({"by": 1.5}),
            json!({"by": "2"}),
            json!({"by": 1, "x": 2}),
            json!([1]),
            serde_json::from_str("{\"by\": 1e3}").unwrap(),
            serde_json::from_str("{\"by\": 99999999999999999999}").unwrap(),
        ] {
            assert_eq!(
                likes_delta(Some(bad.clone())).unwrap_err().kind,
                Kind::InvalidBody,
                "{bad}"
            );
        }
    }

    #[test]
    fn batch_body() {
        let mut n = 0;
        let writes = batch(
            json!({
                "put": [
                    {"id": "a", "name": "x", "createdAt": "2020-01-01T00:00:00Z"},
                    {"name": "generated"}
                ],
                "delete": ["b"]
            }),
            || {
                n += 1;
                format!("gen-{n}")
            },
        )
        .unwrap();
        assert_eq!(writes.len(), 3);
        let BatchWrite::Put(first) = &writes[0] else {
            panic!("put first")
        };
        assert_eq!(first.item.id, "a");
        assert_eq!(
            first.created_at.as_deref(),
            Some("2020-01-01T00:00:00.000000Z")
        );
        assert!(first.item.attributes.iter().all(|a| a.name != "createdAt"));
        let BatchWrite::Put(second) = &writes[1] else {
            panic!("put second")
        };
        assert_eq!(second.item.id, "gen-1");
        assert_eq!(second.created_at, None);
        assert_eq!(writes[2], BatchWrite::Delete("b".into()));
    }

    #[test]
    fn batch_rules() {
        let gen_id = || "g".to_string();
        for bad in [
            json!({}),
            json!({"put": []}),
            json!({"put": {}}),
            json!({"puts": []}),
            json!({"delete": [1]}),
            json!({"delete": ["a/b"]}),
            json!({"delete": ["a", "a"]}),
            json!({"put": [{"id": "a"}], "delete": ["a"]}),
            json!({"put": [{"id": "a", "createdAt": "yesterday"}]}),
            json!({"put": [{"id": "a", "createdAt": 5}]}),
            json!({"put": [{"itemId": "a", "id": "b"}]}),
            json!([]),
        ] {
            assert_eq!(
                batch(bad.clone(), gen_id).unwrap_err().kind,
                Kind::InvalidBody,
                "{bad}"
            );
        }
        let many: Vec<String> = (0..=MAX_BATCH_WRITES).map(|i| i.to_string()).collect();
        let err = batch(json!({ "delete": many }), gen_id).unwrap_err();
        assert!(err.detail.contains("1 to 100"), "{}", err.detail);
        let hundred: Vec<String> = (0..MAX_BATCH_WRITES).map(|i| i.to_string()).collect();
        assert!(batch(json!({ "delete": hundred }), gen_id).is_ok());
    }
}
