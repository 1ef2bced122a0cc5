//! How a store that answered from a replica tells the WIT binding, which
//! answers the guest's `served-by-secondary` (the api then sets the
//! `edge-items-served-by: secondary` response header).
//!
//! The [`ItemStore`](crate::ItemStore) trait stays as it is: a store calls
//! [`note_served_by_secondary`] while serving, and the binding runs every
//! call inside [`ServedBy::watch`], a tokio task-local scope owned by one
//! request. Outside such a scope (a store used directly) the note is a
//! no-op.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

tokio::task_local! {
    static SERVED_BY: ServedBy;
}

/// Whether any store call of one request was answered by a secondary.
#[derive(Debug, Clone, Default)]
pub struct ServedBy(Arc<AtomicBool>);

impl ServedBy {
    /// Whether a call was answered by a secondary.
    pub fn secondary(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Runs `work` with its notes going to this request.
    pub async fn watch<F: Future>(&self, work: F) -> F::Output {
        SERVED_BY.scope(self.clone(), work).await
    }
}

/// Records that the current call was answered by a secondary store.
pub fn note_served_by_secondary() {
    let _ = SERVED_BY.try_with(|served| served.0.store(true, Ordering::Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_note_reaches_only_the_watching_request() {
        let (one, other) = (ServedBy::default(), ServedBy::default());
        one.watch(async { note_served_by_secondary() }).await;
        other.watch(async {}).await;
        note_served_by_secondary(); // no scope: ignored
        assert!(one.secondary());
        assert!(!other.secondary());
    }
}
