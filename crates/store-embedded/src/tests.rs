//! The store against real SQLite files in temporary directories.

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
async fn create_then_get() {
    let (_dir, store) = open();
    let created = store.create(new_item("a")).await.unwrap();
    assert_eq!(created.version, "1");
    assert_eq!(created.created_at, created.updated_at);
    assert!(Timestamp::parse(&created.created_at).is_ok());
    assert_eq!(store.get("a").await.unwrap(), created);
    assert_eq!(store.get("b").await, Err(StoreError::NotFound));
    assert_eq!(
        store.create(new_item("a")).await,
        Err(StoreError::AlreadyExists)
    );
}

#[tokio::test]
async fn put_creates_replaces_and_keeps_created_at() {
    let (_dir, store) = open();
    let (first, outcome) = store.put(new_item("a"), None).await.unwrap();
    assert_eq!(outcome, PutOutcome::Created);
    assert_eq!(first.version, "1");

    let mut replacement = new_item("a");
    replacement.attributes = vec![Attribute::new("name", Value::Text("new".into()))];
    replacement.status = None;
    let (second, outcome) = store.put(replacement, None).await.unwrap();
    assert_eq!(outcome, PutOutcome::Replaced);
    assert_eq!(second.created_at, first.created_at);
    assert!(second.updated_at > first.updated_at);
    assert_eq!(second.version, "2");
    assert_eq!(second.status, None);
    assert_eq!(second.attribute("likes"), None);
    assert_eq!(store.get("a").await.unwrap(), second);
}

#[tokio::test]
async fn put_with_expected_version() {
    let (_dir, store) = open();
    assert_eq!(
        store.put(new_item("a"), Some("1")).await,
        Err(StoreError::VersionMismatch(None))
    );
    store.create(new_item("a")).await.unwrap();
    assert_eq!(
        store.put(new_item("a"), Some("7")).await,
        Err(StoreError::VersionMismatch(Some("1".into())))
    );
    let (item, outcome) = store.put(new_item("a"), Some("1")).await.unwrap();
    assert_eq!(
        (item.version.as_str(), outcome),
        ("2", PutOutcome::Replaced)
    );
}

#[tokio::test]
async fn update_patches_and_checks() {
    let (_dir, store) = open();
    let patch = ItemPatch {
        user_id: Some(Some("u2".into())),
        status: Some(None),
        expires_at: None,
        set: vec![Attribute::new("color", Value::Text("red".into()))],
        remove: vec!["name".into(), "absent".into()],
    };
    assert_eq!(
        store.update("a", patch.clone(), None).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.update("a", patch.clone(), Some("1")).await,
        Err(StoreError::VersionMismatch(None))
    );
    let created = store.create(new_item("a")).await.unwrap();
    assert_eq!(
        store.update("a", patch.clone(), Some("9")).await,
        Err(StoreError::VersionMismatch(Some("1".into())))
    );
    let updated = store.update("a", patch, Some("1")).await.unwrap();
    assert_eq!(updated.version, "2");
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(updated.user_id.as_deref(), Some("u2"));
    assert_eq!(updated.status, None);
    assert_eq!(updated.attribute("name"), None);
    assert_eq!(updated.attribute("likes"), Some(&Value::Number("5".into())));
    assert_eq!(updated.attribute("color"), Some(&Value::Text("red".into())));
    assert_eq!(store.get("a").await.unwrap(), updated);
}

#[tokio::test]
async fn delete_checks_and_removes() {
    let (_dir, store) = open();
    assert_eq!(store.delete("a", None).await, Err(StoreError::NotFound));
    store.create(new_item("a")).await.unwrap();
    assert_eq!(
        store.delete("a", Some("2")).await,
        Err(StoreError::VersionMismatch(Some("1".into())))
    );
    store.delete("a", Some("1")).await.unwrap();
    assert_eq!(store.get("a").await, Err(StoreError::NotFound));
    assert_eq!(store.delete("a", None).await, Err(StoreError::NotFound));
    // A new item under an old id starts over.
    assert_eq!(store.create(new_item("a")).await.unwrap().version, "1");
}

#[tokio::test]
async fn increment_counts_and_refuses_non_integers() {
    let (_dir, store) = open();
    assert_eq!(
        store.increment("a", "likes", 1).await,
        Err(StoreError::NotFound)
    );
    store.create(new_item("a")).await.unwrap();
    let item = store.increment("a", "likes", 3).await.unwrap();
    assert_eq!(item.attribute("likes"), Some(&Value::Number("8".into())));
    assert_eq!(item.version, "2");
    let item = store.increment("a", "likes", -10).await.unwrap();
    assert_eq!(item.attribute("likes"), Some(&Value::Number("-2".into())));
    let item = store.increment("a", "views", 1).await.unwrap();
    assert_eq!(item.attribute("views"), Some(&Value::Number("1".into())));

    let invalid = |r: Result<_, StoreError>, needle: &str| match r {
        Err(StoreError::InvalidInput(message)) => {
            assert!(message.contains(needle), "{message}")
        }
        other => panic!("expected invalid input, got {other:?}"),
    };
    invalid(store.increment("a", "name", 1).await, "not a number");
    let patch = |name: &str, literal: &str| ItemPatch {
        set: vec![Attribute::new(name, Value::Number(literal.into()))],
        ..Default::default()
    };
    store
        .update("a", patch("ratio", "0.5"), None)
        .await
        .unwrap();
    invalid(store.increment("a", "ratio", 1).await, "whole number");
    store
        .update("a", patch("huge", "99999999999999999999"), None)
        .await
        .unwrap();
    invalid(store.increment("a", "huge", 1).await, "range");
    store
        .update("a", patch("max", &i64::MAX.to_string()), None)
        .await
        .unwrap();
    invalid(store.increment("a", "max", 1).await, "overflow");
    // Failed increments change nothing.
    assert_eq!(store.get("a").await.unwrap().version, "7");
}

#[tokio::test]
async fn batch_puts_and_deletes() {
    let (_dir, store) = open();
    store.create(new_item("old")).await.unwrap();
    store.create(new_item("gone")).await.unwrap();
    let result = store
        .batch(vec![
            BatchWrite::Put(BatchPut {
                item: new_item("imported"),
                created_at: Some("2020-01-02T03:04:05+01:00".into()),
            }),
            BatchWrite::Put(BatchPut {
                item: new_item("old"),
                created_at: None,
            }),
            BatchWrite::Delete("gone".into()),
            BatchWrite::Delete("never-was".into()),
        ])
        .await
        .unwrap();
    assert_eq!(result.put.len(), 2);
    assert_eq!(result.put[0].id, "imported");
    assert_eq!(result.put[0].created_at, "2020-01-02T02:04:05.000000Z");
    assert_eq!(result.put[0].version, "1");
    assert_eq!(result.put[1].id, "old");
    assert_eq!(result.put[1].version, "2");
    assert_eq!(result.deleted, vec!["gone".to_string(), "never-was".into()]);
    assert_eq!(store.get("imported").await.unwrap(), result.put[0]);
    assert_eq!(store.get("gone").await, Err(StoreError::NotFound));

    let bad = store
        .batch(vec![BatchWrite::Put(BatchPut {
            item: new_item("x"),
            created_at: Some("yesterday".into()),
        })])
        .await;
    assert!(matches!(bad, Err(StoreError::InvalidInput(_))), "{bad:?}");
    assert_eq!(store.get("x").await, Err(StoreError::NotFound));
}

#[tokio::test]
async fn query_orders_and_pages() {
    let (_dir, store) = open();
    let mut ids = Vec::new();
    for i in 0..25 {
        let id = format!("item-{i:02}");
        let mut item = new_item(&id);
        item.status = Some(if i % 2 == 0 { "even" } else { "odd" }.into());
        store.create(item).await.unwrap();
        ids.push(id);
    }
    let mut other = new_item("someone-else");
    other.user_id = Some("u2".into());
    store.create(other).await.unwrap();

    for order in [Order::Asc, Order::Desc] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.query(by_user("u1", order, 7, cursor)).await.unwrap();
            assert!(page.items.len() <= 7);
            seen.extend(page.items.into_iter().map(|i| i.id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut expected = ids.clone();
        if order == Order::Desc {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{order:?}");
    }

    let page = store
        .query(Query {
            key: IndexKey::Status("odd".into()),
            order: Order::Asc,
            limit: 100,
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 12);
    assert!(page.next_cursor.is_none());
    assert!(
        page.items
            .iter()
            .all(|i| i.status.as_deref() == Some("odd"))
    );

    // An exact fit has no next page.
    let page = store
        .query(by_user("u1", Order::Asc, 25, None))
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.next_cursor), (25, None));
    assert!(
        store
            .query(by_user("nobody", Order::Asc, 5, None))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn query_rejects_foreign_and_damaged_cursors() {
    let (_dir, store) = open();
    for id in ["a", "b", "c"] {
        store.create(new_item(id)).await.unwrap();
    }
    let page = store
        .query(by_user("u1", Order::Asc, 1, None))
        .await
        .unwrap();
    let cursor = page.next_cursor.expect("more pages");
    for query in [
        by_user("u1", Order::Desc, 1, Some(cursor.clone())),
        by_user("u2", Order::Asc, 1, Some(cursor.clone())),
        by_user("u1", Order::Asc, 1, Some(format!("{cursor}x"))),
        by_user("u1", Order::Asc, 1, Some("garbage".into())),
    ] {
        let result = store.query(query).await;
        assert!(
            matches!(result, Err(StoreError::InvalidInput(_))),
            "{result:?}"
        );
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_are_exact() {
    let (_dir, store) = open();
    store.create(new_item("counter")).await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.increment("counter", "likes", 1).await })
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
    let item = store.get("counter").await.unwrap();
    assert_eq!(item.attribute("likes"), Some(&Value::Number("205".into())));
    assert_eq!(item.version, "201");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_conditional_update_wins() {
    let (_dir, store) = open();
    let created = store.create(new_item("a")).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let version = created.version.clone();
            tokio::spawn(async move {
                let patch = ItemPatch {
                    set: vec![Attribute::new("winner", Value::Number(i.to_string()))],
                    ..Default::default()
                };
                store.update("a", patch, Some(version.as_str())).await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(item) => {
                wins += 1;
                assert_eq!(item.version, "2");
            }
            Err(StoreError::VersionMismatch(Some(current))) => assert_eq!(current, "2"),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn expired_items_are_absent() {
    let (_dir, store) = open();
    let mut item = new_item("old");
    item.expires_at = Some(now_seconds() - 1);
    store.create(item).await.unwrap();
    let mut live = new_item("live");
    live.expires_at = Some(now_seconds() + 3600);
    store.create(live).await.unwrap();

    assert_eq!(store.get("old").await, Err(StoreError::NotFound));
    assert_eq!(
        store.update("old", ItemPatch::default(), None).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.increment("old", "likes", 1).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(store.delete("old", None).await, Err(StoreError::NotFound));
    let page = store
        .query(by_user("u1", Order::Asc, 10, None))
        .await
        .unwrap();
    let ids: Vec<_> = page.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["live"]);

    // An expired id is free again, and a put over it creates.
    let recreated = store.create(new_item("old")).await.unwrap();
    assert_eq!(recreated.version, "1");
    let mut again = new_item("old2");
    again.expires_at = Some(now_seconds());
    store.create(again).await.unwrap();
    let (_, outcome) = store.put(new_item("old2"), None).await.unwrap();
    assert_eq!(outcome, PutOutcome::Created);
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

#[tokio::test]
async fn values_keep_their_exact_form() {
    let (_dir, store) = open();
    let attributes = vec![
        Attribute::new("price", Value::Number("12345678901234567890.5".into())),
        Attribute::new("tiny", Value::Number("1e-400".into())),
        Attribute::new("flag", Value::Bool(false)),
        Attribute::new("nothing", Value::Null),
        Attribute::new("looks-like-json", Value::Text("{\"a\":1}".into())),
        Attribute::new("nested", Value::Json("[1,{\"b\":[true,null]}]".into())),
        Attribute::new("ünïcödé name", Value::Text("✓".into())),
    ];
    let mut item = new_item("a");
    item.attributes = attributes.clone();
    store.create(item).await.unwrap();
    assert_eq!(store.get("a").await.unwrap().attributes, attributes);
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

#[test]
fn queries_read_the_indexes_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("items.db");
    drop(EmbeddedStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    for (key, index) in [
        (IndexKey::UserId("u".into()), "items_by_user"),
        (IndexKey::Status("s".into()), "items_by_status"),
    ] {
        for order in [Order::Asc, Order::Desc] {
            for resume in [false, true] {
                let sql = format!(
                    "EXPLAIN QUERY PLAN {}",
                    crate::query_sql(&key, order, resume)
                );
                let mut stmt = conn.prepare(&sql).unwrap();
                let plan: Vec<String> = stmt
                    .query_map(
                        rusqlite::params_from_iter(
                            ["u", "0", "10", "2026-01-01T00:00:00.000000Z", "a"]
                                .into_iter()
                                .take(if resume { 5 } else { 3 }),
                        ),
                        |r| r.get::<_, String>(3),
                    )
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                let plan = plan.join("; ");
                assert!(plan.contains(index), "{sql}: {plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{sql} sorts: {plan}");
            }
        }
    }
}
