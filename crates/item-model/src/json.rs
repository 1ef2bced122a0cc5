//! The JSON shape of an item in the HTTP API, and request bodies parsed
//! into store calls.
//!
//! An item is one flat JSON object, as in the seed: the service-owned fields
//! (`id`, `createdAt`, `updatedAt`, `version`), the indexed fields (`userId`,
//! `status`), `expiresAt`, and every free attribute beside them:
//!
//! ```json
//! {"id":"item-123","name":"My Item","description":"A great item","likes":5,
//!  "userId":"u1","status":"active","createdAt":"2026-02-08T10:00:00.000000Z",
//!  "updatedAt":"2026-02-08T10:00:00.000000Z","version":"1"}
//! ```

use serde_json::{Map, Value as Json};

use crate::{Attribute, Item, ItemPatch, NewItem, Timestamp, Value};

/// Why a body could not become a store call: a message for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub String);

type Result<T> = std::result::Result<T, BodyError>;

fn err<T>(message: impl Into<String>) -> Result<T> {
    Err(BodyError(message.into()))
}

/// Fields the service owns: accepted in a body (so a fetched item can be
/// sent back as is) but ignored, like OpenAPI `readOnly` fields.
const READ_ONLY: [&str; 3] = ["createdAt", "updatedAt", "version"];

/// An attribute value from JSON.
pub fn value_from_json(json: Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => Value::Number(n.to_string()),
        Json::String(s) => Value::Text(s),
        nested @ (Json::Array(_) | Json::Object(_)) => Value::Json(nested.to_string()),
    }
}

/// An attribute value as JSON. Values are validated on the way in, so a
/// `number` or `json` case that does not parse can only come from a backend
/// written by someone else; it is then shown as the text it holds.
pub fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => serde_json::from_str::<serde_json::Number>(n)
            .map(Json::Number)
            .unwrap_or_else(|_| Json::String(n.clone())),
        Value::Text(s) => Json::String(s.clone()),
        Value::Json(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.clone()))
        }
    }
}

/// `expiresAt` as the API shows it: RFC 3339 with whole seconds.
pub fn expires_at_to_json(seconds: i64) -> Json {
    Json::String(Timestamp::from_unix_seconds(seconds).to_seconds_string())
}

/// The API representation of an item.
pub fn item_to_json(item: &Item) -> Json {
    let mut object = Map::new();
    for attribute in &item.attributes {
        object.insert(attribute.name.clone(), value_to_json(&attribute.value));
    }
    object.insert("id".into(), Json::String(item.id.clone()));
    object.insert("createdAt".into(), Json::String(item.created_at.clone()));
    object.insert("updatedAt".into(), Json::String(item.updated_at.clone()));
    object.insert("version".into(), Json::String(item.version.clone()));
    if let Some(user_id) = &item.user_id {
        object.insert("userId".into(), Json::String(user_id.clone()));
    }
    if let Some(status) = &item.status {
        object.insert("status".into(), Json::String(status.clone()));
    }
    if let Some(expires_at) = item.expires_at {
        object.insert("expiresAt".into(), expires_at_to_json(expires_at));
    }
    Json::Object(object)
}

fn optional_text(field: &str, json: Json) -> Result<Option<String>> {
    match json {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s)),
        other => err(format!(
            "`{field}` must be a string or null, not {}",
            kind(&other)
        )),
    }
}

/// `expiresAt` from JSON: an RFC 3339 timestamp, or seconds since the epoch.
fn optional_expiry(json: Json) -> Result<Option<i64>> {
    match json {
        Json::Null => Ok(None),
        Json::String(s) => Timestamp::parse(&s)
            .map(|t| Some(t.unix_seconds()))
            .map_err(|e| BodyError(format!("`expiresAt`: {e}"))),
        Json::Number(n) => match n.as_i64() {
            Some(seconds) if (0..=crate::MAX_EXPIRES_AT).contains(&seconds) => Ok(Some(seconds)),
            _ => err(format!(
                "`expiresAt` as a number must be whole seconds since the Unix epoch, from 0 to {} (9999-12-31T23:59:59Z)",
                crate::MAX_EXPIRES_AT
            )),
        },
        other => err(format!(
            "`expiresAt` must be an RFC 3339 timestamp, seconds since the epoch, or null, not {}",
            kind(&other)
        )),
    }
}

/// The JSON type of a value, for messages.
pub fn kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Reads a create/replace body. `path_id` is the id from the URL (PUT);
/// without it the body's `id` is used, or `generated_id` when it has none.
/// A body `id` that differs from the URL's is an error. `itemId` (the
/// seed's and DynamoDB's name for the id) is accepted as an alias of `id`;
/// both with different values is an error.
pub fn new_item_from_json(
    body: Json,
    path_id: Option<&str>,
    generated_id: impl FnOnce() -> String,
) -> Result<NewItem> {
    let Json::Object(object) = body else {
        return err(format!(
            "the body must be a JSON object, not {}",
            kind(&body)
        ));
    };
    let mut item = NewItem::default();
    let mut body_id = None;
    let mut alias_id = None;
    for (name, json) in object {
        match name.as_str() {
            "id" => body_id = Some(id_text("id", json)?),
            "itemId" => alias_id = Some(id_text("itemId", json)?),
            "userId" => item.user_id = optional_text("userId", json)?,
            "status" => item.status = optional_text("status", json)?,
            "expiresAt" => item.expires_at = optional_expiry(json)?,
            ro if READ_ONLY.contains(&ro) => {}
            _ => item
                .attributes
                .push(Attribute::new(name, value_from_json(json))),
        }
    }
    let body_id = match (body_id, alias_id) {
        (Some(id), Some(alias)) if id != alias => {
            return err(format!(
                "`id` (`{id}`) and its alias `itemId` (`{alias}`) differ; send one of them"
            ));
        }
        (id, alias) => id.or(alias),
    };
    item.id = match (path_id, body_id) {
        (Some(path), Some(body)) if path != body => {
            return err(format!(
                "the body's id `{body}` differs from the id in the URL `{path}`"
            ));
        }
        (Some(path), _) => path.to_string(),
        (None, Some(body)) => body,
        (None, None) => generated_id(),
    };
    Ok(item)
}

/// An item id in a body (`id` or its alias `itemId`).
fn id_text(field: &str, json: Json) -> Result<String> {
    match json {
        Json::String(s) => Ok(s),
        other => err(format!("`{field}` must be a string, not {}", kind(&other))),
    }
}

/// Reads a JSON Merge Patch (RFC 7396) body: top-level members set fields,
/// `null` removes them, nested objects replace the old value whole.
pub fn patch_from_json(body: Json, path_id: &str) -> Result<ItemPatch> {
    let Json::Object(object) = body else {
        return err(format!(
            "a merge patch must be a JSON object, not {}",
            kind(&body)
        ));
    };
    let mut patch = ItemPatch::default();
    for (name, json) in object {
        match name.as_str() {
            "id" | "itemId" => {
                if json.as_str() != Some(path_id) {
                    return err(format!(
                        "`{name}` cannot be changed; create a new item instead"
                    ));
                }
            }
            "userId" => patch.user_id = Some(optional_text("userId", json)?),
            "status" => patch.status = Some(optional_text("status", json)?),
            "expiresAt" => patch.expires_at = Some(optional_expiry(json)?),
            ro if READ_ONLY.contains(&ro) => {}
            _ if json.is_null() => patch.remove.push(name),
            _ => patch.set.push(Attribute::new(name, value_from_json(json))),
        }
    }
    Ok(patch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn item_round_trip_keeps_numbers_exact() {
        let body = json!({
            "name": "My Item",
            "likes": 5,
            "price": serde_json::from_str::<Json>("12345678901234567890.123456789").unwrap(),
            "tags": ["a", {"b": null}],
            "userId": "u1",
            "expiresAt": "2030-01-01T00:00:00Z",
        });
        let new = new_item_from_json(body, None, || "gen".into()).unwrap();
        assert_eq!(new.id, "gen");
        assert_eq!(new.user_id.as_deref(), Some("u1"));
        assert_eq!(new.expires_at, Some(1_893_456_000));
        let item = new.into_item("c".into(), "u".into(), "1".into());
        let out = item_to_json(&item);
        assert_eq!(out["price"].to_string(), "12345678901234567890.123456789");
        assert_eq!(out["tags"], json!(["a", {"b": null}]));
        assert_eq!(out["likes"], json!(5));
        assert_eq!(out["expiresAt"], json!("2030-01-01T00:00:00Z"));
        assert_eq!(out["id"], json!("gen"));
    }

    #[test]
    fn item_id_is_an_alias_of_id() {
        // The seed's payload, as written in the lesson.
        let seed = json!({"itemId": "item-123", "name": "My Item", "description": "A great item"});
        let item = new_item_from_json(seed, None, String::new).unwrap();
        assert_eq!(item.id, "item-123");
        assert!(item.attributes.iter().all(|a| a.name != "itemId"));
        let same = json!({"id": "a", "itemId": "a"});
        assert_eq!(new_item_from_json(same, None, String::new).unwrap().id, "a");
        let e =
            new_item_from_json(json!({"id": "a", "itemId": "b"}), None, String::new).unwrap_err();
        assert!(e.0.contains("itemId") && e.0.contains("differ"), "{e}");
        let put = new_item_from_json(json!({"itemId": "a"}), Some("a"), String::new).unwrap();
        assert_eq!(put.id, "a");
        assert!(new_item_from_json(json!({"itemId": "b"}), Some("a"), String::new).is_err());
        let patch = patch_from_json(json!({"itemId": "a", "name": "n"}), "a").unwrap();
        assert_eq!(patch.set.len(), 1);
        assert!(patch_from_json(json!({"itemId": "b"}), "a").is_err());
    }

    #[test]
    fn wrong_types_are_explained() {
        let e = new_item_from_json(json!({"userId": 3}), None, String::new).unwrap_err();
        assert!(e.0.contains("userId"), "{e}");
        assert!(new_item_from_json(json!([1]), None, String::new).is_err());
        assert!(new_item_from_json(json!({"itemId": 5}), None, String::new).is_err());
        assert!(new_item_from_json(json!({"expiresAt": "soon"}), None, String::new).is_err());
        let e = new_item_from_json(json!({"id": "b"}), Some("a"), String::new).unwrap_err();
        assert!(e.0.contains("differs"), "{e}");
    }

    #[test]
    fn read_only_fields_are_ignored() {
        let new = new_item_from_json(
            json!({"id": "a", "createdAt": "x", "version": "9", "name": "n"}),
            Some("a"),
            String::new,
        )
        .unwrap();
        assert_eq!(
            new.attributes,
            vec![Attribute::new("name", Value::Text("n".into()))]
        );
    }

    #[test]
    fn merge_patch() {
        let patch = patch_from_json(
            json!({"name": "new", "description": null, "status": null, "userId": "u2", "id": "a"}),
            "a",
        )
        .unwrap();
        assert_eq!(
            patch.set,
            vec![Attribute::new("name", Value::Text("new".into()))]
        );
        assert_eq!(patch.remove, vec!["description".to_string()]);
        assert_eq!(patch.status, Some(None));
        assert_eq!(patch.user_id, Some(Some("u2".into())));
        assert!(patch_from_json(json!({"id": "b"}), "a").is_err());
    }
}
