//! The comparison of two stores: both read in full (in parallel
//! segments), each item kept as its id and [`crate::digest`], then matched
//! by id. Memory is about 100 bytes per item and side.

use std::collections::HashMap;
use std::sync::Arc;

use item_store::{BatchPut, BatchWrite, ItemStore, MAX_BATCH_WRITES, StoreError};

use crate::copy::{read_all, with_retries};
use crate::digest::{ItemDigest, digest};

/// One way the two sides differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The source has the item, the target does not.
    MissingInTarget(String),
    /// The target has an item the source does not (deleted on the source
    /// after it was copied, or written to the target by someone else).
    OnlyInTarget(String),
    /// Both have the item, with different content.
    Changed(String),
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Items on the source.
    pub source_items: u64,
    /// Items on the target.
    pub target_items: u64,
    /// Every difference, sorted by id.
    pub differences: Vec<Difference>,
}

impl Comparison {
    /// Whether both sides hold exactly the same items.
    pub fn is_equal(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Compares every item of `source` and `target` (expired ones apart,
/// unless `include_expired`).
pub async fn verify(
    source: Arc<dyn ItemStore>,
    target: Arc<dyn ItemStore>,
    segments: u32,
    include_expired: bool,
) -> Result<Comparison, StoreError> {
    let (ours, theirs) = tokio::try_join!(
        digests(source, segments, include_expired),
        digests(target, segments, include_expired),
    )?;
    let mut differences = Vec::new();
    for (id, hash) in &ours {
        match theirs.get(id) {
            None => differences.push(Difference::MissingInTarget(id.clone())),
            Some(other) if other != hash => differences.push(Difference::Changed(id.clone())),
            Some(_) => {}
        }
    }
    for id in theirs.keys().filter(|id| !ours.contains_key(*id)) {
        differences.push(Difference::OnlyInTarget(id.clone()));
    }
    differences.sort_by(|a, b| id_of(a).cmp(id_of(b)));
    Ok(Comparison {
        source_items: ours.len() as u64,
        target_items: theirs.len() as u64,
        differences,
    })
}

/// Deletes from `target` the items only it has (the source's deletions
/// that an `updated-since` catch-up cannot see), in batches; says how many.
pub async fn prune(target: &dyn ItemStore, comparison: &Comparison) -> Result<u64, StoreError> {
    let extra: Vec<BatchWrite> = comparison
        .differences
        .iter()
        .filter_map(|d| match d {
            Difference::OnlyInTarget(id) => Some(BatchWrite::Delete(id.clone())),
            _ => None,
        })
        .collect();
    for chunk in extra.chunks(MAX_BATCH_WRITES) {
        with_retries(10, || target.batch(chunk.to_vec())).await?;
    }
    Ok(extra.len() as u64)
}

/// What [`repair`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repaired {
    /// Items copied from the source (missing or different on the target).
    pub copied: u64,
    /// Items deleted from the target (absent from the source).
    pub deleted: u64,
}

/// Makes `target` equal to `source` on every difference of `comparison`:
/// each item the target lacks or holds differently is copied as the source
/// has it *now* (times kept), or deleted if the source no longer has it,
/// and what only the target has is deleted. Writes go in batches of 100.
pub async fn repair(
    source: &dyn ItemStore,
    target: &dyn ItemStore,
    comparison: &Comparison,
) -> Result<Repaired, StoreError> {
    let mut repaired = Repaired::default();
    let mut writes = Vec::new();
    for difference in &comparison.differences {
        match difference {
            Difference::MissingInTarget(id) | Difference::Changed(id) => {
                match with_retries(10, || source.get(id)).await {
                    Ok(item) => {
                        writes.push(BatchWrite::Put(BatchPut::restoring(item)));
                        repaired.copied += 1;
                    }
                    Err(StoreError::NotFound) => {
                        writes.push(BatchWrite::Delete(id.clone()));
                        repaired.deleted += 1;
                    }
                    Err(error) => return Err(error),
                }
            }
            Difference::OnlyInTarget(id) => {
                writes.push(BatchWrite::Delete(id.clone()));
                repaired.deleted += 1;
            }
        }
    }
    for chunk in writes.chunks(MAX_BATCH_WRITES) {
        with_retries(10, || target.batch(chunk.to_vec())).await?;
    }
    Ok(repaired)
}

fn id_of(difference: &Difference) -> &str {
    match difference {
        Difference::MissingInTarget(id)
        | Difference::OnlyInTarget(id)
        | Difference::Changed(id) => id,
    }
}

async fn digests(
    store: Arc<dyn ItemStore>,
    segments: u32,
    include_expired: bool,
) -> Result<HashMap<String, ItemDigest>, StoreError> {
    let found = read_all(store, segments, None, include_expired, |item| {
        (item.id.clone(), digest(item))
    })
    .await?;
    Ok(found.into_iter().collect())
}
