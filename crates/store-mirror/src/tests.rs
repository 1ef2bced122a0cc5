//! The mirror on two embedded stores. Outages are injected by [`Switch`],
//! a wrapper that answers `unavailable` while off: no real backend can be
//! made to fail on cue inside a unit test (the real outage, DynamoDB Local
//! killed, is host/tests/mirror.rs).

use std::sync::atomic::{AtomicBool, Ordering};

use std::sync::Mutex;

use item_model::{Attribute, IndexKey, Order, Value};
use store_embedded::EmbeddedStore;

use super::*;

/// Counts the answers the secondary gave.
#[derive(Default)]
struct Served(Mutex<u32>);

impl Served {
    fn by_secondary(&self) -> u32 {
        *self.0.lock().unwrap()
    }
}

impl MirrorObserver for Served {
    fn event(&self, event: MirrorEvent) {
        if matches!(
            event,
            MirrorEvent::ReadFromSecondary | MirrorEvent::WroteToSecondary
        ) {
            *self.0.lock().unwrap() += 1;
        }
    }
}

/// A store that can be switched off; the secondary refuses writes of ids
/// starting with `refused` (as Firestore refuses numbers it cannot hold).
struct Switch {
    store: EmbeddedStore,
    down: AtomicBool,
    refusing: bool,
}

fn refuses(writes: &[BatchWrite]) -> bool {
    writes.iter().any(|w| w.id().starts_with("refused"))
}

impl Switch {
    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> StoreResult<&EmbeddedStore> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("switched off".into()))
        } else {
            Ok(&self.store)
        }
    }
}

#[async_trait]
impl ItemStore for Switch {
    async fn get(&self, id: &str) -> StoreResult<Item> {
        self.check()?.get(id).await
    }
    async fn create(&self, item: NewItem) -> StoreResult<Item> {
        self.check()?.create(item).await
    }
    async fn put(&self, item: NewItem, v: Option<&str>) -> StoreResult<(Item, PutOutcome)> {
        self.check()?.put(item, v).await
    }
    async fn update(&self, id: &str, patch: ItemPatch, v: Option<&str>) -> StoreResult<Item> {
        self.check()?.update(id, patch, v).await
    }
    async fn delete(&self, id: &str, v: Option<&str>) -> StoreResult<()> {
        self.check()?.delete(id, v).await
    }
    async fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item> {
        self.check()?.increment(id, attribute, delta).await
    }
    async fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult> {
        let store = self.check()?;
        if self.refusing && refuses(&writes) {
            return Err(StoreError::invalid("this store cannot hold it"));
        }
        store.batch(writes).await
    }
    async fn apply_once(&self, write: Write, once: Once) -> StoreResult<Applied> {
        self.check()?.apply_once(write, once).await
    }
    async fn query(&self, query: Query) -> StoreResult<Page> {
        self.check()?.query(query).await
    }
    async fn scan(&self, request: ScanRequest) -> StoreResult<ScanPage> {
        self.check()?.scan(request).await
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    primary: Arc<Switch>,
    secondary: Arc<Switch>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str, refusing| {
            Arc::new(Switch {
                store: EmbeddedStore::open(dir.path().join(name)).unwrap(),
                down: AtomicBool::new(false),
                refusing,
            })
        };
        let (primary, secondary) = (open("primary.db", false), open("secondary.db", true));
        Self {
            dir,
            primary,
            secondary,
        }
    }

    /// A mirror over the two stores; a second call is the process
    /// restarted on the same outbox.
    fn mirror(&self, policy: WritePolicy) -> MirrorStore {
        let outbox = SqliteOutbox::open(self.dir.path().join("outbox.db")).unwrap();
        MirrorStore::new(
            self.primary.clone(),
            self.secondary.clone(),
            Arc::new(outbox),
            policy,
        )
    }

    /// A mirror whose outbox is kept in the primary store.
    fn mirror_with_outbox_in_primary(&self, policy: WritePolicy) -> MirrorStore {
        let outbox = StoreOutbox::new(self.primary.clone());
        MirrorStore::new(
            self.primary.clone(),
            self.secondary.clone(),
            Arc::new(outbox),
            policy,
        )
    }
}

/// How many ids `mirror`'s outbox lists.
async fn pending(mirror: &MirrorStore) -> usize {
    mirror.outbox().pending(1000).await.unwrap().len()
}

fn item(id: &str) -> NewItem {
    NewItem {
        id: id.into(),
        user_id: Some("u".into()),
        status: Some("active".into()),
        expires_at: None,
        attributes: vec![Attribute::new("likes", Value::Number("1".into()))],
    }
}

fn by_user() -> Query {
    Query {
        key: IndexKey::UserId("u".into()),
        order: Order::Asc,
        limit: 10,
        cursor: None,
    }
}

#[tokio::test]
async fn writes_reach_both_sides_with_the_same_times() {
    let f = Fixture::new();
    let mirror = f.mirror(WritePolicy::Refuse);
    let created = mirror.create(item("a")).await.unwrap();
    let liked = mirror.increment("a", "likes", 2).await.unwrap();
    let copy = f.secondary.get("a").await.unwrap();
    assert_eq!(copy.created_at, created.created_at);
    assert_eq!(copy.updated_at, liked.updated_at);
    assert_eq!(copy.attribute("likes"), Some(&Value::Number("3".into())));
    mirror.create(item("b")).await.unwrap();
    mirror.delete("b", None).await.unwrap();
    assert_eq!(f.secondary.get("b").await, Err(StoreError::NotFound));
    mirror
        .batch(vec![
            BatchWrite::Put(BatchPut::restoring(f.primary.get("a").await.unwrap())),
            BatchWrite::Put(BatchPut {
                item: item("c"),
                created_at: None,
                updated_at: None,
            }),
        ])
        .await
        .unwrap();
    assert_eq!(f.secondary.get("c").await.unwrap().id, "c");
    assert_eq!(pending(&mirror).await, 0);
}

#[tokio::test]
async fn reads_fail_over_to_the_secondary_and_say_so() {
    let f = Fixture::new();
    let served = Arc::new(Served::default());
    let mirror = f.mirror(WritePolicy::Refuse).observed(served.clone());
    mirror.create(item("a")).await.unwrap();
    mirror.get("a").await.unwrap();
    assert_eq!(served.by_secondary(), 0, "the primary answered");

    f.primary.set_down(true);
    let read = mirror.get("a").await.unwrap();
    assert_eq!(read.id, "a");
    let page = mirror.query(by_user()).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(served.by_secondary(), 2);
    // `not-found` from the secondary is an answer too.
    assert_eq!(mirror.get("nope").await, Err(StoreError::NotFound));
    // Writes are refused by default: the secondary never gets ahead.
    let refused = mirror.create(item("b")).await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    assert_eq!(f.secondary.get("b").await, Err(StoreError::NotFound));
    // Both down: the primary's error.
    f.secondary.set_down(true);
    assert!(matches!(
        mirror.get("a").await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn acknowledged_writes_reach_the_secondary_after_a_restart() {
    let f = Fixture::new();
    let mirror = f.mirror(WritePolicy::Refuse);
    mirror.create(item("keep")).await.unwrap();
    mirror.create(item("gone")).await.unwrap();
    f.secondary.set_down(true);
    // Acknowledged by the primary while the secondary is down.
    mirror.create(item("new")).await.unwrap();
    mirror.increment("keep", "likes", 5).await.unwrap();
    mirror.delete("gone", None).await.unwrap();
    assert_eq!(pending(&mirror).await, 3);
    // The process dies: nothing in memory survives.
    drop(mirror);
    f.secondary.set_down(false);
    let restarted = f.mirror(WritePolicy::Refuse);
    let drained = restarted.drain().await.unwrap();
    assert_eq!(drained.to_secondary, 3);
    for id in ["new", "keep"] {
        let (p, s) = (
            f.primary.get(id).await.unwrap(),
            f.secondary.get(id).await.unwrap(),
        );
        assert_eq!((p.attributes, p.updated_at), (s.attributes, s.updated_at));
    }
    assert_eq!(f.secondary.get("gone").await, Err(StoreError::NotFound));
    assert_eq!(pending(&restarted).await, 0);
}

#[tokio::test]
async fn the_drainer_repairs_in_the_background() {
    let f = Fixture::new();
    let mirror = f.mirror(WritePolicy::Refuse);
    let drainer = mirror.spawn_drainer();
    f.secondary.set_down(true);
    mirror.create(item("a")).await.unwrap();
    f.secondary.set_down(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pending(&mirror).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not drained in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(f.secondary.get("a").await.unwrap().id, "a");
    drainer.abort();
}

#[tokio::test]
async fn with_the_secondary_policy_writes_go_on_and_come_back() {
    let f = Fixture::new();
    let served = Arc::new(Served::default());
    let mirror = f.mirror(WritePolicy::Secondary).observed(served.clone());
    let before = mirror.create(item("a")).await.unwrap();
    f.primary.set_down(true);
    let during = mirror.increment("a", "likes", 1).await.unwrap();
    mirror.create(item("b")).await.unwrap();
    assert_eq!(served.by_secondary(), 2);
    assert_eq!(
        mirror.outbox().direction("a").await.unwrap(),
        Some(Toward::Primary)
    );
    // A keyed write never fails over: its record is the primary's.
    let keyed = mirror
        .apply_once(
            Write::Create(item("c")),
            Once {
                key: "k".into(),
                fingerprint: "f".into(),
                expires_at: 4_000_000_000,
            },
        )
        .await;
    assert!(
        matches!(keyed, Err(StoreError::Unavailable(_))),
        "{keyed:?}"
    );

    f.primary.set_down(false);
    // Reading an item the primary has not got back yet: the secondary's.
    assert_eq!(mirror.get("b").await.unwrap().id, "b");
    let drained = mirror.drain().await.unwrap();
    assert_eq!(drained.to_primary, 2);
    let back = f.primary.get("a").await.unwrap();
    assert_eq!(back.created_at, before.created_at);
    assert_eq!(back.updated_at, during.updated_at);
    assert_eq!(back.attribute("likes"), Some(&Value::Number("2".into())));
    assert_eq!(f.primary.get("b").await.unwrap().id, "b");
}

#[tokio::test]
async fn an_item_the_secondary_is_behind_on_is_not_written_there() {
    let f = Fixture::new();
    let mirror = f.mirror(WritePolicy::Secondary);
    mirror.create(item("a")).await.unwrap();
    f.secondary.set_down(true);
    mirror.increment("a", "likes", 1).await.unwrap(); // pending toward the secondary
    f.secondary.set_down(false);
    f.primary.set_down(true);
    let refused = mirror.increment("a", "likes", 1).await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    // Other items still fail over.
    mirror.create(item("b")).await.unwrap();
}

#[tokio::test]
async fn a_write_the_primary_refuses_leaves_nothing_pending() {
    let f = Fixture::new();
    let mirror = f.mirror(WritePolicy::Refuse);
    mirror.create(item("a")).await.unwrap();
    assert_eq!(
        mirror.create(item("a")).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        mirror.update("nope", ItemPatch::default(), None).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(pending(&mirror).await, 0);
}

#[tokio::test]
async fn an_item_the_secondary_refuses_does_not_hold_up_the_others() {
    let f = Fixture::new();
    let mirror = f.mirror(WritePolicy::Refuse);
    // Alone: refused at once, nothing left pending.
    mirror.create(item("refused-1")).await.unwrap();
    assert_eq!(pending(&mirror).await, 0);
    // In a batch with others: they are copied one by one by the drainer.
    let put = |id: &str| {
        BatchWrite::Put(BatchPut {
            item: item(id),
            created_at: None,
            updated_at: None,
        })
    };
    mirror
        .batch(vec![put("a"), put("refused-2"), put("b")])
        .await
        .unwrap();
    let drained = mirror.drain().await.unwrap();
    assert_eq!((drained.to_secondary, drained.refused), (2, 1));
    assert_eq!(f.secondary.get("b").await.unwrap().id, "b");
    assert_eq!(
        f.secondary.get("refused-2").await,
        Err(StoreError::NotFound)
    );
    assert_eq!(pending(&mirror).await, 0);
}

#[tokio::test]
async fn with_the_outbox_in_the_primary_writes_survive_a_restart_and_entries_stay_hidden() {
    let f = Fixture::new();
    let mirror = f.mirror_with_outbox_in_primary(WritePolicy::Refuse);
    mirror.create(item("a")).await.unwrap();
    f.secondary.set_down(true);
    mirror.create(item("b")).await.unwrap();
    mirror.delete("a", None).await.unwrap();
    assert_eq!(pending(&mirror).await, 2);
    // Hidden from the mirror's callers, refused as ids.
    let listed = mirror
        .query(Query {
            key: IndexKey::Status(OUTBOX_STATUS.into()),
            order: Order::Asc,
            limit: 10,
            cursor: None,
        })
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    let scanned = mirror.scan(ScanRequest::first(0, 1, 100)).await.unwrap();
    let ids: Vec<&str> = scanned.items.iter().map(|s| s.item.id.as_str()).collect();
    assert_eq!(ids, vec!["b"]);
    let reserved = format!("{RESERVED_PREFIX}x");
    assert_eq!(mirror.get(&reserved).await, Err(StoreError::NotFound));
    assert!(matches!(
        mirror.create(item(&reserved)).await,
        Err(StoreError::InvalidInput(_))
    ));

    drop(mirror);
    f.secondary.set_down(false);
    let restarted = f.mirror_with_outbox_in_primary(WritePolicy::Refuse);
    assert_eq!(restarted.drain().await.unwrap().to_secondary, 2);
    assert_eq!(f.secondary.get("b").await.unwrap().id, "b");
    assert_eq!(f.secondary.get("a").await, Err(StoreError::NotFound));
    assert_eq!(pending(&restarted).await, 0);
}

#[tokio::test]
async fn reads_fail_over_even_with_the_outbox_in_the_dead_primary() {
    let f = Fixture::new();
    let mirror = f.mirror_with_outbox_in_primary(WritePolicy::Secondary);
    mirror.create(item("a")).await.unwrap();
    f.primary.set_down(true);
    assert_eq!(mirror.get("a").await.unwrap().id, "a");
    // A write cannot be listed in a dead primary: refused, not lost.
    let refused = mirror.create(item("b")).await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    assert_eq!(f.secondary.get("b").await, Err(StoreError::NotFound));
}
