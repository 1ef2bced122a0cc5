//! The item store as the host sees it, in the shape of Spin's
//! `factor-key-value`: this crate owns the capability (one async trait,
//! [`ItemStore`], that each native backend implements in its own crate:
//! `store-embedded`, `store-dynamodb`, `store-firestore`) and the WIT
//! implementation that serves a guest's `edge-items:store/store` import
//! from it, wasmtime's way: generated code walled off in `bindings`,
//! [`add_to_linker`], and a view trait ([`ItemStoreView`]) that finds the
//! per-request state in a store's data.
//!
//! - `types`: the WIT `types` interface (conversions, written once in
//!   [`item_model::wit_conversions!`]).
//! - `store`: the WIT `store` interface: each call from the guest is
//!   validated here, once (a guest is not trusted to have done it), then
//!   handed to the [`ItemStore`].
//!
//! Implementations may therefore assume well-formed input. The semantics
//! are those written in `wit/item-store.wit`; the conformance suite in
//! `conformance/` checks them for every backend.

mod bindings;
mod store;
mod types;

use std::sync::Arc;

use async_trait::async_trait;
use wasmtime::component::{HasSelf, Linker};

pub use item_model::*;

/// The result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A storage backend for items. See `wit/item-store.wit` for what each
/// operation must do; callers have validated the input
/// ([`item_model::validate`]).
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
    /// Lists items by user or status in creation order.
    async fn query(&self, query: Query) -> StoreResult<Page>;
}

/// The per-request state behind the import: a handle on the shared store.
pub struct ItemStoreHost {
    store: Arc<dyn ItemStore>,
}

impl ItemStoreHost {
    /// The import, served from `store`.
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }
}

/// How the import finds its state in a wasmtime store's data.
pub trait ItemStoreView: Send {
    /// The item store of this request.
    fn item_store(&mut self) -> &mut ItemStoreHost;
}

/// Adds the `edge-items:store` import (interfaces `types` and `store`) to
/// `linker`, served from each request's [`ItemStoreView`].
pub fn add_to_linker<T: ItemStoreView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    bindings::StoreClient::add_to_linker::<T, HasSelf<ItemStoreHost>>(linker, T::item_store)
}
