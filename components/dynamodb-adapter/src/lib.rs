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
//! Modules: `store` (the operations, behind `store_guest`'s export, which
//! validates and converts), `transport` (signing, sending, safe retries).

mod store;
mod transport;

pub use store::DynamoDbAdapter;

#[cfg(target_arch = "wasm32")]
store_guest::export_store!(DynamoDbAdapter);
