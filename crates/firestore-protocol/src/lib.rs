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
//! Every operation is a [`sansio::Operation`]; a [`Session`] (the
//! database with its credentials) is their [`sansio::Protocol`]: it sets
//! the bearer token on every attempt (renewed when due) and classifies the
//! answers ([`retry_class`]); [`RETRY_POLICY`] holds the numbers.
//! `sansio`'s drivers run both the native store and the component:
//!
//! ```text
//! let session = Session::new(firestore, credentials);
//! let op = session.firestore().get("item-123", Timestamp::now());
//! let item = sansio::drive_blocking(&session, RETRY_POLICY, &mut transport, op)?;
//! ```
//!
//! Input arrives validated (the host and the component's export own
//! `item_model::validate`); this crate only refuses what it cannot encode,
//! and ids that are not one plain document name (a path must not reach
//! another document).
//!
//! - [`value`] documents how values are typed (integers,
//!   doubles and the precision rule), [`document`] the
//!   document shape, `ops` the operations and their preconditions, `once`
//!   the Idempotency-Key writes (`apply-once`) and their records, `query`
//!   the paging, `scan` the full reads (exports, in id-range segments),
//!   [`error`] the error mapping and
//!   [`auth`] the service-account tokens.
//! - `firestore.indexes.json` next to this crate's manifest holds the
//!   composite indexes the queries need and the TTL policy on `expiresAt`
//!   (the emulator enforces neither; production refuses the queries without
//!   the indexes).
//!
//! [`StoreError`]: item_model::StoreError

pub mod adc;
pub mod auth;
pub mod document;
pub mod error;
mod instant;
mod names;
mod once;
mod ops;
pub mod provision;
mod query;
mod scan;
mod session;
pub mod value;

pub use auth::{AuthError, Credentials, ServiceAccountKey};
pub use error::{map_error, retry_class};
pub use names::{
    ConfigError, DEFAULT_COLLECTION, DEFAULT_DATABASE, Firestore, PRODUCTION_BASE_URL,
    RECORDS_SUFFIX, emulator_base_url, field_path,
};
pub use once::MAX_RECORD_BYTES;
pub use ops::StoreResult;
pub use query::MAX_ROUNDS;
pub use session::{RETRY_POLICY, Session};

/// The index definitions to deploy (`firebase deploy --only firestore:indexes`).
pub const INDEXES_JSON: &str = include_str!("../firestore.indexes.json");
