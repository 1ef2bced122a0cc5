//! The Firestore item store as a WASI 0.2 component.
//!
//! It exports `edge-items:store/types` and `edge-items:store/store` (the
//! `store-provider` world) and imports only plain WASI (`wasi:http` to reach
//! Firestore, clocks, random, environment), so composed with the api
//! component it runs under any runtime with wasi:http. `store_guest`'s
//! export validates and converts every call; this crate only drives the
//! same `firestore-protocol` operations as the native store.
//!
//! Configuration from the environment: see [`config`]. It is read on the
//! first call and kept for the instance's life, together with the signed
//! access token (renewed five minutes before it expires).
//!
//! - [`config`]: the environment
//! - [`FirestoreAdapter`]: the operations
//! - [`transport`]: operations over `component-http`, with safe retries

pub mod config;
mod store;
pub mod transport;

pub use store::FirestoreAdapter;

#[cfg(target_arch = "wasm32")]
store_guest::export_store!(FirestoreAdapter);
