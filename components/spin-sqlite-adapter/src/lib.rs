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
//! Modules: `convert` (WIT <-> `item_model`), `store` (validation and the
//! operations), `db` (the connection, schema and rows), `codec` (the
//! attributes column).

mod codec;
mod convert;
mod db;
mod store;

mod bindings {
    wit_bindgen::generate!({
        inline: "
            package edge-items:spin-sqlite-adapter;

            world adapter {
                include edge-items:store/store-provider@0.1.0;
                import fermyon:spin/sqlite@2.0.0;
            }
        ",
        path: ["../../wit", "wit/fermyon-spin-sqlite.wit"],
        world: "edge-items:spin-sqlite-adapter/adapter",
        // The store and Spin's SQLite come from other packages.
        generate_all,
    });
}

use bindings::exports::edge_items::store::store::Guest;
use bindings::exports::edge_items::store::types as wit;

type WitResult<T> = Result<T, wit::StoreError>;

/// The exported store.
struct SpinSqliteAdapter;

impl Guest for SpinSqliteAdapter {
    fn get(id: String) -> WitResult<wit::Item> {
        store::get(&id)
            .map(convert::to_item)
            .map_err(convert::to_error)
    }

    fn create(item: wit::NewItem) -> WitResult<wit::Item> {
        store::create(convert::new_item(item))
            .map(convert::to_item)
            .map_err(convert::to_error)
    }

    fn put(
        item: wit::NewItem,
        expected_version: Option<String>,
    ) -> WitResult<(wit::Item, wit::PutOutcome)> {
        store::put(convert::new_item(item), expected_version.as_deref())
            .map(|(item, outcome)| (convert::to_item(item), convert::to_put_outcome(outcome)))
            .map_err(convert::to_error)
    }

    fn update(
        id: String,
        patch: wit::ItemPatch,
        expected_version: Option<String>,
    ) -> WitResult<wit::Item> {
        store::update(&id, &convert::patch(patch), expected_version.as_deref())
            .map(convert::to_item)
            .map_err(convert::to_error)
    }

    fn delete(id: String, expected_version: Option<String>) -> WitResult<()> {
        store::delete(&id, expected_version.as_deref()).map_err(convert::to_error)
    }

    fn increment(id: String, attribute: String, delta: i64) -> WitResult<wit::Item> {
        store::increment(&id, &attribute, delta)
            .map(convert::to_item)
            .map_err(convert::to_error)
    }

    fn batch(writes: Vec<wit::BatchWrite>) -> WitResult<wit::BatchResult> {
        store::batch(writes.into_iter().map(convert::batch_write).collect())
            .map(convert::to_batch_result)
            .map_err(convert::to_error)
    }

    fn query(query: wit::Query) -> WitResult<wit::Page> {
        store::query(convert::query(query))
            .map(convert::to_page)
            .map_err(convert::to_error)
    }
}

bindings::export!(SpinSqliteAdapter with_types_in bindings);
