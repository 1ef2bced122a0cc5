//! The item store as the host sees it: one async trait, implemented by each
//! native backend in its own crate (`store-embedded`, later the DynamoDB and
//! Firestore adapters), and chosen at start-up by the host's CLI. This is
//! the shape of Spin's `factor-key-value` (a capability crate with a small
//! `Store` trait) and its `key-value-*` backend crates.
//!
//! The host validates every call (with [`item_model::validate`]) before it
//! reaches a store, so implementations may assume well-formed input. The
//! semantics are those written in `wit/item-store.wit`; the conformance suite
//! in `conformance/` checks them for every backend.

use async_trait::async_trait;
pub use item_model::*;

/// The result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A storage backend for items. See `wit/item-store.wit` for what each
/// operation must do.
#[async_trait]
pub trait ItemStore: Send + Sync + 'static {
    async fn get(&self, id: &str) -> StoreResult<Item>;
    async fn create(&self, item: NewItem) -> StoreResult<Item>;
    async fn put(
        &self,
        item: NewItem,
        expected_version: Option<String>,
    ) -> StoreResult<(Item, PutOutcome)>;
    async fn update(
        &self,
        id: &str,
        patch: ItemPatch,
        expected_version: Option<String>,
    ) -> StoreResult<Item>;
    async fn delete(&self, id: &str, expected_version: Option<String>) -> StoreResult<()>;
    async fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item>;
    async fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult>;
    async fn query(&self, query: Query) -> StoreResult<Page>;
}
