//! Writes applied at most once per key (WIT `apply-once`): the types, the
//! record every store keeps beside the write, and the rules every store
//! follows with it, so that the three backends agree.
//!
//! A store keeps, per key, a [`Record`]: the request's fingerprint, when
//! the record expires and what the write did ([`Written`], encoded by
//! [`Written::encode`]). It writes the record in the same atomic step as
//! the write itself; [`Record::answer`] says what a later call with the
//! same key gets.

use serde_json::{Map, Value as Json, json};

use crate::{
    Attribute, BatchResult, BatchWrite, Item, ItemPatch, NewItem, PutOutcome, StoreError,
    Timestamp, Value, counter,
};

/// Longest key or fingerprint, in characters.
pub const MAX_TOKEN_LEN: usize = 128;

/// What makes a write happen at most once (WIT `once`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Once {
    /// Names the write, within the caller's scope: `[0-9A-Za-z_-]{1,128}`.
    pub key: String,
    /// Names the request: `[0-9A-Za-z_-]{1,128}`.
    pub fingerprint: String,
    /// Until when the record is kept, seconds since the Unix epoch.
    pub expires_at: i64,
}

/// A write that `apply-once` applies (WIT `write`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// As `create`.
    Create(NewItem),
    /// As `put`.
    Put {
        /// The item.
        item: NewItem,
        /// The version the item must have.
        expected_version: Option<String>,
    },
    /// As `update`.
    Update {
        /// The item's id.
        id: String,
        /// The change.
        patch: ItemPatch,
        /// The version the item must have.
        expected_version: Option<String>,
    },
    /// As `delete`.
    Delete {
        /// The item's id.
        id: String,
        /// The version the item must have.
        expected_version: Option<String>,
    },
    /// As `increment`.
    Increment {
        /// The item's id.
        id: String,
        /// The numeric attribute.
        attribute: String,
        /// What to add.
        delta: i64,
    },
    /// As `batch`.
    Batch(Vec<BatchWrite>),
}

impl Write {
    /// The one item this write touches; `None` for a batch.
    pub fn id(&self) -> Option<&str> {
        match self {
            Write::Create(item) | Write::Put { item, .. } => Some(&item.id),
            Write::Update { id, .. } | Write::Delete { id, .. } | Write::Increment { id, .. } => {
                Some(id)
            }
            Write::Batch(_) => None,
        }
    }

    /// The operation's name, for logs and messages.
    pub fn operation(&self) -> &'static str {
        match self {
            Write::Create(_) => "create",
            Write::Put { .. } => "put",
            Write::Update { .. } => "update",
            Write::Delete { .. } => "delete",
            Write::Increment { .. } => "increment",
            Write::Batch(_) => "batch",
        }
    }
}

/// What a write did (WIT `written`): what its function returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The item written by create, update or increment.
    Item(Item),
    /// What put returns.
    Put(Item, PutOutcome),
    /// Delete removed the item.
    Deleted,
    /// What batch returns.
    Batch(BatchResult),
}

/// What `apply-once` did (WIT `applied`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The result: now, or as recorded when the write was first applied.
    pub written: Written,
    /// The write had been applied before; nothing was written now.
    pub replayed: bool,
}

impl Applied {
    /// A write applied by this call.
    pub fn now(written: Written) -> Self {
        Self {
            written,
            replayed: false,
        }
    }
}

/// What a store keeps under a key, beside the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The fingerprint of the request that applied the write.
    pub fingerprint: String,
    /// Until when the record counts, seconds since the Unix epoch.
    pub expires_at: i64,
    /// What the write did, as [`Written::encode`] wrote it.
    pub written: String,
}

impl Record {
    /// The record a store writes for `once` after its write did `written`.
    pub fn new(once: &Once, written: &Written) -> Self {
        Self {
            fingerprint: once.fingerprint.clone(),
            expires_at: once.expires_at,
            written: written.encode(),
        }
    }

    /// Whether the record still counts at `now` (an expired record is
    /// treated as absent, even before the backend removes it).
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at > now.unix_seconds()
    }

    /// What a call with `once` gets when this record is found: the
    /// recorded result, or `key-reused` for another request.
    pub fn answer(&self, once: &Once) -> Result<Applied, StoreError> {
        if self.fingerprint != once.fingerprint {
            return Err(StoreError::KeyReused);
        }
        Ok(Applied {
            written: Written::decode(&self.written)?,
            replayed: true,
        })
    }
}

/// The state of an item after a single-item write, and what the write
/// returns: what [`decide`] works out for stores that read, decide and
/// then write under a condition (DynamoDB, Firestore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The item as it must be stored afterwards; `None`: deleted.
    pub stored: Option<Item>,
    /// What the write returns.
    pub written: Written,
}

/// Decides a single-item write against the item as read (`current`: the
/// live item, `None` when absent or expired), with the semantics of the
/// store functions in `wit/item-store.wit`. `version` makes the new
/// version from the current one (each backend has its own scheme); `now`
/// is the write time. Batches are not single-item writes: `invalid-input`.
pub fn decide(
    write: &Write,
    current: Option<&Item>,
    now: Timestamp,
    version: impl FnOnce(Option<&Item>) -> String,
) -> Result<Decision, StoreError> {
    let now_text = now.to_string();
    let expect = |expected: &Option<String>| -> Result<(), StoreError> {
        match (expected, current) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(StoreError::VersionMismatch(None)),
            (Some(want), Some(item)) if *want == item.version => Ok(()),
            (Some(_), Some(item)) => Err(StoreError::VersionMismatch(Some(item.version.clone()))),
        }
    };
    match write {
        Write::Create(item) => {
            if current.is_some() {
                return Err(StoreError::AlreadyExists);
            }
            let item = item
                .clone()
                .into_item(now_text.clone(), now_text, version(None));
            Ok(Decision {
                stored: Some(item.clone()),
                written: Written::Item(item),
            })
        }
        Write::Put {
            item,
            expected_version,
        } => {
            expect(expected_version)?;
            let (created_at, outcome) = match current {
                Some(old) => (old.created_at.clone(), PutOutcome::Replaced),
                None => (now_text.clone(), PutOutcome::Created),
            };
            let item = item
                .clone()
                .into_item(created_at, now_text, version(current));
            Ok(Decision {
                stored: Some(item.clone()),
                written: Written::Put(item, outcome),
            })
        }
        Write::Update {
            patch,
            expected_version,
            ..
        } => {
            let Some(old) = current else {
                return Err(match expected_version {
                    Some(_) => StoreError::VersionMismatch(None),
                    None => StoreError::NotFound,
                });
            };
            expect(expected_version)?;
            let mut item = old.clone();
            patch.apply_to(&mut item);
            item.updated_at = now_text;
            item.version = version(current);
            Ok(Decision {
                stored: Some(item.clone()),
                written: Written::Item(item),
            })
        }
        Write::Delete {
            expected_version, ..
        } => {
            if current.is_none() && expected_version.is_none() {
                return Err(StoreError::NotFound);
            }
            expect(expected_version)?;
            Ok(Decision {
                stored: None,
                written: Written::Deleted,
            })
        }
        Write::Increment {
            attribute, delta, ..
        } => {
            let old = current.ok_or(StoreError::NotFound)?;
            let start = counter::start_value(attribute, old.attribute(attribute))?;
            let value = counter::add(attribute, start, *delta)?;
            let mut item = old.clone();
            let number = Value::Number(value.to_string());
            match item.attributes.iter_mut().find(|a| a.name == *attribute) {
                Some(existing) => existing.value = number,
                None => item
                    .attributes
                    .push(Attribute::new(attribute.clone(), number)),
            }
            item.updated_at = now_text;
            item.version = version(current);
            Ok(Decision {
                stored: Some(item.clone()),
                written: Written::Item(item),
            })
        }
        Write::Batch(_) => Err(StoreError::invalid(
            "a batch is not a single-item write; decide each of its writes",
        )),
    }
}

// The record's encoding: compact JSON, with every value tagged so that
// numbers keep their exact literal.

fn value_to_record(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => json!({ "n": n }),
        Value::Text(t) => Json::String(t.clone()),
        Value::Json(j) => json!({ "j": j }),
    }
}

fn value_from_record(json: &Json) -> Option<Value> {
    Some(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::String(t) => Value::Text(t.clone()),
        Json::Object(map) => match (map.get("n"), map.get("j")) {
            (Some(Json::String(n)), None) => Value::Number(n.clone()),
            (None, Some(Json::String(j))) => Value::Json(j.clone()),
            _ => return None,
        },
        _ => return None,
    })
}

fn item_to_record(item: &Item) -> Json {
    let attributes: Vec<Json> = item
        .attributes
        .iter()
        .map(|a| json!([a.name, value_to_record(&a.value)]))
        .collect();
    json!({
        "id": item.id,
        "createdAt": item.created_at,
        "updatedAt": item.updated_at,
        "version": item.version,
        "userId": item.user_id,
        "status": item.status,
        "expiresAt": item.expires_at,
        "attributes": attributes,
    })
}

fn item_from_record(json: &Json) -> Option<Item> {
    let map = json.as_object()?;
    let text = |name: &str| map.get(name)?.as_str().map(str::to_string);
    let optional = |name: &str| match map.get(name) {
        None | Some(Json::Null) => Some(None),
        Some(Json::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    };
    let expires_at = match map.get("expiresAt") {
        None | Some(Json::Null) => None,
        Some(n) => Some(n.as_i64()?),
    };
    let attributes = map
        .get("attributes")?
        .as_array()?
        .iter()
        .map(|pair| {
            let pair = pair.as_array()?;
            match pair.as_slice() {
                [Json::String(name), value] => {
                    Some(Attribute::new(name.clone(), value_from_record(value)?))
                }
                _ => None,
            }
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Item {
        id: text("id")?,
        created_at: text("createdAt")?,
        updated_at: text("updatedAt")?,
        version: text("version")?,
        user_id: optional("userId")?,
        status: optional("status")?,
        expires_at,
        attributes,
    })
}

impl Written {
    /// The record's text for this result: compact JSON that
    /// [`Written::decode`] reads back exactly.
    pub fn encode(&self) -> String {
        let json = match self {
            Written::Item(item) => json!({ "item": item_to_record(item) }),
            Written::Put(item, outcome) => json!({
                "put": item_to_record(item),
                "outcome": match outcome {
                    PutOutcome::Created => "created",
                    PutOutcome::Replaced => "replaced",
                },
            }),
            Written::Deleted => json!({ "deleted": true }),
            Written::Batch(result) => json!({
                "batch": result.put.iter().map(item_to_record).collect::<Vec<_>>(),
                "deleted": result.deleted,
            }),
        };
        json.to_string()
    }

    /// Reads a result that [`Written::encode`] wrote; a damaged record is
    /// a backend error (the write was applied, its answer is lost).
    pub fn decode(text: &str) -> Result<Self, StoreError> {
        let damaged = || StoreError::Backend("an idempotency record is damaged".into());
        let json: Json = serde_json::from_str(text).map_err(|_| damaged())?;
        let map: &Map<String, Json> = json.as_object().ok_or_else(damaged)?;
        let written = if let Some(item) = map.get("item") {
            Written::Item(item_from_record(item).ok_or_else(damaged)?)
        } else if let Some(item) = map.get("put") {
            let outcome = match map.get("outcome").and_then(Json::as_str) {
                Some("created") => PutOutcome::Created,
                Some("replaced") => PutOutcome::Replaced,
                _ => return Err(damaged()),
            };
            Written::Put(item_from_record(item).ok_or_else(damaged)?, outcome)
        } else if let Some(items) = map.get("batch") {
            let put = items
                .as_array()
                .ok_or_else(damaged)?
                .iter()
                .map(item_from_record)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(damaged)?;
            let deleted = map
                .get("deleted")
                .and_then(Json::as_array)
                .ok_or_else(damaged)?
                .iter()
                .map(|id| id.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(damaged)?;
            Written::Batch(BatchResult { put, deleted })
        } else if map.get("deleted") == Some(&Json::Bool(true)) {
            Written::Deleted
        } else {
            return Err(damaged());
        };
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, version: &str) -> Item {
        Item {
            id: id.into(),
            created_at: "2026-02-08T10:00:00.000000Z".into(),
            updated_at: "2026-02-08T10:00:00.000000Z".into(),
            version: version.into(),
            user_id: Some("u1".into()),
            status: None,
            expires_at: Some(1_900_000_000),
            attributes: vec![
                Attribute::new("n", Value::Number("1e21".into())),
                Attribute::new("t", Value::Text("{\"n\":\"x\"}".into())),
                Attribute::new("j", Value::Json("[1,{\"a\":null}]".into())),
                Attribute::new("z", Value::Null),
                Attribute::new("b", Value::Bool(false)),
            ],
        }
    }

    fn once(fingerprint: &str) -> Once {
        Once {
            key: "k".into(),
            fingerprint: fingerprint.into(),
            expires_at: 1_800_000_000,
        }
    }

    fn now() -> Timestamp {
        Timestamp::parse("2026-02-08T11:00:00.000001Z").unwrap()
    }

    #[test]
    fn every_result_survives_its_record_exactly() {
        let results = [
            Written::Item(item("a", "3")),
            Written::Put(item("b", "1"), PutOutcome::Created),
            Written::Put(item("b", "2"), PutOutcome::Replaced),
            Written::Deleted,
            Written::Batch(BatchResult {
                put: vec![item("c", "1"), item("d", "7")],
                deleted: vec!["e".into(), "f/g".into()],
            }),
            Written::Batch(BatchResult::default()),
        ];
        for written in results {
            assert_eq!(Written::decode(&written.encode()), Ok(written.clone()));
        }
    }

    #[test]
    fn a_damaged_record_is_a_backend_error() {
        for text in ["", "{}", "[]", r#"{"item":{"id":"a"}}"#, r#"{"put":{}}"#] {
            assert!(
                matches!(Written::decode(text), Err(StoreError::Backend(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn a_record_replays_its_own_request_and_refuses_another() {
        let record = Record::new(&once("f1"), &Written::Deleted);
        assert_eq!(
            record.answer(&once("f1")),
            Ok(Applied {
                written: Written::Deleted,
                replayed: true
            })
        );
        assert_eq!(record.answer(&once("f2")), Err(StoreError::KeyReused));
        assert!(record.is_live(now()));
        let expired = Record {
            expires_at: now().unix_seconds(),
            ..record
        };
        assert!(!expired.is_live(now()));
    }

    fn next(current: Option<&Item>) -> String {
        current
            .map_or(1, |i| i.version.parse::<u64>().unwrap() + 1)
            .to_string()
    }

    fn new_item(id: &str) -> NewItem {
        NewItem {
            id: id.into(),
            attributes: vec![Attribute::new("name", Value::Text("x".into()))],
            ..NewItem::default()
        }
    }

    #[test]
    fn create_and_put_decide_like_the_store_functions() {
        let old = item("a", "4");
        let created = decide(&Write::Create(new_item("a")), None, now(), next).unwrap();
        let Written::Item(made) = &created.written else {
            panic!()
        };
        assert_eq!(
            (made.version.as_str(), made.created_at.as_str()),
            ("1", "2026-02-08T11:00:00.000001Z")
        );
        assert_eq!(created.stored.as_ref(), Some(made));
        assert_eq!(
            decide(&Write::Create(new_item("a")), Some(&old), now(), next),
            Err(StoreError::AlreadyExists)
        );
        let put = |expected: Option<&str>, current: Option<&Item>| {
            decide(
                &Write::Put {
                    item: new_item("a"),
                    expected_version: expected.map(str::to_string),
                },
                current,
                now(),
                next,
            )
        };
        let replaced = put(None, Some(&old)).unwrap();
        let Written::Put(item, PutOutcome::Replaced) = replaced.written else {
            panic!()
        };
        assert_eq!(
            (item.version.as_str(), item.created_at.as_str()),
            ("5", old.created_at.as_str())
        );
        assert!(matches!(
            put(None, None).unwrap().written,
            Written::Put(_, PutOutcome::Created)
        ));
        assert_eq!(
            put(Some("3"), Some(&old)),
            Err(StoreError::VersionMismatch(Some("4".into())))
        );
        assert_eq!(put(Some("3"), None), Err(StoreError::VersionMismatch(None)));
        assert!(put(Some("4"), Some(&old)).is_ok());
    }

    #[test]
    fn update_delete_and_increment_decide_like_the_store_functions() {
        let old = item("a", "4");
        let patch = ItemPatch {
            status: Some(Some("done".into())),
            remove: vec!["z".into()],
            ..ItemPatch::default()
        };
        let update = |expected: Option<&str>, current: Option<&Item>| {
            decide(
                &Write::Update {
                    id: "a".into(),
                    patch: patch.clone(),
                    expected_version: expected.map(str::to_string),
                },
                current,
                now(),
                next,
            )
        };
        let updated = update(Some("4"), Some(&old)).unwrap();
        let Written::Item(new) = updated.written else {
            panic!()
        };
        assert_eq!(new.status.as_deref(), Some("done"));
        assert!(new.attribute("z").is_none());
        assert_eq!(
            (new.version.as_str(), new.created_at.as_str()),
            ("5", old.created_at.as_str())
        );
        assert_eq!(update(None, None), Err(StoreError::NotFound));
        assert_eq!(
            update(Some("1"), None),
            Err(StoreError::VersionMismatch(None))
        );

        let delete = |expected: Option<&str>, current: Option<&Item>| {
            decide(
                &Write::Delete {
                    id: "a".into(),
                    expected_version: expected.map(str::to_string),
                },
                current,
                now(),
                next,
            )
        };
        assert_eq!(delete(None, Some(&old)).unwrap().stored, None);
        assert_eq!(delete(None, None), Err(StoreError::NotFound));
        assert_eq!(
            delete(Some("4"), None),
            Err(StoreError::VersionMismatch(None))
        );

        let increment = |attribute: &str, current: Option<&Item>| {
            decide(
                &Write::Increment {
                    id: "a".into(),
                    attribute: attribute.into(),
                    delta: 2,
                },
                current,
                now(),
                next,
            )
        };
        let Written::Item(liked) = increment("likes", Some(&old)).unwrap().written else {
            panic!()
        };
        assert_eq!(liked.attribute("likes"), Some(&Value::Number("2".into())));
        assert!(matches!(
            increment("t", Some(&old)),
            Err(StoreError::InvalidInput(_))
        ));
        assert_eq!(increment("likes", None), Err(StoreError::NotFound));
    }
}
