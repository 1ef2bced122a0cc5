//! The mirror store as a WASI 0.2 component: `api <- mirror <- {primary,
//! secondary}`, composed with wac (`cargo xtask build` makes
//! target/components/api-mirror.wasm: the Firestore adapter mirrored onto
//! the DynamoDB adapter; docs/multi-cloud.md shows other pairs).
//!
//! It imports `edge-items:store/store` (the primary) and
//! `edge-items:store/secondary-store` (the secondary; any adapter's `store`
//! export plugs into it), and exports `store` through `store-guest`, which
//! validates every call. The logic is `store-mirror`'s, the same code as
//! the host's `--store mirror`, run here over the imports:
//!
//! - the outbox is kept in the primary store itself ([`StoreOutbox`]): a
//!   component has no file that outlives it;
//! - there is no background: after each write whose replication worked,
//!   the instance drains up to [`DRAIN_AFTER_WRITE`] listed items (one
//!   status query on the primary when there are none), and `edge-items
//!   reconcile --mirror-outbox primary` drains the rest from outside;
//! - each request is a fresh instance, so the breakers start closed on
//!   every request: during an outage each request pays the primary's
//!   timeout once (`EDGE_ITEMS_BACKEND_TIMEOUT`, read by the adapters).
//!
//! Configuration, from the environment: `EDGE_ITEMS_MIRROR_WRITES`, only
//! `refuse` (the default: writes fail with 503 while the primary is down;
//! `secondary` needs an outbox outside the primary, which a component has
//! not); the two adapters read their own settings from the same
//! environment.

mod imports;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use item_model::{
    Applied, BatchResult, BatchWrite, Item, ItemPatch, ItemStore, NewItem, Once, Page, PutOutcome,
    Query, ScanPage, ScanRequest, StoreError, Write,
};
use store_guest::{BlockingStore, StoreResult};
use store_mirror::{MirrorEvent, MirrorObserver, MirrorStore, StoreOutbox, WritePolicy};

use crate::imports::{Primary, Secondary};

/// Items drained after a write.
pub const DRAIN_AFTER_WRITE: usize = 10;

/// The mirror over this instance's two imports.
pub struct MirrorAdapter {
    mirror: MirrorStore,
    served: Arc<ServedBySecondary>,
}

/// Whether the secondary answered a call of this instance (one request).
#[derive(Default)]
struct ServedBySecondary(AtomicBool);

impl MirrorObserver for ServedBySecondary {
    fn event(&self, event: MirrorEvent) {
        if matches!(
            event,
            MirrorEvent::ReadFromSecondary | MirrorEvent::WroteToSecondary
        ) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// `EDGE_ITEMS_MIRROR_WRITES`: only `refuse` (the default). Taking writes
/// on the secondary while the primary is down needs an outbox that
/// outlives the outage, and a component's is in the primary.
fn policy(value: Option<&str>) -> StoreResult<WritePolicy> {
    match value {
        None | Some("refuse") => Ok(WritePolicy::Refuse),
        Some("secondary") => Err(StoreError::Backend(
            "EDGE_ITEMS_MIRROR_WRITES=secondary is not supported by the mirror component: its \
             outbox is in the primary and cannot list writes taken while the primary is down; \
             use refuse, or the host's --store mirror with --mirror-outbox FILE"
                .into(),
        )),
        Some(other) => Err(StoreError::Backend(format!(
            "EDGE_ITEMS_MIRROR_WRITES is `{other}`; use `refuse`"
        ))),
    }
}

/// Runs one of the mirror's futures to its end. Over blocking imports
/// nothing it awaits can be pending (its locks are uncontended in a
/// single-threaded instance), so one poll finishes it; a pending future
/// would be a bug, answered as a backend error rather than a hang.
fn run<T>(future: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => result,
        Poll::Pending => Err(StoreError::Backend(
            "the mirror adapter waited on something that cannot finish in a component".into(),
        )),
    }
}

impl MirrorAdapter {
    fn new(policy: WritePolicy) -> Self {
        let primary: Arc<dyn ItemStore> = Arc::new(Primary);
        let outbox = Arc::new(StoreOutbox::new(primary.clone()));
        let served = Arc::new(ServedBySecondary::default());
        Self {
            mirror: MirrorStore::new(primary, Arc::new(Secondary), outbox, policy)
                .observed(served.clone()),
            served,
        }
    }

    /// A write, then a little draining if it worked.
    fn write<T>(&self, future: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let result = run(future);
        if result.is_ok() {
            // What is left stays listed for the next write or reconcile.
            let _ = run(self.mirror.drain_up_to(DRAIN_AFTER_WRITE));
        }
        result
    }
}

impl BlockingStore for MirrorAdapter {
    const NAME: &'static str = "mirror-adapter";

    fn instance() -> StoreResult<&'static Self> {
        static STORE: OnceLock<StoreResult<MirrorAdapter>> = OnceLock::new();
        STORE
            .get_or_init(|| {
                let writes = component_http::env("EDGE_ITEMS_MIRROR_WRITES");
                policy(writes.as_deref()).map(MirrorAdapter::new)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn get(&self, id: &str) -> StoreResult<Item> {
        run(self.mirror.get(id))
    }

    fn create(&self, item: NewItem) -> StoreResult<Item> {
        self.write(self.mirror.create(item))
    }

    fn put(
        &self,
        item: NewItem,
        expected_version: Option<&str>,
    ) -> StoreResult<(Item, PutOutcome)> {
        self.write(self.mirror.put(item, expected_version))
    }

    fn update(
        &self,
        id: &str,
        patch: ItemPatch,
        expected_version: Option<&str>,
    ) -> StoreResult<Item> {
        self.write(self.mirror.update(id, patch, expected_version))
    }

    fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()> {
        self.write(self.mirror.delete(id, expected_version))
    }

    fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item> {
        self.write(self.mirror.increment(id, attribute, delta))
    }

    fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult> {
        self.write(self.mirror.batch(writes))
    }

    fn apply_once(&self, write: Write, once: Once) -> StoreResult<Applied> {
        self.write(self.mirror.apply_once(write, once))
    }

    fn query(&self, query: Query) -> StoreResult<Page> {
        run(self.mirror.query(query))
    }

    fn scan(&self, request: ScanRequest) -> StoreResult<ScanPage> {
        run(self.mirror.scan(request))
    }

    fn served_by_secondary(&self) -> bool {
        self.served.0.load(Ordering::Relaxed)
    }
}

#[cfg(target_arch = "wasm32")]
store_guest::export_store!(MirrorAdapter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_policy_is_read_and_a_wrong_one_named() {
        assert_eq!(policy(None), Ok(WritePolicy::Refuse));
        assert_eq!(policy(Some("refuse")), Ok(WritePolicy::Refuse));
        let Err(StoreError::Backend(message)) = policy(Some("secondary")) else {
            panic!("refused");
        };
        assert!(message.contains("--mirror-outbox FILE"), "{message}");
        let Err(StoreError::Backend(message)) = policy(Some("both")) else {
            panic!("refused");
        };
        assert!(message.contains("`both`"), "{message}");
    }

    #[test]
    fn a_future_that_cannot_finish_is_an_error_not_a_hang() {
        assert_eq!(run(async { Ok(1) }), Ok(1));
        let never = std::future::pending::<StoreResult<()>>();
        assert!(matches!(run(never), Err(StoreError::Backend(_))));
    }
}
