//! A store built from two stores: a primary mirrored onto a secondary
//! (issue 15; docs/multi-cloud.md, "Mirroring").
//!
//! - **Writes** go to the primary. The ids a write touches are entered in
//!   the [`Outbox`] first; once the primary acknowledges, the items are
//!   copied to the secondary *by state* (a batch put keeping both times, or
//!   a delete) and the ids leave the outbox. A crash anywhere in between
//!   leaves the ids listed, and [`MirrorStore::drain`] (run on start and in
//!   the background by [`MirrorStore::spawn_drainer`]) copies them later:
//!   an acknowledged write always reaches the secondary.
//! - **Reads** (`get`, `query`) go to the primary and, when it is down
//!   (unavailable, throttled past its retries, failing), to the secondary;
//!   a breaker then skips the primary for a few seconds, probing it one
//!   call at a time, so an outage costs its timeout once, not per call;
//!   the observer hears of it ([`MirrorEvent::ReadFromSecondary`]), and
//!   through the WIT `served-by-secondary` the api says so in the
//!   `edge-items-served-by: secondary` response header.
//! - **Writes while the primary is down** fail as the primary failed (503)
//!   by default; with [`WritePolicy::Secondary`] they go to the secondary
//!   and are listed toward the primary, which gets them back when it
//!   returns. Keyed writes (`apply-once`) never fail over: their record is
//!   the primary's.
//! - `scan` reads the primary only: its cursor is that store's own.
//!
//! The outbox is a local file (`SqliteOutbox`, one process per file) or
//! items in the primary ([`StoreOutbox`], the component's). Per-id locks
//! keep a write and its replication in order within one process; `edge-items reconcile`
//! repairs whatever else diverged (two processes, a secondary written by
//! hand).

mod breaker;
mod locks;
pub mod outbox;
#[cfg(feature = "native")]
mod sqlite_outbox;
mod store_outbox;

use std::future::Future;
use std::sync::Arc;
#[cfg(feature = "native")]
use std::time::Duration;

use async_trait::async_trait;
use item_model::{
    Applied, BatchPut, BatchResult, BatchWrite, IndexKey, Item, ItemPatch, ItemStore, NewItem,
    Once, Page, PutOutcome, Query, ScanPage, ScanRequest, StoreError, StoreResult, Write, Written,
};

use crate::breaker::Breaker;
use crate::locks::IdLocks;
pub use crate::outbox::{Outbox, OutboxError, Pending, Toward};
#[cfg(feature = "native")]
pub use crate::sqlite_outbox::SqliteOutbox;
use crate::store_outbox::is_reserved;
pub use crate::store_outbox::{OUTBOX_STATUS, RESERVED_PREFIX, StoreOutbox};

/// What a write does while the primary is down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WritePolicy {
    /// Fail as the primary failed (503 to the client): the secondary never
    /// holds a write the primary has not, so nothing can conflict.
    #[default]
    Refuse,
    /// Write to the secondary and copy the item back to the primary when it
    /// returns. Needs an outbox that outlives the primary's outage (a file:
    /// an outbox kept in the primary cannot list these writes). Writes stay available, at a cost: a write the primary took
    /// just before it failed, not yet replicated, is not under the
    /// secondary's item, so a conditional write there can pass on stale
    /// data, and the secondary's state then wins on the primary (last
    /// writer wins). Such an item is refused (503) rather than written
    /// over when the mirror knows it is behind.
    Secondary,
}

/// What the mirror tells an observer (the host's metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorEvent {
    /// A read was answered by the secondary (the primary is down).
    ReadFromSecondary,
    /// A write went to the secondary (the primary is down;
    /// [`WritePolicy::Secondary`]).
    WroteToSecondary,
    /// A write's replication was left to the outbox (the secondary is down).
    Deferred,
    /// An item the store behind refused for good.
    Refused,
    /// Items copied by a drain, either way.
    Drained(u64),
    /// The outbox's length after each drain (0 when it drained; after a
    /// failed drain, counted up to 1000).
    Pending(u64),
}

/// Receives [`MirrorEvent`]s; must not block.
pub trait MirrorObserver: Send + Sync {
    /// One event.
    fn event(&self, event: MirrorEvent);
}

impl MirrorObserver for () {
    fn event(&self, _: MirrorEvent) {}
}

/// Ids drained per round.
const DRAIN_ROUND: usize = 100;

#[cfg(feature = "native")]
/// Most entries counted for the outbox gauge after a failed drain.
const PENDING_COUNTED: usize = 1000;

#[cfg(feature = "native")]
/// How often the drainer retries after a failure.
const DRAIN_RETRY: Duration = Duration::from_secs(1);

#[cfg(feature = "native")]
/// How often an idle drainer looks anyway (another process's entries).
const DRAIN_IDLE: Duration = Duration::from_secs(30);

/// A primary store mirrored onto a secondary.
#[derive(Clone)]
pub struct MirrorStore {
    inner: Arc<Inner>,
}

struct Inner {
    primary: Arc<dyn ItemStore>,
    secondary: Arc<dyn ItemStore>,
    outbox: Arc<dyn Outbox>,
    locks: IdLocks,
    /// Skips the primary while it is down.
    breaker: Breaker,
    /// Skips replication while the secondary is down: the outbox keeps
    /// the ids, and acknowledging a write does not wait for a dead cloud.
    secondary_breaker: Breaker,
    policy: WritePolicy,
    wake: Arc<tokio::sync::Notify>,
    observer: Arc<dyn MirrorObserver>,
}

/// What one [`MirrorStore::drain`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Items copied to the secondary.
    pub to_secondary: u64,
    /// Items copied back to the primary.
    pub to_primary: u64,
    /// Items the side behind refused for good (e.g. a number Firestore
    /// cannot hold): logged and dropped from the outbox, and reported by
    /// `edge-items reconcile` until they change.
    pub refused: u64,
}

impl MirrorStore {
    /// Mirrors `primary` onto `secondary`, listing pending ids in
    /// `outbox`. Call [`MirrorStore::spawn_drainer`] to replicate what an
    /// earlier run left.
    pub fn new(
        primary: Arc<dyn ItemStore>,
        secondary: Arc<dyn ItemStore>,
        outbox: Arc<dyn Outbox>,
        policy: WritePolicy,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                primary,
                secondary,
                outbox,
                locks: IdLocks::new(),
                breaker: Breaker::default(),
                secondary_breaker: Breaker::default(),
                policy,
                wake: Arc::default(),
                observer: Arc::new(()),
            }),
        }
    }

    /// Tells `observer` what happens; call before sharing the store.
    pub fn observed(mut self, observer: Arc<dyn MirrorObserver>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.observer = observer;
        }
        self
    }

    /// The outbox.
    pub fn outbox(&self) -> &dyn Outbox {
        self.inner.outbox.as_ref()
    }

    /// Drains the outbox now and then in the background: at once when a
    /// replication fails, every second while something is left, every 30 s
    /// otherwise. Stops when the last handle on the store is dropped.
    #[cfg(feature = "native")]
    pub fn spawn_drainer(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        let wake = self.inner.wake.clone();
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let wait = match inner.drain(None).await {
                    Ok(drained) => {
                        if drained != Drained::default() {
                            tracing::info!(
                                to_secondary = drained.to_secondary,
                                to_primary = drained.to_primary,
                                refused = drained.refused,
                                "mirror: drained the outbox"
                            );
                        }
                        inner.observer.event(MirrorEvent::Pending(0));
                        DRAIN_IDLE
                    }
                    Err(error) => {
                        tracing::warn!(%error, "mirror: draining the outbox failed; retrying");
                        if let Ok(left) = inner.outbox.pending(PENDING_COUNTED).await {
                            inner
                                .observer
                                .event(MirrorEvent::Pending(left.len() as u64));
                        }
                        DRAIN_RETRY
                    }
                };
                drop(inner);
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
        })
    }

    /// Copies every listed item to the side that is behind, as it stands on
    /// the other; stops at the first failure (the rest stays listed).
    pub async fn drain(&self) -> StoreResult<Drained> {
        self.inner.drain(None).await
    }

    /// Drains at most `limit` listed items (one round): where nothing runs
    /// in the background (the component), a little after each write.
    pub async fn drain_up_to(&self, limit: usize) -> StoreResult<Drained> {
        self.inner.drain(Some(limit)).await
    }
}

/// Whether the store failed in a way another store may not: the reason to
/// read from the secondary.
fn is_down(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Unavailable(_) | StoreError::Throttled(_) | StoreError::Backend(_)
    )
}

/// The error of a call the breaker kept from the primary.
fn primary_down() -> StoreError {
    StoreError::Unavailable("the primary store is down".into())
}

/// An outbox failure as a store error: a write the mirror cannot make
/// durable is refused.
fn outbox_failed(error: OutboxError) -> StoreError {
    tracing::error!(%error, "mirror: the outbox failed");
    StoreError::Unavailable("the mirror's outbox cannot be written".into())
}

impl Inner {
    /// Logs an item the side behind refused for good: retrying cannot
    /// help, and it must not hold up the rest of the outbox.
    fn refused(&self, id: &str, toward: Toward, error: &StoreError) {
        self.observer.event(MirrorEvent::Refused);
        tracing::error!(
            id,
            side = ?toward,
            %error,
            "mirror: the store behind refused this item; it is not mirrored (edge-items reconcile lists it)"
        );
    }

    fn side(&self, toward: Toward) -> (&Arc<dyn ItemStore>, &Arc<dyn ItemStore>) {
        match toward {
            Toward::Secondary => (&self.primary, &self.secondary),
            Toward::Primary => (&self.secondary, &self.primary),
        }
    }

    /// Copies `id` from the side ahead to the side behind, as it stands.
    async fn copy_one(&self, id: &str, toward: Toward) -> StoreResult<()> {
        let (from, to) = self.side(toward);
        let write = match from.get(id).await {
            Ok(item) => BatchWrite::Put(BatchPut::restoring(item)),
            Err(StoreError::NotFound) => BatchWrite::Delete(id.to_owned()),
            Err(error) => return Err(error),
        };
        to.batch(vec![write]).await.map(|_| ())
    }

    /// Drains every listed item, or one round of at most `limit`.
    async fn drain(&self, limit: Option<usize>) -> StoreResult<Drained> {
        let mut drained = Drained::default();
        loop {
            let round = self
                .outbox
                .pending(limit.unwrap_or(DRAIN_ROUND))
                .await
                .map_err(outbox_failed)?;
            if round.is_empty() {
                return Ok(drained);
            }
            for pending in round {
                let ids = [pending.id];
                let _held = self.locks.lock(&ids).await;
                // A write may have settled it while we waited.
                let Some(toward) = self
                    .outbox
                    .direction(&ids[0])
                    .await
                    .map_err(outbox_failed)?
                else {
                    continue;
                };
                match self.copy_one(&ids[0], toward).await {
                    Ok(()) => {
                        self.observer.event(MirrorEvent::Drained(1));
                        match toward {
                            Toward::Secondary => drained.to_secondary += 1,
                            Toward::Primary => drained.to_primary += 1,
                        }
                    }
                    Err(error) if is_down(&error) => return Err(error),
                    Err(error) => {
                        self.refused(&ids[0], toward, &error);
                        drained.refused += 1;
                    }
                }
                self.outbox.remove(&ids).await.map_err(outbox_failed)?;
            }
            if limit.is_some() {
                return Ok(drained);
            }
        }
    }

    /// The write path shared by every write: list the ids, write the
    /// primary (or the secondary, per policy), replicate by state, unlist.
    async fn write<T, F, Fut>(&self, ids: Vec<String>, fails_over: bool, op: F) -> StoreResult<T>
    where
        T: Replicable,
        F: Fn(Arc<dyn ItemStore>) -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        if let Some(id) = ids.iter().find(|id| is_reserved(id)) {
            return Err(StoreError::invalid(format!(
                "the item id `{id}` starts with `{RESERVED_PREFIX}`, which the mirror store keeps for itself"
            )));
        }
        let _held = self.locks.lock(&ids).await;
        let fails_over = fails_over && self.policy == WritePolicy::Secondary;
        let mut secondary_behind = false;
        let mut primary_behind = false;
        // Only writes to the secondary leave ids behind on the primary, and
        // only they care whether the secondary is behind: under the default
        // policy the check (a read, with an outbox in the store) is skipped.
        let checked: &[String] = if self.policy == WritePolicy::Secondary {
            &ids
        } else {
            &[]
        };
        for id in checked {
            match self.outbox.direction(id).await.map_err(outbox_failed)? {
                Some(Toward::Secondary) => secondary_behind = true,
                Some(Toward::Primary) => {
                    // A write the secondary took during an outage goes back
                    // first, or this write would work on an older item.
                    match self.copy_one(id, Toward::Primary).await {
                        Ok(()) => self
                            .outbox
                            .remove(std::slice::from_ref(id))
                            .await
                            .map_err(outbox_failed)?,
                        Err(error) if is_down(&error) => primary_behind = true,
                        Err(error) => return Err(error),
                    }
                }
                None => {}
            }
        }
        if primary_behind {
            return if fails_over {
                self.write_secondary(&ids, op).await
            } else {
                Err(StoreError::Unavailable(
                    "the primary store is down and holds an older copy of this item".into(),
                ))
            };
        }
        let Some(attempt) = self.breaker.attempt() else {
            // Known down: not even tried.
            return if fails_over && !secondary_behind {
                self.write_secondary(&ids, op).await
            } else {
                Err(primary_down())
            };
        };
        self.outbox
            .add(&ids, Toward::Secondary)
            .await
            .map_err(outbox_failed)?;
        let written = op(self.primary.clone()).await;
        match &written {
            Err(error) if is_down(error) => attempt.failed(),
            _ => attempt.succeeded(),
        }
        match written {
            Ok(out) => {
                let Some(attempt) = self.secondary_breaker.attempt() else {
                    // The secondary is down: the drainer copies it later.
                    self.observer.event(MirrorEvent::Deferred);
                    return Ok(out);
                };
                let replicated = match out.replica_writes() {
                    Some(writes) if writes.is_empty() => Ok(()),
                    Some(writes) => self.secondary.batch(writes).await.map(|_| ()),
                    None => self.copy_all(&ids).await,
                };
                match replicated {
                    Ok(()) => {
                        attempt.succeeded();
                        self.outbox.remove(&ids).await.map_err(outbox_failed)?;
                    }
                    Err(error) if is_down(&error) => {
                        tracing::warn!(%error, "mirror: replication failed; the outbox keeps it");
                        attempt.failed();
                        self.observer.event(MirrorEvent::Deferred);
                        self.wake.notify_one();
                    }
                    Err(error) if ids.len() > 1 => {
                        // One item of the batch may be the cause: the
                        // drainer copies them one by one.
                        attempt.succeeded();
                        tracing::warn!(%error, "mirror: the secondary refused a batch; copying its items one by one");
                        self.wake.notify_one();
                    }
                    Err(error) => {
                        // The secondary answered: it cannot hold this item.
                        attempt.succeeded();
                        self.refused(&ids[0], Toward::Secondary, &error);
                        self.outbox.remove(&ids).await.map_err(outbox_failed)?;
                    }
                }
                Ok(out)
            }
            Err(error) if is_down(&error) && fails_over && !secondary_behind => {
                tracing::warn!(%error, "mirror: the primary is down; writing to the secondary");
                self.write_secondary(&ids, op).await
            }
            Err(error) => {
                if !is_down(&error) {
                    // Refused by the primary: nothing was written.
                    self.outbox.remove(&ids).await.map_err(outbox_failed)?;
                }
                Err(error)
            }
        }
    }

    async fn copy_all(&self, ids: &[String]) -> StoreResult<()> {
        for id in ids {
            self.copy_one(id, Toward::Secondary).await?;
        }
        Ok(())
    }

    async fn write_secondary<T, F, Fut>(&self, ids: &[String], op: F) -> StoreResult<T>
    where
        F: Fn(Arc<dyn ItemStore>) -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        self.outbox
            .add(ids, Toward::Primary)
            .await
            .map_err(outbox_failed)?;
        let result = op(self.secondary.clone()).await;
        match &result {
            Ok(_) => {
                self.observer.event(MirrorEvent::WroteToSecondary);
            }
            Err(error) if !is_down(error) => {
                self.outbox.remove(ids).await.map_err(outbox_failed)?;
            }
            Err(_) => {}
        }
        result
    }

    async fn read<T, F, Fut>(&self, op: F) -> StoreResult<T>
    where
        F: Fn(Arc<dyn ItemStore>) -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        let primary_error = match self.breaker.attempt() {
            Some(attempt) => match op(self.primary.clone()).await {
                Err(error) if is_down(&error) => {
                    tracing::warn!(%error, "mirror: the primary is down; reading from the secondary");
                    attempt.failed();
                    error
                }
                answer => {
                    attempt.succeeded();
                    return answer;
                }
            },
            None => primary_down(),
        };
        // Both down: the primary's error is the one to report.
        let Some(attempt) = self.secondary_breaker.attempt() else {
            return Err(primary_error);
        };
        match op(self.secondary.clone()).await {
            Err(error) if is_down(&error) => {
                attempt.failed();
                Err(primary_error)
            }
            // An answer, `not-found` included.
            answer => {
                attempt.succeeded();
                self.observer.event(MirrorEvent::ReadFromSecondary);
                answer
            }
        }
    }
}

/// What a write returned, as the writes that make the secondary equal;
/// `None` when the result does not say (a replayed keyed write, whose
/// recorded answer may be older than the item): the ids are then copied
/// as they stand.
trait Replicable {
    fn replica_writes(&self) -> Option<Vec<BatchWrite>>;
}

fn restoring(item: &Item) -> BatchWrite {
    BatchWrite::Put(BatchPut::restoring(item.clone()))
}

impl Replicable for Item {
    fn replica_writes(&self) -> Option<Vec<BatchWrite>> {
        Some(vec![restoring(self)])
    }
}

impl Replicable for (Item, PutOutcome) {
    fn replica_writes(&self) -> Option<Vec<BatchWrite>> {
        self.0.replica_writes()
    }
}

impl Replicable for BatchResult {
    fn replica_writes(&self) -> Option<Vec<BatchWrite>> {
        let puts = self.put.iter().map(restoring);
        let deletes = self.deleted.iter().cloned().map(BatchWrite::Delete);
        Some(puts.chain(deletes).collect())
    }
}

/// A delete, with the id it removed.
struct Deleted(String);

impl Replicable for Deleted {
    fn replica_writes(&self) -> Option<Vec<BatchWrite>> {
        Some(vec![BatchWrite::Delete(self.0.clone())])
    }
}

/// A keyed write's answer, with the id a delete removed.
struct AppliedTo(Applied, Option<String>);

impl Replicable for AppliedTo {
    fn replica_writes(&self) -> Option<Vec<BatchWrite>> {
        if self.0.replayed {
            return None;
        }
        match &self.0.written {
            Written::Item(item) | Written::Put(item, _) => item.replica_writes(),
            Written::Batch(result) => result.replica_writes(),
            Written::Deleted => self.1.clone().map(|id| vec![BatchWrite::Delete(id)]),
        }
    }
}

/// The ids a keyed write touches.
fn ids_of(write: &Write) -> Vec<String> {
    match write {
        Write::Batch(writes) => writes.iter().map(|w| w.id().to_owned()).collect(),
        other => other.id().map(str::to_owned).into_iter().collect(),
    }
}

#[async_trait]
impl ItemStore for MirrorStore {
    async fn get(&self, id: &str) -> StoreResult<Item> {
        if is_reserved(id) {
            return Err(StoreError::NotFound);
        }
        let inner = &self.inner;
        // An outbox that cannot be read (kept in a primary that is down)
        // must not stop the read from failing over: it is only consulted.
        if inner.policy == WritePolicy::Secondary
            && matches!(inner.outbox.direction(id).await, Ok(Some(Toward::Primary)))
        {
            // Written to the secondary during an outage, not copied back
            // yet: the secondary has the newer item.
            let item = inner.secondary.get(id).await;
            inner.observer.event(MirrorEvent::ReadFromSecondary);
            return item;
        }
        inner.read(|s| async move { s.get(id).await }).await
    }

    async fn create(&self, item: NewItem) -> StoreResult<Item> {
        let ids = vec![item.id.clone()];
        self.inner
            .write(ids, true, |s| {
                let item = item.clone();
                async move { s.create(item).await }
            })
            .await
    }

    async fn put(
        &self,
        item: NewItem,
        expected_version: Option<&str>,
    ) -> StoreResult<(Item, PutOutcome)> {
        let ids = vec![item.id.clone()];
        self.inner
            .write(ids, true, |s| {
                let item = item.clone();
                async move { s.put(item, expected_version).await }
            })
            .await
    }

    async fn update(
        &self,
        id: &str,
        patch: ItemPatch,
        expected_version: Option<&str>,
    ) -> StoreResult<Item> {
        self.inner
            .write(vec![id.to_owned()], true, |s| {
                let patch = patch.clone();
                async move { s.update(id, patch, expected_version).await }
            })
            .await
    }

    async fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()> {
        self.inner
            .write(vec![id.to_owned()], true, |s| async move {
                s.delete(id, expected_version)
                    .await
                    .map(|()| Deleted(id.to_owned()))
            })
            .await
            .map(|_| ())
    }

    async fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item> {
        self.inner
            .write(vec![id.to_owned()], true, |s| async move {
                s.increment(id, attribute, delta).await
            })
            .await
    }

    async fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult> {
        let ids = writes.iter().map(|w| w.id().to_owned()).collect();
        self.inner
            .write(ids, true, |s| {
                let writes = writes.clone();
                async move { s.batch(writes).await }
            })
            .await
    }

    async fn apply_once(&self, write: Write, once: Once) -> StoreResult<Applied> {
        let ids = ids_of(&write);
        let deleted = match &write {
            Write::Delete { id, .. } => Some(id.clone()),
            _ => None,
        };
        // The key's record lives in the primary: no failover, or a retry
        // after the outage would apply the write a second time.
        self.inner
            .write(ids, false, |s| {
                let (write, once, deleted) = (write.clone(), once.clone(), deleted.clone());
                async move {
                    s.apply_once(write, once)
                        .await
                        .map(|applied| AppliedTo(applied, deleted))
                }
            })
            .await
            .map(|applied| applied.0)
    }

    async fn query(&self, query: Query) -> StoreResult<Page> {
        if matches!(&query.key, IndexKey::Status(status) | IndexKey::UserStatus { status, .. } if status == OUTBOX_STATUS)
        {
            // The outbox's own entries, when it is kept in the primary.
            return Ok(Page::default());
        }
        self.inner
            .read(|s| {
                let query = query.clone();
                async move { s.query(query).await }
            })
            .await
    }

    async fn scan(&self, request: ScanRequest) -> StoreResult<ScanPage> {
        // A scan cursor is the store's own: no failover mid-scan.
        let mut page = self.inner.primary.scan(request).await?;
        page.items.retain(|scanned| !is_reserved(&scanned.item.id));
        Ok(page)
    }
}

#[cfg(test)]
mod tests;
