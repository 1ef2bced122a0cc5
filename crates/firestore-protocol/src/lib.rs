//! The Firestore binding of the item store, sans-IO.
//!
//! This crate turns each item-store call into Firestore REST v1 requests
//! (`http::Request`s with the URL under
//! `{base}/v1/projects/{project}/databases/{database}/documents`, a JSON
//! body and `content-type: application/json`) and the responses back into
//! [`item_model`] results and [`StoreError`]s. It opens no socket and needs
//! no async runtime, so the native host (reqwest) and an adapter component
//! (wasi:http) drive the same code; it builds for wasm32-wasip2.
//!
//! A transport drives an [`Operation`]:
//!
//! ```text
//! let mut step = firestore.get("item-123", Timestamp::now()).start();
//! loop {
//!     match step {
//!         Step::Send(out) => {
//!             credentials.authorize(&mut out.request, unix_now)?;
//!             let (status, body) = send(out.request);   // retry per out.idempotent
//!             step = op.resume(status, &body);
//!         }
//!         Step::Done(result) => break result,
//!     }
//! }
//! ```
//!
//! - [`value`] documents how values are typed (integers,
//!   doubles and the precision rule), [`document`] the
//!   document shape, `ops` the operations and their preconditions, `query`
//!   the paging, [`error`] the error mapping and
//!   [`auth`] the service-account tokens.
//! - `firestore.indexes.json` next to this crate's manifest holds the
//!   composite indexes the queries need and the TTL policy on `expiresAt`
//!   (the emulator enforces neither; production refuses the queries without
//!   the indexes).
//!
//! [`StoreError`]: item_model::StoreError

pub mod auth;
pub mod document;
pub mod error;
mod instant;
mod names;
mod ops;
mod query;
pub mod value;

pub use auth::{AuthError, Credentials, ServiceAccountKey};
pub use error::{Retry, map_error, retry_class};
pub use names::{
    ConfigError, DEFAULT_COLLECTION, DEFAULT_DATABASE, Firestore, PRODUCTION_BASE_URL,
    emulator_base_url, field_path,
};
pub use ops::{Operation, Outgoing, Step, StoreResult};
pub use query::MAX_ROUNDS;

/// The index definitions to deploy (`firebase deploy --only firestore:indexes`).
pub const INDEXES_JSON: &str = include_str!("../firestore.indexes.json");
