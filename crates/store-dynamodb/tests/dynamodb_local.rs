//! The DynamoDB store against a real DynamoDB Local (Amazon's own
//! emulator), each test on a table of its own.

mod common;

use std::collections::HashSet;

use common::{endpoint, fresh_store, fresh_table, local_config, raw_call};
use dynamodb_protocol::Credentials;
use item_store::{
    Attribute, BatchPut, BatchWrite, IndexKey, ItemPatch, ItemStore, NewItem, Once, Order,
    PutOutcome, Query, ScanRequest, Scanned, StoreError, Timestamp, Value, Write,
};
use serde_json::json;
use store_dynamodb::DynamoDbStore;
use tokio::task::JoinSet;

fn item(id: &str) -> NewItem {
    NewItem {
        id: id.into(),
        attributes: vec![Attribute::new("name", Value::Text(format!("item {id}")))],
        ..Default::default()
    }
}

fn number(text: &str) -> Value {
    Value::Number(text.into())
}

fn now_seconds() -> i64 {
    Timestamp::now().unix_seconds()
}

#[tokio::test]
async fn provisioning_is_idempotent_and_a_missing_table_says_so() {
    let (store, table) = fresh_store().await;
    let again = store.provision().await.unwrap();
    assert!(!again.created_table);
    let other = DynamoDbStore::new(local_config(&table)).unwrap();
    assert!(!other.provision().await.unwrap().created_table);

    let missing = DynamoDbStore::new(local_config(&fresh_table())).unwrap();
    let e = missing.get("a").await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Backend(m) if m.contains("provisioning")),
        "{e:?}"
    );
}

#[tokio::test]
async fn create_get_put_update_delete() {
    let (store, _) = fresh_store().await;
    let created = store.create(item("a")).await.unwrap();
    assert_eq!(created.version, "1");
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(store.get("a").await.unwrap(), created);
    assert_eq!(
        store.create(item("a")).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(store.get("nope").await, Err(StoreError::NotFound));

    // put replaces whole, keeps createdAt.
    let replacement = NewItem {
        id: "a".into(),
        user_id: Some("u1".into()),
        attributes: vec![Attribute::new("color", Value::Text("red".into()))],
        ..Default::default()
    };
    let (replaced, outcome) = store.put(replacement.clone(), None).await.unwrap();
    assert_eq!(outcome, PutOutcome::Replaced);
    assert_eq!(replaced.created_at, created.created_at);
    assert!(replaced.updated_at > created.updated_at);
    assert_eq!(replaced.version, "2");
    assert_eq!(replaced.attribute("name"), None);
    assert_eq!(store.get("a").await.unwrap(), replaced);
    let (fresh, outcome) = store.put(item("b"), None).await.unwrap();
    assert_eq!(
        (outcome, fresh.version.as_str()),
        (PutOutcome::Created, "1")
    );
    assert_eq!(
        store.put(replacement.clone(), Some("1")).await,
        Err(StoreError::VersionMismatch(Some("2".into())))
    );
    assert_eq!(
        store.put(item("c"), Some("1")).await,
        Err(StoreError::VersionMismatch(None))
    );
    let (third, _) = store.put(replacement, Some("2")).await.unwrap();
    assert_eq!(third.version, "3");

    // update merges.
    let patch = ItemPatch {
        user_id: Some(None),
        status: Some(Some("active".into())),
        expires_at: Some(Some(now_seconds() + 3600)),
        set: vec![Attribute::new("size", number("3"))],
        remove: vec!["color".into(), "absent".into()],
    };
    let updated = store.update("a", patch.clone(), Some("3")).await.unwrap();
    assert_eq!(updated.version, "4");
    assert_eq!(updated.user_id, None);
    assert_eq!(updated.status.as_deref(), Some("active"));
    assert_eq!(updated.attribute("size"), Some(&number("3")));
    assert_eq!(updated.attribute("color"), None);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(store.get("a").await.unwrap(), updated);
    assert_eq!(
        store.update("a", patch.clone(), Some("3")).await,
        Err(StoreError::VersionMismatch(Some("4".into())))
    );
    assert_eq!(
        store.update("zz", patch.clone(), None).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.update("zz", patch, Some("1")).await,
        Err(StoreError::VersionMismatch(None))
    );

    // delete.
    assert_eq!(
        store.delete("a", Some("1")).await,
        Err(StoreError::VersionMismatch(Some("4".into())))
    );
    store.delete("a", Some("4")).await.unwrap();
    assert_eq!(store.get("a").await, Err(StoreError::NotFound));
    assert_eq!(store.delete("a", None).await, Err(StoreError::NotFound));
    assert_eq!(
        store.delete("a", Some("4")).await,
        Err(StoreError::VersionMismatch(None))
    );
    store.delete("b", None).await.unwrap();
}

#[tokio::test]
async fn values_and_numbers_round_trip_exactly() {
    let (store, _) = fresh_store().await;
    let big = "12345678901234567890123456789012345678";
    let new = NewItem {
        id: "ünï cödé:100%".into(),
        attributes: vec![
            Attribute::new("big", number(big)),
            Attribute::new("small", number("-0.000001")),
            Attribute::new("price", number("19.99")),
            Attribute::new("sci", number("1.50e3")),
            Attribute::new("flag", Value::Bool(true)),
            Attribute::new("nothing", Value::Null),
            Attribute::new("empty", Value::Text(String::new())),
            Attribute::new(
                "list",
                Value::Json(format!(
                    r#"[1,"two",{{"three":3,"deep":[{big},null,false]}},[]]"#
                )),
            ),
            Attribute::new("map", Value::Json("{}".into())),
        ],
        ..Default::default()
    };
    let created = store.create(new).await.unwrap();
    let got = store.get("ünï cödé:100%").await.unwrap();
    assert_eq!(got, created, "what a write returns is what a read returns");
    assert_eq!(got.attribute("big"), Some(&number(big)));
    assert_eq!(got.attribute("sci"), Some(&number("1500")));
    assert_eq!(got.attribute("price"), Some(&number("19.99")));
    assert_eq!(
        got.attribute("list"),
        Some(&Value::Json(format!(
            r#"[1,"two",{{"deep":[{big},null,false],"three":3}},[]]"#
        )))
    );

    for (value, why) in [
        (number("1e400"), "too large"),
        (number("123456789012345678901234567890123456789"), "38"),
        (Value::Json("[1e-200]".into()), "too small"),
    ] {
        let mut bad = item("bad");
        bad.attributes.push(Attribute::new("n", value));
        let e = store.create(bad).await.unwrap_err();
        assert!(
            matches!(&e, StoreError::InvalidInput(m) if m.contains(why)),
            "{e:?}"
        );
    }
    // Reserved names are the callers' to refuse (item_model::validate, run
    // by the host and the component's export), not the store's.
}

#[tokio::test]
async fn expired_items_are_hidden_and_their_ids_free() {
    let (store, _) = fresh_store().await;
    let mut old = item("old");
    old.expires_at = Some(now_seconds() - 10);
    old.user_id = Some("u".into());
    store.create(old.clone()).await.unwrap();
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
    assert_eq!(
        store.delete("old", Some("1")).await,
        Err(StoreError::VersionMismatch(None))
    );
    // The id is free again, for create and put.
    let again = store.create(item("old")).await.unwrap();
    assert_eq!(store.get("old").await.unwrap(), again);
    let mut expiring = item("put");
    expiring.expires_at = Some(now_seconds() - 1);
    store.create(expiring).await.unwrap();
    let (put, outcome) = store.put(item("put"), None).await.unwrap();
    assert_eq!(outcome, PutOutcome::Created);
    assert_ne!(put.version, "1", "an old ETag must not match the new item");
    // Expiry can be set and removed.
    let patch = ItemPatch {
        expires_at: Some(Some(now_seconds() + 100)),
        ..Default::default()
    };
    let later = store.update("put", patch, None).await.unwrap();
    assert!(later.expires_at.is_some());
    let patch = ItemPatch {
        expires_at: Some(None),
        ..Default::default()
    };
    assert_eq!(
        store.update("put", patch, None).await.unwrap().expires_at,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn increments_are_exact_under_100_concurrent_calls() {
    let (store, _) = fresh_store().await;
    let mut counter = item("counter");
    counter
        .attributes
        .push(Attribute::new("likes", number("0")));
    store.create(counter).await.unwrap();
    let mut tasks = JoinSet::new();
    for _ in 0..100 {
        let store = store.clone();
        tasks.spawn(async move { store.increment("counter", "likes", 1).await });
    }
    let mut seen = HashSet::new();
    while let Some(done) = tasks.join_next().await {
        let item = done.unwrap().unwrap();
        let Some(Value::Number(n)) = item.attribute("likes") else {
            panic!("{item:?}")
        };
        assert!(seen.insert(n.clone()), "each increment sees its own count");
    }
    assert_eq!(seen.len(), 100);
    let counted = store.get("counter").await.unwrap();
    assert_eq!(counted.attribute("likes"), Some(&number("100")));
    assert_eq!(counted.version, "101");

    // An absent attribute counts from 0; deltas may be negative.
    let first = store.increment("counter", "other", -5).await.unwrap();
    assert_eq!(first.attribute("other"), Some(&number("-5")));
    assert_eq!(
        store.increment("missing", "likes", 1).await,
        Err(StoreError::NotFound)
    );
    let e = store.increment("counter", "name", 1).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::InvalidInput(m) if m.contains("`name` is not a number")),
        "{e:?}"
    );
    // A result DynamoDB cannot hold (39 significant digits).
    let mut huge = item("huge");
    huge.attributes.push(Attribute::new(
        "likes",
        number("12345678901234567890123456789012345678e10"),
    ));
    store.create(huge).await.unwrap();
    let e = store.increment("huge", "likes", 1).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::InvalidInput(m) if m.contains("`likes` cannot be incremented")),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conditional_writes_have_exactly_one_winner() {
    let (store, _) = fresh_store().await;
    let base = store.create(item("race")).await.unwrap();
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let store = store.clone();
        let version = base.version.clone();
        tasks.spawn(async move {
            let patch = ItemPatch {
                set: vec![Attribute::new("winner", number(&i.to_string()))],
                ..Default::default()
            };
            store.update("race", patch, Some(version.as_str())).await
        });
    }
    let mut winners = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(item) => winners.push(item),
            Err(e) => assert_eq!(e, StoreError::VersionMismatch(Some("2".into()))),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(store.get("race").await.unwrap(), winners[0]);

    // The same for whole replacements.
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut next = item("race");
            next.attributes
                .push(Attribute::new("put", number(&i.to_string())));
            store.put(next, Some("2")).await
        });
    }
    let mut winners = 0;
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok((item, PutOutcome::Replaced)) => {
                winners += 1;
                assert_eq!(item.version, "3");
            }
            other => assert_eq!(
                other.map(|_| ()),
                Err(StoreError::VersionMismatch(Some("3".into())))
            ),
        }
    }
    assert_eq!(winners, 1);

    // Unconditional puts all succeed and none is lost in between.
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.spawn(async move { store.put(item("race"), None).await });
    }
    let mut versions = HashSet::new();
    while let Some(done) = tasks.join_next().await {
        let (item, _) = done.unwrap().unwrap();
        assert!(
            versions.insert(item.version),
            "every write has its own version"
        );
    }
    assert_eq!(store.get("race").await.unwrap().version, "23");
}

#[tokio::test]
async fn batch_of_60_goes_in_3_chunks() {
    let (store, _) = fresh_store().await;
    for i in 0..10 {
        store.create(item(&format!("old-{i}"))).await.unwrap();
    }
    let mut writes = Vec::new();
    for i in 0..45 {
        let mut new = item(&format!("b-{i:02}"));
        new.user_id = Some("batcher".into());
        writes.push(BatchWrite::Put(BatchPut {
            item: new,
            created_at: (i == 0).then(|| "2020-05-01T12:00:00+02:00".into()),
            updated_at: None,
        }));
    }
    for i in 0..15 {
        // Ten that exist and five that never did.
        writes.push(BatchWrite::Delete(format!("old-{i}")));
    }
    let result = store.batch(writes).await.unwrap();
    assert_eq!(result.put.len(), 45);
    assert_eq!(result.deleted.len(), 15);
    assert_eq!(result.put[0].created_at, "2020-05-01T10:00:00.000000Z");
    for put in &result.put {
        assert_eq!(&store.get(&put.id).await.unwrap(), put);
    }
    for i in 0..10 {
        assert_eq!(
            store.get(&format!("old-{i}")).await,
            Err(StoreError::NotFound)
        );
    }
    // A batch put replaces, with a new version.
    let before = store.get("b-01").await.unwrap();
    let again = store
        .batch(vec![BatchWrite::Put(BatchPut {
            item: item("b-01"),
            created_at: None,
            updated_at: None,
        })])
        .await
        .unwrap();
    assert_ne!(again.put[0].version, before.version);
    // Later conditional writes count on from there.
    let version = again.put[0].version.clone();
    let updated = store
        .update("b-01", ItemPatch::default(), Some(version.as_str()))
        .await
        .unwrap();
    assert_ne!(updated.version, again.put[0].version);
    // Batches over 100 writes are the callers' to refuse
    // (item_model::validate, run by the host and the component's export).
}

/// Every page of a query, following cursors.
async fn pages(store: &DynamoDbStore, key: IndexKey, order: Order, limit: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .query(Query {
                key: key.clone(),
                order,
                limit,
                cursor: cursor.take(),
            })
            .await
            .unwrap();
        pages.push(page.items.iter().map(|i| i.id.clone()).collect());
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return pages,
        }
        assert!(pages.len() < 100, "paging must end");
    }
}

#[tokio::test]
async fn paging_never_skips_or_repeats_even_with_expired_items() {
    let (store, _) = fresh_store().await;
    let past = now_seconds() - 100;
    let mut live = Vec::new();
    for i in 0..30 {
        let mut new = item(&format!("q-{i:02}"));
        new.user_id = Some("pager".into());
        new.status = Some(if i % 2 == 0 { "even" } else { "odd" }.into());
        // Runs of expired items, some longer than a page.
        if i % 5 == 1 || (12..=19).contains(&i) {
            new.expires_at = Some(past);
        } else {
            live.push(new.id.clone());
        }
        store.create(new).await.unwrap();
    }
    let mut other = item("other");
    other.user_id = Some("someone-else".into());
    store.create(other).await.unwrap();

    let user = IndexKey::UserId("pager".into());
    for limit in [1, 3, 4, 7, 50] {
        let asc = pages(&store, user.clone(), Order::Asc, limit).await;
        for page in &asc[..asc.len() - 1] {
            assert_eq!(page.len(), limit as usize, "full pages: {asc:?}");
        }
        assert!(!asc.last().unwrap().is_empty() || asc.len() == 1, "{asc:?}");
        assert_eq!(asc.concat(), live, "limit {limit}");
        let desc = pages(&store, user.clone(), Order::Desc, limit).await;
        let mut newest_first = live.clone();
        newest_first.reverse();
        assert_eq!(desc.concat(), newest_first, "limit {limit}");
    }
    // An exact multiple ends without a cursor to an empty page.
    let exact = pages(&store, user.clone(), Order::Asc, live.len() as u32).await;
    assert_eq!(exact.len(), 1);

    let odd = pages(&store, IndexKey::Status("odd".into()), Order::Desc, 2).await;
    let mut expected: Vec<_> = live
        .iter()
        .filter(|id| id[2..].parse::<u32>().unwrap() % 2 == 1)
        .cloned()
        .collect();
    expected.reverse();
    assert_eq!(odd.concat(), expected);

    // A cursor belongs to its query.
    let first = store
        .query(Query {
            key: user.clone(),
            order: Order::Asc,
            limit: 2,
            cursor: None,
        })
        .await
        .unwrap();
    let e = store
        .query(Query {
            key: user,
            order: Order::Desc,
            limit: 2,
            cursor: first.next_cursor,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::InvalidInput(_)), "{e:?}");
}

#[tokio::test]
async fn paging_survives_concurrent_writes() {
    let (store, _) = fresh_store().await;
    let user = IndexKey::UserId("live".into());
    let with_user = |id: String| NewItem {
        user_id: Some("live".into()),
        ..item(&id)
    };
    for i in 0..20 {
        store.create(with_user(format!("l-{i:02}"))).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    for round in 0.. {
        let page = store
            .query(Query {
                key: user.clone(),
                order: Order::Asc,
                limit: 3,
                cursor: cursor.take(),
            })
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|i| i.id.clone()));
        store
            .create(with_user(format!("n-{round:02}")))
            .await
            .unwrap();
        if round == 1 {
            store.delete("l-19", None).await.unwrap();
            store.delete("l-01", None).await.unwrap();
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(round < 100);
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no repeats: {seen:?}");
    for i in 0..19 {
        let id = format!("l-{i:02}");
        assert!(i == 1 || seen.contains(&id), "{id} skipped: {seen:?}");
    }
}

#[tokio::test]
async fn items_written_like_boto3_are_readable_and_writable() {
    let (store, table) = fresh_store().await;
    let credentials = || Credentials::new("AKIDEXAMPLE", "local-secret", None).unwrap();
    // The seed's shape: datetime.utcnow().isoformat(), no version, and
    // types boto3 can write that the API has no name for.
    let seed = |id: &str, created: &str| {
        json!({
            "TableName": table,
            "Item": {
                "itemId": {"S": id},
                "name": {"S": "My Item"},
                "description": {"S": "A great item"},
                "createdAt": {"S": created},
                "likes": {"N": "5"},
                "userId": {"S": "seeder"},
                "tags": {"SS": ["b", "a"]},
                "scores": {"NS": ["1.5", "2"]},
                "blob": {"B": "AAE="},
            },
        })
    };
    for (id, created) in [
        ("seed-1", "2026-02-08T10:00:01.000001"),
        ("seed-2", "2026-02-08T10:00:02"),
        ("seed-3", "2026-02-08T10:00:03.000003"),
    ] {
        let r = raw_call(
            &endpoint(),
            &table,
            credentials(),
            "PutItem",
            seed(id, created),
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let got = store.get("seed-1").await.unwrap();
    assert_eq!(got.created_at, "2026-02-08T10:00:01.000001Z");
    assert_eq!(got.updated_at, got.created_at);
    assert_eq!(got.version, "0");
    assert_eq!(got.attribute("likes"), Some(&number("5")));
    assert_eq!(got.attribute("name"), Some(&Value::Text("My Item".into())));
    assert_eq!(got.attribute("blob"), Some(&Value::Text("AAE=".into())));
    let Some(Value::Json(tags)) = got.attribute("tags") else {
        panic!("{got:?}")
    };
    let mut tags: Vec<String> = serde_json::from_str(tags).unwrap();
    tags.sort();
    assert_eq!(tags, ["a", "b"]);
    assert!(matches!(got.attribute("scores"), Some(Value::Json(_))));

    // Paging over them never repeats, though their createdAt is not in our
    // exact form.
    let user = IndexKey::UserId("seeder".into());
    for order in [Order::Asc, Order::Desc] {
        let all = pages(&store, user.clone(), order, 1).await.concat();
        let mut expected = vec!["seed-1", "seed-2", "seed-3"];
        if order == Order::Desc {
            expected.reverse();
        }
        assert_eq!(all, expected, "{order:?}");
    }

    // Writes work on them: version "0" is the version of an item without one.
    let liked = store.increment("seed-1", "likes", 1).await.unwrap();
    assert_eq!(liked.attribute("likes"), Some(&number("6")));
    assert_eq!(liked.version, "1");
    let patched = store
        .update("seed-2", ItemPatch::default(), Some("0"))
        .await
        .unwrap();
    assert_eq!(patched.version, "1");
    assert_eq!(patched.created_at, "2026-02-08T10:00:02.000000Z");
    let (replaced, outcome) = store.put(item("seed-3"), Some("0")).await.unwrap();
    assert_eq!(outcome, PutOutcome::Replaced);
    assert_eq!(replaced.created_at, "2026-02-08T10:00:03.000003Z");
    assert_eq!(replaced.version, "1");
    assert_eq!(
        store.delete("seed-1", Some("0")).await,
        Err(StoreError::VersionMismatch(Some("1".into())))
    );

    // And boto3 reads ours: plain attributes, createdAt a string.
    let r = raw_call(
        &endpoint(),
        &table,
        credentials(),
        "GetItem",
        json!({"TableName": table, "Key": {"itemId": {"S": "seed-3"}}}),
    )
    .await;
    let raw: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(raw["Item"]["name"], json!({"S": "item seed-3"}));
    assert_eq!(raw["Item"]["version"], json!({"N": "1"}));
    assert_eq!(
        raw["Item"]["createdAt"],
        json!({"S": "2026-02-08T10:00:03.000003Z"})
    );
}

/// The ids of one user's items in one status, oldest first.
async fn user_status_ids(store: &DynamoDbStore, user_id: &str, status: &str) -> Vec<String> {
    let key = IndexKey::UserStatus {
        user_id: user_id.into(),
        status: status.into(),
    };
    pages(store, key, Order::Asc, 2).await.concat()
}

fn owned(id: &str, user_id: Option<&str>, status: Option<&str>) -> NewItem {
    NewItem {
        user_id: user_id.map(String::from),
        status: status.map(String::from),
        ..item(id)
    }
}

fn set_fields(user_id: Option<Option<&str>>, status: Option<Option<&str>>) -> ItemPatch {
    ItemPatch {
        user_id: user_id.map(|v| v.map(String::from)),
        status: status.map(|v| v.map(String::from)),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_user_status_index_follows_every_write() {
    let (store, table) = fresh_store().await;
    store
        .create(owned("a", Some("u1"), Some("open")))
        .await
        .unwrap();
    store
        .put(owned("b", Some("u1"), Some("open")), None)
        .await
        .unwrap();
    let batch = vec![BatchWrite::Put(BatchPut {
        item: owned("c", Some("u1"), Some("done")),
        created_at: None,
        updated_at: None,
    })];
    store.batch(batch).await.unwrap();
    store.create(owned("d", Some("u1"), None)).await.unwrap();
    store.create(owned("e", None, Some("open"))).await.unwrap();
    assert_eq!(user_status_ids(&store, "u1", "open").await, ["a", "b"]);
    assert_eq!(user_status_ids(&store, "u1", "done").await, ["c"]);

    // Only the status changes: the item moves between the lists.
    let moved = store
        .update("a", set_fields(None, Some(Some("done"))), Some("1"))
        .await
        .unwrap();
    assert_eq!(moved.version, "2");
    assert_eq!(moved.attribute("__userStatus__"), None);
    assert_eq!(store.get("a").await.unwrap(), moved);
    assert_eq!(user_status_ids(&store, "u1", "open").await, ["b"]);
    assert_eq!(user_status_ids(&store, "u1", "done").await, ["a", "c"]);
    // A stale version is the usual mismatch on that path too.
    assert_eq!(
        store
            .update("a", set_fields(None, Some(Some("open"))), Some("1"))
            .await,
        Err(StoreError::VersionMismatch(Some("2".into())))
    );

    // Both fields at once (one UpdateItem).
    store
        .update("b", set_fields(Some(Some("u2")), Some(Some("open"))), None)
        .await
        .unwrap();
    assert_eq!(
        user_status_ids(&store, "u1", "open").await,
        Vec::<String>::new()
    );
    assert_eq!(user_status_ids(&store, "u2", "open").await, ["b"]);

    // Removing userId takes the item out.
    store
        .update("a", set_fields(Some(None), None), None)
        .await
        .unwrap();
    assert_eq!(user_status_ids(&store, "u1", "done").await, ["c"]);
    let raw = raw_call(
        &endpoint(),
        &table,
        Credentials::new("AKIDEXAMPLE", "local-secret", None).unwrap(),
        "GetItem",
        json!({"TableName": table, "Key": {"itemId": {"S": "a"}}}),
    )
    .await;
    let raw: serde_json::Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(raw["Item"]["status"], json!({"S": "done"}));
    assert!(raw["Item"].get("__userStatus__").is_none(), "{raw}");
    assert!(raw["Item"].get("userId").is_none(), "{raw}");

    // Completing the pair from either side puts items in.
    store
        .update("d", set_fields(None, Some(Some("open"))), None)
        .await
        .unwrap();
    store
        .update("e", set_fields(Some(Some("u1")), None), None)
        .await
        .unwrap();
    assert_eq!(user_status_ids(&store, "u1", "open").await, ["d", "e"]);
    // A patch that touches neither keeps the key.
    let patch = ItemPatch {
        set: vec![Attribute::new("size", number("2"))],
        ..Default::default()
    };
    store.update("d", patch, None).await.unwrap();
    assert_eq!(user_status_ids(&store, "u1", "open").await, ["d", "e"]);
    assert_eq!(
        store
            .update("zz", set_fields(None, Some(Some("open"))), None)
            .await,
        Err(StoreError::NotFound)
    );
}

#[tokio::test]
async fn concurrent_status_patches_all_apply() {
    let (store, _) = fresh_store().await;
    store
        .create(owned("a", Some("u1"), Some("s0")))
        .await
        .unwrap();
    let mut tasks = JoinSet::new();
    for i in 0..10 {
        let store = store.clone();
        tasks.spawn(async move {
            let patch = ItemPatch {
                status: Some(Some(format!("s{i}"))),
                set: vec![Attribute::new(format!("by{i}"), Value::Bool(true))],
                ..Default::default()
            };
            store.update("a", patch, None).await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    let item = store.get("a").await.unwrap();
    assert_eq!(item.version, "11");
    for i in 0..10 {
        assert_eq!(item.attribute(&format!("by{i}")), Some(&Value::Bool(true)));
    }
    let status = item.status.unwrap();
    assert_eq!(user_status_ids(&store, "u1", &status).await, ["a"]);
}

#[tokio::test]
async fn a_patch_of_1000_new_attributes_succeeds() {
    let (store, _) = fresh_store().await;
    store
        .create(owned("a", Some("u1"), Some("open")))
        .await
        .unwrap();
    let patch = ItemPatch {
        set: (0..1000)
            .map(|i| Attribute::new(format!("attribute-{i:04}"), number(&i.to_string())))
            .collect(),
        ..Default::default()
    };
    let patched = store.update("a", patch, Some("1")).await.unwrap();
    assert_eq!(patched.version, "2");
    assert_eq!(patched.attributes.len(), 1001);
    let got = store.get("a").await.unwrap();
    assert_eq!(got, patched);
    assert_eq!(got.attribute("attribute-0999"), Some(&number("999")));
    assert_eq!(got.attribute("name"), Some(&Value::Text("item a".into())));
    assert_eq!(user_status_ids(&store, "u1", "open").await, ["a"]);

    // Removing them all is as large.
    let patch = ItemPatch {
        remove: (0..1000).map(|i| format!("attribute-{i:04}")).collect(),
        ..Default::default()
    };
    let patched = store.update("a", patch, None).await.unwrap();
    assert_eq!(patched.version, "3");
    assert_eq!(patched.attributes.len(), 1);
    assert_eq!(store.get("a").await.unwrap(), patched);
}

// Adding byUserStatus to an older table (UpdateTable) is tested against moto
// (tests/moto.rs): DynamoDB Local 3.3.1 leaves an index added to an existing
// table CREATING for ever, and its writes to that table then fail with an
// internal error (`table ... has no column named indexKey_2`).

/// Writes an item as a version of the service from before
/// `__userStatus__` did: raw PutItem, the two fields without the key.
async fn put_older_item(table: &str, id: &str, user_id: &str, status: Option<&str>) {
    let mut item = json!({
        "itemId": {"S": id},
        "createdAt": {"S": format!("2026-01-01T00:00:0{}.000000Z", id.len())},
        "updatedAt": {"S": "2026-01-01T00:00:00.000000Z"},
        "version": {"N": "1"},
        "userId": {"S": user_id},
        "name": {"S": format!("item {id}")},
    });
    if let Some(status) = status {
        item["status"] = json!({"S": status});
    }
    let credentials = Credentials::new("AKIDEXAMPLE", "local-secret", None).unwrap();
    let body = json!({"TableName": table, "Item": item});
    let r = raw_call(&endpoint(), table, credentials, "PutItem", body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn the_backfill_lists_items_written_before_the_user_status_key() {
    let (store, table) = fresh_store().await;
    put_older_item(&table, "a", "u1", Some("open")).await;
    put_older_item(&table, "bb", "u1", Some("open")).await;
    put_older_item(&table, "ccc", "u1", None).await;
    // One written by this version has the key already.
    store
        .create(owned("d", Some("u1"), Some("open")))
        .await
        .unwrap();
    assert_eq!(user_status_ids(&store, "u1", "open").await, ["d"]);

    let done = store.backfill_user_status().await.unwrap();
    assert_eq!((done.found, done.updated, done.skipped), (2, 2, 0));
    assert_eq!(
        user_status_ids(&store, "u1", "open").await,
        ["a", "bb", "d"]
    );
    // The content is unchanged: same version, no `__userStatus__` shown.
    let a = store.get("a").await.unwrap();
    assert_eq!(a.version, "1");
    assert_eq!(a.attribute("__userStatus__"), None);
    assert_eq!(store.get("ccc").await.unwrap().status, None);

    // Idempotent: nothing left to do.
    let again = store.backfill_user_status().await.unwrap();
    assert_eq!((again.found, again.updated, again.skipped), (0, 0, 0));
}

// An older table that gains byUserStatus and is then backfilled is
// checked against moto (tests/moto.rs): DynamoDB Local (3.3.1) can leave an
// index added with UpdateTable in CREATING for good once the server holds
// the tables of an earlier test run.

/// Every item of a scan in `segments` segments of pages of `limit`,
/// following each segment's cursors to its end.
async fn scan_all(
    store: &DynamoDbStore,
    segments: u32,
    limit: u32,
    updated_since: Option<&str>,
) -> Vec<Scanned> {
    let mut all = Vec::new();
    for segment in 0..segments {
        let mut request = ScanRequest {
            updated_since: updated_since.map(String::from),
            ..ScanRequest::first(segment, segments, limit)
        };
        for pages in 0.. {
            assert!(pages < 1000, "paging must end");
            let page = store.scan(request.clone()).await.unwrap();
            assert!(page.items.len() <= limit as usize, "{}", page.items.len());
            all.extend(page.items);
            match page.next_cursor {
                Some(next) => request.cursor = Some(next),
                None => break,
            }
        }
    }
    all
}

/// The ids of `scanned`, sorted, each checked to be there once.
fn once_each(scanned: &[Scanned]) -> Vec<String> {
    let mut ids: Vec<String> = scanned.iter().map(|s| s.item.id.clone()).collect();
    ids.sort();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an item was read twice");
    ids
}

#[tokio::test]
async fn a_scan_reads_every_item_once_in_any_number_of_segments() {
    let (store, table) = fresh_store().await;
    let past = now_seconds() - 100;
    let mut expected = Vec::new();
    let mut expired = HashSet::new();
    // 280 by batch, some expired (DynamoDB Local's TTL removes nothing).
    for chunk in 0..4 {
        let writes = (0..70)
            .map(|i| {
                let id = format!("s-{:03}", chunk * 70 + i);
                let mut new = item(&id);
                if i % 6 == 0 {
                    new.expires_at = Some(past);
                    expired.insert(id.clone());
                }
                expected.push(id);
                BatchWrite::Put(BatchPut {
                    item: new,
                    created_at: None,
                    updated_at: None,
                })
            })
            .collect();
        store.batch(writes).await.unwrap();
    }
    // 20 written once per key, each leaving its idempotency record.
    for i in 0..20 {
        let id = format!("k-{i:02}");
        let once = Once {
            key: format!("key-{i}"),
            fingerprint: "f".into(),
            expires_at: now_seconds() + 3600,
        };
        store
            .apply_once(Write::Create(item(&id)), once)
            .await
            .unwrap();
        expected.push(id);
    }
    expected.sort();
    let records = raw_scan_ids(&table)
        .await
        .into_iter()
        .filter(|id| id.starts_with("once/"))
        .count();
    assert_eq!(records, 20);

    for (segments, limit) in [(1, 7), (1, 1000), (4, 5), (4, 64), (16, 3)] {
        let scanned = scan_all(&store, segments, limit, None).await;
        assert_eq!(
            once_each(&scanned),
            expected,
            "{segments} segments of {limit}"
        );
        for s in &scanned {
            assert_eq!(s.expired, expired.contains(&s.item.id), "{}", s.item.id);
        }
        let a = scanned.iter().find(|s| s.item.id == "s-001").unwrap();
        assert_eq!(a.item, store.get("s-001").await.unwrap());
    }

    // A cursor continues only its own segment.
    let first = store.scan(ScanRequest::first(0, 4, 2)).await.unwrap();
    let e = store
        .scan(ScanRequest {
            cursor: first.next_cursor,
            ..ScanRequest::first(1, 4, 2)
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::InvalidInput(_)), "{e:?}");
}

/// Every `itemId` the table holds, records included (a raw Scan).
async fn raw_scan_ids(table: &str) -> Vec<String> {
    let credentials = Credentials::new("AKIDEXAMPLE", "local-secret", None).unwrap();
    let mut ids = Vec::new();
    let mut start = None;
    loop {
        let mut body = json!({"TableName": table, "ConsistentRead": true});
        if let Some(key) = start.take() {
            body["ExclusiveStartKey"] = key;
        }
        let r = raw_call(&endpoint(), table, credentials.clone(), "Scan", body).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let out: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        for item in out["Items"].as_array().unwrap() {
            ids.push(item["itemId"]["S"].as_str().unwrap().to_owned());
        }
        match out.get("LastEvaluatedKey") {
            Some(key) => start = Some(key.clone()),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn a_scan_since_a_time_reads_only_later_writes() {
    let (store, table) = fresh_store().await;
    for i in 0..30 {
        store.create(item(&format!("u-{i:02}"))).await.unwrap();
    }
    let since = Timestamp::now().to_string();
    let mut newer = Vec::new();
    for i in [3, 14, 29] {
        let id = format!("u-{i:02}");
        store.update(&id, ItemPatch::default(), None).await.unwrap();
        newer.push(id);
    }
    store.create(item("v-new")).await.unwrap();
    newer.push("v-new".into());
    // Kept times decide, not when the batch ran.
    let kept = |id: &str, updated_at: &str| {
        BatchWrite::Put(BatchPut {
            item: item(id),
            created_at: None,
            updated_at: Some(updated_at.into()),
        })
    };
    store
        .batch(vec![
            kept("w-old", "2020-01-01T00:00:00.000000Z"),
            kept("w-later", "2999-01-01T00:00:00.000000Z"),
        ])
        .await
        .unwrap();
    newer.push("w-later".into());
    // Items of other writers, without `updatedAt`: their `createdAt`,
    // in another form, decides.
    let credentials = || Credentials::new("AKIDEXAMPLE", "local-secret", None).unwrap();
    for (id, created) in [
        ("x-old", "2020-01-01T00:00:00"),
        ("x-new", "2999-01-01T00:00:00"),
    ] {
        let body =
            json!({"TableName": table, "Item": {"itemId": {"S": id}, "createdAt": {"S": created}}});
        let r = raw_call(&endpoint(), &table, credentials(), "PutItem", body).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    newer.push("x-new".into());
    newer.sort();

    for (segments, limit) in [(1, 2), (3, 1), (1, 100)] {
        let scanned = scan_all(&store, segments, limit, Some(&since)).await;
        assert_eq!(once_each(&scanned), newer, "{segments} segments of {limit}");
        assert!(scanned.iter().all(|s| s.item.updated_at >= since));
    }
    // Everything, without the filter.
    assert_eq!(scan_all(&store, 2, 10, None).await.len(), 30 + 1 + 2 + 2);
    // A cursor is bound to its `updated_since`.
    let mut request = ScanRequest::first(0, 1, 1);
    request.updated_since = Some(since);
    let first = store.scan(request).await.unwrap();
    let e = store
        .scan(ScanRequest {
            cursor: first.next_cursor,
            ..ScanRequest::first(0, 1, 1)
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::InvalidInput(_)), "{e:?}");
}

#[tokio::test]
async fn a_batch_put_keeps_the_times_it_is_given() {
    let (store, _) = fresh_store().await;
    store.create(item("a")).await.unwrap();
    let result = store
        .batch(vec![
            BatchWrite::Put(BatchPut {
                item: item("a"),
                created_at: Some("2020-05-01T12:00:00+02:00".into()),
                updated_at: Some("2021-01-02T03:04:05.123456Z".into()),
            }),
            BatchWrite::Put(BatchPut {
                item: item("b"),
                created_at: None,
                updated_at: Some("2021-01-02T03:04:05Z".into()),
            }),
        ])
        .await
        .unwrap();
    let a = store.get("a").await.unwrap();
    assert_eq!(a, result.put[0]);
    assert_eq!(a.created_at, "2020-05-01T10:00:00.000000Z");
    assert_eq!(a.updated_at, "2021-01-02T03:04:05.123456Z");
    assert_ne!(a.version, "1", "the version is the store's own, new one");
    let b = store.get("b").await.unwrap();
    assert_eq!(b, result.put[1]);
    assert_eq!(b.updated_at, "2021-01-02T03:04:05.000000Z");
    assert!(b.created_at > b.updated_at, "created now: {b:?}");

    // A scan reads them back with those times, and filters on them.
    let scanned = scan_all(&store, 1, 10, None).await;
    let found = scanned.iter().find(|s| s.item.id == "a").unwrap();
    assert_eq!(found.item, a);
    let since = "2021-01-02T03:04:05.000001Z";
    let later = scan_all(&store, 1, 10, Some(since)).await;
    assert_eq!(once_each(&later), ["a"]);
}
