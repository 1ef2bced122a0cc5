//! The conversions between the WIT types of `edge-items:store` and this
//! crate's twins, written once for every binding of the interface: the
//! host's (wasmtime `bindgen!`), the api's import and the adapters' export
//! (wit-bindgen). Each generator makes its own Rust types with the same
//! names and fields, so one macro serves them all.

/// Implements `From` in both directions between the `item_model` types and
/// the generated types of the WIT interface `edge-items:store/types`, where
/// `$wit` names the module of those generated types (import it under a
/// short name first: `use bindings::edge_items::store::types as wit;`).
///
/// Expand it once per crate, next to the bindings; the rest of the crate
/// then converts with `.into()` and never spells a generated type.
#[macro_export]
macro_rules! wit_conversions {
    ($wit:ident) => {
        const _: () = {
            use $crate as m;

            impl From<$wit::Value> for m::Value {
                fn from(value: $wit::Value) -> Self {
                    match value {
                        $wit::Value::Null => m::Value::Null,
                        $wit::Value::Boolean(b) => m::Value::Bool(b),
                        $wit::Value::Number(n) => m::Value::Number(n),
                        $wit::Value::Text(t) => m::Value::Text(t),
                        $wit::Value::Json(j) => m::Value::Json(j),
                    }
                }
            }

            impl From<m::Value> for $wit::Value {
                fn from(value: m::Value) -> Self {
                    match value {
                        m::Value::Null => $wit::Value::Null,
                        m::Value::Bool(b) => $wit::Value::Boolean(b),
                        m::Value::Number(n) => $wit::Value::Number(n),
                        m::Value::Text(t) => $wit::Value::Text(t),
                        m::Value::Json(j) => $wit::Value::Json(j),
                    }
                }
            }

            impl From<$wit::Attribute> for m::Attribute {
                fn from(a: $wit::Attribute) -> Self {
                    m::Attribute::new(a.name, a.value.into())
                }
            }

            impl From<m::Attribute> for $wit::Attribute {
                fn from(a: m::Attribute) -> Self {
                    $wit::Attribute {
                        name: a.name,
                        value: a.value.into(),
                    }
                }
            }

            impl From<$wit::Item> for m::Item {
                fn from(item: $wit::Item) -> Self {
                    m::Item {
                        id: item.id,
                        created_at: item.created_at,
                        updated_at: item.updated_at,
                        version: item.version,
                        user_id: item.user_id,
                        status: item.status,
                        expires_at: item.expires_at,
                        attributes: item.attributes.into_iter().map(Into::into).collect(),
                    }
                }
            }

            impl From<m::Item> for $wit::Item {
                fn from(item: m::Item) -> Self {
                    $wit::Item {
                        id: item.id,
                        created_at: item.created_at,
                        updated_at: item.updated_at,
                        version: item.version,
                        user_id: item.user_id,
                        status: item.status,
                        expires_at: item.expires_at,
                        attributes: item.attributes.into_iter().map(Into::into).collect(),
                    }
                }
            }

            impl From<$wit::NewItem> for m::NewItem {
                fn from(item: $wit::NewItem) -> Self {
                    m::NewItem {
                        id: item.id,
                        user_id: item.user_id,
                        status: item.status,
                        expires_at: item.expires_at,
                        attributes: item.attributes.into_iter().map(Into::into).collect(),
                    }
                }
            }

            impl From<m::NewItem> for $wit::NewItem {
                fn from(item: m::NewItem) -> Self {
                    $wit::NewItem {
                        id: item.id,
                        user_id: item.user_id,
                        status: item.status,
                        expires_at: item.expires_at,
                        attributes: item.attributes.into_iter().map(Into::into).collect(),
                    }
                }
            }

            impl From<$wit::ItemPatch> for m::ItemPatch {
                fn from(patch: $wit::ItemPatch) -> Self {
                    m::ItemPatch {
                        user_id: patch.user_id,
                        status: patch.status,
                        expires_at: patch.expires_at,
                        set: patch.set.into_iter().map(Into::into).collect(),
                        remove: patch.remove,
                    }
                }
            }

            impl From<m::ItemPatch> for $wit::ItemPatch {
                fn from(patch: m::ItemPatch) -> Self {
                    $wit::ItemPatch {
                        user_id: patch.user_id,
                        status: patch.status,
                        expires_at: patch.expires_at,
                        set: patch.set.into_iter().map(Into::into).collect(),
                        remove: patch.remove,
                    }
                }
            }

            impl From<$wit::BatchWrite> for m::BatchWrite {
                fn from(write: $wit::BatchWrite) -> Self {
                    match write {
                        $wit::BatchWrite::Put(put) => m::BatchWrite::Put(m::BatchPut {
                            item: put.item.into(),
                            created_at: put.created_at,
                            updated_at: put.updated_at,
                        }),
                        $wit::BatchWrite::Delete(id) => m::BatchWrite::Delete(id),
                    }
                }
            }

            impl From<m::BatchWrite> for $wit::BatchWrite {
                fn from(write: m::BatchWrite) -> Self {
                    match write {
                        m::BatchWrite::Put(put) => $wit::BatchWrite::Put($wit::BatchPut {
                            item: put.item.into(),
                            created_at: put.created_at,
                            updated_at: put.updated_at,
                        }),
                        m::BatchWrite::Delete(id) => $wit::BatchWrite::Delete(id),
                    }
                }
            }

            impl From<$wit::ScanRequest> for m::ScanRequest {
                fn from(r: $wit::ScanRequest) -> Self {
                    m::ScanRequest {
                        segment: r.segment,
                        segments: r.segments,
                        limit: r.limit,
                        cursor: r.cursor,
                        updated_since: r.updated_since,
                    }
                }
            }

            impl From<m::ScanRequest> for $wit::ScanRequest {
                fn from(r: m::ScanRequest) -> Self {
                    $wit::ScanRequest {
                        segment: r.segment,
                        segments: r.segments,
                        limit: r.limit,
                        cursor: r.cursor,
                        updated_since: r.updated_since,
                    }
                }
            }

            impl From<$wit::ScanPage> for m::ScanPage {
                fn from(page: $wit::ScanPage) -> Self {
                    m::ScanPage {
                        items: page
                            .items
                            .into_iter()
                            .map(|s| m::Scanned {
                                item: s.item.into(),
                                expired: s.expired,
                            })
                            .collect(),
                        next_cursor: page.next_cursor,
                    }
                }
            }

            impl From<m::ScanPage> for $wit::ScanPage {
                fn from(page: m::ScanPage) -> Self {
                    $wit::ScanPage {
                        items: page
                            .items
                            .into_iter()
                            .map(|s| $wit::Scanned {
                                item: s.item.into(),
                                expired: s.expired,
                            })
                            .collect(),
                        next_cursor: page.next_cursor,
                    }
                }
            }

            impl From<$wit::BatchResult> for m::BatchResult {
                fn from(result: $wit::BatchResult) -> Self {
                    m::BatchResult {
                        put: result.put.into_iter().map(Into::into).collect(),
                        deleted: result.deleted,
                    }
                }
            }

            impl From<m::BatchResult> for $wit::BatchResult {
                fn from(result: m::BatchResult) -> Self {
                    $wit::BatchResult {
                        put: result.put.into_iter().map(Into::into).collect(),
                        deleted: result.deleted,
                    }
                }
            }

            impl From<$wit::Query> for m::Query {
                fn from(query: $wit::Query) -> Self {
                    m::Query {
                        key: match query.key {
                            $wit::IndexKey::UserId(v) => m::IndexKey::UserId(v),
                            $wit::IndexKey::Status(v) => m::IndexKey::Status(v),
                            $wit::IndexKey::UserStatus(k) => m::IndexKey::UserStatus {
                                user_id: k.user_id,
                                status: k.status,
                            },
                        },
                        order: match query.order {
                            $wit::Order::Asc => m::Order::Asc,
                            $wit::Order::Desc => m::Order::Desc,
                        },
                        limit: query.limit,
                        cursor: query.cursor,
                    }
                }
            }

            impl From<m::Query> for $wit::Query {
                fn from(query: m::Query) -> Self {
                    $wit::Query {
                        key: match query.key {
                            m::IndexKey::UserId(v) => $wit::IndexKey::UserId(v),
                            m::IndexKey::Status(v) => $wit::IndexKey::Status(v),
                            m::IndexKey::UserStatus { user_id, status } => {
                                $wit::IndexKey::UserStatus($wit::UserAndStatus { user_id, status })
                            }
                        },
                        order: match query.order {
                            m::Order::Asc => $wit::Order::Asc,
                            m::Order::Desc => $wit::Order::Desc,
                        },
                        limit: query.limit,
                        cursor: query.cursor,
                    }
                }
            }

            impl From<$wit::Page> for m::Page {
                fn from(page: $wit::Page) -> Self {
                    m::Page {
                        items: page.items.into_iter().map(Into::into).collect(),
                        next_cursor: page.next_cursor,
                    }
                }
            }

            impl From<m::Page> for $wit::Page {
                fn from(page: m::Page) -> Self {
                    $wit::Page {
                        items: page.items.into_iter().map(Into::into).collect(),
                        next_cursor: page.next_cursor,
                    }
                }
            }

            impl From<$wit::PutOutcome> for m::PutOutcome {
                fn from(outcome: $wit::PutOutcome) -> Self {
                    match outcome {
                        $wit::PutOutcome::Created => m::PutOutcome::Created,
                        $wit::PutOutcome::Replaced => m::PutOutcome::Replaced,
                    }
                }
            }

            impl From<m::PutOutcome> for $wit::PutOutcome {
                fn from(outcome: m::PutOutcome) -> Self {
                    match outcome {
                        m::PutOutcome::Created => $wit::PutOutcome::Created,
                        m::PutOutcome::Replaced => $wit::PutOutcome::Replaced,
                    }
                }
            }

            impl From<$wit::StoreError> for m::StoreError {
                fn from(error: $wit::StoreError) -> Self {
                    match error {
                        $wit::StoreError::NotFound => m::StoreError::NotFound,
                        $wit::StoreError::AlreadyExists => m::StoreError::AlreadyExists,
                        $wit::StoreError::VersionMismatch(v) => m::StoreError::VersionMismatch(v),
                        $wit::StoreError::InvalidInput(s) => m::StoreError::InvalidInput(s),
                        $wit::StoreError::Throttled(ms) => m::StoreError::Throttled(ms),
                        $wit::StoreError::Unavailable(s) => m::StoreError::Unavailable(s),
                        $wit::StoreError::Unauthorized(s) => m::StoreError::Unauthorized(s),
                        $wit::StoreError::Backend(s) => m::StoreError::Backend(s),
                        $wit::StoreError::KeyReused => m::StoreError::KeyReused,
                        $wit::StoreError::KeyInUse => m::StoreError::KeyInUse,
                    }
                }
            }

            impl From<m::StoreError> for $wit::StoreError {
                fn from(error: m::StoreError) -> Self {
                    match error {
                        m::StoreError::NotFound => $wit::StoreError::NotFound,
                        m::StoreError::AlreadyExists => $wit::StoreError::AlreadyExists,
                        m::StoreError::VersionMismatch(v) => $wit::StoreError::VersionMismatch(v),
                        m::StoreError::InvalidInput(s) => $wit::StoreError::InvalidInput(s),
                        m::StoreError::Throttled(ms) => $wit::StoreError::Throttled(ms),
                        m::StoreError::Unavailable(s) => $wit::StoreError::Unavailable(s),
                        m::StoreError::Unauthorized(s) => $wit::StoreError::Unauthorized(s),
                        m::StoreError::Backend(s) => $wit::StoreError::Backend(s),
                        m::StoreError::KeyReused => $wit::StoreError::KeyReused,
                        m::StoreError::KeyInUse => $wit::StoreError::KeyInUse,
                    }
                }
            }

            impl From<$wit::Write> for m::Write {
                fn from(write: $wit::Write) -> Self {
                    match write {
                        $wit::Write::Create(item) => m::Write::Create(item.into()),
                        $wit::Write::Put(w) => m::Write::Put {
                            item: w.item.into(),
                            expected_version: w.expected_version,
                        },
                        $wit::Write::Update(w) => m::Write::Update {
                            id: w.id,
                            patch: w.patch.into(),
                            expected_version: w.expected_version,
                        },
                        $wit::Write::Delete(w) => m::Write::Delete {
                            id: w.id,
                            expected_version: w.expected_version,
                        },
                        $wit::Write::Increment(w) => m::Write::Increment {
                            id: w.id,
                            attribute: w.attribute,
                            delta: w.delta,
                        },
                        $wit::Write::Batch(writes) => {
                            m::Write::Batch(writes.into_iter().map(Into::into).collect())
                        }
                    }
                }
            }

            impl From<m::Write> for $wit::Write {
                fn from(write: m::Write) -> Self {
                    match write {
                        m::Write::Create(item) => $wit::Write::Create(item.into()),
                        m::Write::Put {
                            item,
                            expected_version,
                        } => $wit::Write::Put($wit::PutWrite {
                            item: item.into(),
                            expected_version,
                        }),
                        m::Write::Update {
                            id,
                            patch,
                            expected_version,
                        } => $wit::Write::Update($wit::UpdateWrite {
                            id,
                            patch: patch.into(),
                            expected_version,
                        }),
                        m::Write::Delete {
                            id,
                            expected_version,
                        } => $wit::Write::Delete($wit::DeleteWrite {
                            id,
                            expected_version,
                        }),
                        m::Write::Increment {
                            id,
                            attribute,
                            delta,
                        } => $wit::Write::Increment($wit::IncrementWrite {
                            id,
                            attribute,
                            delta,
                        }),
                        m::Write::Batch(writes) => {
                            $wit::Write::Batch(writes.into_iter().map(Into::into).collect())
                        }
                    }
                }
            }

            impl From<$wit::Written> for m::Written {
                fn from(written: $wit::Written) -> Self {
                    match written {
                        $wit::Written::Item(item) => m::Written::Item(item.into()),
                        $wit::Written::Put((item, outcome)) => {
                            m::Written::Put(item.into(), outcome.into())
                        }
                        $wit::Written::Deleted => m::Written::Deleted,
                        $wit::Written::Batch(result) => m::Written::Batch(result.into()),
                    }
                }
            }

            impl From<m::Written> for $wit::Written {
                fn from(written: m::Written) -> Self {
                    match written {
                        m::Written::Item(item) => $wit::Written::Item(item.into()),
                        m::Written::Put(item, outcome) => {
                            $wit::Written::Put((item.into(), outcome.into()))
                        }
                        m::Written::Deleted => $wit::Written::Deleted,
                        m::Written::Batch(result) => $wit::Written::Batch(result.into()),
                    }
                }
            }

            impl From<$wit::Once> for m::Once {
                fn from(once: $wit::Once) -> Self {
                    m::Once {
                        key: once.key,
                        fingerprint: once.fingerprint,
                        expires_at: once.expires_at,
                    }
                }
            }

            impl From<m::Once> for $wit::Once {
                fn from(once: m::Once) -> Self {
                    $wit::Once {
                        key: once.key,
                        fingerprint: once.fingerprint,
                        expires_at: once.expires_at,
                    }
                }
            }

            impl From<$wit::Applied> for m::Applied {
                fn from(applied: $wit::Applied) -> Self {
                    m::Applied {
                        written: applied.written.into(),
                        replayed: applied.replayed,
                    }
                }
            }

            impl From<m::Applied> for $wit::Applied {
                fn from(applied: m::Applied) -> Self {
                    $wit::Applied {
                        written: applied.written.into(),
                        replayed: applied.replayed,
                    }
                }
            }
        };
    };
}

#[cfg(test)]
mod tests {
    /// The shapes every WIT generator produces for `edge-items:store/types`,
    /// written out by hand, so that the macro is checked here too.
    #[allow(dead_code)]
    mod fake {
        #[derive(Debug, Clone, PartialEq)]
        pub enum Value {
            Null,
            Boolean(bool),
            Number(String),
            Text(String),
            Json(String),
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct Attribute {
            pub name: String,
            pub value: Value,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct Item {
            pub id: String,
            pub created_at: String,
            pub updated_at: String,
            pub version: String,
            pub user_id: Option<String>,
            pub status: Option<String>,
            pub expires_at: Option<i64>,
            pub attributes: Vec<Attribute>,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct NewItem {
            pub id: String,
            pub user_id: Option<String>,
            pub status: Option<String>,
            pub expires_at: Option<i64>,
            pub attributes: Vec<Attribute>,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct ItemPatch {
            pub user_id: Option<Option<String>>,
            pub status: Option<Option<String>>,
            pub expires_at: Option<Option<i64>>,
            pub set: Vec<Attribute>,
            pub remove: Vec<String>,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct BatchPut {
            pub item: NewItem,
            pub created_at: Option<String>,
            pub updated_at: Option<String>,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct ScanRequest {
            pub segment: u32,
            pub segments: u32,
            pub limit: u32,
            pub cursor: Option<String>,
            pub updated_since: Option<String>,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct Scanned {
            pub item: Item,
            pub expired: bool,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct ScanPage {
            pub items: Vec<Scanned>,
            pub next_cursor: Option<String>,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub enum BatchWrite {
            Put(BatchPut),
            Delete(String),
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct BatchResult {
            pub put: Vec<Item>,
            pub deleted: Vec<String>,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct UserAndStatus {
            pub user_id: String,
            pub status: String,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub enum IndexKey {
            UserId(String),
            Status(String),
            UserStatus(UserAndStatus),
        }
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub enum Order {
            Asc,
            Desc,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct Query {
            pub key: IndexKey,
            pub order: Order,
            pub limit: u32,
            pub cursor: Option<String>,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct Page {
            pub items: Vec<Item>,
            pub next_cursor: Option<String>,
        }
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub enum PutOutcome {
            Created,
            Replaced,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub enum StoreError {
            NotFound,
            AlreadyExists,
            VersionMismatch(Option<String>),
            InvalidInput(String),
            Throttled(u32),
            Unavailable(String),
            Unauthorized(String),
            Backend(String),
            KeyReused,
            KeyInUse,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct PutWrite {
            pub item: NewItem,
            pub expected_version: Option<String>,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct UpdateWrite {
            pub id: String,
            pub patch: ItemPatch,
            pub expected_version: Option<String>,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct DeleteWrite {
            pub id: String,
            pub expected_version: Option<String>,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct IncrementWrite {
            pub id: String,
            pub attribute: String,
            pub delta: i64,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub enum Write {
            Create(NewItem),
            Put(PutWrite),
            Update(UpdateWrite),
            Delete(DeleteWrite),
            Increment(IncrementWrite),
            Batch(Vec<BatchWrite>),
        }
        #[derive(Debug, Clone, PartialEq)]
        pub enum Written {
            Item(Item),
            Put((Item, PutOutcome)),
            Deleted,
            Batch(BatchResult),
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct Once {
            pub key: String,
            pub fingerprint: String,
            pub expires_at: i64,
        }
        #[derive(Debug, Clone, PartialEq)]
        pub struct Applied {
            pub written: Written,
            pub replayed: bool,
        }
    }

    crate::wit_conversions!(fake);

    use crate as m;

    fn round_trip<M, W>(value: M) -> M
    where
        M: Into<W> + Clone,
        W: Into<M>,
    {
        value.into().into()
    }

    #[test]
    fn values_and_items_survive_both_directions() {
        for value in [
            m::Value::Null,
            m::Value::Bool(true),
            m::Value::Number("12345678901234567890123456789012345678".into()),
            m::Value::Text("t".into()),
            m::Value::Json(r#"{"a":[1]}"#.into()),
        ] {
            assert_eq!(round_trip::<_, fake::Value>(value.clone()), value);
        }
        let item = m::Item {
            id: "a".into(),
            created_at: "2026-01-01T00:00:00.000000Z".into(),
            updated_at: "2026-01-02T00:00:00.000000Z".into(),
            version: "3".into(),
            user_id: Some("u".into()),
            status: None,
            expires_at: Some(7),
            attributes: vec![m::Attribute::new("n", m::Value::Number("1".into()))],
        };
        assert_eq!(round_trip::<_, fake::Item>(item.clone()), item);
        let page = m::Page {
            items: vec![item.clone()],
            next_cursor: Some("c".into()),
        };
        assert_eq!(round_trip::<_, fake::Page>(page.clone()), page);
        let result = m::BatchResult {
            put: vec![item],
            deleted: vec!["b".into()],
        };
        assert_eq!(round_trip::<_, fake::BatchResult>(result.clone()), result);
    }

    #[test]
    fn patches_keep_their_three_states() {
        let patch = m::ItemPatch {
            user_id: None,
            status: Some(None),
            expires_at: Some(Some(7)),
            set: vec![m::Attribute::new("n", m::Value::Number("1".into()))],
            remove: vec!["old".into()],
        };
        assert_eq!(round_trip::<_, fake::ItemPatch>(patch.clone()), patch);
    }

    #[test]
    fn queries_batches_and_outcomes_convert() {
        let query = m::Query {
            key: m::IndexKey::Status("active".into()),
            order: m::Order::Asc,
            limit: 10,
            cursor: Some("c".into()),
        };
        assert_eq!(round_trip::<_, fake::Query>(query.clone()), query);
        let query = m::Query {
            key: m::IndexKey::UserStatus {
                user_id: "u".into(),
                status: "open".into(),
            },
            ..query
        };
        assert_eq!(round_trip::<_, fake::Query>(query.clone()), query);
        let put = m::BatchWrite::Put(m::BatchPut {
            item: m::NewItem {
                id: "a".into(),
                user_id: Some("u".into()),
                ..Default::default()
            },
            created_at: Some("2026-01-01T00:00:00Z".into()),
            updated_at: Some("2026-01-02T00:00:00Z".into()),
        });
        assert_eq!(round_trip::<_, fake::BatchWrite>(put.clone()), put);
        let scan = m::ScanRequest {
            segment: 1,
            segments: 4,
            limit: 10,
            cursor: Some("c".into()),
            updated_since: Some("2026-01-01T00:00:00.000000Z".into()),
        };
        assert_eq!(round_trip::<_, fake::ScanRequest>(scan.clone()), scan);
        let delete = m::BatchWrite::Delete("a".into());
        assert_eq!(round_trip::<_, fake::BatchWrite>(delete.clone()), delete);
        for outcome in [m::PutOutcome::Created, m::PutOutcome::Replaced] {
            assert_eq!(round_trip::<_, fake::PutOutcome>(outcome), outcome);
        }
    }

    #[test]
    fn every_error_keeps_its_case() {
        for error in [
            m::StoreError::NotFound,
            m::StoreError::AlreadyExists,
            m::StoreError::VersionMismatch(Some("3".into())),
            m::StoreError::VersionMismatch(None),
            m::StoreError::InvalidInput("i".into()),
            m::StoreError::Throttled(5),
            m::StoreError::Unavailable("u".into()),
            m::StoreError::Unauthorized("a".into()),
            m::StoreError::Backend("b".into()),
            m::StoreError::KeyReused,
            m::StoreError::KeyInUse,
        ] {
            assert_eq!(round_trip::<_, fake::StoreError>(error.clone()), error);
        }
    }

    #[test]
    fn writes_results_and_keys_convert() {
        let item = m::NewItem {
            id: "a".into(),
            ..Default::default()
        };
        let stored = item.clone().into_item("c".into(), "u".into(), "1".into());
        for write in [
            m::Write::Create(item.clone()),
            m::Write::Put {
                item,
                expected_version: Some("2".into()),
            },
            m::Write::Update {
                id: "a".into(),
                patch: m::ItemPatch::default(),
                expected_version: None,
            },
            m::Write::Delete {
                id: "a".into(),
                expected_version: Some("3".into()),
            },
            m::Write::Increment {
                id: "a".into(),
                attribute: "likes".into(),
                delta: -2,
            },
            m::Write::Batch(vec![m::BatchWrite::Delete("b".into())]),
        ] {
            assert_eq!(round_trip::<_, fake::Write>(write.clone()), write);
        }
        for written in [
            m::Written::Item(stored.clone()),
            m::Written::Put(stored, m::PutOutcome::Replaced),
            m::Written::Deleted,
            m::Written::Batch(m::BatchResult::default()),
        ] {
            let applied = m::Applied {
                written,
                replayed: true,
            };
            assert_eq!(round_trip::<_, fake::Applied>(applied.clone()), applied);
        }
        let once = m::Once {
            key: "k".into(),
            fingerprint: "f".into(),
            expires_at: 9,
        };
        assert_eq!(round_trip::<_, fake::Once>(once.clone()), once);
    }
}
