//! The `edge-items:store/store` import, served natively: each call from the
//! guest is validated with [`item_model::validate`] (a guest is not trusted
//! to have done it) and then handed to the chosen [`ItemStore`]. The WIT
//! types and the `item_model` types are twins; the conversions between them
//! all live here.

use std::sync::Arc;

use item_store::{ItemStore, StoreError, validate};
use wasmtime::component::{HasSelf, Linker};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "edge-items:store/store-client",
        // Store calls do IO, so the host side is async; to the guest they
        // remain ordinary blocking calls.
        imports: { default: async },
    });
}

use generated::edge_items::store::store::Host;
pub use generated::edge_items::store::types as wit;

/// The per-request state behind the import: a handle on the shared store.
pub struct ItemStoreHost {
    store: Arc<dyn ItemStore>,
}

impl ItemStoreHost {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }
}

/// Adds the item-store import to `linker`; `get` finds the host state in a
/// request's store data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut ItemStoreHost,
) -> wasmtime::Result<()> {
    generated::StoreClient::add_to_linker::<T, HasSelf<ItemStoreHost>>(linker, get)
}

impl wit::Host for ItemStoreHost {}

type WitResult<T> = Result<T, wit::StoreError>;

/// Logs backend trouble (the guest sees it as a 5xx without details) and
/// converts the error.
fn failed(operation: &'static str, error: StoreError) -> wit::StoreError {
    match &error {
        StoreError::Unavailable(_) | StoreError::Unauthorized(_) | StoreError::Backend(_) => {
            tracing::warn!(operation, %error, "item store call failed");
        }
        StoreError::Throttled(_) => tracing::info!(operation, %error, "item store throttled"),
        _ => {}
    }
    to_wit::error(error)
}

impl Host for ItemStoreHost {
    async fn get(&mut self, id: String) -> WitResult<wit::Item> {
        validate::id(&id).map_err(to_wit::error)?;
        let item = self.store.get(&id).await.map_err(|e| failed("get", e))?;
        Ok(to_wit::item(item))
    }

    async fn create(&mut self, item: wit::NewItem) -> WitResult<wit::Item> {
        let item = from_wit::new_item(item);
        validate::new_item(&item).map_err(to_wit::error)?;
        let item = self
            .store
            .create(item)
            .await
            .map_err(|e| failed("create", e))?;
        Ok(to_wit::item(item))
    }

    async fn put(
        &mut self,
        item: wit::NewItem,
        expected_version: Option<String>,
    ) -> WitResult<(wit::Item, wit::PutOutcome)> {
        let item = from_wit::new_item(item);
        validate::new_item(&item).map_err(to_wit::error)?;
        let (item, outcome) = self
            .store
            .put(item, expected_version)
            .await
            .map_err(|e| failed("put", e))?;
        Ok((to_wit::item(item), to_wit::put_outcome(outcome)))
    }

    async fn update(
        &mut self,
        id: String,
        patch: wit::ItemPatch,
        expected_version: Option<String>,
    ) -> WitResult<wit::Item> {
        let patch = from_wit::patch(patch);
        validate::id(&id).map_err(to_wit::error)?;
        validate::patch(&patch).map_err(to_wit::error)?;
        let item = self
            .store
            .update(&id, patch, expected_version)
            .await
            .map_err(|e| failed("update", e))?;
        Ok(to_wit::item(item))
    }

    async fn delete(&mut self, id: String, expected_version: Option<String>) -> WitResult<()> {
        validate::id(&id).map_err(to_wit::error)?;
        self.store
            .delete(&id, expected_version)
            .await
            .map_err(|e| failed("delete", e))
    }

    async fn increment(
        &mut self,
        id: String,
        attribute: String,
        delta: i64,
    ) -> WitResult<wit::Item> {
        validate::id(&id).map_err(to_wit::error)?;
        validate::increment(&attribute).map_err(to_wit::error)?;
        let item = self
            .store
            .increment(&id, &attribute, delta)
            .await
            .map_err(|e| failed("increment", e))?;
        Ok(to_wit::item(item))
    }

    async fn batch(&mut self, writes: Vec<wit::BatchWrite>) -> WitResult<wit::BatchResult> {
        let writes: Vec<_> = writes.into_iter().map(from_wit::batch_write).collect();
        validate::batch(&writes).map_err(to_wit::error)?;
        let result = self
            .store
            .batch(writes)
            .await
            .map_err(|e| failed("batch", e))?;
        Ok(wit::BatchResult {
            put: result.put.into_iter().map(to_wit::item).collect(),
            deleted: result.deleted,
        })
    }

    async fn query(&mut self, query: wit::Query) -> WitResult<wit::Page> {
        let query = from_wit::query(query);
        validate::query(&query).map_err(to_wit::error)?;
        let page = self
            .store
            .query(query)
            .await
            .map_err(|e| failed("query", e))?;
        Ok(wit::Page {
            items: page.items.into_iter().map(to_wit::item).collect(),
            next_cursor: page.next_cursor,
        })
    }
}

/// WIT values into the model.
pub mod from_wit {
    use super::wit;
    use item_store as m;

    pub fn value(value: wit::Value) -> m::Value {
        match value {
            wit::Value::Null => m::Value::Null,
            wit::Value::Boolean(b) => m::Value::Bool(b),
            wit::Value::Number(n) => m::Value::Number(n),
            wit::Value::Text(t) => m::Value::Text(t),
            wit::Value::Json(j) => m::Value::Json(j),
        }
    }

    pub fn attribute(attribute: wit::Attribute) -> m::Attribute {
        m::Attribute::new(attribute.name, value(attribute.value))
    }

    pub fn new_item(item: wit::NewItem) -> m::NewItem {
        m::NewItem {
            id: item.id,
            user_id: item.user_id,
            status: item.status,
            expires_at: item.expires_at,
            attributes: item.attributes.into_iter().map(attribute).collect(),
        }
    }

    pub fn patch(patch: wit::ItemPatch) -> m::ItemPatch {
        m::ItemPatch {
            user_id: patch.user_id,
            status: patch.status,
            expires_at: patch.expires_at,
            set: patch.set.into_iter().map(attribute).collect(),
            remove: patch.remove,
        }
    }

    pub fn batch_write(write: wit::BatchWrite) -> m::BatchWrite {
        match write {
            wit::BatchWrite::Put(put) => m::BatchWrite::Put(m::BatchPut {
                item: new_item(put.item),
                created_at: put.created_at,
            }),
            wit::BatchWrite::Delete(id) => m::BatchWrite::Delete(id),
        }
    }

    pub fn query(query: wit::Query) -> m::Query {
        m::Query {
            key: match query.key {
                wit::IndexKey::UserId(v) => m::IndexKey::UserId(v),
                wit::IndexKey::Status(v) => m::IndexKey::Status(v),
            },
            order: match query.order {
                wit::Order::Asc => m::Order::Asc,
                wit::Order::Desc => m::Order::Desc,
            },
            limit: query.limit,
            cursor: query.cursor,
        }
    }
}

/// Model values into WIT.
pub mod to_wit {
    use super::wit;
    use item_store as m;

    pub fn value(value: m::Value) -> wit::Value {
        match value {
            m::Value::Null => wit::Value::Null,
            m::Value::Bool(b) => wit::Value::Boolean(b),
            m::Value::Number(n) => wit::Value::Number(n),
            m::Value::Text(t) => wit::Value::Text(t),
            m::Value::Json(j) => wit::Value::Json(j),
        }
    }

    pub fn item(item: m::Item) -> wit::Item {
        wit::Item {
            id: item.id,
            created_at: item.created_at,
            updated_at: item.updated_at,
            version: item.version,
            user_id: item.user_id,
            status: item.status,
            expires_at: item.expires_at,
            attributes: item
                .attributes
                .into_iter()
                .map(|a| wit::Attribute {
                    name: a.name,
                    value: value(a.value),
                })
                .collect(),
        }
    }

    pub fn put_outcome(outcome: m::PutOutcome) -> wit::PutOutcome {
        match outcome {
            m::PutOutcome::Created => wit::PutOutcome::Created,
            m::PutOutcome::Replaced => wit::PutOutcome::Replaced,
        }
    }

    pub fn error(error: m::StoreError) -> wit::StoreError {
        match error {
            m::StoreError::NotFound => wit::StoreError::NotFound,
            m::StoreError::AlreadyExists => wit::StoreError::AlreadyExists,
            m::StoreError::VersionMismatch(v) => wit::StoreError::VersionMismatch(v),
            m::StoreError::InvalidInput(s) => wit::StoreError::InvalidInput(s),
            m::StoreError::Throttled(ms) => wit::StoreError::Throttled(ms),
            m::StoreError::Unavailable(s) => wit::StoreError::Unavailable(s),
            m::StoreError::Unauthorized(s) => wit::StoreError::Unauthorized(s),
            m::StoreError::Backend(s) => wit::StoreError::Backend(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use item_store::{IndexKey, Order};

    fn item_store() -> (tempfile::TempDir, ItemStoreHost) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_embedded::EmbeddedStore::open(dir.path().join("items.db")).expect("open");
        (dir, ItemStoreHost::new(Arc::new(store)))
    }

    fn new_item(id: &str) -> wit::NewItem {
        wit::NewItem {
            id: id.into(),
            user_id: Some("u1".into()),
            status: None,
            expires_at: None,
            attributes: vec![wit::Attribute {
                name: "price".into(),
                value: wit::Value::Number("12345678901234567890.5".into()),
            }],
        }
    }

    #[tokio::test]
    async fn calls_reach_the_store_with_values_intact() {
        let (_dir, mut host) = item_store();
        let created = Host::create(&mut host, new_item("a")).await.unwrap();
        assert_eq!(created.version, "1");
        let got = Host::get(&mut host, "a".into()).await.unwrap();
        assert!(matches!(
            &got.attributes[0].value,
            wit::Value::Number(n) if n == "12345678901234567890.5"
        ));
        let liked = Host::increment(&mut host, "a".into(), "likes".into(), 2)
            .await
            .unwrap();
        assert_eq!(liked.version, "2");
        let page = Host::query(
            &mut host,
            wit::Query {
                key: wit::IndexKey::UserId("u1".into()),
                order: wit::Order::Desc,
                limit: 10,
                cursor: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(matches!(
            Host::create(&mut host, new_item("a")).await,
            Err(wit::StoreError::AlreadyExists)
        ));
    }

    #[tokio::test]
    async fn invalid_input_never_reaches_the_store() {
        let (_dir, mut host) = item_store();
        let mut bad = new_item("a/b");
        assert!(matches!(
            Host::create(&mut host, bad.clone()).await,
            Err(wit::StoreError::InvalidInput(_))
        ));
        bad.id = "ok".into();
        bad.attributes[0].name = "createdAt".into();
        assert!(matches!(
            Host::put(&mut host, bad, None).await,
            Err(wit::StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            Host::increment(&mut host, "ok".into(), "id".into(), 1).await,
            Err(wit::StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            Host::batch(&mut host, vec![]).await,
            Err(wit::StoreError::InvalidInput(_))
        ));
        let query = wit::Query {
            key: wit::IndexKey::Status(String::new()),
            order: wit::Order::Asc,
            limit: 0,
            cursor: None,
        };
        assert!(matches!(
            Host::query(&mut host, query).await,
            Err(wit::StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            Host::get(&mut host, "ok".into()).await,
            Err(wit::StoreError::NotFound)
        ));
    }

    #[test]
    fn query_conversion_keeps_key_and_order() {
        let query = from_wit::query(wit::Query {
            key: wit::IndexKey::Status("active".into()),
            order: wit::Order::Asc,
            limit: 7,
            cursor: Some("c".into()),
        });
        assert_eq!(query.key, IndexKey::Status("active".into()));
        assert_eq!(query.order, Order::Asc);
        assert_eq!((query.limit, query.cursor.as_deref()), (7, Some("c")));
    }
}
