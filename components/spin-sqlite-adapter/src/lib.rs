//! The item store on Spin's built-in SQLite, as a WASI 0.2 component.
//!
//! It exports `edge-items:store/types` and `edge-items:store/store` (world
//! `store-provider` in `wit/item-store.wit`) and imports Spin's
//! `fermyon:spin/sqlite@2.0.0`, so spin.toml plugs it into the api
//! component as a component dependency and `spin up` serves items with no
//! account and no server: Spin keeps the database (label `default`) in its
//! state directory (`.spin/sqlite_db.db` by default).
//!
//! Every write is one SQL statement, so it is atomic on any SQLite Spin
//! connects to: the local file, or a remote database (Turso/libSQL,
//! Fermyon Cloud) where a transaction cannot span two calls. Conditions
//! live in the statement's `WHERE` (version checks), increments are done by
//! SQLite's JSON functions inside one `UPDATE`, and `RETURNING` tells
//! whether the row changed. The schema is created on first use.
//!
//! Modules: `store` (the operations, behind `store_guest`'s export, which
//! validates and converts), `db` (the connection, schema and rows), `codec`
//! (the attributes column).

mod codec;
mod db;
mod store;

mod bindings {
    // Only Spin's SQLite: the store export is bound in `store_guest`.
    wit_bindgen::generate!({
        inline: "
            package edge-items:spin-sqlite-adapter;

            world adapter {
                import fermyon:spin/sqlite@2.0.0;
            }
        ",
        path: "wit/fermyon-spin-sqlite.wit",
        world: "edge-items:spin-sqlite-adapter/adapter",
        generate_all,
    });
}

use item_model::{BatchResult, BatchWrite, Item, ItemPatch, NewItem, Page, PutOutcome, Query};
use store_guest::{BlockingStore, StoreResult};

/// The item store on Spin's SQLite database `default`.
struct SpinSqliteAdapter;

impl BlockingStore for SpinSqliteAdapter {
    const NAME: &'static str = "spin-sqlite-adapter";

    fn instance() -> StoreResult<&'static Self> {
        Ok(&SpinSqliteAdapter)
    }

    fn get(&self, id: &str) -> StoreResult<Item> {
        store::get(id)
    }

    fn create(&self, item: NewItem) -> StoreResult<Item> {
        store::create(item)
    }

    fn put(
        &self,
        item: NewItem,
        expected_version: Option<&str>,
    ) -> StoreResult<(Item, PutOutcome)> {
        store::put(item, expected_version)
    }

    fn update(
        &self,
        id: &str,
        patch: ItemPatch,
        expected_version: Option<&str>,
    ) -> StoreResult<Item> {
        store::update(id, &patch, expected_version)
    }

    fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()> {
        store::delete(id, expected_version)
    }

    fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item> {
        store::increment(id, attribute, delta)
    }

    fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult> {
        store::batch(writes)
    }

    fn query(&self, query: Query) -> StoreResult<Page> {
        store::query(query)
    }
}

store_guest::export_store!(SpinSqliteAdapter);
