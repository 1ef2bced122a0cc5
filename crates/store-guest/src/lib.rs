//! The guest side of `edge-items:store` (world `store-provider` in
//! `wit/item-store.wit`), bound once for every adapter component
//! (`components/dynamodb-adapter`, `firestore-adapter`,
//! `spin-sqlite-adapter`).
//!
//! An adapter implements [`BlockingStore`], its backend in `item_model`
//! types, and exports it with [`export_store!`]. Everything else about the
//! WIT boundary happens here, once: the generated bindings (walled off in
//! [`bindings`]), the conversions ([`item_model::wit_conversions!`]),
//! validation of every call (an exported interface does not trust its
//! caller, so input is checked before a backend sees it) and a log line on
//! stderr for backend trouble, whose cause the API answers only with a 5xx.
//!
//! ```text
//! struct MyStore { .. }
//! impl store_guest::BlockingStore for MyStore { .. }
//! #[cfg(target_arch = "wasm32")]
//! store_guest::export_store!(MyStore);
//! ```

use std::marker::PhantomData;

use item_model::{
    BatchResult, BatchWrite, Item, ItemPatch, NewItem, Page, PutOutcome, Query, StoreError,
    validate,
};

/// The code wit-bindgen generates for the `store-provider` world. Its export
/// macro is public, so that each adapter crate exports through it; the
/// component-type section is emitted where the macro is used.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "store-provider",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::store_guest::bindings",
    });
}

use bindings::exports::edge_items::store::store::Guest;
use bindings::exports::edge_items::store::types as wit;

item_model::wit_conversions!(wit);

/// The result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A store backend inside a component: blocking calls in `item_model`
/// types, with the semantics of `wit/item-store.wit`. [`export_store!`]
/// validates every call before it reaches these methods.
pub trait BlockingStore: Send + Sync + Sized + 'static {
    /// Names the adapter in log lines (`dynamodb-adapter: get failed: ..`).
    const NAME: &'static str;

    /// This instance's store, set up from its configuration on first use
    /// and kept for the instance's life (a runtime gives each request a
    /// fresh instance). A setup error is answered to every call.
    fn instance() -> StoreResult<&'static Self>;

    /// Reads an unexpired item.
    fn get(&self, id: &str) -> StoreResult<Item>;
    /// Creates an item; `already-exists` if the id is taken.
    fn create(&self, item: NewItem) -> StoreResult<Item>;
    /// Creates or replaces an item, under an optional expected version.
    fn put(&self, item: NewItem, expected_version: Option<&str>)
    -> StoreResult<(Item, PutOutcome)>;
    /// Changes part of an item, under an optional expected version.
    fn update(
        &self,
        id: &str,
        patch: ItemPatch,
        expected_version: Option<&str>,
    ) -> StoreResult<Item>;
    /// Deletes an item, under an optional expected version.
    fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()>;
    /// Atomically adds `delta` to a numeric attribute.
    fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item>;
    /// Applies up to 100 unconditional writes.
    fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult>;
    /// Lists items by user or status in creation order.
    fn query(&self, query: Query) -> StoreResult<Page>;
}

/// The WIT export of a [`BlockingStore`]; [`export_store!`] names it.
pub struct Export<S>(PhantomData<S>);

type WitResult<T> = Result<T, wit::StoreError>;

impl<S: BlockingStore> Export<S> {
    /// Validates, then runs `call` on the instance's store; logs backend
    /// trouble (never a credential: store errors carry none) and converts
    /// the outcome.
    fn serve<T, W: From<T>>(
        operation: &'static str,
        valid: Result<(), StoreError>,
        call: impl FnOnce(&S) -> StoreResult<T>,
    ) -> WitResult<W> {
        valid.map_err(wit::StoreError::from)?;
        let result = S::instance().and_then(call);
        if let Err(
            e @ (StoreError::Unavailable(_) | StoreError::Unauthorized(_) | StoreError::Backend(_)),
        ) = &result
        {
            eprintln!("{}: {operation} failed: {e}", S::NAME);
        }
        result.map(W::from).map_err(Into::into)
    }
}

/// The pair a `put` answers, in WIT types.
pub struct PutAnswer((wit::Item, wit::PutOutcome));

impl From<(Item, PutOutcome)> for PutAnswer {
    fn from((item, outcome): (Item, PutOutcome)) -> Self {
        Self((item.into(), outcome.into()))
    }
}

impl<S: BlockingStore> Guest for Export<S> {
    fn get(id: String) -> WitResult<wit::Item> {
        Self::serve("get", validate::id(&id), |s| s.get(&id))
    }

    fn create(item: wit::NewItem) -> WitResult<wit::Item> {
        let item = NewItem::from(item);
        Self::serve("create", validate::new_item(&item), |s| s.create(item))
    }

    fn put(
        item: wit::NewItem,
        expected_version: Option<String>,
    ) -> WitResult<(wit::Item, wit::PutOutcome)> {
        let item = NewItem::from(item);
        Self::serve::<_, PutAnswer>("put", validate::new_item(&item), |s| {
            s.put(item, expected_version.as_deref())
        })
        .map(|answer| answer.0)
    }

    fn update(
        id: String,
        patch: wit::ItemPatch,
        expected_version: Option<String>,
    ) -> WitResult<wit::Item> {
        let patch = ItemPatch::from(patch);
        let valid = validate::id(&id).and_then(|()| validate::patch(&patch));
        Self::serve("update", valid, |s| {
            s.update(&id, patch, expected_version.as_deref())
        })
    }

    fn delete(id: String, expected_version: Option<String>) -> WitResult<()> {
        Self::serve("delete", validate::id(&id), |s| {
            s.delete(&id, expected_version.as_deref())
        })
    }

    fn increment(id: String, attribute: String, delta: i64) -> WitResult<wit::Item> {
        let valid = validate::id(&id).and_then(|()| validate::increment(&attribute));
        Self::serve("increment", valid, |s| s.increment(&id, &attribute, delta))
    }

    fn batch(writes: Vec<wit::BatchWrite>) -> WitResult<wit::BatchResult> {
        let writes: Vec<BatchWrite> = writes.into_iter().map(Into::into).collect();
        Self::serve("batch", validate::batch(&writes), |s| s.batch(writes))
    }

    fn query(query: wit::Query) -> WitResult<wit::Page> {
        let query = Query::from(query);
        Self::serve("query", validate::query(&query), |s| s.query(query))
    }
}

/// Exports `$store` (a [`BlockingStore`]) as the component's
/// `edge-items:store/store`. Use it once per adapter, in the wasm build
/// only: natively the export's symbol names (with `:` and `@`) cannot be
/// linked into a test binary.
#[macro_export]
macro_rules! export_store {
    ($store:ty) => {
        type __StoreGuestExport = $crate::Export<$store>;
        $crate::bindings::export!(__StoreGuestExport with_types_in $crate::bindings);
    };
}

#[cfg(test)]
mod tests;
