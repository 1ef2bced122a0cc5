//! The item model every part of the service shares, with no IO.
//!
//! The WIT interface (`wit/item-store.wit`) is the contract between
//! components; this crate is its Rust twin, used on both sides of it: the
//! api guest turns HTTP JSON into these types, and every store (the embedded
//! one, DynamoDB, Firestore, natively or as a component) turns them into its
//! backend's requests. Rules that must hold the same everywhere (what an id
//! may contain, how time is written, what a cursor carries, where a page
//! ends) live here once.

pub mod clock;
pub mod counter;
mod cursor;
pub mod duration;
mod error;
pub mod json;
pub mod once;
mod page;
pub mod request_id;
pub mod scan;
mod store;
mod timestamp;
mod types;
mod uuid;
pub mod validate;
mod wit;

pub use clock::WriteClock;
pub use cursor::{Cursor, CursorError};
pub use error::StoreError;
pub use once::{Applied, Once, Write, Written};
pub use page::{Offer, PAGE_BYTE_BUDGET, PageBuilder, estimated_size};
pub use scan::{
    MAX_SCAN_SEGMENTS, ScanCursor, ScanPage, ScanPageBuilder, ScanRequest, Scanned,
    segment_id_range,
};
pub use store::{ItemStore, StoreResult};
pub use timestamp::{Timestamp, TimestampError};
pub use types::*;
pub use uuid::uuid_v4;

/// Names that are not free attributes: the item's own fields (in their JSON
/// spelling) and `itemId`, the DynamoDB partition key.
pub const RESERVED_NAMES: [&str; 8] = [
    "id",
    "itemId",
    "createdAt",
    "updatedAt",
    "version",
    "userId",
    "status",
    "expiresAt",
];

/// Longest item id, in bytes.
pub const MAX_ID_LEN: usize = 200;

/// The response header that says a mirror answered from its secondary
/// (the WIT `served-by-secondary`), in the lowercase form wasi:http uses.
pub const SERVED_BY_HEADER: &str = "edge-items-served-by";
/// Longest attribute name, user id or status, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Most items one query page may ask for.
pub const MAX_QUERY_LIMIT: u32 = 1000;
/// Most writes in one batch.
pub const MAX_BATCH_WRITES: usize = 100;
/// Most free attributes one write may carry (a new item's, or a patch's set
/// and removed names together). The api component applies a lower,
/// configurable limit (`ITEMS_MAX_ATTRIBUTES`, default
/// [`DEFAULT_MAX_ATTRIBUTES`]); this is the ceiling every store boundary
/// enforces, so that no caller makes a store do unbounded work.
pub const MAX_ATTRIBUTES: usize = 10_000;
/// The api component's default limit on attributes per write.
pub const DEFAULT_MAX_ATTRIBUTES: usize = 1_000;
/// The latest `expiresAt`: 9999-12-31T23:59:59Z, the last second RFC 3339
/// (and the fixed-width time format) can write.
pub const MAX_EXPIRES_AT: i64 = 253_402_300_799;
