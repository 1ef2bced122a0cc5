//! The item store on Amazon DynamoDB as a WASI 0.2 component.
//!
//! It exports `edge-items:store/types` and `edge-items:store/store`
//! (world `store-provider` in `wit/item-store.wit`) and imports only WASI
//! 0.2 (`wasi:http/outgoing-handler`, clocks, random, environment), so
//! composed with the api component it runs under `wasmtime serve`, Spin or
//! our host without a native store. The DynamoDB logic is
//! `dynamodb-protocol`, the same sans-IO code the native store runs; this
//! crate only carries it over `component-http`.
//!
//! Configuration, from the environment (`wasmtime serve --env`, Spin's
//! `environment`, our host's settings), read on the first call:
//! - `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional
//!   `AWS_SESSION_TOKEN` (missing: every call fails with `unauthorized`);
//! - `AWS_REGION` or `AWS_DEFAULT_REGION`;
//! - optional `AWS_ENDPOINT_URL_DYNAMODB` or `AWS_ENDPOINT_URL`
//!   (DynamoDB Local: `http://127.0.0.1:8000`);
//! - optional `EDGE_ITEMS_DYNAMODB_TABLE` (default `Items`).
//!
//! The table must exist (`edge-items provision dynamodb`, or the
//! CloudFormation in `docs/aws.md`).
//!
//! Modules: `convert` (WIT <-> `item_model`), `store` (validation and the
//! operations), `transport` (signing, sending, safe retries).

mod convert;
mod store;
mod transport;

wit_bindgen::generate!({
    path: "../../wit",
    world: "store-provider",
});

use exports::edge_items::store::store::Guest;
use exports::edge_items::store::types as wit;

type WitResult<T> = Result<T, wit::StoreError>;

/// The exported store.
pub struct DynamoDbAdapter;

impl Guest for DynamoDbAdapter {
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
        store::put(convert::new_item(item), expected_version)
            .map(|(item, outcome)| (convert::to_item(item), convert::to_put_outcome(outcome)))
            .map_err(convert::to_error)
    }

    fn update(
        id: String,
        patch: wit::ItemPatch,
        expected_version: Option<String>,
    ) -> WitResult<wit::Item> {
        store::update(&id, &convert::patch(patch), expected_version)
            .map(convert::to_item)
            .map_err(convert::to_error)
    }

    fn delete(id: String, expected_version: Option<String>) -> WitResult<()> {
        store::delete(&id, expected_version).map_err(convert::to_error)
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

// Natively (for `cargo test`) the export's symbol names, which contain `:`
// and `@`, cannot be linked into a shared library, so the exports exist
// only in the wasm build; everything behind them is tested natively.
#[cfg(target_arch = "wasm32")]
export!(DynamoDbAdapter);
