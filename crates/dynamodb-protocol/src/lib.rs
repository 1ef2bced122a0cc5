//! The DynamoDB protocol of the item store, sans IO.
//!
//! This crate turns each store operation into DynamoDB JSON API calls
//! (`POST /`, `x-amz-target: DynamoDB_20120810.<Action>`, content type
//! `application/x-amz-json-1.0`, SigV4-signed) and the responses back into
//! `item_model` results and [`StoreError`]s. It opens no socket and needs no
//! async runtime, so the same code serves the native host (reqwest, in
//! `store-dynamodb`) and an adapter component (wasi:http); it builds for
//! `wasm32-wasip2`.
//!
//! # Driving it
//!
//! Each operation is a [`sansio::Operation`]; [`DynamoDb`] is its
//! [`sansio::Protocol`]: it signs every attempt with SigV4 (aws-sigv4) and
//! classifies the answers: throttling was not applied, so any call may be
//! resent ([`sansio::Retry::Always`]); a server error or a lost answer
//! leaves it open, so only calls marked idempotent are resent
//! ([`sansio::Retry::IfIdempotent`]). The numbers are [`RETRY_POLICY`].
//! `sansio`'s drivers run both the native store and the component.
//!
//! Input arrives validated (the host and the component's export own
//! `item_model::validate`); this crate only refuses what it cannot encode.
//!
//! # Table
//!
//! Table `Items` (or as [`TABLE_VARIABLE`] says), partition key `itemId` (S),
//! on-demand billing, TTL on `expiresAt`, and three global secondary indexes with ALL
//! projection: `byUser` (`userId`, `createdAt`), `byStatus` (`status`,
//! `createdAt`) and `byUserStatus` (`__userStatus__`, `createdAt`), whose
//! synthetic key (`userId` U+001F `status`) every write keeps on items that
//! have both fields, so that one user's items in one status are one exact
//! query. `byStatus` has few distinct keys, so a popular status is a
//! hot index partition; on-demand tables split hot partitions adaptively,
//! and write sharding (`status#0..N`) would turn every page into a merge of
//! N queries with a composite cursor, so it is left out until a workload
//! needs it. See [`attr`] for the item layout and how items written by
//! other clients (boto3) are read.

pub mod attr;
mod config;
mod error;
mod expr;
pub mod number;
mod ops;
mod service;
mod sign;

pub use config::{Config, ConfigError, Credentials, DEFAULT_TABLE, EnvError, TABLE_VARIABLE};
pub use error::{ServiceError, THROTTLE_RETRY_MS, retry_class};
pub use item_model::StoreError;
pub use ops::{
    ApplyOnce, BATCH_CHUNK, BackfillUserStatus, Backfilled, BatchWriteItems, CreateItem,
    DeleteItem, GetItem, Increment, MAX_KEYED_BATCH, MAX_RECORD_BYTES, Provision, Provisioned,
    PutItem, QueryItems, ScanItems, UpdateItem,
};
pub use service::{DynamoDb, RETRY_POLICY};
