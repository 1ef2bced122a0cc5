//! Writes applied at most once per key (`apply_once`) against a real
//! DynamoDB Local, each test on a table of its own.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{endpoint, fresh_store, raw_call};
use dynamodb_protocol::{Credentials, MAX_KEYED_BATCH};
use item_store::{
    Applied, Attribute, BatchPut, BatchWrite, IndexKey, Item, ItemPatch, ItemStore, NewItem, Once,
    Order, PutOutcome, Query, StoreError, Timestamp, Value, Write, Written,
};
use serde_json::json;
use store_dynamodb::DynamoDbStore;
use tokio::task::JoinSet;

fn item(id: &str) -> NewItem {
    NewItem {
        id: id.into(),
        user_id: Some("u1".into()),
        status: Some("open".into()),
        attributes: vec![
            Attribute::new("name", Value::Text(format!("item {id}"))),
            Attribute::new("likes", Value::Number("0".into())),
        ],
        ..Default::default()
    }
}

fn once(key: &str, fingerprint: &str) -> Once {
    Once {
        key: key.into(),
        fingerprint: fingerprint.into(),
        expires_at: Timestamp::now().unix_seconds() + 3600,
    }
}

fn like(id: &str) -> Write {
    Write::Increment {
        id: id.into(),
        attribute: "likes".into(),
        delta: 1,
    }
}

fn likes(item: &Item) -> i64 {
    match item.attribute("likes") {
        Some(Value::Number(n)) => n.parse().unwrap(),
        other => panic!("{other:?}"),
    }
}

/// Every item id the table holds (a raw Scan, records included).
async fn scan(table: &str) -> Vec<serde_json::Value> {
    let credentials = Credentials::new("AKIDEXAMPLE", "local-secret", None).unwrap();
    let r = raw_call(
        &endpoint(),
        table,
        credentials,
        "Scan",
        json!({"TableName": table, "ConsistentRead": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    body["Items"].as_array().unwrap().clone()
}

/// Applies `write` with `key`, then again: the second call replays the
/// first exactly and writes nothing.
async fn applied_once_then_replayed(
    store: &DynamoDbStore,
    table: &str,
    write: Write,
    key: &str,
) -> Written {
    let first = store
        .apply_once(write.clone(), once(key, "f"))
        .await
        .unwrap();
    assert!(!first.replayed, "{key}");
    let before = scan(table).await;
    let again = store.apply_once(write, once(key, "f")).await.unwrap();
    assert_eq!(
        again,
        Applied {
            written: first.written.clone(),
            replayed: true
        },
        "{key}"
    );
    assert_eq!(scan(table).await, before, "{key}: a replay writes nothing");
    first.written
}

#[tokio::test]
async fn every_kind_of_write_is_applied_once_then_replayed() {
    let (store, table) = fresh_store().await;

    let Written::Item(created) =
        applied_once_then_replayed(&store, &table, Write::Create(item("a")), "create").await
    else {
        panic!()
    };
    assert_eq!(store.get("a").await.unwrap(), created);

    let put = Write::Put {
        item: item("a"),
        expected_version: Some(created.version.clone()),
    };
    let Written::Put(replaced, PutOutcome::Replaced) =
        applied_once_then_replayed(&store, &table, put, "put").await
    else {
        panic!()
    };
    assert_eq!(replaced.created_at, created.created_at);
    assert_eq!(store.get("a").await.unwrap(), replaced);

    let update = Write::Update {
        id: "a".into(),
        patch: ItemPatch {
            status: Some(Some("done".into())),
            set: vec![Attribute::new("price", Value::Number("1.50".into()))],
            ..Default::default()
        },
        expected_version: None,
    };
    let Written::Item(updated) = applied_once_then_replayed(&store, &table, update, "update").await
    else {
        panic!()
    };
    assert_eq!(
        updated.attribute("price"),
        Some(&Value::Number("1.5".into()))
    );
    assert_eq!(store.get("a").await.unwrap(), updated);

    let Written::Item(liked) = applied_once_then_replayed(&store, &table, like("a"), "like").await
    else {
        panic!()
    };
    assert_eq!(likes(&liked), 1);
    assert_eq!(store.get("a").await.unwrap(), liked);

    let delete = Write::Delete {
        id: "a".into(),
        expected_version: Some(liked.version.clone()),
    };
    assert_eq!(
        applied_once_then_replayed(&store, &table, delete, "delete").await,
        Written::Deleted
    );
    assert_eq!(store.get("a").await, Err(StoreError::NotFound));

    store.create(item("old")).await.unwrap();
    let batch = Write::Batch(vec![
        BatchWrite::Put(BatchPut {
            item: item("b"),
            created_at: Some("2020-05-01T12:00:00+02:00".into()),
            updated_at: None,
        }),
        BatchWrite::Delete("old".into()),
        BatchWrite::Delete("never".into()),
    ]);
    let Written::Batch(result) = applied_once_then_replayed(&store, &table, batch, "batch").await
    else {
        panic!()
    };
    assert_eq!(result.deleted, ["old", "never"]);
    assert_eq!(result.put[0].created_at, "2020-05-01T10:00:00.000000Z");
    assert_eq!(store.get("b").await.unwrap(), result.put[0]);
    assert_eq!(store.get("old").await, Err(StoreError::NotFound));
}

#[tokio::test]
async fn another_request_with_a_used_key_is_refused() {
    let (store, _) = fresh_store().await;
    store.create(item("a")).await.unwrap();
    store.apply_once(like("a"), once("k", "f1")).await.unwrap();
    assert_eq!(
        store.apply_once(like("a"), once("k", "f2")).await,
        Err(StoreError::KeyReused)
    );
    let create = Write::Create(item("other"));
    assert_eq!(
        store.apply_once(create, once("k", "f2")).await,
        Err(StoreError::KeyReused)
    );
    assert_eq!(likes(&store.get("a").await.unwrap()), 1);
    assert_eq!(store.get("other").await, Err(StoreError::NotFound));
}

#[tokio::test]
async fn a_failed_keyed_write_records_nothing_and_may_be_retried() {
    let (store, table) = fresh_store().await;
    let before = scan(&table).await;
    assert_eq!(
        store.apply_once(like("a"), once("k", "f")).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(scan(&table).await, before, "nothing recorded");
    let created = store.create(item("a")).await.unwrap();
    let applied = store.apply_once(like("a"), once("k", "f")).await.unwrap();
    assert!(!applied.replayed);

    let stale = Write::Update {
        id: "a".into(),
        patch: ItemPatch::default(),
        expected_version: Some(created.version.clone()),
    };
    assert_eq!(
        store.apply_once(stale, once("u", "f")).await,
        Err(StoreError::VersionMismatch(Some("2".into())))
    );
    let current = Write::Update {
        id: "a".into(),
        patch: ItemPatch::default(),
        expected_version: Some("2".into()),
    };
    let applied = store.apply_once(current, once("u", "f")).await.unwrap();
    assert!(!applied.replayed);
    assert_eq!(store.get("a").await.unwrap().version, "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_calls_with_one_key_apply_once() {
    let (store, _) = fresh_store().await;
    store.create(item("c")).await.unwrap();
    let mut tasks = JoinSet::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.spawn(async move { store.apply_once(like("c"), once("same", "f")).await });
    }
    let (mut fresh, mut replays, mut in_use) = (Vec::new(), Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(applied) if applied.replayed => replays.push(applied.written),
            Ok(applied) => fresh.push(applied.written),
            Err(StoreError::KeyInUse) => in_use += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(fresh.len(), 1, "one call applies the write");
    assert!(replays.iter().all(|w| *w == fresh[0]), "the rest replay it");
    assert_eq!(fresh.len() + replays.len() + in_use, 50);
    eprintln!("one key: {} replays, {in_use} key-in-use", replays.len());
    let counted = store.get("c").await.unwrap();
    assert_eq!(likes(&counted), 1);
    assert_eq!(Written::Item(counted), fresh[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_calls_with_different_keys_apply_each() {
    let (store, _) = fresh_store().await;
    store.create(item("c")).await.unwrap();
    let mut tasks = JoinSet::new();
    for i in 0..50 {
        let store = store.clone();
        tasks.spawn(async move {
            let key = format!("k{i}");
            let applied = store.apply_once(like("c"), once(&key, "f")).await?;
            let replay = store.apply_once(like("c"), once(&key, "f")).await?;
            assert_eq!(replay.written, applied.written);
            assert!(!applied.replayed && replay.replayed);
            Ok::<_, StoreError>(applied.written)
        });
    }
    let mut counts = HashSet::new();
    while let Some(done) = tasks.join_next().await {
        let Written::Item(item) = done.unwrap().unwrap() else {
            panic!()
        };
        assert!(counts.insert(likes(&item)), "each call sees its own count");
    }
    assert_eq!(counts, (1..=50).collect());
    assert_eq!(likes(&store.get("c").await.unwrap()), 50);
}

#[tokio::test]
async fn an_expired_record_frees_its_key() {
    let (store, _) = fresh_store().await;
    store.create(item("c")).await.unwrap();
    let short = Once {
        expires_at: Timestamp::now().unix_seconds() + 2,
        ..once("k", "f")
    };
    assert!(
        !store
            .apply_once(like("c"), short.clone())
            .await
            .unwrap()
            .replayed
    );
    assert!(
        store
            .apply_once(like("c"), short.clone())
            .await
            .unwrap()
            .replayed
    );
    while Timestamp::now().unix_seconds() < short.expires_at {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Expired (DynamoDB's TTL has not removed it yet): the key is free,
    // for this request or another one.
    let again = Once {
        fingerprint: "g".into(),
        ..once("k", "g")
    };
    let applied = store.apply_once(like("c"), again.clone()).await.unwrap();
    assert!(!applied.replayed);
    assert!(store.apply_once(like("c"), again).await.unwrap().replayed);
    assert_eq!(likes(&store.get("c").await.unwrap()), 2);
}

#[tokio::test]
async fn keyed_batches_hold_at_most_99_writes() {
    let (store, _) = fresh_store().await;
    let writes = |n: usize| {
        (0..n)
            .map(|i| {
                BatchWrite::Put(BatchPut {
                    item: item(&format!("b{i:03}")),
                    created_at: None,
                    updated_at: None,
                })
            })
            .collect::<Vec<_>>()
    };
    let e = store
        .apply_once(Write::Batch(writes(100)), once("big", "f"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::InvalidInput(m) if m.contains("at most 99 writes")),
        "{e:?}"
    );
    assert_eq!(store.get("b000").await, Err(StoreError::NotFound));
    let applied = store
        .apply_once(Write::Batch(writes(MAX_KEYED_BATCH)), once("full", "f"))
        .await
        .unwrap();
    let Written::Batch(result) = applied.written else {
        panic!()
    };
    assert_eq!(result.put.len(), 99);
    assert_eq!(store.get("b098").await.unwrap(), result.put[98]);
}

#[tokio::test]
async fn a_result_too_large_to_record_writes_nothing() {
    let (store, table) = fresh_store().await;
    let mut big = item("big");
    big.attributes
        .push(Attribute::new("blob", Value::Text("x".repeat(360 * 1024))));
    let e = store
        .apply_once(Write::Create(big.clone()), once("k", "f"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::InvalidInput(m) if m.contains("too large to record")),
        "{e:?}"
    );
    assert!(scan(&table).await.is_empty());
    // Without a key it is an ordinary item.
    store.create(big).await.unwrap();
}

#[tokio::test]
async fn records_are_no_items() {
    let (store, table) = fresh_store().await;
    store.create(item("a")).await.unwrap();
    store
        .apply_once(Write::Create(item("b")), once("create", "f"))
        .await
        .unwrap();
    store
        .apply_once(like("a"), once("like", "f"))
        .await
        .unwrap();
    let batch = Write::Batch(vec![BatchWrite::Put(BatchPut {
        item: item("c"),
        created_at: None,
        updated_at: None,
    })]);
    store.apply_once(batch, once("batch", "f")).await.unwrap();

    // The records are in the table, as the docs describe them.
    let all = scan(&table).await;
    let records: Vec<_> = all
        .iter()
        .filter(|i| i["itemId"]["S"].as_str().unwrap().starts_with("once/"))
        .collect();
    assert_eq!(records.len(), 3);
    for record in &records {
        let mut names: Vec<_> = record.as_object().unwrap().keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["expiresAt", "fingerprint", "itemId", "written"]);
        assert!(record["expiresAt"]["N"].is_string());
    }

    // No query lists them.
    let ids = |page: item_store::Page| page.items.into_iter().map(|i| i.id).collect::<Vec<_>>();
    for key in [
        IndexKey::UserId("u1".into()),
        IndexKey::Status("open".into()),
        IndexKey::UserStatus {
            user_id: "u1".into(),
            status: "open".into(),
        },
    ] {
        let query = Query {
            key,
            order: Order::Asc,
            limit: 100,
            cursor: None,
        };
        assert_eq!(ids(store.query(query).await.unwrap()), ["a", "b", "c"]);
    }

    // The backfill finds nothing to do and leaves them alone.
    let backfilled = store.backfill_user_status().await.unwrap();
    assert_eq!((backfilled.found, backfilled.updated), (0, 0));
    assert_eq!(scan(&table).await, all);
}
