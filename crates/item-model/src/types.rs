//! Rust twins of the WIT records in `wit/item-store.wit`; see there for the
//! meaning of every field.

/// One attribute value (WIT `value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// JSON `null`.
    Null,
    /// JSON `true` / `false`.
    Bool(bool),
    /// The exact decimal literal of a JSON number.
    Number(String),
    /// A JSON string.
    Text(String),
    /// A JSON array or object as compact JSON text.
    Json(String),
}

/// A free attribute (WIT `attribute`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// 1 to 255 characters, none of them control characters, and not a
    /// reserved name (`id`, `userId`, `createdAt`, ...): see `validate`.
    pub name: String,
    /// The attribute's value.
    pub value: Value,
}

impl Attribute {
    /// An attribute; nothing is validated here (that is `validate`'s job).
    pub fn new(name: impl Into<String>, value: Value) -> Self {
        Self {
            name: name.into(),
            value,
        }
    }
}

/// An item as stored (WIT `item`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// 1 to 200 characters, no control characters, no `/`.
    pub id: String,
    /// Set by the store: fixed-width RFC 3339 UTC with microseconds, so text
    /// order is time order (see [`crate::Timestamp`]).
    pub created_at: String,
    /// Set by the store on every write, in the same format as `created_at`.
    pub updated_at: String,
    /// Opaque, changed by every write; the HTTP layer's ETag. Compare only
    /// for equality.
    pub version: String,
    /// The owner, if any; puts the item in the by-user index.
    pub user_id: Option<String>,
    /// A status such as `active`; puts the item in the by-status index.
    pub status: Option<String>,
    /// Seconds since the Unix epoch; expired items are hidden from every
    /// read before a backend removes them.
    pub expires_at: Option<i64>,
    /// The free attributes, in no particular order, names unique.
    pub attributes: Vec<Attribute>,
}

impl Item {
    /// The value of a free attribute.
    pub fn attribute(&self, name: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| &a.value)
    }

    /// Whether the item has expired at `now` (seconds since the epoch).
    /// Backends delete expired items lazily, so every read checks this.
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The item's partition value in a secondary index (as
    /// [`IndexKey::partition`] spells it), if it is in that index: an item is
    /// in the user-and-status index only when it has both.
    pub fn index_partition(&self, index: IndexName) -> Option<std::borrow::Cow<'_, str>> {
        match index {
            IndexName::ByUser => self.user_id.as_deref().map(Into::into),
            IndexName::ByStatus => self.status.as_deref().map(Into::into),
            IndexName::ByUserStatus => match (&self.user_id, &self.status) {
                (Some(user_id), Some(status)) => Some(user_status(user_id, status).into()),
                _ => None,
            },
        }
    }
}

/// The caller-owned part of an item (WIT `new-item`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewItem {
    /// See [`Item::id`].
    pub id: String,
    /// See [`Item::user_id`].
    pub user_id: Option<String>,
    /// See [`Item::status`].
    pub status: Option<String>,
    /// See [`Item::expires_at`].
    pub expires_at: Option<i64>,
    /// See [`Item::attributes`].
    pub attributes: Vec<Attribute>,
}

impl NewItem {
    /// The stored item this becomes, with the store-owned fields given.
    pub fn into_item(self, created_at: String, updated_at: String, version: String) -> Item {
        Item {
            id: self.id,
            created_at,
            updated_at,
            version,
            user_id: self.user_id,
            status: self.status,
            expires_at: self.expires_at,
            attributes: self.attributes,
        }
    }
}

/// A partial update (WIT `item-patch`): `None` keeps a field, `Some(None)`
/// removes it, `Some(Some(x))` sets it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemPatch {
    /// Change to [`Item::user_id`].
    pub user_id: Option<Option<String>>,
    /// Change to [`Item::status`].
    pub status: Option<Option<String>>,
    /// Change to [`Item::expires_at`].
    pub expires_at: Option<Option<i64>>,
    /// Attributes to add or replace.
    pub set: Vec<Attribute>,
    /// Attribute names to remove; an absent one is no error.
    pub remove: Vec<String>,
}

impl ItemPatch {
    /// Applies the patch to an item in memory (stores that read, modify and
    /// write use this, so the merge rules live in one place). Store-owned
    /// fields (times, version) are left for the caller. Linear in the
    /// item's and the patch's attributes: a patch of 80k names on an item
    /// of 80k attributes takes milliseconds, not seconds.
    pub fn apply_to(&self, item: &mut Item) {
        if let Some(user_id) = &self.user_id {
            item.user_id.clone_from(user_id);
        }
        if let Some(status) = &self.status {
            item.status.clone_from(status);
        }
        if let Some(expires_at) = self.expires_at {
            item.expires_at = expires_at;
        }
        let removed: std::collections::HashSet<&str> =
            self.remove.iter().map(String::as_str).collect();
        let mut set: std::collections::HashMap<&str, &Value> = self
            .set
            .iter()
            .map(|a| (a.name.as_str(), &a.value))
            .collect();
        item.attributes.retain_mut(|a| {
            if let Some(value) = set.remove(a.name.as_str()) {
                a.value = value.clone();
                true
            } else {
                !removed.contains(a.name.as_str())
            }
        });
        // New names, in the patch's order.
        for attribute in &self.set {
            if set.remove(attribute.name.as_str()).is_some() {
                item.attributes.push(attribute.clone());
            }
        }
    }
}

/// A put inside a batch (WIT `batch-put`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPut {
    /// The item to create or replace.
    pub item: NewItem,
    /// RFC 3339 creation time to keep; `None` means now.
    pub created_at: Option<String>,
    /// RFC 3339 last-write time to keep; `None` means now.
    pub updated_at: Option<String>,
}

impl BatchPut {
    /// The put that recreates `item` as it stands: every field, both times
    /// included, but the version, which is the writing store's own (a copy
    /// or a replica of an item).
    pub fn restoring(item: Item) -> Self {
        Self {
            created_at: Some(item.created_at),
            updated_at: Some(item.updated_at),
            item: NewItem {
                id: item.id,
                user_id: item.user_id,
                status: item.status,
                expires_at: item.expires_at,
                attributes: item.attributes,
            },
        }
    }
}

/// One write of a batch (WIT `batch-write`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchWrite {
    /// Create or replace, unconditionally.
    Put(BatchPut),
    /// Delete the item with this id; an absent item is no error.
    Delete(String),
}

impl BatchWrite {
    /// The id of the item this write touches.
    pub fn id(&self) -> &str {
        match self {
            BatchWrite::Put(put) => &put.item.id,
            BatchWrite::Delete(id) => id,
        }
    }
}

/// What a batch did (WIT `batch-result`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchResult {
    /// The items the puts wrote, in request order.
    pub put: Vec<Item>,
    /// The ids the deletes removed, in request order.
    pub deleted: Vec<String>,
}

/// The secondary indexes, by name (the DynamoDB GSI names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexName {
    /// Items by [`Item::user_id`].
    ByUser,
    /// Items by [`Item::status`].
    ByStatus,
    /// Items by user id and status together.
    ByUserStatus,
}

impl IndexName {
    /// Every index, in the order stores create them.
    pub const ALL: [IndexName; 3] = [
        IndexName::ByUser,
        IndexName::ByStatus,
        IndexName::ByUserStatus,
    ];

    /// The index's name, as DynamoDB's GSI is called: part of the stored
    /// schema, so it must not change.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexName::ByUser => "byUser",
            IndexName::ByStatus => "byStatus",
            IndexName::ByUserStatus => "byUserStatus",
        }
    }
}

/// Separates the user id from the status in [`IndexKey::partition`] of the
/// user-and-status index. A control character, which neither may contain
/// (see [`crate::validate::index_value`]), so the joined text is unambiguous.
pub const USER_STATUS_SEPARATOR: char = '\u{1f}';

/// The index a query reads and the value to match (WIT `index-key`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IndexKey {
    /// Items whose user id equals this.
    UserId(String),
    /// Items whose status equals this.
    Status(String),
    /// One user's items in one status.
    UserStatus {
        /// The user id to match.
        user_id: String,
        /// The status to match.
        status: String,
    },
}

impl IndexKey {
    /// The index this key is read from.
    pub fn index(&self) -> IndexName {
        match self {
            IndexKey::UserId(_) => IndexName::ByUser,
            IndexKey::Status(_) => IndexName::ByStatus,
            IndexKey::UserStatus { .. } => IndexName::ByUserStatus,
        }
    }

    /// The key as one text, for stores whose index has a single partition
    /// value: the user id, the status, or both joined by
    /// [`USER_STATUS_SEPARATOR`] (what [`Item::index_partition`] gives an
    /// item in that index).
    pub fn partition(&self) -> std::borrow::Cow<'_, str> {
        match self {
            IndexKey::UserId(v) | IndexKey::Status(v) => v.as_str().into(),
            IndexKey::UserStatus { user_id, status } => user_status(user_id, status).into(),
        }
    }

    /// The key's fields as (JSON attribute name, value) pairs, for stores
    /// that match each field of an index on its own.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        match self {
            IndexKey::UserId(v) => vec![("userId", v)],
            IndexKey::Status(v) => vec![("status", v)],
            IndexKey::UserStatus { user_id, status } => {
                vec![("userId", user_id), ("status", status)]
            }
        }
    }
}

/// The partition value of the user-and-status index.
pub fn user_status(user_id: &str, status: &str) -> String {
    format!("{user_id}{USER_STATUS_SEPARATOR}{status}")
}

/// Order by creation time, ties broken by id (WIT `order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first: what a list without `?order=` gets.
    #[default]
    Desc,
}

impl Order {
    /// The spelling of `?order=` in the api's URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Order::Asc => "asc",
            Order::Desc => "desc",
        }
    }
}

/// A query on a secondary index (WIT `query`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Which index, and the value to match.
    pub key: IndexKey,
    /// Result order.
    pub order: Order,
    /// Most items to return, 1 to 1000.
    pub limit: u32,
    /// The previous page's `next_cursor`; valid only for the same key and
    /// order.
    pub cursor: Option<String>,
}

/// One page of query results (WIT `page`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// At most `limit` items and about [`crate::PAGE_BYTE_BUDGET`] bytes of
    /// them; fewer does not mean the end.
    pub items: Vec<Item>,
    /// Present when more may follow; only its absence means the end.
    pub next_cursor: Option<String>,
}

/// Whether a put created or replaced (WIT `put-outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// There was no item with this id.
    Created,
    /// An existing item was replaced (and kept its `created_at`).
    Replaced,
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_restoring_put_recreates_everything_but_the_version() {
        let item = Item {
            id: "a".into(),
            created_at: "2020-01-01T00:00:00.000001Z".into(),
            updated_at: "2021-01-01T00:00:00.000002Z".into(),
            version: "7".into(),
            user_id: Some("u".into()),
            status: Some("open".into()),
            expires_at: Some(4_000_000_000),
            attributes: vec![Attribute::new("likes", Value::Number("3".into()))],
        };
        let put = BatchPut::restoring(item.clone());
        let (created, updated) = (
            put.created_at.clone().unwrap(),
            put.updated_at.clone().unwrap(),
        );
        assert_eq!(put.item.into_item(created, updated, "7".into()), item);
    }

    #[test]
    fn a_patch_sets_replaces_and_removes_in_one_pass() {
        let mut item = NewItem {
            id: "a".into(),
            attributes: vec![
                Attribute::new("keep", Value::Bool(true)),
                Attribute::new("change", Value::Number("1".into())),
                Attribute::new("drop", Value::Null),
            ],
            ..Default::default()
        }
        .into_item("t".into(), "t".into(), "1".into());
        let patch = ItemPatch {
            set: vec![
                Attribute::new("new-b", Value::Text("b".into())),
                Attribute::new("change", Value::Number("2".into())),
                Attribute::new("new-a", Value::Text("a".into())),
            ],
            remove: vec!["drop".into(), "absent".into()],
            ..Default::default()
        };
        patch.apply_to(&mut item);
        let names: Vec<&str> = item.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["keep", "change", "new-b", "new-a"]);
        assert_eq!(item.attribute("change"), Some(&Value::Number("2".into())));
    }

    #[test]
    fn a_large_patch_on_a_large_item_is_applied_exactly() {
        let n = 80_000;
        let mut item = NewItem {
            id: "a".into(),
            attributes: (0..n)
                .map(|i| Attribute::new(format!("a{i}"), Value::Null))
                .collect(),
            ..Default::default()
        }
        .into_item("t".into(), "t".into(), "1".into());
        let patch = ItemPatch {
            remove: (0..n).step_by(2).map(|i| format!("a{i}")).collect(),
            ..Default::default()
        };
        patch.apply_to(&mut item);
        assert_eq!(item.attributes.len(), n / 2);
        assert!(
            item.attributes
                .iter()
                .all(|a| a.name.ends_with(['1', '3', '5', '7', '9']))
        );
    }

    use super::*;

    fn item() -> Item {
        NewItem {
            id: "a".into(),
            user_id: Some("u1".into()),
            status: Some("active".into()),
            expires_at: None,
            attributes: vec![
                Attribute::new("name", Value::Text("old".into())),
                Attribute::new("likes", Value::Number("1".into())),
            ],
        }
        .into_item("t0".into(), "t0".into(), "1".into())
    }

    #[test]
    fn patch_sets_removes_and_keeps() {
        let mut it = item();
        ItemPatch {
            user_id: None,
            status: Some(None),
            expires_at: Some(Some(10)),
            set: vec![
                Attribute::new("name", Value::Text("new".into())),
                Attribute::new("color", Value::Text("red".into())),
            ],
            remove: vec!["likes".into(), "absent".into()],
        }
        .apply_to(&mut it);
        assert_eq!(it.user_id.as_deref(), Some("u1"));
        assert_eq!(it.status, None);
        assert_eq!(it.expires_at, Some(10));
        assert_eq!(it.attribute("name"), Some(&Value::Text("new".into())));
        assert_eq!(it.attribute("color"), Some(&Value::Text("red".into())));
        assert_eq!(it.attribute("likes"), None);
    }

    #[test]
    fn expiry_is_inclusive() {
        let mut it = item();
        assert!(!it.is_expired(100));
        it.expires_at = Some(100);
        assert!(it.is_expired(100));
        assert!(!it.is_expired(99));
    }
}
