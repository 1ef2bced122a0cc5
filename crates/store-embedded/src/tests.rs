//! The store against real SQLite files in temporary directories: what this
//! crate adds to sqlite-core (whose tests cover each operation's rules):
//! the async API, connections, concurrency, the file and its lifetime.

use std::collections::HashSet;

use item_store::{
    Attribute, BatchPut, BatchWrite, IndexKey, ItemPatch, ItemStore, NewItem, Order, PutOutcome,
    Query, StoreError, Timestamp, Value,
};
use tempfile::TempDir;

use crate::{EmbeddedStore, OpenError};

fn open() -> (TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(dir.path().join("data").join("items.db")).expect("open");
    (dir, store)
}

fn new_item(id: &str) -> NewItem {
    NewItem {
        id: id.into(),
        user_id: Some("u1".into()),
        status: Some("active".into()),
        expires_at: None,
        attributes: vec![
            Attribute::new("name", Value::Text("My Item".into())),
            Attribute::new("likes", Value::Number("5".into())),
        ],
    }
}

fn by_user(user: &str, order: Order, limit: u32, cursor: Option<String>) -> Query {
    Query {
        key: IndexKey::UserId(user.into()),
        order,
        limit,
        cursor,
    }
}

fn now_seconds() -> i64 {
    Timestamp::now().unix_seconds()
}

#[tokio::test]
async fn every_operation_through_the_async_api() {
    let (_dir, store) = open();
    let created = store.create(new_item("a")).await.unwrap();
    assert_eq!(created.version, "1");
    assert_eq!(store.get("a").await.unwrap(), created);
    assert_eq!(
        store.create(new_item("a")).await,
        Err(StoreError::AlreadyExists)
    );
    let (replaced, outcome) = store.put(new_item("a"), Some("1")).await.unwrap();
    assert_eq!(
        (replaced.version.as_str(), outcome),
        ("2", PutOutcome::Replaced)
    );
    let patch = ItemPatch {
        set: vec![Attribute::new("color", Value::Text("red".into()))],
        ..Default::default()
    };
    assert_eq!(
        store.update("a", patch.clone(), Some("1")).await,
        Err(StoreError::VersionMismatch(Some("2".into())))
    );
    let updated = store.update("a", patch, Some("2")).await.unwrap();
    assert_eq!(updated.attribute("color"), Some(&Value::Text("red".into())));
    let liked = store.increment("a", "likes", 2).await.unwrap();
    assert_eq!(liked.attribute("likes"), Some(&Value::Number("7".into())));
    assert_eq!(liked.version, "4");

    let result = store
        .batch(vec![
            BatchWrite::Put(BatchPut {
                item: new_item("b"),
                created_at: Some("2020-01-02T03:04:05Z".into()),
                updated_at: None,
            }),
            BatchWrite::Delete("a".into()),
        ])
        .await
        .unwrap();
    assert_eq!(result.put[0].created_at, "2020-01-02T03:04:05.000000Z");
    assert_eq!(store.get("a").await, Err(StoreError::NotFound));
    let page = store
        .query(by_user("u1", Order::Asc, 10, None))
        .await
        .unwrap();
    assert_eq!(page.items, result.put);
    store.delete("b", Some("1")).await.unwrap();
    assert_eq!(store.delete("b", None).await, Err(StoreError::NotFound));
}

#[tokio::test]
async fn writes_purge_expired_rows() {
    let (_dir, store) = open();
    // Another writer leaves an expired row; this store's first write
    // purges it.
    let other = rusqlite::Connection::open(store.path()).unwrap();
    let mut expired = new_item("expired");
    expired.expires_at = Some(now_seconds() - 10);
    sqlite_core::Items::new(&other, &item_store::WriteClock::new())
        .create(expired)
        .unwrap();
    store.create(new_item("live")).await.unwrap();
    let ids: Vec<String> = other
        .prepare("SELECT id FROM items")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ids, ["live"]);
}

#[tokio::test]
async fn paging_never_skips_or_repeats_under_concurrent_writes() {
    let (_dir, store) = open();
    let mut originals = HashSet::new();
    for i in 0..60 {
        let id = format!("orig-{i:02}");
        store.create(new_item(&id)).await.unwrap();
        originals.insert(id);
    }
    // Deleted while paging; each may or may not be seen, but never twice.
    let doomed: Vec<String> = (0..60).step_by(6).map(|i| format!("orig-{i:02}")).collect();
    let stable: HashSet<String> = originals
        .iter()
        .filter(|id| !doomed.contains(id))
        .cloned()
        .collect();

    for order in [Order::Asc, Order::Desc] {
        let writer = {
            let store = store.clone();
            let doomed = doomed.clone();
            tokio::spawn(async move {
                for i in 0..60 {
                    store
                        .create(new_item(&format!("new-{order:?}-{i:02}")))
                        .await
                        .unwrap();
                    if let Some(id) = doomed.get(i / 6).filter(|_| i % 6 == 0) {
                        let _ = store.delete(id, None).await;
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.query(by_user("u1", order, 4, cursor)).await.unwrap();
            seen.extend(page.items.into_iter().map(|i| i.id));
            tokio::task::yield_now().await;
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        writer.await.unwrap();
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{order:?}: an item was repeated");
        for id in &stable {
            assert!(unique.contains(id), "{order:?}: {id} was skipped");
        }
        // Put the deleted ones back for the next round.
        for id in &doomed {
            let _ = store.put(new_item(id), None).await;
        }
    }
}

/// `count` increments by one, spread over `stores` and all at once: each
/// must see a version of its own.
async fn race_increments(stores: &[EmbeddedStore], id: &str, count: usize) {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            let id = id.to_owned();
            tokio::spawn(async move { store.increment(&id, "likes", 1).await })
        })
        .collect();
    let mut versions = HashSet::new();
    for task in tasks {
        let item = task.await.unwrap().unwrap();
        assert!(
            versions.insert(item.version),
            "two increments saw one version"
        );
    }
}

/// Twenty updates expecting `version`, spread over `stores` and all at
/// once: exactly one wins, and the others are told the winner's version.
async fn race_conditional_updates(stores: &[EmbeddedStore], id: &str, version: &str) {
    let next = (version.parse::<u64>().unwrap() + 1).to_string();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            let (id, version) = (id.to_owned(), version.to_owned());
            tokio::spawn(async move {
                let patch = ItemPatch {
                    set: vec![Attribute::new("winner", Value::Number(i.to_string()))],
                    ..Default::default()
                };
                store.update(&id, patch, Some(version.as_str())).await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(item) => {
                wins += 1;
                assert_eq!(item.version, next);
            }
            Err(StoreError::VersionMismatch(Some(current))) => assert_eq!(current, next),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_are_exact() {
    let (_dir, store) = open();
    store.create(new_item("counter")).await.unwrap();
    race_increments(std::slice::from_ref(&store), "counter", 200).await;
    let item = store.get("counter").await.unwrap();
    assert_eq!(item.attribute("likes"), Some(&Value::Number("205".into())));
    assert_eq!(item.version, "201");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_conditional_update_wins() {
    let (_dir, store) = open();
    let created = store.create(new_item("a")).await.unwrap();
    race_conditional_updates(std::slice::from_ref(&store), "a", &created.version).await;
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("items.db");
    let created = {
        let store = EmbeddedStore::open(&path).unwrap();
        store.create(new_item("a")).await.unwrap();
        store.increment("a", "likes", 1).await.unwrap()
    };
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.get("a").await.unwrap(), created);
    let updated = store.increment("a", "likes", 1).await.unwrap();
    assert_eq!(updated.version, "3");
    assert!(updated.updated_at > created.updated_at);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("items.db");
    drop(EmbeddedStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    match EmbeddedStore::open(&path) {
        Err(OpenError::NewerSchema { found: 99, .. }) => {}
        other => panic!("expected a schema error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_write_exactly() {
    // Two stores are two writer connections, as two processes would have:
    // no mutex of ours is between them, only SQLite's atomic statements.
    let (_dir, first) = open();
    let second = EmbeddedStore::open(first.path()).unwrap();
    let stores = [first.clone(), second.clone()];
    first.create(new_item("counter")).await.unwrap();
    race_increments(&stores, "counter", 100).await;
    let item = second.get("counter").await.unwrap();
    assert_eq!(item.attribute("likes"), Some(&Value::Number("105".into())));
    assert_eq!(item.version, "101");
    race_conditional_updates(&stores, "counter", "101").await;
}

#[test]
fn commits_wait_for_the_disk_unless_told_otherwise() {
    let synchronous = |store: &EmbeddedStore| -> i64 {
        crate::lock(&store.shared.writer)
            .conn
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .expect("synchronous")
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // SQLite's codes: 2 is FULL, 1 is NORMAL.
    let full = EmbeddedStore::open(dir.path().join("full.db")).expect("open");
    assert_eq!(synchronous(&full), 2);
    let normal = EmbeddedStore::open_with(dir.path().join("normal.db"), crate::Durability::Normal)
        .expect("open");
    assert_eq!(synchronous(&normal), 1);
}
