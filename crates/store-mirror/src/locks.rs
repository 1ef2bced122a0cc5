//! Per-id ordering inside one process: a write and its replication, or a
//! drain of the same id, never interleave, so the secondary cannot end
//! with an older state than the primary. Ids hash onto a fixed set of
//! async mutexes; a batch takes its stripes in ascending order, so two
//! batches cannot deadlock.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 1024;

pub(crate) struct IdLocks {
    hasher: RandomState,
    stripes: Vec<Mutex<()>>,
}

impl IdLocks {
    pub(crate) fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Holds every id of `ids` until the guards drop.
    pub(crate) async fn lock(&self, ids: &[String]) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = ids
            .iter()
            .map(|id| (self.hasher.hash_one(id) as usize) % STRIPES)
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            guards.push(self.stripes[stripe].lock().await);
        }
        guards
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overlapping_batches_in_any_order_do_not_deadlock() {
        let locks = std::sync::Arc::new(IdLocks::new());
        let ids: Vec<String> = (0..200).map(|i| format!("id-{i}")).collect();
        let mut tasks = Vec::new();
        for round in 0..8 {
            let (locks, mut ids) = (locks.clone(), ids.clone());
            if round % 2 == 1 {
                ids.reverse();
            }
            tasks.push(tokio::spawn(async move {
                let _held = locks.lock(&ids).await;
                tokio::task::yield_now().await;
            }));
        }
        for task in tasks {
            tokio::time::timeout(std::time::Duration::from_secs(10), task)
                .await
                .expect("no deadlock")
                .unwrap();
        }
    }
}
