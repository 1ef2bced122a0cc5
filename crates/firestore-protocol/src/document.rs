//! Items as Firestore documents.
//!
//! A document's fields: the free attributes (typed, see [`crate::value`]),
//! `createdAt` and `updatedAt` (`timestampValue`), `userId` and `status`
//! (`stringValue`, absent when unset) and `expiresAt` (`timestampValue`, so
//! that a Firestore TTL policy on it deletes expired items). The document id
//! is the item id. The version is the document's `updateTime`, which
//! Firestore changes on every write and checks in preconditions.
//!
//! Documents written by other clients (such as the Python client of the
//! seed, with `name`, `description`, a `createdAt` timestamp and `likes`)
//! read as items too: a missing `createdAt`/`updatedAt` falls back to the
//! document's `createTime`/`updateTime`, a text timestamp is accepted, an
//! `expiresAt` may also be whole epoch seconds, and fields that cannot be
//! free attributes (`itemId`, `id`, `version`, `__x__` names, a non-text
//! `userId`/`status`) are left out of the item but kept in the document.

use item_model::{Attribute, Item, ItemPatch, NewItem, StoreError, Timestamp};
use serde_json::{Map, Value as Json, json};

use crate::instant::{parse_instant, rfc3339_nanos, rfc3339_seconds};
use crate::value;

pub(crate) const CREATED_AT: &str = "createdAt";
pub(crate) const UPDATED_AT: &str = "updatedAt";
pub(crate) const USER_ID: &str = "userId";
pub(crate) const STATUS: &str = "status";
pub(crate) const EXPIRES_AT: &str = "expiresAt";

pub(crate) type Fields = Map<String, Json>;

/// A document as read from Firestore.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    pub name: String,
    pub fields: Fields,
    pub create_time: Option<String>,
    /// The version: `updateTime` in its one canonical spelling.
    pub version: String,
}

impl Doc {
    /// Reads a REST `Document`; `None` when it is not one.
    pub(crate) fn parse(json: &Json) -> Option<Self> {
        let name = json.get("name")?.as_str()?.to_owned();
        let update_time = json.get("updateTime")?.as_str()?;
        Some(Self {
            name,
            fields: json
                .get("fields")
                .and_then(Json::as_object)
                .cloned()
                .unwrap_or_default(),
            create_time: json
                .get("createTime")
                .and_then(Json::as_str)
                .map(str::to_owned),
            version: canonical_version(update_time)?,
        })
    }

    /// Whether the document is an expired item, hidden from every read.
    pub(crate) fn is_expired(&self, now: Timestamp) -> bool {
        expiry_field(&self.fields).is_some_and(|at| at <= now.unix_seconds())
    }

    pub(crate) fn item(&self, id: &str) -> Item {
        item_from_fields(id, &self.fields, self.create_time.as_deref(), &self.version)
    }
}

/// The one spelling of an `updateTime` used as a version.
pub(crate) fn canonical_version(update_time: &str) -> Option<String> {
    parse_instant(update_time).map(rfc3339_nanos)
}

/// Whether `expected` names the same instant as `version`. A version the
/// client made up (not a timestamp) matches nothing.
pub(crate) fn same_version(version: &str, expected: &str) -> bool {
    match (parse_instant(version), parse_instant(expected)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// A service timestamp field (`createdAt`/`updatedAt`) as the item shows it.
fn time_field(fields: &Fields, name: &str) -> Option<String> {
    let (kind, inner) = fields.get(name)?.as_object()?.iter().next()?;
    match kind.as_str() {
        "timestampValue" | "stringValue" => Timestamp::parse(inner.as_str()?)
            .ok()
            .map(|t| t.to_string()),
        _ => None,
    }
}

pub(crate) fn text_field(fields: &Fields, name: &str) -> Option<String> {
    fields
        .get(name)?
        .get("stringValue")?
        .as_str()
        .map(str::to_owned)
}

pub(crate) fn expiry_field(fields: &Fields) -> Option<i64> {
    let (kind, inner) = fields.get(EXPIRES_AT)?.as_object()?.iter().next()?;
    match kind.as_str() {
        "timestampValue" => {
            let nanos = parse_instant(inner.as_str()?)?;
            i64::try_from(nanos.div_euclid(1_000_000_000)).ok()
        }
        "integerValue" => value::integer(inner),
        _ => None,
    }
}

/// The item a document's fields describe (see the module docs).
pub(crate) fn item_from_fields(
    id: &str,
    fields: &Fields,
    create_time: Option<&str>,
    version: &str,
) -> Item {
    let fallback = |time: Option<&str>| {
        time.and_then(|t| Timestamp::parse(t).ok())
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    let attributes = fields
        .iter()
        .filter(|(name, _)| item_model::validate::attribute_name(name).is_ok())
        .map(|(name, v)| Attribute::new(name.clone(), value::decode(v)))
        .collect();
    Item {
        id: id.to_owned(),
        created_at: time_field(fields, CREATED_AT).unwrap_or_else(|| fallback(create_time)),
        updated_at: time_field(fields, UPDATED_AT).unwrap_or_else(|| fallback(Some(version))),
        version: version.to_owned(),
        user_id: text_field(fields, USER_ID),
        status: text_field(fields, STATUS),
        expires_at: expiry_field(fields),
        attributes,
    }
}

fn time_value(timestamp: &str) -> Json {
    json!({ "timestampValue": timestamp })
}

/// The `expiresAt` field value.
pub(crate) fn expiry_value(seconds: i64) -> Result<Json, StoreError> {
    rfc3339_seconds(seconds)
        .map(|t| json!({ "timestampValue": t }))
        .ok_or_else(|| {
            StoreError::invalid(
                "expiresAt must lie between the years 1 and 9999 (Firestore's timestamp range)",
            )
        })
}

/// The fields of a whole item. `created_at`/`updated_at` are RFC 3339.
pub(crate) fn item_fields(
    item: &NewItem,
    created_at: &str,
    updated_at: &str,
) -> Result<Fields, StoreError> {
    let mut fields = Fields::new();
    for attribute in &item.attributes {
        fields.insert(
            attribute.name.clone(),
            value::encode(&attribute.name, &attribute.value)?,
        );
    }
    fields.insert(CREATED_AT.into(), time_value(created_at));
    fields.insert(UPDATED_AT.into(), time_value(updated_at));
    if let Some(user_id) = &item.user_id {
        fields.insert(USER_ID.into(), json!({ "stringValue": user_id }));
    }
    if let Some(status) = &item.status {
        fields.insert(STATUS.into(), json!({ "stringValue": status }));
    }
    if let Some(expires_at) = item.expires_at {
        fields.insert(EXPIRES_AT.into(), expiry_value(expires_at)?);
    }
    Ok(fields)
}

/// What a patch does to a document: each top-level field it sets (`Some`)
/// or removes (`None`), `updatedAt` included.
pub(crate) fn patch_changes(
    patch: &ItemPatch,
    updated_at: &str,
) -> Result<Vec<(String, Option<Json>)>, StoreError> {
    let mut changes = Vec::new();
    let text = |v: &Option<String>| v.as_ref().map(|s| json!({ "stringValue": s }));
    if let Some(user_id) = &patch.user_id {
        changes.push((USER_ID.to_owned(), text(user_id)));
    }
    if let Some(status) = &patch.status {
        changes.push((STATUS.to_owned(), text(status)));
    }
    if let Some(expires_at) = patch.expires_at {
        changes.push((
            EXPIRES_AT.to_owned(),
            expires_at.map(expiry_value).transpose()?,
        ));
    }
    for attribute in &patch.set {
        changes.push((
            attribute.name.clone(),
            Some(value::encode(&attribute.name, &attribute.value)?),
        ));
    }
    for name in &patch.remove {
        changes.push((name.clone(), None));
    }
    changes.push((UPDATED_AT.to_owned(), Some(time_value(updated_at))));
    Ok(changes)
}

/// Applies changes to a copy of a document's fields.
pub(crate) fn apply_changes(fields: &Fields, changes: &[(String, Option<Json>)]) -> Fields {
    let mut fields = fields.clone();
    for (name, value) in changes {
        match value {
            Some(value) => fields.insert(name.clone(), value.clone()),
            None => fields.remove(name),
        };
    }
    fields
}

/// Whether a stored field holds a number (an increment adds to it).
pub(crate) fn is_numeric(field: &Json) -> bool {
    field.get("integerValue").is_some() || field.get("doubleValue").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use item_model::Value;

    #[test]
    fn a_seed_document_reads_as_an_item() {
        // What `db.collection("items").document("item-123").set(item)` of
        // the seed writes, as the REST API returns it.
        let doc = Doc::parse(&json!({
            "name": "projects/p/databases/(default)/documents/items/item-123",
            "fields": {
                "itemId": {"stringValue": "item-123"},
                "name": {"stringValue": "My Item"},
                "createdAt": {"timestampValue": "2026-02-08T10:00:00.123456Z"},
                "description": {"stringValue": "A great item"},
                "likes": {"integerValue": "5"},
                "status": {"stringValue": "active"}
            },
            "createTime": "2026-02-08T10:00:01.000001Z",
            "updateTime": "2026-02-08T10:00:02.5Z"
        }))
        .unwrap();
        let item = doc.item("item-123");
        assert_eq!(item.created_at, "2026-02-08T10:00:00.123456Z");
        assert_eq!(item.updated_at, "2026-02-08T10:00:02.500000Z");
        assert_eq!(item.version, "2026-02-08T10:00:02.500000Z");
        assert_eq!(item.status.as_deref(), Some("active"));
        assert_eq!(item.user_id, None);
        assert_eq!(item.attribute("likes"), Some(&Value::Number("5".into())));
        assert_eq!(item.attribute("itemId"), None, "the id is the document id");
        assert_eq!(item.attributes.len(), 3);
    }

    #[test]
    fn fallbacks_for_foreign_documents() {
        let doc = Doc::parse(&json!({
            "name": "projects/p/databases/(default)/documents/items/x",
            "fields": {
                "createdAt": {"stringValue": "2026-02-08T10:00:00Z"},
                "expiresAt": {"integerValue": "1700000000"},
                "userId": {"integerValue": "7"},
                "version": {"integerValue": "3"},
                "__secret__": {"nullValue": null}
            },
            "createTime": "2026-02-08T10:00:01Z",
            "updateTime": "2026-02-08T10:00:02Z"
        }))
        .unwrap();
        let item = doc.item("x");
        assert_eq!(item.created_at, "2026-02-08T10:00:00.000000Z");
        assert_eq!(item.updated_at, "2026-02-08T10:00:02.000000Z");
        assert_eq!(item.expires_at, Some(1_700_000_000));
        assert_eq!(item.user_id, None);
        assert!(item.attributes.is_empty(), "{:?}", item.attributes);
    }

    #[test]
    fn items_become_typed_fields() {
        let item = NewItem {
            id: "a".into(),
            user_id: Some("u1".into()),
            status: None,
            expires_at: Some(1_893_456_000),
            attributes: vec![Attribute::new("likes", Value::Number("0".into()))],
        };
        let fields = item_fields(
            &item,
            "2026-02-08T10:00:00.000000Z",
            "2026-02-08T10:00:00.000000Z",
        )
        .unwrap();
        assert_eq!(fields["likes"], json!({"integerValue": "0"}));
        assert_eq!(
            fields["expiresAt"],
            json!({"timestampValue": "2030-01-01T00:00:00Z"})
        );
        assert_eq!(fields["userId"], json!({"stringValue": "u1"}));
        assert!(!fields.contains_key("status"));
        let back = item_from_fields("a", &fields, None, "v");
        assert_eq!(back.expires_at, Some(1_893_456_000));
        assert_eq!(back.created_at, "2026-02-08T10:00:00.000000Z");
        let far = NewItem {
            expires_at: Some(i64::MAX),
            ..item
        };
        assert!(item_fields(&far, "x", "y").is_err());
    }

    #[test]
    fn versions_compare_as_instants() {
        assert!(same_version(
            "2026-02-08T10:00:02.500000Z",
            "2026-02-08T10:00:02.5Z"
        ));
        assert!(!same_version(
            "2026-02-08T10:00:02.500000Z",
            "stale-version"
        ));
        assert_eq!(
            canonical_version("2026-02-08T10:00:02.5Z").as_deref(),
            Some("2026-02-08T10:00:02.500000Z")
        );
    }
}
