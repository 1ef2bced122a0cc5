//! The WIT `store` interface, served natively: each call from the guest is
//! validated with [`item_model::validate`] (a guest is not trusted to have
//! done it), then handed to the request's [`ItemStore`](crate::ItemStore).
//! Backend trouble is logged here with its cause; the guest gets the error
//! and answers it with a 5xx.

use item_model::{StoreError, validate};

use crate::ItemStoreHost;
use crate::bindings::{StoreHost, wit};

type WitResult<T> = Result<T, wit::StoreError>;

/// Logs backend trouble (its cause stays in the log) and converts the error.
fn failed(operation: &'static str, error: StoreError) -> wit::StoreError {
    match &error {
        StoreError::Unavailable(_) | StoreError::Unauthorized(_) | StoreError::Backend(_) => {
            tracing::warn!(operation, %error, "item store call failed");
        }
        StoreError::Throttled(_) => tracing::info!(operation, %error, "item store throttled"),
        _ => {}
    }
    error.into()
}

/// Refuses invalid input before it reaches a store.
fn checked(result: Result<(), StoreError>) -> WitResult<()> {
    result.map_err(Into::into)
}

/// Attributes above which validation moves to tokio's blocking pool: a
/// write of thousands of attributes takes milliseconds to check, which
/// must not stall the async workers that serve every other request.
const INLINE_VALIDATION_LIMIT: usize = 256;

/// Validates `input` with `rule`, inline when it is small and on the
/// blocking pool when it is not; hands the input back when valid.
async fn validated<T: Send + 'static>(
    input: T,
    weight: usize,
    rule: fn(&T) -> Result<(), StoreError>,
) -> WitResult<T> {
    if weight <= INLINE_VALIDATION_LIMIT {
        return checked(rule(&input)).map(|()| input);
    }
    tokio::task::spawn_blocking(move || rule(&input).map(|()| input))
        .await
        .map_err(|_| wit::StoreError::Backend("input validation was cancelled".into()))?
        .map_err(Into::into)
}

impl StoreHost for ItemStoreHost {
    async fn get(&mut self, id: String) -> WitResult<wit::Item> {
        checked(validate::id(&id))?;
        let item = self
            .served_by
            .watch(self.store.get(&id))
            .await
            .map_err(|e| failed("get", e))?;
        Ok(item.into())
    }

    async fn create(&mut self, item: wit::NewItem) -> WitResult<wit::Item> {
        let item: item_model::NewItem = item.into();
        let weight = item.attributes.len();
        let item = validated(item, weight, validate::new_item).await?;
        let item = self
            .served_by
            .watch(self.store.create(item))
            .await
            .map_err(|e| failed("create", e))?;
        Ok(item.into())
    }

    async fn put(
        &mut self,
        item: wit::NewItem,
        expected_version: Option<String>,
    ) -> WitResult<(wit::Item, wit::PutOutcome)> {
        let item: item_model::NewItem = item.into();
        let weight = item.attributes.len();
        let item = validated(item, weight, validate::new_item).await?;
        let (item, outcome) = self
            .served_by
            .watch(self.store.put(item, expected_version.as_deref()))
            .await
            .map_err(|e| failed("put", e))?;
        Ok((item.into(), outcome.into()))
    }

    async fn update(
        &mut self,
        id: String,
        patch: wit::ItemPatch,
        expected_version: Option<String>,
    ) -> WitResult<wit::Item> {
        checked(validate::id(&id))?;
        let patch: item_model::ItemPatch = patch.into();
        let weight = patch.set.len() + patch.remove.len();
        let patch = validated(patch, weight, validate::patch).await?;
        let item = self
            .served_by
            .watch(self.store.update(&id, patch, expected_version.as_deref()))
            .await
            .map_err(|e| failed("update", e))?;
        Ok(item.into())
    }

    async fn delete(&mut self, id: String, expected_version: Option<String>) -> WitResult<()> {
        checked(validate::id(&id))?;
        self.served_by
            .watch(self.store.delete(&id, expected_version.as_deref()))
            .await
            .map_err(|e| failed("delete", e))
    }

    async fn increment(
        &mut self,
        id: String,
        attribute: String,
        delta: i64,
    ) -> WitResult<wit::Item> {
        checked(validate::id(&id))?;
        checked(validate::increment(&attribute))?;
        let item = self
            .served_by
            .watch(self.store.increment(&id, &attribute, delta))
            .await
            .map_err(|e| failed("increment", e))?;
        Ok(item.into())
    }

    async fn batch(&mut self, writes: Vec<wit::BatchWrite>) -> WitResult<wit::BatchResult> {
        let writes: Vec<item_model::BatchWrite> = writes.into_iter().map(Into::into).collect();
        let weight = writes
            .iter()
            .map(|w| match w {
                item_model::BatchWrite::Put(put) => put.item.attributes.len() + 1,
                item_model::BatchWrite::Delete(_) => 1,
            })
            .sum();
        let writes = validated(writes, weight, |w: &Vec<_>| validate::batch(w)).await?;
        let result = self
            .served_by
            .watch(self.store.batch(writes))
            .await
            .map_err(|e| failed("batch", e))?;
        Ok(result.into())
    }

    async fn apply_once(&mut self, write: wit::Write, once: wit::Once) -> WitResult<wit::Applied> {
        let write: item_model::Write = write.into();
        let once: item_model::Once = once.into();
        checked(validate::once(&once))?;
        let weight = validate::write_weight(&write);
        let write = validated(write, weight, validate::write).await?;
        let applied = self
            .served_by
            .watch(self.store.apply_once(write, once))
            .await
            .map_err(|e| failed("apply-once", e))?;
        Ok(applied.into())
    }

    async fn query(&mut self, query: wit::Query) -> WitResult<wit::Page> {
        let query = query.into();
        checked(validate::query(&query))?;
        let page = self
            .served_by
            .watch(self.store.query(query))
            .await
            .map_err(|e| failed("query", e))?;
        Ok(page.into())
    }

    async fn scan(&mut self, request: wit::ScanRequest) -> WitResult<wit::ScanPage> {
        let request = request.into();
        checked(validate::scan(&request))?;
        let page = self
            .served_by
            .watch(self.store.scan(request))
            .await
            .map_err(|e| failed("scan", e))?;
        Ok(page.into())
    }

    async fn served_by_secondary(&mut self) -> bool {
        self.served_by.secondary()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use item_model::{
        BatchResult, BatchWrite, Item, ItemPatch, NewItem, Page, PutOutcome, Query, StoreError,
    };

    use super::*;
    use crate::{ItemStore, StoreResult};

    /// A store that answers from what it was given and records each call,
    /// so the tests see exactly what crossed the binding.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
    }

    impl Recorder {
        fn record(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
    }

    fn stored(item: NewItem, version: &str) -> Item {
        let time = "2026-01-01T00:00:00.000000Z".to_string();
        item.into_item(time.clone(), time, version.to_string())
    }

    #[async_trait]
    impl ItemStore for Recorder {
        async fn get(&self, id: &str) -> StoreResult<Item> {
            self.record(format!("get {id}"));
            Err(StoreError::NotFound)
        }
        async fn create(&self, item: NewItem) -> StoreResult<Item> {
            self.record(format!("create {}", item.id));
            Ok(stored(item, "1"))
        }
        async fn put(
            &self,
            item: NewItem,
            expected_version: Option<&str>,
        ) -> StoreResult<(Item, PutOutcome)> {
            self.record(format!("put {} {expected_version:?}", item.id));
            Ok((stored(item, "2"), PutOutcome::Replaced))
        }
        async fn update(
            &self,
            id: &str,
            patch: ItemPatch,
            expected_version: Option<&str>,
        ) -> StoreResult<Item> {
            self.record(format!(
                "update {id} {} {expected_version:?}",
                patch.set.len()
            ));
            Err(StoreError::VersionMismatch(Some("7".into())))
        }
        async fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()> {
            self.record(format!("delete {id} {expected_version:?}"));
            Ok(())
        }
        async fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item> {
            self.record(format!("increment {id} {attribute} {delta}"));
            Err(StoreError::Unavailable("backend text".into()))
        }
        async fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult> {
            self.record(format!("batch {}", writes.len()));
            Ok(BatchResult::default())
        }
        async fn apply_once(
            &self,
            write: item_model::Write,
            once: item_model::Once,
        ) -> StoreResult<item_model::Applied> {
            self.record(format!("apply-once {} {}", write.operation(), once.key));
            Ok(item_model::Applied::now(item_model::Written::Deleted))
        }
        async fn query(&self, query: Query) -> StoreResult<Page> {
            self.record(format!("query {:?} {}", query.key, query.limit));
            Ok(Page::default())
        }

        async fn scan(
            &self,
            request: item_model::ScanRequest,
        ) -> StoreResult<item_model::ScanPage> {
            self.record(format!("scan {}/{}", request.segment, request.segments));
            Ok(item_model::ScanPage::default())
        }
    }

    fn host() -> (Arc<Recorder>, ItemStoreHost) {
        let recorder = Arc::new(Recorder::default());
        (recorder.clone(), ItemStoreHost::new(recorder))
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
        let (recorder, mut host) = host();
        let created = StoreHost::create(&mut host, new_item("a")).await.unwrap();
        assert_eq!(created.version, "1");
        assert!(matches!(
            &created.attributes[0].value,
            wit::Value::Number(n) if n == "12345678901234567890.5"
        ));
        let (_, outcome) = StoreHost::put(&mut host, new_item("a"), Some("1".into()))
            .await
            .unwrap();
        assert_eq!(outcome, wit::PutOutcome::Replaced);
        assert!(matches!(
            StoreHost::get(&mut host, "a".into()).await,
            Err(wit::StoreError::NotFound)
        ));
        let patch = wit::ItemPatch {
            user_id: None,
            status: Some(None),
            expires_at: None,
            set: Vec::new(),
            remove: vec!["price".into()],
        };
        assert!(matches!(
            StoreHost::update(&mut host, "a".into(), patch, Some("3".into())).await,
            Err(wit::StoreError::VersionMismatch(Some(v))) if v == "7"
        ));
        assert!(matches!(
            StoreHost::increment(&mut host, "a".into(), "likes".into(), 2).await,
            Err(wit::StoreError::Unavailable(_))
        ));
        let query = wit::Query {
            key: wit::IndexKey::Status("active".into()),
            order: wit::Order::Desc,
            limit: 10,
            cursor: None,
        };
        StoreHost::query(&mut host, query).await.unwrap();
        let scan = wit::ScanRequest {
            segment: 1,
            segments: 2,
            limit: 50,
            cursor: None,
            updated_since: None,
        };
        StoreHost::scan(&mut host, scan).await.unwrap();
        assert_eq!(
            *recorder.calls.lock().unwrap(),
            [
                "create a",
                "put a Some(\"1\")",
                "get a",
                "update a 0 Some(\"3\")",
                "increment a likes 2",
                "query Status(\"active\") 10",
                "scan 1/2",
            ]
        );
    }

    #[tokio::test]
    async fn invalid_input_never_reaches_the_store() {
        let (recorder, mut host) = host();
        let mut bad = new_item("a/b");
        assert!(matches!(
            StoreHost::create(&mut host, bad.clone()).await,
            Err(wit::StoreError::InvalidInput(_))
        ));
        bad.id = "ok".into();
        bad.attributes[0].name = "createdAt".into();
        assert!(matches!(
            StoreHost::put(&mut host, bad, None).await,
            Err(wit::StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            StoreHost::increment(&mut host, "ok".into(), "id".into(), 1).await,
            Err(wit::StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            StoreHost::batch(&mut host, vec![]).await,
            Err(wit::StoreError::InvalidInput(_))
        ));
        let query = wit::Query {
            key: wit::IndexKey::Status(String::new()),
            order: wit::Order::Asc,
            limit: 0,
            cursor: None,
        };
        assert!(matches!(
            StoreHost::query(&mut host, query).await,
            Err(wit::StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            StoreHost::delete(&mut host, String::new(), None).await,
            Err(wit::StoreError::InvalidInput(_))
        ));
        let scan = wit::ScanRequest {
            segment: 2,
            segments: 2,
            limit: 50,
            cursor: None,
            updated_since: None,
        };
        assert!(matches!(
            StoreHost::scan(&mut host, scan).await,
            Err(wit::StoreError::InvalidInput(_))
        ));
        assert!(recorder.calls.lock().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_writes_are_validated_off_the_async_workers_all_the_same() {
        let (recorder, mut host) = host();
        let mut item = new_item("big");
        item.attributes = (0..INLINE_VALIDATION_LIMIT * 4)
            .map(|i| wit::Attribute {
                name: format!("a{i}"),
                value: wit::Value::Null,
            })
            .collect();
        let created = StoreHost::create(&mut host, item.clone()).await.unwrap();
        assert_eq!(created.attributes.len(), INLINE_VALIDATION_LIMIT * 4);
        item.attributes[700].name = "version".into();
        assert!(matches!(
            StoreHost::put(&mut host, item, None).await,
            Err(wit::StoreError::InvalidInput(m)) if m.contains("reserved")
        ));
        assert_eq!(*recorder.calls.lock().unwrap(), ["create big"]);
    }
}
