//! The item store as an async Rust trait: what every native store
//! implements (`store-embedded`, `store-dynamodb`, `store-firestore`), what
//! a store made of stores wraps (`store-mirror`), and what the host's WIT
//! import serves (`item-store`). It lives here, beside the types, so that a
//! component can run the same store logic over its WIT imports.

use async_trait::async_trait;

use crate::{
    Applied, BatchResult, BatchWrite, Item, ItemPatch, NewItem, Once, Page, PutOutcome, Query,
    ScanPage, ScanRequest, StoreError, Write,
};

/// The result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A storage backend for items. See `wit/item-store.wit` for what each
/// operation must do; callers have validated the input
/// ([`crate::validate`]).
#[async_trait]
pub trait ItemStore: Send + Sync + 'static {
    /// Reads an unexpired item.
    async fn get(&self, id: &str) -> StoreResult<Item>;
    /// Creates an item; `already-exists` if the id is taken.
    async fn create(&self, item: NewItem) -> StoreResult<Item>;
    /// Creates or replaces an item, under an optional expected version.
    async fn put(
        &self,
        item: NewItem,
        expected_version: Option<&str>,
    ) -> StoreResult<(Item, PutOutcome)>;
    /// Changes part of an item, under an optional expected version.
    async fn update(
        &self,
        id: &str,
        patch: ItemPatch,
        expected_version: Option<&str>,
    ) -> StoreResult<Item>;
    /// Deletes an item, under an optional expected version.
    async fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()>;
    /// Atomically adds `delta` to a numeric attribute.
    async fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item>;
    /// Applies up to 100 unconditional writes.
    async fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult>;
    /// Applies a write at most once per key, atomically with its record.
    async fn apply_once(&self, write: Write, once: Once) -> StoreResult<Applied>;
    /// Lists items by user or status in creation order.
    async fn query(&self, query: Query) -> StoreResult<Page>;
    /// Reads one page of one segment of every item, expired ones marked.
    async fn scan(&self, request: ScanRequest) -> StoreResult<ScanPage>;
}
