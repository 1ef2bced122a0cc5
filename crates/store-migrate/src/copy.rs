//! The copy: one task per segment reads a page from the source, writes it
//! to the target as one batch of puts that keep the items' times, then
//! records the page's cursor in the checkpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use item_store::{
    BatchPut, BatchWrite, Item, ItemStore, MAX_BATCH_WRITES, MAX_QUERY_LIMIT, ScanRequest, Scanned,
    StoreError, validate,
};
use tokio::sync::Mutex;

use crate::checkpoint::{Checkpoint, CheckpointError};

/// How a copy reads and writes.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Segments read in parallel, 1 to [`item_store::MAX_SCAN_SEGMENTS`].
    pub segments: u32,
    /// Items per page, and so per batch: 1 to [`MAX_BATCH_WRITES`].
    pub page_size: u32,
    /// Only items updated at or after this time (a catch-up copy).
    pub updated_since: Option<String>,
    /// Copy expired items that the source has not removed yet (by default
    /// they are passed over: every read hides them anyway).
    pub include_expired: bool,
    /// Attempts per page against throttling or an unavailable backend
    /// before the copy stops (its checkpoint kept).
    pub attempts: u32,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            segments: 4,
            page_size: MAX_BATCH_WRITES as u32,
            updated_since: None,
            include_expired: false,
            attempts: 10,
        }
    }
}

/// An item the target refused, with its reason (for example a number
/// Firestore cannot hold exactly): reported, never written changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The item's id.
    pub id: String,
    /// The target's reason.
    pub reason: String,
}

/// What a copy did in this run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Items written in this run.
    pub copied: u64,
    /// Expired items passed over in this run.
    pub skipped_expired: u64,
    /// Items the target refused in this run.
    pub refused: Vec<Refused>,
    /// The copy stopped because it was asked to (its checkpoint is saved).
    pub interrupted: bool,
}

/// Why a copy stopped before the end. Its checkpoint holds every page
/// written before, so running it again resumes.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Reading the source failed.
    #[error("reading the source failed: {0}")]
    Source(StoreError),
    /// Writing the target failed.
    #[error("writing the target failed: {0}")]
    Target(StoreError),
    /// The checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The options are out of range.
    #[error("{0}")]
    Options(String),
}

/// Told of the copy's progress, from every segment's task.
pub trait Progress: Send + Sync {
    /// `items` more were handled (written, passed over or refused).
    fn advanced(&self, items: u64);
}

impl Progress for () {
    fn advanced(&self, _: u64) {}
}

/// Copies every item of `from` into `to` (see the crate docs), resuming
/// from `checkpoint` and saving it after every page. Stops early, with the
/// checkpoint saved and `interrupted` set, once `stop` is set.
pub async fn copy(
    from: Arc<dyn ItemStore>,
    to: Arc<dyn ItemStore>,
    options: &CopyOptions,
    checkpoint: Checkpoint,
    progress: Arc<dyn Progress>,
    stop: Arc<AtomicBool>,
) -> Result<CopyReport, CopyError> {
    check(options)?;
    if checkpoint.segments.len() != options.segments as usize {
        return Err(CopyError::Options(format!(
            "the checkpoint has {} segments, the copy {}",
            checkpoint.segments.len(),
            options.segments
        )));
    }
    let shared = Arc::new(Shared {
        from,
        to,
        options: options.clone(),
        checkpoint: Mutex::new(checkpoint),
        progress,
        stop,
        report: Mutex::new(CopyReport::default()),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for segment in 0..options.segments {
        let shared = shared.clone();
        tasks.spawn(async move { shared.copy_segment(segment).await });
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.unwrap_or_else(|e| {
            Err(CopyError::Target(StoreError::Backend(format!(
                "a copy task failed: {e}"
            ))))
        });
        if let Err(e) = result {
            // One segment's failure stops the others at their next page.
            shared.stop.store(true, Ordering::SeqCst);
            first_error.get_or_insert(e);
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let mut report = shared.report.lock().await.clone();
    report.interrupted = !shared.checkpoint.lock().await.is_complete();
    Ok(report)
}

/// Counts the items of `store` (expired ones apart unless
/// `include_expired`): a full scan, for a progress bar's total.
pub async fn count(
    store: Arc<dyn ItemStore>,
    segments: u32,
    updated_since: Option<String>,
    include_expired: bool,
) -> Result<u64, StoreError> {
    let found = read_all(store, segments, updated_since, include_expired, |_| ()).await?;
    Ok(found.len() as u64)
}

/// Reads every item of `store` (those updated since `updated_since`,
/// expired ones apart unless `include_expired`), all segments in parallel,
/// and keeps what `map` makes of each.
pub(crate) async fn read_all<T, F>(
    store: Arc<dyn ItemStore>,
    segments: u32,
    updated_since: Option<String>,
    include_expired: bool,
    map: F,
) -> Result<Vec<T>, StoreError>
where
    T: Send + 'static,
    F: Fn(&Item) -> T + Clone + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for segment in 0..segments {
        let (store, map) = (store.clone(), map.clone());
        let mut request = ScanRequest::first(segment, segments, MAX_QUERY_LIMIT);
        request.updated_since = updated_since.clone();
        tasks.spawn(async move {
            let mut found = Vec::new();
            loop {
                let page = with_retries(10, || store.scan(request.clone())).await?;
                found.extend(
                    page.items
                        .iter()
                        .filter(|s| include_expired || !s.expired)
                        .map(|s| map(&s.item)),
                );
                match page.next_cursor {
                    Some(cursor) => request.cursor = Some(cursor),
                    None => return Ok::<_, StoreError>(found),
                }
            }
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined.map_err(|e| StoreError::Backend(format!("a read task failed: {e}")))??);
    }
    Ok(all)
}

fn check(options: &CopyOptions) -> Result<(), CopyError> {
    // The segments and the page size must make a valid scan...
    validate::scan(&ScanRequest::first(0, options.segments, options.page_size))
        .map_err(|e| CopyError::Options(e.to_string()))?;
    // ...and a page must fit in one batch.
    if options.page_size as usize > MAX_BATCH_WRITES {
        return Err(CopyError::Options(format!(
            "the page size must be between 1 and {MAX_BATCH_WRITES}"
        )));
    }
    Ok(())
}

struct Shared {
    from: Arc<dyn ItemStore>,
    to: Arc<dyn ItemStore>,
    options: CopyOptions,
    checkpoint: Mutex<Checkpoint>,
    progress: Arc<dyn Progress>,
    stop: Arc<AtomicBool>,
    report: Mutex<CopyReport>,
}

impl Shared {
    async fn copy_segment(&self, segment: u32) -> Result<(), CopyError> {
        let mut request =
            ScanRequest::first(segment, self.options.segments, self.options.page_size);
        request.updated_since = self.options.updated_since.clone();
        {
            let checkpoint = self.checkpoint.lock().await;
            let state = &checkpoint.segments[segment as usize];
            if state.done {
                return Ok(());
            }
            request.cursor = state.cursor.clone();
        }
        while !self.stop.load(Ordering::SeqCst) {
            let page = with_retries(self.options.attempts, || self.from.scan(request.clone()))
                .await
                .map_err(CopyError::Source)?;
            let handled = page.items.len() as u64;
            let live: Vec<Scanned> = page
                .items
                .into_iter()
                .filter(|s| self.options.include_expired || !s.expired)
                .collect();
            let skipped_expired = handled - live.len() as u64;
            let (copied, refused) = self.write(live).await?;
            {
                let mut checkpoint = self.checkpoint.lock().await;
                let state = &mut checkpoint.segments[segment as usize];
                state.copied += copied;
                state.skipped_expired += skipped_expired;
                state.refused += refused.len() as u64;
                state.cursor = page.next_cursor.clone();
                state.done = page.next_cursor.is_none();
                checkpoint.save()?;
            }
            {
                let mut report = self.report.lock().await;
                report.copied += copied;
                report.skipped_expired += skipped_expired;
                report.refused.extend(refused);
            }
            self.progress.advanced(handled);
            match page.next_cursor {
                Some(cursor) => request.cursor = Some(cursor),
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// Writes one page as one batch. A batch the target refuses as a whole
    /// (one item it cannot hold) is written again item by item, so that
    /// only the items it cannot hold are left out, and reported.
    async fn write(&self, items: Vec<Scanned>) -> Result<(u64, Vec<Refused>), CopyError> {
        if items.is_empty() {
            return Ok((0, Vec::new()));
        }
        let puts: Vec<BatchWrite> = items
            .into_iter()
            .map(|s| BatchWrite::Put(BatchPut::restoring(s.item)))
            .collect();
        let count = puts.len() as u64;
        match with_retries(self.options.attempts, || self.to.batch(puts.clone())).await {
            Ok(_) => return Ok((count, Vec::new())),
            Err(StoreError::InvalidInput(_)) if puts.len() > 1 => {}
            Err(StoreError::InvalidInput(reason)) => {
                return Ok((0, vec![refused(&puts[0], reason)]));
            }
            Err(e) => return Err(CopyError::Target(e)),
        }
        let (mut copied, mut refusals) = (0, Vec::new());
        for put in puts {
            match with_retries(self.options.attempts, || self.to.batch(vec![put.clone()])).await {
                Ok(_) => copied += 1,
                Err(StoreError::InvalidInput(reason)) => refusals.push(refused(&put, reason)),
                Err(e) => return Err(CopyError::Target(e)),
            }
        }
        Ok((copied, refusals))
    }
}

fn refused(put: &BatchWrite, reason: String) -> Refused {
    Refused {
        id: put.id().to_owned(),
        reason,
    }
}

/// Runs `call` until it succeeds, fails for good, or has been tried
/// `attempts` times: throttling waits as long as the store asks (at least
/// the backoff), unavailability waits the backoff (100 ms doubling to 10 s).
pub(crate) async fn with_retries<T, F, Fut>(attempts: u32, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        let error = match call().await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        let wait = match &error {
            StoreError::Throttled(ms) => backoff.max(Duration::from_millis(u64::from(*ms))),
            StoreError::Unavailable(_) => backoff,
            _ => return Err(error),
        };
        if attempt >= attempts {
            return Err(error);
        }
        tracing::info!(%error, attempt, wait_ms = wait.as_millis() as u64, "retrying");
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use item_store::{Attribute, NewItem, Value};
    use store_embedded::EmbeddedStore;

    use super::*;
    use crate::verify;

    fn item(n: u32) -> NewItem {
        NewItem {
            id: format!("{:08x}-item", n.wrapping_mul(2_654_435_761)),
            user_id: Some(format!("user-{}", n % 7)),
            status: n.is_multiple_of(3).then(|| "active".to_owned()),
            expires_at: None,
            attributes: vec![
                Attribute::new("n", Value::Number(n.to_string())),
                Attribute::new("tags", Value::Json(format!(r#"["t{n}",{{"deep":{n}.5}}]"#))),
            ],
        }
    }

    /// Stops the copy once it has handled `after` items.
    struct StopAfter {
        after: u64,
        seen: AtomicU64,
        stop: Arc<AtomicBool>,
    }

    impl Progress for StopAfter {
        fn advanced(&self, items: u64) {
            if self.seen.fetch_add(items, Ordering::SeqCst) + items >= self.after {
                self.stop.store(true, Ordering::SeqCst);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupted_copy_resumes_and_ends_exact() {
        let dir = tempfile::tempdir().unwrap();
        let from: Arc<dyn ItemStore> =
            Arc::new(EmbeddedStore::open(dir.path().join("a.db")).unwrap());
        let to: Arc<dyn ItemStore> =
            Arc::new(EmbeddedStore::open(dir.path().join("b.db")).unwrap());
        for chunk in (0..500).collect::<Vec<u32>>().chunks(100) {
            let writes = chunk.iter().map(|&n| {
                BatchWrite::Put(BatchPut {
                    item: item(n),
                    created_at: Some(format!("2020-01-01T00:00:{:02}.{n:06}Z", n % 60)),
                    updated_at: None,
                })
            });
            from.batch(writes.collect()).await.unwrap();
        }
        let mut gone = item(9999);
        gone.expires_at = Some(1);
        from.create(gone).await.unwrap();
        let options = CopyOptions {
            segments: 3,
            page_size: 40,
            ..CopyOptions::default()
        };
        let path = dir.path().join("cp.json");

        let stop = Arc::new(AtomicBool::new(false));
        let stopper = Arc::new(StopAfter {
            after: 150,
            seen: AtomicU64::new(0),
            stop: stop.clone(),
        });
        let checkpoint = Checkpoint::open(&path, "a -> b", 3, "t0", false).unwrap();
        let first = copy(
            from.clone(),
            to.clone(),
            &options,
            checkpoint,
            stopper,
            stop,
        )
        .await
        .unwrap();
        assert!(first.interrupted, "{first:?}");
        assert!(first.copied >= 150 && first.copied < 500, "{first:?}");
        let partial = verify(from.clone(), to.clone(), 2, false).await.unwrap();
        assert!(!partial.is_equal());

        let checkpoint = Checkpoint::open(&path, "a -> b", 3, "t1", false).unwrap();
        assert!(checkpoint.is_resumed());
        let rest = copy(
            from.clone(),
            to.clone(),
            &options,
            checkpoint,
            Arc::new(()),
            Arc::default(),
        )
        .await
        .unwrap();
        assert!(!rest.interrupted);
        assert!(first.copied + rest.copied >= 500);
        assert_eq!(
            first.skipped_expired + rest.skipped_expired,
            1,
            "the expired item"
        );
        assert!(
            first.copied + rest.copied <= 500 + 3 * 40,
            "at most a page per segment again"
        );
        let saved = Checkpoint::open(&path, "a -> b", 3, "t2", false).unwrap();
        assert!(saved.is_complete());

        let comparison = verify(from.clone(), to.clone(), 4, false).await.unwrap();
        assert!(comparison.is_equal(), "{comparison:?}");
        assert_eq!(comparison.target_items, 500);
        let original = from.get(&item(7).id).await.unwrap();
        let copied = to.get(&item(7).id).await.unwrap();
        assert_eq!(
            (copied.created_at, copied.updated_at),
            (original.created_at, original.updated_at)
        );

        to.delete(&item(8).id, None).await.unwrap();
        to.increment(&item(9).id, "n", 1).await.unwrap();
        to.create(item(10_000)).await.unwrap();
        let comparison = verify(from.clone(), to.clone(), 1, false).await.unwrap();
        let mut expected = vec![
            verify::Difference::MissingInTarget(item(8).id),
            verify::Difference::Changed(item(9).id),
            verify::Difference::OnlyInTarget(item(10_000).id),
        ];
        expected.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        let mut found = comparison.differences.clone();
        found.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        assert_eq!(found, expected);

        assert_eq!(crate::prune(to.as_ref(), &comparison).await.unwrap(), 1);
        assert_eq!(to.get(&item(10_000).id).await, Err(StoreError::NotFound));
        let after = verify(from.clone(), to.clone(), 2, false).await.unwrap();
        assert_eq!(after.differences.len(), 2, "{after:?}");

        // Repair copies what is missing or different, as the source has it
        // now, and deletes what only the target has.
        to.create(item(10_001)).await.unwrap();
        let before = verify(from.clone(), to.clone(), 2, false).await.unwrap();
        let repaired = crate::repair(from.as_ref(), to.as_ref(), &before)
            .await
            .unwrap();
        assert_eq!(
            repaired,
            crate::Repaired {
                copied: 2,
                deleted: 1
            }
        );
        let equal = verify(from.clone(), to.clone(), 2, false).await.unwrap();
        assert!(equal.is_equal(), "{equal:?}");
        assert_eq!(
            to.get(&item(9).id).await.unwrap().updated_at,
            from.get(&item(9).id).await.unwrap().updated_at
        );
    }
}
