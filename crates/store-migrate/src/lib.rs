//! Moving items between stores: a copy of every item from one
//! [`ItemStore`] to another, and a comparison of the two.
//!
//! Any two stores (embedded, DynamoDB, Firestore) work, because the copy
//! uses only the item-store interface: the source's `scan` (parallel
//! segments, resumable pages) and the target's `batch` puts, which keep
//! each item's `createdAt` and `updatedAt`. So the data flow is
//!
//! ```text
//! source.scan(segment k, cursor) ──page──▶ target.batch(puts) ──▶ checkpoint
//! ```
//!
//! one task per segment. After each page is written, the segment's cursor
//! goes into a [`Checkpoint`] file, so a run stopped at any point (Ctrl-C,
//! a crash, a kill) resumes from its last written page; a page copied twice
//! is written twice with the same content, which changes nothing but the
//! target's versions.
//!
//! - [`copy`]: the copy, with retries on throttling and unavailability,
//!   and items a target cannot hold reported instead of dropped.
//! - [`verify`]: both sides read in full, each item reduced to a content
//!   hash ([`digest`]), and the differences listed.
//!
//! What a migration keeps and what it cannot (versions are each store's
//! own; deletions are not seen by an `updated-since` catch-up) is in
//! docs/multi-cloud.md.

mod checkpoint;
mod copy;
mod digest;
mod verify;

pub use checkpoint::{Checkpoint, CheckpointError, SegmentState};
pub use copy::{CopyError, CopyOptions, CopyReport, Progress, Refused, copy, count};
pub use digest::{ItemDigest, digest};
pub use verify::{Comparison, Difference, Repaired, prune, repair, verify};

pub use item_store::ItemStore;
