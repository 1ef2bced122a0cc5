//! An outbox kept in the primary store itself, as items of its own: for a
//! host without a lasting disk (a container on ephemeral storage) and for
//! the mirror component, which has no file at all. It survives whatever
//! the primary survives, at the cost of two more primary writes per write
//! (the entry, then its removal) and one read to check an id's entry.
//!
//! An entry is an item whose id is [`RESERVED_PREFIX`] and a hash of the
//! mirrored id, whose status is [`OUTBOX_STATUS`] (so the whole list is one
//! query of the status index, oldest first), and whose attributes name the
//! mirrored id and the side behind. The mirror hides entries from its
//! callers and refuses ids with the prefix.

use std::sync::Arc;

use async_trait::async_trait;
use item_model::{
    Attribute, BatchPut, BatchWrite, IndexKey, Item, ItemStore, MAX_QUERY_LIMIT, NewItem, Order,
    Query, StoreError, Value,
};
use sha2::{Digest, Sha256};

use crate::outbox::{Outbox, OutboxError, Pending, Toward};

/// The start of every entry's id; ids with it are the mirror's own.
pub const RESERVED_PREFIX: &str = "~mirror~";

/// The status of every entry.
pub const OUTBOX_STATUS: &str = "~mirror-outbox";

const MIRRORED_ID: &str = "mirroredId";
const TOWARD: &str = "toward";

/// An outbox in a store (the mirror's primary).
pub struct StoreOutbox {
    store: Arc<dyn ItemStore>,
}

impl StoreOutbox {
    /// Keeps the outbox in `store`.
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }
}

/// The id of `id`'s entry: a hash, so that any id (up to the 200-byte
/// limit) has an entry id within it.
fn entry_id(id: &str) -> String {
    let hash = Sha256::digest(id.as_bytes());
    format!("{RESERVED_PREFIX}{}", hex::encode(&hash[..16]))
}

fn entry(id: &str, toward: Toward) -> BatchWrite {
    BatchWrite::Put(BatchPut {
        item: NewItem {
            id: entry_id(id),
            user_id: None,
            status: Some(OUTBOX_STATUS.to_owned()),
            expires_at: None,
            attributes: vec![
                Attribute::new(MIRRORED_ID, Value::Text(id.to_owned())),
                Attribute::new(TOWARD, Value::Text(toward.as_str().to_owned())),
            ],
        },
        created_at: None,
        updated_at: None,
    })
}

fn pending_of(item: &Item) -> Option<Pending> {
    let (Some(Value::Text(id)), Some(Value::Text(toward))) =
        (item.attribute(MIRRORED_ID), item.attribute(TOWARD))
    else {
        return None;
    };
    Some(Pending {
        id: id.clone(),
        toward: Toward::parse(toward)?,
    })
}

fn failed(error: StoreError) -> OutboxError {
    OutboxError::new("in the primary store", error)
}

#[async_trait]
impl Outbox for StoreOutbox {
    async fn add(&self, ids: &[String], toward: Toward) -> Result<(), OutboxError> {
        let entries = ids.iter().map(|id| entry(id, toward)).collect();
        self.store.batch(entries).await.map(|_| ()).map_err(failed)
    }

    async fn remove(&self, ids: &[String]) -> Result<(), OutboxError> {
        let deletes = ids
            .iter()
            .map(|id| BatchWrite::Delete(entry_id(id)))
            .collect();
        self.store.batch(deletes).await.map(|_| ()).map_err(failed)
    }

    async fn direction(&self, id: &str) -> Result<Option<Toward>, OutboxError> {
        match self.store.get(&entry_id(id)).await {
            Ok(item) => Ok(pending_of(&item).map(|p| p.toward)),
            Err(StoreError::NotFound) => Ok(None),
            Err(error) => Err(failed(error)),
        }
    }

    async fn pending(&self, limit: usize) -> Result<Vec<Pending>, OutboxError> {
        let page = self
            .store
            .query(Query {
                key: IndexKey::Status(OUTBOX_STATUS.to_owned()),
                order: Order::Asc,
                limit: (limit as u32).clamp(1, MAX_QUERY_LIMIT),
                cursor: None,
            })
            .await
            .map_err(failed)?;
        Ok(page.items.iter().filter_map(pending_of).collect())
    }
}

/// Whether `id` is one of the mirror's own.
pub(crate) fn is_reserved(id: &str) -> bool {
    id.starts_with(RESERVED_PREFIX)
}

#[cfg(test)]
mod tests {
    use store_embedded::EmbeddedStore;

    use super::*;

    #[tokio::test]
    async fn entries_are_items_listed_by_one_query() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ItemStore> =
            Arc::new(EmbeddedStore::open(dir.path().join("p.db")).unwrap());
        let outbox = StoreOutbox::new(store.clone());
        let long_id = "é".repeat(100);
        let ids = vec!["a".to_owned(), long_id.clone()];
        outbox.add(&ids, Toward::Secondary).await.unwrap();
        outbox.add(&ids[..1], Toward::Primary).await.unwrap();
        assert_eq!(outbox.direction("a").await.unwrap(), Some(Toward::Primary));
        assert_eq!(
            outbox.direction(&long_id).await.unwrap(),
            Some(Toward::Secondary)
        );
        assert_eq!(outbox.direction("b").await.unwrap(), None);
        let mut listed: Vec<String> = outbox
            .pending(10)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect();
        listed.sort();
        assert_eq!(listed, vec!["a".to_owned(), long_id.clone()]);
        assert!(is_reserved(&entry_id(&long_id)));
        assert!(entry_id(&long_id).len() < item_model::MAX_ID_LEN);
        outbox.remove(&ids).await.unwrap();
        assert!(outbox.pending(10).await.unwrap().is_empty());
    }
}
