//! The Firestore item store as a WASI 0.2 component.
//!
//! It exports `edge-items:store/types` and `edge-items:store/store` (the
//! `store-provider` world) and imports only plain WASI (`wasi:http` to reach
//! Firestore, clocks, random, environment), so composed with the api
//! component it runs under any runtime with wasi:http. Every store function
//! validates its input with [`item_model::validate`], as the host does, and
//! then drives the same `firestore-protocol` operations as the native store.
//!
//! Configuration from the environment: see [`config`]. It is read on the
//! first call and kept for the instance's life, together with the signed
//! access token (renewed five minutes before it expires).
//!
//! - `convert`: WIT types to and from the item model
//! - [`config`]: the environment
//! - [`transport`]: operations over `component-http`, with safe retries

mod convert;

pub mod config;
pub mod transport;

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "store-provider",
    });
}

use std::sync::Mutex;

use firestore_protocol::Operation;
use item_model::{StoreError, Timestamp, validate};

use bindings::exports::edge_items::store::store::Guest;
use bindings::exports::edge_items::store::types as t;
use config::Config;

/// The instance's configuration and token, set up on first use. A failed
/// setup is not kept, so a call after the environment is fixed succeeds.
static STATE: Mutex<Option<Config>> = Mutex::new(None);

/// Runs the operation `make` builds, with the instance's configuration.
/// Backend trouble is also written to stderr (the runtime's log), since
/// the API answers it with a 5xx that does not show the cause; messages
/// never carry a credential.
fn run<O: Operation>(
    operation: &'static str,
    make: impl FnOnce(&firestore_protocol::Firestore) -> O,
) -> Result<O::Output, StoreError> {
    let result = STATE
        .lock()
        .map_err(|_| StoreError::Backend("the adapter's state lock is poisoned".into()))
        .and_then(|mut state| {
            let config = match &mut *state {
                Some(config) => config,
                empty => empty.insert(Config::from_env()?),
            };
            let op = make(&config.firestore);
            transport::run(&mut config.credentials, op)
        });
    if let Err(
        e @ (StoreError::Unavailable(_) | StoreError::Unauthorized(_) | StoreError::Backend(_)),
    ) = &result
    {
        eprintln!("firestore-adapter: {operation} failed: {e}");
    }
    result
}

type WitResult<T> = Result<T, t::StoreError>;

/// The exported store.
pub struct Adapter;

impl Guest for Adapter {
    fn get(id: String) -> WitResult<t::Item> {
        validate::id(&id).map_err(convert::error)?;
        run("get", |fs| fs.get(&id, Timestamp::now()))
            .map(convert::item)
            .map_err(convert::error)
    }

    fn create(item: t::NewItem) -> WitResult<t::Item> {
        let item = convert::new_item(item);
        validate::new_item(&item).map_err(convert::error)?;
        run("create", |fs| fs.create(item, Timestamp::now()))
            .map(convert::item)
            .map_err(convert::error)
    }

    fn put(
        item: t::NewItem,
        expected_version: Option<String>,
    ) -> WitResult<(t::Item, t::PutOutcome)> {
        let item = convert::new_item(item);
        validate::new_item(&item).map_err(convert::error)?;
        run("put", |fs| fs.put(item, expected_version, Timestamp::now()))
            .map(|(item, outcome)| (convert::item(item), convert::put_outcome(outcome)))
            .map_err(convert::error)
    }

    fn update(
        id: String,
        patch: t::ItemPatch,
        expected_version: Option<String>,
    ) -> WitResult<t::Item> {
        let patch = convert::patch(patch);
        validate::id(&id).map_err(convert::error)?;
        validate::patch(&patch).map_err(convert::error)?;
        run("update", |fs| {
            fs.update(&id, patch, expected_version, Timestamp::now())
        })
        .map(convert::item)
        .map_err(convert::error)
    }

    fn delete(id: String, expected_version: Option<String>) -> WitResult<()> {
        validate::id(&id).map_err(convert::error)?;
        run("delete", |fs| {
            fs.delete(&id, expected_version, Timestamp::now())
        })
        .map_err(convert::error)
    }

    fn increment(id: String, attribute: String, delta: i64) -> WitResult<t::Item> {
        validate::id(&id).map_err(convert::error)?;
        validate::increment(&attribute).map_err(convert::error)?;
        run("increment", |fs| {
            fs.increment(&id, &attribute, delta, Timestamp::now())
        })
        .map(convert::item)
        .map_err(convert::error)
    }

    fn batch(writes: Vec<t::BatchWrite>) -> WitResult<t::BatchResult> {
        let writes: Vec<_> = writes.into_iter().map(convert::batch_write).collect();
        validate::batch(&writes).map_err(convert::error)?;
        run("batch", |fs| fs.batch(writes, Timestamp::now()))
            .map(convert::batch_result)
            .map_err(convert::error)
    }

    fn query(query: t::Query) -> WitResult<t::Page> {
        let query = convert::query(query);
        validate::query(&query).map_err(convert::error)?;
        run("query", |fs| fs.query(query, Timestamp::now()))
            .map(convert::page)
            .map_err(convert::error)
    }
}

// Natively the export's symbol names (with `:` and `@`) cannot be linked
// into a shared library, so the export exists only in the wasm build.
#[cfg(target_arch = "wasm32")]
bindings::export!(Adapter with_types_in bindings);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_is_refused_before_any_request() {
        // No configuration is needed to refuse these: validation comes first.
        assert!(matches!(
            Adapter::get("a/b".into()),
            Err(t::StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            Adapter::increment("a".into(), "id".into(), 1),
            Err(t::StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            Adapter::batch(Vec::new()),
            Err(t::StoreError::InvalidInput(_))
        ));
    }
}
