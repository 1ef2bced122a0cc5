//! The Firestore store against the real Firestore emulator, whose address
//! comes from `FIRESTORE_EMULATOR_HOST` (the test harness starts it). Every
//! test uses a project of its own, so tests run in parallel without
//! clearing each other's data. No mocks: every answer is the emulator's.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fake_endpoint::FakeEndpoint;
use firestore_protocol::ServiceAccountKey;
use item_store::{
    Attribute, BatchPut, BatchWrite, IndexKey, Item, ItemPatch, ItemStore, NewItem, Once, Order,
    PutOutcome, Query, ScanRequest, Scanned, StoreError, Timestamp, Value, Write, Written,
};
use serde_json::{Value as Json, json};
use store_firestore::{FirestoreConfig, FirestoreStore, RetryPolicy};
use tokio::task::JoinSet;

fn emulator_host() -> String {
    std::env::var("FIRESTORE_EMULATOR_HOST").unwrap_or_else(|_| {
        panic!(
            "FIRESTORE_EMULATOR_HOST is not set: these tests need a running Firestore emulator \
             (cloud_firestore_emulator start --host=127.0.0.1 --port=PORT, then \
             FIRESTORE_EMULATOR_HOST=127.0.0.1:PORT)"
        )
    })
}

fn base_url() -> String {
    let host = emulator_host();
    let host = host.trim_end_matches('/');
    if host.starts_with("http://") {
        host.to_owned()
    } else {
        format!("http://{host}")
    }
}

fn random_project() -> String {
    format!("test-{:016x}", rand::random::<u64>())
}

/// A store on a fresh project, plus raw REST access to the same data (to
/// look at documents as Firestore holds them and to write documents the
/// way other clients do).
struct Env {
    store: Arc<FirestoreStore>,
    project: String,
    http: reqwest::Client,
}

fn env() -> Env {
    let project = random_project();
    let config = FirestoreConfig::builder()
        .project_id(&project)
        .emulator_host(emulator_host())
        .build()
        .expect("config");
    Env {
        store: Arc::new(FirestoreStore::new(config).expect("store")),
        project,
        http: reqwest::Client::new(),
    }
}

impl Env {
    fn documents(&self) -> String {
        format!(
            "{}/v1/projects/{}/databases/(default)/documents",
            base_url(),
            self.project
        )
    }

    fn name(&self, id: &str) -> String {
        format!(
            "projects/{}/databases/(default)/documents/items/{id}",
            self.project
        )
    }

    /// The raw document, or `None`.
    async fn raw(&self, id: &str) -> Option<Json> {
        self.raw_named(self.name(id)).await
    }

    /// The raw document named `name` (a full document name), or `None`.
    async fn raw_named(&self, name: String) -> Option<Json> {
        let body = json!({ "documents": [name] });
        let response: Json = self
            .http
            .post(format!("{}:batchGet", self.documents()))
            .header("authorization", "Bearer owner")
            .json(&body)
            .send()
            .await
            .expect("batchGet")
            .json()
            .await
            .expect("batchGet json");
        response[0].get("found").cloned()
    }

    /// Writes raw fields, as another client would.
    async fn raw_write(&self, id: &str, fields: Json, mask: Option<Vec<&str>>) {
        let mut write = json!({ "update": { "name": self.name(id), "fields": fields } });
        if let Some(mask) = mask {
            write["updateMask"] = json!({ "fieldPaths": mask });
        }
        let response = self
            .http
            .post(format!("{}:commit", self.documents()))
            .header("authorization", "Bearer owner")
            .json(&json!({ "writes": [write] }))
            .send()
            .await
            .expect("commit");
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Installs security rules for this project (the emulator enforces them
    /// for every token but `owner`).
    async fn rules(&self, condition: &str) {
        let rules = format!(
            "rules_version = '2';\nservice cloud.firestore {{\n  match /databases/{{database}}/documents {{\n    match /{{document=**}} {{\n      allow read, write: if {condition};\n    }}\n  }}\n}}\n"
        );
        let response = self
            .http
            .put(format!(
                "{}/emulator/v1/projects/{}:securityRules",
                base_url(),
                self.project
            ))
            .json(&json!({ "rules": { "files": [{ "content": rules }] } }))
            .send()
            .await
            .expect("rules");
        assert!(response.status().is_success());
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn number(s: &str) -> Value {
    Value::Number(s.into())
}

fn item(id: &str, attributes: Vec<(&str, Value)>) -> NewItem {
    NewItem {
        id: id.into(),
        attributes: attributes
            .into_iter()
            .map(|(n, v)| Attribute::new(n, v))
            .collect(),
        ..Default::default()
    }
}

fn past() -> i64 {
    Timestamp::now().unix_seconds() - 60
}

fn future() -> i64 {
    Timestamp::now().unix_seconds() + 3600
}

/// Attributes in name order, for comparing items.
fn sorted(mut item: Item) -> Item {
    item.attributes.sort_by(|a, b| a.name.cmp(&b.name));
    item
}

#[tokio::test]
async fn create_and_get_keep_types() {
    let env = env();
    let new = NewItem {
        id: "item-123".into(),
        user_id: Some("u1".into()),
        status: Some("active".into()),
        expires_at: Some(4_102_444_800),
        attributes: vec![
            Attribute::new("name", text("My Item")),
            Attribute::new("likes", number("0")),
            Attribute::new("price", number("19.99")),
            Attribute::new("small", number("-0.000001")),
            Attribute::new("flag", Value::Bool(true)),
            Attribute::new("nothing", Value::Null),
            Attribute::new("list", Value::Json(r#"[1,"two",{"three":3}]"#.into())),
            Attribute::new("a.b c", text("dotted")),
        ],
    };
    let created = env.store.create(new).await.unwrap();
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(created.created_at.len(), 27, "{}", created.created_at);
    assert_eq!(created.expires_at, Some(4_102_444_800));
    let got = env.store.get("item-123").await.unwrap();
    assert_eq!(sorted(got.clone()), sorted(created.clone()));
    assert_eq!(got.attribute("price"), Some(&number("19.99")));
    assert_eq!(got.attribute("small"), Some(&number("-1e-6")));
    assert_eq!(
        got.attribute("list"),
        Some(&Value::Json(r#"[1,"two",{"three":3}]"#.into()))
    );

    // As Firestore holds it: typed values that other clients read naturally.
    let raw = env.raw("item-123").await.expect("document");
    let fields = &raw["fields"];
    assert_eq!(fields["likes"], json!({"integerValue": "0"}));
    assert_eq!(fields["price"]["doubleValue"].as_f64(), Some(19.99));
    assert_eq!(fields["name"], json!({"stringValue": "My Item"}));
    assert_eq!(fields["userId"], json!({"stringValue": "u1"}));
    assert!(fields["createdAt"]["timestampValue"].is_string());
    assert_eq!(
        fields["expiresAt"],
        json!({"timestampValue": "2100-01-01T00:00:00Z"})
    );
    assert!(fields.get("version").is_none() && fields.get("id").is_none());
    assert_eq!(
        fields["list"]["arrayValue"]["values"][2]["mapValue"]["fields"]["three"],
        json!({"integerValue": "3"})
    );
}

#[tokio::test]
async fn create_conflicts_but_expired_ids_are_free() {
    let env = env();
    env.store
        .create(item("dup", vec![("name", text("first"))]))
        .await
        .unwrap();
    let again = env
        .store
        .create(item("dup", vec![("name", text("second"))]))
        .await;
    assert_eq!(again, Err(StoreError::AlreadyExists));
    assert_eq!(
        env.store.get("dup").await.unwrap().attribute("name"),
        Some(&text("first"))
    );

    let mut old = item("old", vec![("name", text("expired"))]);
    old.expires_at = Some(past());
    let expired = env.store.create(old).await.unwrap();
    assert_eq!(env.store.get("old").await, Err(StoreError::NotFound));
    let fresh = env
        .store
        .create(item("old", vec![("name", text("fresh"))]))
        .await
        .unwrap();
    assert_ne!(fresh.version, expired.version);
    assert_eq!(fresh.expires_at, None);
    assert_eq!(env.store.get("old").await.unwrap(), fresh);
}

#[tokio::test]
async fn ids_are_one_path_segment() {
    let env = env();
    for id in [
        "ünï cödé:100%",
        "a:commit",
        "a?b#c",
        "%2F",
        "it's (x)",
        "a+b",
        "...",
    ] {
        let created = env.store.create(item(id, vec![])).await.unwrap();
        assert_eq!(created.id, id);
        assert_eq!(env.store.get(id).await.unwrap(), created, "{id}");
        assert!(env.raw(id).await.is_some(), "{id}");
    }
    assert_eq!(env.store.get("nope").await, Err(StoreError::NotFound));
    for bad in ["a/b", "..", "__name__"] {
        assert!(
            matches!(env.store.get(bad).await, Err(StoreError::InvalidInput(_))),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn put_creates_replaces_and_checks_versions() {
    let env = env();
    let mut first = item("p1", vec![("name", text("one")), ("color", text("red"))]);
    first.user_id = Some("u".into());
    let (created, outcome) = env.store.put(first, None).await.unwrap();
    assert_eq!(outcome, PutOutcome::Created);

    let (replaced, outcome) = env
        .store
        .put(item("p1", vec![("name", text("two"))]), None)
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Replaced);
    assert_eq!(replaced.created_at, created.created_at, "createdAt is kept");
    assert_ne!(replaced.version, created.version);
    assert_eq!(replaced.user_id, None);
    assert_eq!(replaced.attribute("color"), None);
    assert_eq!(env.store.get("p1").await.unwrap(), replaced);

    // Expected versions: current wins, stale or made-up ones do not.
    for stale in [created.version.clone(), "stale-version".into()] {
        let r = env
            .store
            .put(item("p1", vec![("name", text("x"))]), Some(stale.as_str()))
            .await;
        assert_eq!(
            r,
            Err(StoreError::VersionMismatch(Some(replaced.version.clone())))
        );
    }
    let (third, outcome) = env
        .store
        .put(
            item("p1", vec![("name", text("three"))]),
            Some(replaced.version.as_str()),
        )
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Replaced);
    assert_eq!(third.attribute("name"), Some(&text("three")));
    let r = env
        .store
        .put(item("absent", vec![]), Some(third.version.as_str()))
        .await;
    assert_eq!(r, Err(StoreError::VersionMismatch(None)));
    assert_eq!(env.store.get("absent").await, Err(StoreError::NotFound));

    // An expired item is absent: a put creates anew.
    let mut expiring = item("e", vec![]);
    expiring.expires_at = Some(past());
    env.store.put(expiring, None).await.unwrap();
    let (anew, outcome) = env.store.put(item("e", vec![]), None).await.unwrap();
    assert_eq!(outcome, PutOutcome::Created);
    assert_eq!(anew.created_at, anew.updated_at);
}

#[tokio::test]
async fn update_merges_and_keeps_foreign_fields() {
    let env = env();
    let mut new = item(
        "m",
        vec![
            ("name", text("old")),
            ("description", text("d")),
            ("likes", number("3")),
            ("tags", Value::Json(r#"["a"]"#.into())),
        ],
    );
    new.status = Some("draft".into());
    let created = env.store.create(new).await.unwrap();
    // Another client adds a field this model does not show.
    env.raw_write(
        "m",
        json!({"itemId": {"stringValue": "m"}}),
        Some(vec!["itemId"]),
    )
    .await;

    let patch = ItemPatch {
        user_id: Some(Some("u2".into())),
        status: Some(None),
        expires_at: Some(Some(future())),
        set: vec![
            Attribute::new("name", text("new")),
            Attribute::new("tags", Value::Json(r#"{"nested":[1,2]}"#.into())),
            Attribute::new("with space", text("s")),
            Attribute::new("back`tick.dot", number("1")),
        ],
        remove: vec!["description".into(), "never-there".into()],
    };
    let updated = env.store.update("m", patch, None).await.unwrap();
    assert_eq!(updated.attribute("name"), Some(&text("new")));
    assert_eq!(updated.attribute("description"), None);
    assert_eq!(updated.attribute("likes"), Some(&number("3")));
    assert_eq!(updated.attribute("with space"), Some(&text("s")));
    assert_eq!(updated.attribute("back`tick.dot"), Some(&number("1")));
    assert_eq!(
        updated.attribute("tags"),
        Some(&Value::Json(r#"{"nested":[1,2]}"#.into()))
    );
    assert_eq!(updated.status, None);
    assert_eq!(updated.user_id.as_deref(), Some("u2"));
    assert_eq!(updated.created_at, created.created_at);
    assert_ne!(updated.version, created.version);
    assert_eq!(
        sorted(env.store.get("m").await.unwrap()),
        sorted(updated.clone())
    );
    let raw = env.raw("m").await.unwrap();
    assert_eq!(raw["fields"]["itemId"], json!({"stringValue": "m"}));
    assert!(
        raw["fields"].get("back`tick").is_none(),
        "one field, not a path"
    );

    // Versions.
    let stale = env
        .store
        .update("m", ItemPatch::default(), Some(created.version.as_str()))
        .await;
    assert_eq!(
        stale,
        Err(StoreError::VersionMismatch(Some(updated.version.clone())))
    );
    let ok = env
        .store
        .update("m", ItemPatch::default(), Some(updated.version.as_str()))
        .await
        .unwrap();
    assert_ne!(ok.version, updated.version);
    assert_eq!(
        env.store.update("nope", ItemPatch::default(), None).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        env.store
            .update("nope", ItemPatch::default(), Some(ok.version.as_str()))
            .await,
        Err(StoreError::VersionMismatch(None))
    );

    // Expired: gone for updates too.
    let mut expiring = item("x", vec![]);
    expiring.expires_at = Some(past());
    env.store.create(expiring).await.unwrap();
    assert_eq!(
        env.store.update("x", ItemPatch::default(), None).await,
        Err(StoreError::NotFound)
    );
}

#[tokio::test]
async fn delete_with_and_without_versions() {
    let env = env();
    let a = env.store.create(item("a", vec![])).await.unwrap();
    assert_eq!(
        env.store.delete("a", Some("stale-version")).await,
        Err(StoreError::VersionMismatch(Some(a.version.clone())))
    );
    assert!(env.store.get("a").await.is_ok(), "nothing deleted");
    env.store
        .delete("a", Some(a.version.as_str()))
        .await
        .unwrap();
    assert_eq!(env.store.get("a").await, Err(StoreError::NotFound));
    assert_eq!(env.store.delete("a", None).await, Err(StoreError::NotFound));
    assert_eq!(
        env.store.delete("a", Some(a.version.as_str())).await,
        Err(StoreError::VersionMismatch(None))
    );

    env.store.create(item("b", vec![])).await.unwrap();
    env.store.delete("b", None).await.unwrap();
    assert!(env.raw("b").await.is_none());

    let mut expiring = item("c", vec![]);
    expiring.expires_at = Some(past());
    env.store.create(expiring).await.unwrap();
    assert_eq!(env.store.delete("c", None).await, Err(StoreError::NotFound));
}

#[tokio::test]
async fn increment_adds_and_refuses_text() {
    let env = env();
    let created = env
        .store
        .create(item(
            "liked",
            vec![("half", number("1.5")), ("word", text("many"))],
        ))
        .await
        .unwrap();
    let one = env.store.increment("liked", "likes", 1).await.unwrap();
    assert_eq!(
        one.attribute("likes"),
        Some(&number("1")),
        "absent counts as 0"
    );
    assert_ne!(one.version, created.version);
    assert_eq!(one.created_at, created.created_at);
    let eleven = env.store.increment("liked", "likes", 10).await.unwrap();
    assert_eq!(eleven.attribute("likes"), Some(&number("11")));
    let nine = env.store.increment("liked", "likes", -2).await.unwrap();
    assert_eq!(nine.attribute("likes"), Some(&number("9")));
    assert_eq!(
        sorted(env.store.get("liked").await.unwrap()),
        sorted(nine.clone())
    );
    let half = env.store.increment("liked", "half", 1).await.unwrap();
    assert_eq!(half.attribute("half"), Some(&number("2.5")));
    assert!(matches!(
        env.store.increment("liked", "word", 1).await,
        Err(StoreError::InvalidInput(m)) if m.contains("word")
    ));
    assert_eq!(
        env.store.get("liked").await.unwrap().attribute("word"),
        Some(&text("many"))
    );
    assert_eq!(
        env.store.increment("nope", "likes", 1).await,
        Err(StoreError::NotFound)
    );
    let mut expiring = item("gone", vec![]);
    expiring.expires_at = Some(past());
    env.store.create(expiring).await.unwrap();
    assert_eq!(
        env.store.increment("gone", "likes", 1).await,
        Err(StoreError::NotFound)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_are_exact() {
    let env = env();
    env.store
        .create(item("popular", vec![("likes", number("0"))]))
        .await
        .unwrap();
    let mut tasks = JoinSet::new();
    for _ in 0..100 {
        let store = env.store.clone();
        tasks.spawn(async move { store.increment("popular", "likes", 1).await });
    }
    let mut seen = HashSet::new();
    while let Some(done) = tasks.join_next().await {
        let item = done.expect("task").expect("increment");
        let Some(Value::Number(n)) = item.attribute("likes") else {
            panic!("likes: {item:?}");
        };
        assert!(
            seen.insert(n.clone()),
            "each increment sees its own count: {n}"
        );
    }
    assert_eq!(
        env.store.get("popular").await.unwrap().attribute("likes"),
        Some(&number("100"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conditional_updates_one_wins() {
    let env = env();
    let race = env
        .store
        .create(item("race", vec![("winner", Value::Null)]))
        .await
        .unwrap();
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let store = env.store.clone();
        let version = race.version.clone();
        tasks.spawn(async move {
            let patch = ItemPatch {
                set: vec![Attribute::new("winner", number(&i.to_string()))],
                ..Default::default()
            };
            (i, store.update("race", patch, Some(version.as_str())).await)
        });
    }
    let mut winners = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done.expect("task") {
            (i, Ok(_)) => winners.push(i),
            (_, Err(StoreError::VersionMismatch(Some(_)))) => {}
            (_, other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one wins: {winners:?}");
    assert_eq!(
        env.store.get("race").await.unwrap().attribute("winner"),
        Some(&number(&winners[0].to_string()))
    );
}

fn batch_put(id: &str, created_at: Option<&str>, attributes: Vec<(&str, Value)>) -> BatchWrite {
    BatchWrite::Put(BatchPut {
        item: item(id, attributes),
        created_at: created_at.map(str::to_owned),
        updated_at: None,
    })
}

#[tokio::test]
async fn batch_puts_and_deletes() {
    let env = env();
    env.store.create(item("b-old", vec![])).await.unwrap();
    let mut writes: Vec<BatchWrite> = (0..97)
        .map(|i| {
            batch_put(
                &format!("b-{i:02}"),
                None,
                vec![("n", number(&i.to_string()))],
            )
        })
        .collect();
    writes.push(batch_put(
        "b-imported",
        Some("2020-01-01T00:00:00Z"),
        vec![("name", text("kept history"))],
    ));
    writes.push(BatchWrite::Delete("b-old".into()));
    writes.push(BatchWrite::Delete("never-existed".into()));
    let result = env.store.batch(writes).await.unwrap();
    assert_eq!(result.put.len(), 98);
    assert_eq!(result.deleted, ["b-old", "never-existed"]);
    assert_eq!(result.put[17].id, "b-17");
    assert_eq!(env.store.get("b-17").await.unwrap(), result.put[17]);
    assert_eq!(env.store.get("b-old").await, Err(StoreError::NotFound));
    let imported = env.store.get("b-imported").await.unwrap();
    assert_eq!(imported.created_at, "2020-01-01T00:00:00.000000Z");
    assert_ne!(imported.updated_at, imported.created_at);

    // A batch naming an id twice is the callers' to refuse
    // (item_model::validate); a value Firestore cannot store is the store's.
    let unstorable = env
        .store
        .batch(vec![
            batch_put("ok", None, vec![]),
            batch_put("bad", None, vec![("n", Value::Json("[[1]]".into()))]),
        ])
        .await;
    assert!(matches!(unstorable, Err(StoreError::InvalidInput(_))));
    assert_eq!(
        env.store.get("ok").await,
        Err(StoreError::NotFound),
        "nothing applied"
    );
}

fn query(key: IndexKey, order: Order, limit: u32, cursor: Option<String>) -> Query {
    Query {
        key,
        order,
        limit,
        cursor,
    }
}

/// Every page of a query, checking the page rules on the way.
async fn list_all(store: &FirestoreStore, key: IndexKey, order: Order, limit: u32) -> Vec<Item> {
    let mut all = Vec::new();
    let mut cursor = None;
    for _ in 0..1000 {
        let page = store
            .query(query(key.clone(), order, limit, cursor))
            .await
            .unwrap();
        assert!(page.items.len() <= limit as usize, "page over limit");
        all.extend(page.items.iter().cloned());
        match page.next_cursor {
            Some(next) => {
                assert!(
                    !page.items.is_empty(),
                    "a page with a next cursor has items"
                );
                cursor = Some(next);
            }
            None => return all,
        }
    }
    panic!("paging did not end");
}

fn ids(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| i.id.clone()).collect()
}

#[tokio::test]
async fn queries_page_in_order_without_skips_or_repeats() {
    let env = env();
    // Several items share a creation time: ties go by id.
    let mut writes = Vec::new();
    for (i, t) in [3, 1, 2, 2, 2, 5, 4, 1, 6, 7, 7, 8].iter().enumerate() {
        let mut put = BatchPut {
            item: item(&format!("q-{i:02}"), vec![]),
            created_at: Some(format!("2026-01-0{t}T00:00:00Z")),
            updated_at: None,
        };
        put.item.user_id = Some(if i == 4 { "other".into() } else { "u".into() });
        put.item.status = Some(if i % 2 == 0 {
            "even".into()
        } else {
            "odd".into()
        });
        writes.push(BatchWrite::Put(put));
    }
    env.store.batch(writes).await.unwrap();
    let mut expected: Vec<Item> = Vec::new();
    for id in (0..12).filter(|i| *i != 4) {
        expected.push(env.store.get(&format!("q-{id:02}")).await.unwrap());
    }
    expected.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    let asc_ids = ids(&expected);

    for limit in [1, 3, 4, 11, 100] {
        let asc = list_all(&env.store, IndexKey::UserId("u".into()), Order::Asc, limit).await;
        assert_eq!(ids(&asc), asc_ids, "asc, limit {limit}");
        let desc = list_all(&env.store, IndexKey::UserId("u".into()), Order::Desc, limit).await;
        let mut want = asc_ids.clone();
        want.reverse();
        assert_eq!(ids(&desc), want, "desc, limit {limit}");
    }
    let page = env
        .store
        .query(query(IndexKey::UserId("u".into()), Order::Asc, 11, None))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 11);
    assert_eq!(
        page.next_cursor, None,
        "an exactly full last page has no cursor"
    );
    assert_eq!(page.items[0], expected[0]);

    let evens = list_all(&env.store, IndexKey::Status("even".into()), Order::Desc, 2).await;
    assert_eq!(evens.len(), 6);
    assert!(evens.iter().all(|i| i.status.as_deref() == Some("even")));
    let nobody = env
        .store
        .query(query(
            IndexKey::UserId("nobody".into()),
            Order::Asc,
            5,
            None,
        ))
        .await
        .unwrap();
    assert!(nobody.items.is_empty() && nobody.next_cursor.is_none());
}

#[tokio::test]
async fn expired_items_are_skipped_and_pages_stay_full() {
    let env = env();
    // live, then long runs of expired items between live ones.
    let mut writes = Vec::new();
    let mut live = Vec::new();
    for i in 0..60 {
        let expired = !(i % 20 == 0 || i == 1 || i == 2 || i == 59);
        let id = format!("x-{i:02}");
        let mut put = BatchPut {
            item: item(&id, vec![]),
            created_at: Some(format!("2026-01-01T00:00:{i:02}Z")),
            updated_at: None,
        };
        put.item.user_id = Some("u".into());
        put.item.expires_at = Some(if expired { past() } else { future() });
        if !expired {
            live.push(id);
        }
        writes.push(BatchWrite::Put(put));
    }
    env.store.batch(writes).await.unwrap();
    for limit in [1, 2, 3, 10] {
        let mut cursor = None;
        let mut seen = Vec::new();
        loop {
            let page = env
                .store
                .query(query(
                    IndexKey::UserId("u".into()),
                    Order::Asc,
                    limit,
                    cursor,
                ))
                .await
                .unwrap();
            seen.extend(ids(&page.items));
            match page.next_cursor {
                Some(next) => {
                    assert_eq!(
                        page.items.len(),
                        limit as usize,
                        "a full page before the end"
                    );
                    cursor = Some(next);
                }
                None => break,
            }
        }
        assert_eq!(seen, live, "limit {limit}");
    }
    let desc = list_all(&env.store, IndexKey::UserId("u".into()), Order::Desc, 2).await;
    let mut want = live.clone();
    want.reverse();
    assert_eq!(ids(&desc), want);
}

#[tokio::test]
async fn paging_survives_concurrent_writes() {
    let env = env();
    for i in 0..20 {
        let mut new = item(&format!("l-{i:02}"), vec![]);
        new.user_id = Some("live".into());
        env.store.create(new).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    for round in 0.. {
        assert!(round < 100, "paging must end");
        let page = env
            .store
            .query(query(
                IndexKey::UserId("live".into()),
                Order::Asc,
                3,
                cursor,
            ))
            .await
            .unwrap();
        seen.extend(ids(&page.items));
        let mut new = item(&format!("new-{round:02}"), vec![]);
        new.user_id = Some("live".into());
        env.store.create(new).await.unwrap();
        if round == 1 {
            env.store.delete("l-19", None).await.unwrap();
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no repeats: {seen:?}");
    for i in 0..19 {
        assert!(
            seen.contains(&format!("l-{i:02}")),
            "l-{i:02} skipped: {seen:?}"
        );
    }
}

#[tokio::test]
async fn bad_queries_are_invalid_input() {
    let env = env();
    let mut new = item("c", vec![]);
    new.user_id = Some("u".into());
    env.store.create(new.clone()).await.unwrap();
    new.id = "d".into();
    env.store.create(new).await.unwrap();
    let page = env
        .store
        .query(query(IndexKey::UserId("u".into()), Order::Asc, 1, None))
        .await
        .unwrap();
    let cursor = page.next_cursor.expect("a second page");
    for bad in [
        query(
            IndexKey::UserId("u".into()),
            Order::Desc,
            1,
            Some(cursor.clone()),
        ),
        query(
            IndexKey::Status("u".into()),
            Order::Asc,
            1,
            Some(cursor.clone()),
        ),
        query(
            IndexKey::UserId("u".into()),
            Order::Asc,
            1,
            Some("garbage".into()),
        ),
        // Limits out of range are the callers' to refuse
        // (item_model::validate, run by the host and the component's export).
    ] {
        assert!(
            matches!(
                env.store.query(bad.clone()).await,
                Err(StoreError::InvalidInput(_))
            ),
            "{bad:?}"
        );
    }
}

/// The document the seed's Python client writes
/// (`db.collection("items").document("item-123").set(item)` with
/// `createdAt = datetime.utcnow()`), in the REST shape that client sends.
#[tokio::test]
async fn seed_documents_read_and_write_as_items() {
    let env = env();
    env.raw_write(
        "item-123",
        json!({
            "itemId": {"stringValue": "item-123"},
            "name": {"stringValue": "My Item"},
            "createdAt": {"timestampValue": "2026-02-08T10:00:00.123456Z"},
            "description": {"stringValue": "A great item"},
            "status": {"stringValue": "active"},
            "likes": {"integerValue": "5"},
            "where": {"geoPointValue": {"latitude": 1.5, "longitude": 2.0}},
            "blob": {"bytesValue": "AAE="},
            "ref": {"referenceValue": env.name("other")},
        }),
        None,
    )
    .await;
    let got = env.store.get("item-123").await.unwrap();
    assert_eq!(got.created_at, "2026-02-08T10:00:00.123456Z");
    assert_eq!(got.updated_at, got.version, "no updatedAt: the update time");
    assert_eq!(got.status.as_deref(), Some("active"));
    assert_eq!(got.attribute("likes"), Some(&number("5")));
    assert_eq!(got.attribute("itemId"), None);
    assert_eq!(
        got.attribute("where"),
        Some(&Value::Json(r#"{"latitude":1.5,"longitude":2.0}"#.into()))
    );
    assert_eq!(got.attribute("blob"), Some(&text("AAE=")));
    assert_eq!(got.attribute("ref"), Some(&text(&env.name("other"))));

    let listed = env
        .store
        .query(query(
            IndexKey::Status("active".into()),
            Order::Desc,
            10,
            None,
        ))
        .await
        .unwrap();
    assert_eq!(ids(&listed.items), ["item-123"]);
    let liked = env.store.increment("item-123", "likes", 1).await.unwrap();
    assert_eq!(liked.attribute("likes"), Some(&number("6")));
    let patched = env
        .store
        .update(
            "item-123",
            ItemPatch {
                set: vec![Attribute::new("name", text("Renamed"))],
                ..Default::default()
            },
            Some(liked.version.as_str()),
        )
        .await
        .unwrap();
    assert_eq!(patched.attribute("name"), Some(&text("Renamed")));
    let raw = env.raw("item-123").await.unwrap();
    assert_eq!(raw["fields"]["itemId"], json!({"stringValue": "item-123"}));
    assert_eq!(raw["fields"]["likes"], json!({"integerValue": "6"}));
}

#[tokio::test]
async fn values_firestore_cannot_store_are_invalid_input() {
    let env = env();
    for (value, why) in [
        (Value::Json("[[1,2]]".into()), "array"),
        (Value::Json(r#"{"__x__":1}"#.into()), "__x__"),
        (number("1e400"), "cannot be stored exactly"),
        // Beyond i64 and beyond a double's precision: refused, not rounded.
        (
            number("12345678901234567890123"),
            "cannot be stored exactly",
        ),
        (
            Value::Json("[0.1000000000000000055511151231257827]".into()),
            "cannot be stored exactly",
        ),
    ] {
        let r = env.store.create(item("v", vec![("n", value)])).await;
        assert!(
            matches!(&r, Err(StoreError::InvalidInput(m)) if m.contains(why)),
            "{r:?}"
        );
    }
    assert_eq!(env.store.get("v").await, Err(StoreError::NotFound));
    let mut far = item("far", vec![]);
    far.expires_at = Some(i64::MAX);
    assert!(matches!(
        env.store.create(far).await,
        Err(StoreError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Port 1 on loopback: nothing listens there.
    let config = FirestoreConfig::builder()
        .emulator_host("127.0.0.1:1")
        .project_id(random_project())
        .retry(RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        })
        .build()
        .unwrap();
    let store = FirestoreStore::new(config).unwrap();
    assert!(matches!(
        store.get("a").await,
        Err(StoreError::Unavailable(m)) if !m.contains("127.0.0.1")
    ));
    assert!(matches!(
        store.increment("a", "likes", 1).await,
        Err(StoreError::Unavailable(_))
    ));
}

/// A throwaway 2048-bit service-account key, made for this test run.
fn service_account(email: &str) -> ServiceAccountKey {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("keygen");
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pem");
    let file = json!({
        "type": "service_account",
        "project_id": "ignored-here",
        "private_key_id": "test-key",
        "private_key": pem.as_str(),
        "client_email": email,
    });
    ServiceAccountKey::from_json(&file.to_string()).expect("key")
}

/// The production path (self-signed JWT bearer tokens) against the
/// emulator's security rules, which read the token's subject. The emulator
/// does not check signatures; the JWT unit test of firestore-protocol does.
#[tokio::test]
async fn service_account_tokens_and_permission_errors() {
    let env = env();
    let allowed = "svc@test-project.iam.gserviceaccount.com";
    env.rules(&format!("request.auth.uid == '{allowed}'")).await;
    let store_for = |email: &str| {
        let config = FirestoreConfig::builder()
            .service_account_key(service_account(email))
            .base_url(base_url())
            .project_id(&env.project)
            .build()
            .unwrap();
        FirestoreStore::new(config).unwrap()
    };
    let good = store_for(allowed);
    let created = good.create(item("secured", vec![])).await.unwrap();
    assert_eq!(good.get("secured").await.unwrap(), created);

    let bad = store_for("intruder@test-project.iam.gserviceaccount.com");
    for result in [
        bad.get("secured").await.map(drop),
        bad.create(item("other", vec![])).await.map(drop),
        bad.query(query(IndexKey::UserId("u".into()), Order::Asc, 5, None))
            .await
            .map(drop),
    ] {
        assert!(
            matches!(&result, Err(StoreError::Unauthorized(m)) if !m.contains("eyJ")),
            "{result:?}"
        );
    }
}

/// A bearer token the emulator reads as coming from `email` (it decodes
/// tokens without checking them), so that its rules can tell whose token
/// reached it.
fn token_for(email: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    service_account(email)
        .self_signed_jwt(firestore_protocol::auth::FIRESTORE_AUDIENCE, now)
        .unwrap()
}

const METADATA_TOKEN: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

/// On Google Cloud: the metadata server's token (it insists on
/// `Metadata-Flavor: Google`) and project, renewed at half a short life.
/// The metadata server is a fake (it exists only on Google Cloud); the
/// emulator's rules admit only requests carrying its token.
#[tokio::test]
async fn metadata_server_tokens_and_project_are_fetched_and_renewed() {
    let env = env();
    let account = "vm@test-project.iam.gserviceaccount.com";
    env.rules(&format!("request.auth.uid == '{account}'")).await;
    let token = token_for(account);
    let project = env.project.clone();
    let metadata = FakeEndpoint::start(&[("metadata-flavor", "Google")], move |seen| {
        if seen.headers.get("metadata-flavor").map(String::as_str) != Some("Google") {
            return (403, "Missing Metadata-Flavor:Google header".into());
        }
        match seen.path.as_str() {
            METADATA_TOKEN => (
                200,
                json!({"access_token": token, "expires_in": 8, "token_type": "Bearer"}).to_string(),
            ),
            "/computeMetadata/v1/project/project-id" => (200, project.clone()),
            _ => (404, String::new()),
        }
    })
    .await;
    let config = FirestoreConfig::builder()
        .metadata_server(metadata.host())
        .base_url(base_url())
        .build()
        .unwrap();
    let store = FirestoreStore::connect(config).await.unwrap();
    let created = store.create(item("on-gce", vec![])).await.unwrap();
    assert_eq!(store.get("on-gce").await.unwrap(), created);
    // The project came from the metadata server: the item is in it.
    assert_eq!(env.store.get("on-gce").await.unwrap(), created);

    let before = metadata.count(METADATA_TOKEN);
    tokio::time::sleep(Duration::from_secs(5)).await;
    store.get("on-gce").await.unwrap();
    assert!(
        metadata.count(METADATA_TOKEN) > before,
        "the token was not renewed: {:?}",
        metadata.seen()
    );
}

/// Off Google Cloud without credentials: the store fails at start, saying
/// what to set.
#[tokio::test]
async fn no_metadata_server_fails_at_connect_with_advice() {
    let metadata = FakeEndpoint::start(&[], |_| (404, "not here".into())).await;
    let config = FirestoreConfig::builder()
        .metadata_server(metadata.host())
        .project_id("p")
        .base_url(base_url())
        .build()
        .unwrap();
    let error = FirestoreStore::connect(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("no Google credentials") && error.contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{error}"
    );
}

/// gcloud's application default credentials (`authorized_user`): the
/// refresh token is exchanged at the file's token endpoint (a fake; the
/// emulator has none) and the access token reaches Firestore.
#[tokio::test]
async fn user_credentials_are_exchanged_for_access_tokens() {
    let env = env();
    let user = "dev@example.com";
    env.rules(&format!("request.auth.uid == '{user}'")).await;
    let token = token_for(user);
    let endpoint = FakeEndpoint::start(&[], move |seen| {
        let form = &seen.body;
        let grant = seen.method == "POST"
            && form.contains("grant_type=refresh_token")
            && form.contains("client_id=the-client")
            && form.contains("client_secret=the-secret")
            && form.contains("refresh_token=1%2F%2Fthe-refresh-token");
        if grant {
            (
                200,
                json!({"access_token": token, "expires_in": 3599}).to_string(),
            )
        } else {
            (400, json!({"error": "invalid_grant"}).to_string())
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("application_default_credentials.json");
    std::fs::write(
        &file,
        json!({
            "type": "authorized_user",
            "client_id": "the-client",
            "client_secret": "the-secret",
            "refresh_token": "1//the-refresh-token",
            "token_uri": format!("{}/token", endpoint.url()),
            "quota_project_id": env.project,
        })
        .to_string(),
    )
    .unwrap();
    let config = FirestoreConfig::builder()
        .service_account_key_file(&file)
        .base_url(base_url())
        .build()
        .unwrap();
    assert_eq!(config.project_id, env.project);
    let store = FirestoreStore::connect(config).await.unwrap();
    let created = store.create(item("from-gcloud", vec![])).await.unwrap();
    assert_eq!(env.store.get("from-gcloud").await.unwrap(), created);
    assert_eq!(endpoint.count("/token"), 1, "one token for both requests");
}

// apply-once (Idempotency-Key): each write applied once, its record in
// `items-once`, replays equal to the first answer field for field.

fn once(key: &str, fingerprint: &str) -> Once {
    Once {
        key: key.into(),
        fingerprint: fingerprint.into(),
        expires_at: future(),
    }
}

impl Env {
    /// The raw idempotency record of `key`, or `None`.
    async fn raw_record(&self, key: &str) -> Option<Json> {
        let name = format!(
            "projects/{}/databases/(default)/documents/items-once/{key}",
            self.project
        );
        self.raw_named(name).await
    }

    /// Applies `write` under `once`, then again: the second call must
    /// replay the first answer exactly and change nothing. Returns the
    /// first answer.
    async fn applied_once(&self, write: Write, once: &Once) -> Written {
        let first = self
            .store
            .apply_once(write.clone(), once.clone())
            .await
            .unwrap_or_else(|e| panic!("{} under {}: {e}", write.operation(), once.key));
        assert!(!first.replayed, "{first:?}");
        let ids: Vec<String> = match &first.written {
            Written::Item(item) | Written::Put(item, _) => vec![item.id.clone()],
            Written::Batch(result) => result
                .put
                .iter()
                .map(|i| i.id.clone())
                .chain(result.deleted.iter().cloned())
                .collect(),
            Written::Deleted => write.id().into_iter().map(str::to_owned).collect(),
        };
        let mut before = Vec::new();
        for id in &ids {
            before.push(self.raw(id).await);
        }
        let record = self.raw_record(&once.key).await.expect("a record");
        let replay = self
            .store
            .apply_once(write, once.clone())
            .await
            .expect("replay");
        assert!(replay.replayed);
        assert_eq!(
            replay.written, first.written,
            "the replay is the first answer"
        );
        for (id, before) in ids.iter().zip(before) {
            assert_eq!(self.raw(id).await, before, "a replay writes nothing ({id})");
        }
        assert_eq!(self.raw_record(&once.key).await, Some(record.clone()));
        // The record: its fields, and its updateTime is the version of
        // every item the write wrote (one commit, one time).
        let fields = &record["fields"];
        assert_eq!(
            fields["fingerprint"]["stringValue"],
            once.fingerprint.as_str()
        );
        assert!(fields["expiresAt"]["timestampValue"].is_string());
        assert!(fields["written"]["stringValue"].is_string());
        let record_time = Timestamp::parse(record["updateTime"].as_str().unwrap()).unwrap();
        let items: Vec<&Item> = match &first.written {
            Written::Item(item) | Written::Put(item, _) => vec![item],
            Written::Batch(result) => result.put.iter().collect(),
            Written::Deleted => vec![],
        };
        for item in items {
            assert_eq!(Timestamp::parse(&item.version).unwrap(), record_time);
            // And a read sees exactly what the write answered.
            assert_eq!(
                sorted(self.store.get(&item.id).await.expect("written item")),
                sorted(item.clone())
            );
        }
        first.written
    }
}

#[tokio::test]
async fn every_keyed_write_applies_once_and_replays_exactly() {
    let env = env();
    let created = env
        .applied_once(
            Write::Create(item(
                "a",
                vec![("name", text("A")), ("price", number("1e3"))],
            )),
            &once("k-create", "f"),
        )
        .await;
    let Written::Item(a) = created else {
        panic!("{created:?}")
    };
    assert_eq!(a.attribute("price"), Some(&number("1000.0")), "as stored");

    let put = env
        .applied_once(
            Write::Put {
                item: item("a", vec![("name", text("A2")), ("likes", number("5"))]),
                expected_version: Some(a.version.clone()),
            },
            &once("k-put", "f"),
        )
        .await;
    let Written::Put(a, PutOutcome::Replaced) = put else {
        panic!("{put:?}")
    };

    let updated = env
        .applied_once(
            Write::Update {
                id: "a".into(),
                patch: ItemPatch {
                    status: Some(Some("active".into())),
                    set: vec![Attribute::new("colour", text("red"))],
                    remove: vec!["name".into()],
                    ..ItemPatch::default()
                },
                expected_version: Some(a.version.clone()),
            },
            &once("k-update", "f"),
        )
        .await;
    let Written::Item(a) = updated else { panic!() };
    assert_eq!(a.status.as_deref(), Some("active"));

    let incremented = env
        .applied_once(
            Write::Increment {
                id: "a".into(),
                attribute: "likes".into(),
                delta: -7,
            },
            &once("k-increment", "f"),
        )
        .await;
    let Written::Item(counted) = incremented else {
        panic!()
    };
    assert_eq!(counted.attribute("likes"), Some(&number("-2")));
    assert_eq!(counted.created_at, a.created_at);

    let batch = env
        .applied_once(
            Write::Batch(vec![
                batch_put("b", Some("2020-01-01T00:00:00Z"), vec![("n", number("1"))]),
                batch_put("c", None, vec![]),
                BatchWrite::Delete("a".into()),
            ]),
            &once("k-batch", "f"),
        )
        .await;
    let Written::Batch(result) = batch else {
        panic!()
    };
    assert_eq!(result.deleted, ["a"]);
    assert_eq!(result.put[0].created_at, "2020-01-01T00:00:00.000000Z");
    assert!(env.raw("a").await.is_none());

    let deleted = env
        .applied_once(
            Write::Delete {
                id: "b".into(),
                expected_version: Some(result.put[0].version.clone()),
            },
            &once("k-delete", "f"),
        )
        .await;
    assert_eq!(deleted, Written::Deleted);
    assert_eq!(env.store.get("b").await, Err(StoreError::NotFound));
}

#[tokio::test]
async fn a_reused_key_is_refused_and_failed_writes_record_nothing() {
    let env = env();
    let key = once("k1", "f1");
    let missing = Write::Update {
        id: "a".into(),
        patch: ItemPatch::default(),
        expected_version: None,
    };
    assert_eq!(
        env.store.apply_once(missing.clone(), key.clone()).await,
        Err(StoreError::NotFound)
    );
    assert!(env.raw_record("k1").await.is_none(), "nothing recorded");
    let a = env.store.create(item("a", vec![])).await.unwrap();
    let stale = Write::Put {
        item: item("a", vec![("x", number("1"))]),
        expected_version: Some("2020-01-01T00:00:00.000000Z".into()),
    };
    assert_eq!(
        env.store.apply_once(stale, key.clone()).await,
        Err(StoreError::VersionMismatch(Some(a.version.clone())))
    );
    assert!(env.raw_record("k1").await.is_none(), "nothing recorded");
    let refused = Write::Increment {
        id: "a".into(),
        attribute: "x".into(),
        delta: i64::MAX,
    };
    env.store
        .update(
            "a",
            ItemPatch {
                set: vec![Attribute::new("x", number("1"))],
                ..ItemPatch::default()
            },
            None,
        )
        .await
        .unwrap();
    assert!(matches!(
        env.store.apply_once(refused, key.clone()).await,
        Err(StoreError::InvalidInput(m)) if m.contains("overflows")
    ));
    assert!(env.raw_record("k1").await.is_none(), "nothing recorded");
    // Asking again, now that the item exists, applies it.
    let applied = env
        .store
        .apply_once(missing.clone(), key.clone())
        .await
        .unwrap();
    assert!(!applied.replayed);
    // The same key for another request.
    let other = once("k1", "f2");
    assert_eq!(
        env.store.apply_once(missing, other).await,
        Err(StoreError::KeyReused)
    );
}

#[tokio::test]
async fn an_expired_record_frees_its_key() {
    let env = env();
    env.store
        .create(item("a", vec![("likes", number("0"))]))
        .await
        .unwrap();
    let like = Write::Increment {
        id: "a".into(),
        attribute: "likes".into(),
        delta: 1,
    };
    let soon = Once {
        expires_at: Timestamp::now().unix_seconds() + 2,
        ..once("k", "f1")
    };
    assert!(
        !env.store
            .apply_once(like.clone(), soon.clone())
            .await
            .unwrap()
            .replayed
    );
    assert!(
        env.store
            .apply_once(like.clone(), soon.clone())
            .await
            .unwrap()
            .replayed
    );
    while Timestamp::now().unix_seconds() < soon.expires_at {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Expired, not yet removed by a TTL (the emulator has none): forgotten.
    assert!(env.raw_record("k").await.is_some());
    let again = env.store.apply_once(like, once("k", "f2")).await.unwrap();
    assert!(!again.replayed);
    let Written::Item(item) = again.written else {
        panic!()
    };
    assert_eq!(item.attribute("likes"), Some(&number("2")));
    let record = env.raw_record("k").await.unwrap();
    assert_eq!(record["fields"]["fingerprint"]["stringValue"], "f2");
}

/// Applies `write` under `once`, asking again (with the same key) while
/// the store answers that it is contended, as a client told to retry
/// would; at most 20 times.
async fn apply_patiently(store: &FirestoreStore, write: Write, once: Once) -> item_store::Applied {
    for _ in 0..20 {
        match store.apply_once(write.clone(), once.clone()).await {
            Err(StoreError::Throttled(ms)) => {
                tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
            }
            Err(StoreError::KeyInUse) => tokio::time::sleep(Duration::from_millis(50)).await,
            other => return other.expect("apply_once"),
        }
    }
    panic!("still contended after 20 calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_keyed_increments_are_exact() {
    let env = env();
    env.store
        .create(item("popular", vec![("likes", number("0"))]))
        .await
        .unwrap();
    let like = Write::Increment {
        id: "popular".into(),
        attribute: "likes".into(),
        delta: 1,
    };
    // 30 clients with the same key: one increment.
    let mut tasks = JoinSet::new();
    for _ in 0..30 {
        let (store, like) = (env.store.clone(), like.clone());
        tasks.spawn(async move { apply_patiently(&store, like, once("same", "f")).await });
    }
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answers.push(done.expect("task"));
    }
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    assert!(answers.iter().all(|a| a.written == answers[0].written));
    assert_eq!(
        env.store.get("popular").await.unwrap().attribute("likes"),
        Some(&number("1"))
    );
    // 30 clients with keys of their own: 30 increments, each counted once.
    let mut tasks = JoinSet::new();
    for n in 0..30 {
        let (store, like) = (env.store.clone(), like.clone());
        tasks
            .spawn(async move { apply_patiently(&store, like, once(&format!("k{n}"), "f")).await });
    }
    let mut seen = HashSet::new();
    while let Some(done) = tasks.join_next().await {
        let applied = done.expect("task");
        assert!(!applied.replayed);
        let Written::Item(item) = applied.written else {
            panic!()
        };
        let Some(Value::Number(n)) = item.attribute("likes") else {
            panic!("{item:?}")
        };
        assert!(seen.insert(n.clone()), "each sees its own count: {n}");
    }
    assert_eq!(
        env.store.get("popular").await.unwrap().attribute("likes"),
        Some(&number("31"))
    );
}

/// A batch's writes are unconditional: only the record's precondition
/// keeps two clients with the same key from both applying it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_keyed_batches_with_one_key_apply_once() {
    let env = env();
    let mut tasks = JoinSet::new();
    for n in 0..10 {
        let store = env.store.clone();
        let batch = Write::Batch(vec![batch_put(
            "a",
            None,
            vec![("n", number(&n.to_string()))],
        )]);
        tasks.spawn(async move { apply_patiently(&store, batch, once("same", "f")).await });
    }
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answers.push(done.expect("task"));
    }
    assert_eq!(
        answers.iter().filter(|a| !a.replayed).count(),
        1,
        "{answers:?}"
    );
    assert!(answers.iter().all(|a| a.written == answers[0].written));
    let Written::Batch(result) = &answers[0].written else {
        panic!()
    };
    assert_eq!(
        sorted(env.store.get("a").await.unwrap()),
        sorted(result.put[0].clone())
    );
}

#[tokio::test]
async fn records_never_appear_in_queries() {
    let env = env();
    let mut owned = item("a", vec![]);
    owned.user_id = Some("u1".into());
    owned.status = Some("active".into());
    env.store
        .apply_once(Write::Create(owned), once("k1", "f"))
        .await
        .unwrap();
    let mut other = item("b", vec![]);
    other.user_id = Some("u1".into());
    env.store
        .apply_once(
            Write::Batch(vec![BatchWrite::Put(BatchPut {
                item: other,
                created_at: None,
                updated_at: None,
            })]),
            once("k2", "f"),
        )
        .await
        .unwrap();
    assert!(env.raw_record("k1").await.is_some());
    for key in [
        IndexKey::UserId("u1".into()),
        IndexKey::Status("active".into()),
    ] {
        let found = list_all(&env.store, key, Order::Asc, 10).await;
        assert!(
            found.iter().all(|i| i.id == "a" || i.id == "b"),
            "{found:?}"
        );
    }
    assert_eq!(
        ids(&list_all(&env.store, IndexKey::UserId("u1".into()), Order::Asc, 10).await),
        ["a", "b"]
    );
}

#[tokio::test]
async fn reserved_looking_keys_and_unicode_ids_work() {
    let env = env();
    let id = "ünï cödé:100%";
    env.applied_once(Write::Create(item(id, vec![])), &once("k", "f"))
        .await;
    // Firestore reserves `__x__` document ids: such a key's record gets a
    // leading `.` (keys never hold one).
    let reserved = once("__k__", "f");
    let write = Write::Put {
        item: item(id, vec![]),
        expected_version: None,
    };
    let first = env
        .store
        .apply_once(write.clone(), reserved.clone())
        .await
        .unwrap();
    let replay = env.store.apply_once(write, reserved).await.unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.written, first.written);
    assert!(env.raw_record(".__k__").await.is_some());
}

// Scans: every item exactly once, over segments and pages; never a record.

/// Every item of segment after segment, page by page, checking the page
/// rules on the way; each segment is read by a task of its own, as an
/// export would.
async fn scan_all(
    store: &Arc<FirestoreStore>,
    segments: u32,
    limit: u32,
    updated_since: Option<&str>,
) -> Vec<Scanned> {
    let mut tasks = JoinSet::new();
    for segment in 0..segments {
        let store = store.clone();
        let mut request = ScanRequest::first(segment, segments, limit);
        request.updated_since = updated_since.map(str::to_owned);
        tasks.spawn(async move {
            let mut all = Vec::new();
            for _ in 0..10_000 {
                let page = store.scan(request.clone()).await.unwrap();
                assert!(page.items.len() <= limit as usize, "page over limit");
                all.extend(page.items);
                match page.next_cursor {
                    Some(next) => request.cursor = Some(next),
                    None => return all,
                }
            }
            panic!("segment {segment} of {segments} did not end");
        });
    }
    let mut all = Vec::new();
    while let Some(part) = tasks.join_next().await {
        all.extend(part.unwrap());
    }
    all
}

/// An id shaped like the api's (a UUID), spread over the hex range.
fn uuid_like(n: u32) -> String {
    format!(
        "{:08x}-{:04x}-4000-8000-{:012x}",
        n.wrapping_mul(2_654_435_761),
        n,
        n
    )
}

#[tokio::test]
async fn scans_read_every_item_once_in_any_segmentation() {
    let env = env();
    let mut expected = std::collections::HashMap::new();
    let mut ids: Vec<String> = (0..260).map(uuid_like).collect();
    ids.extend(
        [
            "00",
            "0",
            "3f",
            "40",
            "7f~",
            "80",
            "c0",
            "c0ffee",
            "ff",
            "fz",
            "g",
            "item-1",
            "item-2",
            "Z-upper",
            "~tilde",
            "-dash",
            " space",
            "a?b#c",
            "50%",
            "ünï cödé:100%",
            "日本",
            "😀",
            "__x",
            "x__",
        ]
        .map(str::to_owned),
    );
    let mut writes = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let expired = i % 7 == 3;
        let mut new = item(id, vec![("n", number(&i.to_string()))]);
        new.expires_at = Some(if expired { past() } else { future() });
        expected.insert(id.clone(), expired);
        writes.push(BatchWrite::Put(BatchPut {
            item: new,
            created_at: None,
            updated_at: None,
        }));
    }
    for chunk in writes.chunks(100) {
        env.store.batch(chunk.to_vec()).await.unwrap();
    }
    // Writes under an Idempotency-Key leave records in `items-once`; the
    // scan reads items only.
    for (n, key) in ["k1", "k2", "__k3__"].iter().enumerate() {
        let id = format!("keyed-{n}");
        env.store
            .apply_once(Write::Create(item(&id, vec![])), once(key, "f"))
            .await
            .unwrap();
        expected.insert(id, false);
    }
    assert!(env.raw_record("k1").await.is_some());
    assert!(expected.len() >= 280, "{}", expected.len());

    for (segments, limit) in [(1, 1000), (1, 7), (4, 1), (4, 13), (3, 50), (256, 2)] {
        let scanned = scan_all(&env.store, segments, limit, None).await;
        let mut seen = HashSet::new();
        for s in &scanned {
            assert!(
                seen.insert(s.item.id.clone()),
                "{} read twice ({segments} segments, limit {limit})",
                s.item.id
            );
            assert_eq!(
                expected.get(&s.item.id),
                Some(&s.expired),
                "{} ({segments} segments, limit {limit})",
                s.item.id
            );
        }
        assert_eq!(
            seen.len(),
            expected.len(),
            "{segments} segments, limit {limit}"
        );
    }

    // A scanned item is the item as stored: the same as a read gives.
    let scanned = scan_all(&env.store, 2, 100, None).await;
    let live = scanned.iter().find(|s| !s.expired).unwrap();
    assert_eq!(
        sorted(env.store.get(&live.item.id).await.unwrap()),
        sorted(live.item.clone())
    );
    // UUIDs spread over the segments.
    let per_segment: Vec<usize> = (0..4)
        .map(|k| {
            let (lower, upper) = item_store::segment_id_range(k, 4);
            (0..260)
                .map(uuid_like)
                .filter(|id| {
                    lower.as_deref().is_none_or(|l| id.as_str() >= l)
                        && upper.as_deref().is_none_or(|u| id.as_str() < u)
                })
                .count()
        })
        .collect();
    assert!(per_segment.iter().all(|&n| n > 30), "{per_segment:?}");
}

#[tokio::test]
async fn scan_cursors_resume_only_their_own_scan() {
    let env = env();
    let writes = (0..5)
        .map(|i| batch_put(&format!("i{i}"), None, vec![]))
        .collect();
    env.store.batch(writes).await.unwrap();
    let first = env.store.scan(ScanRequest::first(0, 1, 2)).await.unwrap();
    let cursor = first.next_cursor.expect("more follow");
    let mut other = ScanRequest::first(0, 2, 2);
    other.cursor = Some(cursor.clone());
    assert!(matches!(
        env.store.scan(other).await,
        Err(StoreError::InvalidInput(_))
    ));
    let mut garbage = ScanRequest::first(0, 1, 2);
    garbage.cursor = Some("not-a-cursor".into());
    assert!(matches!(
        env.store.scan(garbage).await,
        Err(StoreError::InvalidInput(_))
    ));
    let mut next = ScanRequest::first(0, 1, 2);
    next.cursor = Some(cursor);
    let second = env.store.scan(next).await.unwrap();
    let ids: Vec<_> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|s| s.item.id.as_str())
        .collect();
    assert_eq!(ids, ["i0", "i1", "i2", "i3"]);
}

#[tokio::test]
async fn scans_since_a_time_return_only_newer_writes() {
    let env = env();
    let writes = (0..40)
        .map(|i| batch_put(&format!("old-{i:02}"), None, vec![]))
        .collect();
    let before = env.store.batch(writes).await.unwrap();
    let last = before
        .put
        .iter()
        .map(|i| Timestamp::parse(&i.updated_at).unwrap().as_micros())
        .max()
        .unwrap();
    let since = Timestamp::from_micros(last + 1).to_string();

    let mut newer = HashSet::new();
    for i in [3, 17, 39] {
        let id = format!("old-{i:02}");
        let patch = ItemPatch {
            set: vec![Attribute::new("touched", Value::Bool(true))],
            ..Default::default()
        };
        env.store.update(&id, patch, None).await.unwrap();
        newer.insert(id);
    }
    env.store.create(item("new-a", vec![])).await.unwrap();
    newer.insert("new-a".to_owned());
    let mut short = item("new-expired", vec![]);
    short.expires_at = Some(past());
    env.store.create(short).await.unwrap();
    newer.insert("new-expired".to_owned());
    env.store.delete("old-05", None).await.unwrap();
    // Imported with an old last-write time: written now, but not newer.
    env.store
        .batch(vec![BatchWrite::Put(BatchPut {
            item: item("imported", vec![]),
            created_at: Some("2020-01-01T00:00:00Z".into()),
            updated_at: Some("2020-01-02T00:00:00Z".into()),
        })])
        .await
        .unwrap();

    for (segments, limit) in [(1, 100), (1, 2), (4, 1), (3, 5)] {
        let scanned = scan_all(&env.store, segments, limit, Some(&since)).await;
        let seen: HashSet<String> = scanned.iter().map(|s| s.item.id.clone()).collect();
        assert_eq!(seen, newer, "{segments} segments, limit {limit}");
        assert_eq!(scanned.len(), newer.len(), "no repeats");
        for s in &scanned {
            assert!(s.item.updated_at >= since);
            assert_eq!(s.expired, s.item.id == "new-expired");
        }
    }
    // Without a time: everything but the deleted item.
    assert_eq!(scan_all(&env.store, 2, 10, None).await.len(), 40 - 1 + 3);
}

#[tokio::test]
async fn batch_puts_keep_given_creation_and_write_times() {
    let env = env();
    let result = env
        .store
        .batch(vec![
            BatchWrite::Put(BatchPut {
                item: item("migrated", vec![("name", text("with history"))]),
                created_at: Some("2020-01-01T00:00:00.123456Z".into()),
                updated_at: Some("2021-06-01T14:30:00+02:00".into()),
            }),
            BatchWrite::Put(BatchPut {
                item: item("half", vec![]),
                created_at: None,
                updated_at: Some("2022-01-01T00:00:00Z".into()),
            }),
        ])
        .await
        .unwrap();
    let migrated = env.store.get("migrated").await.unwrap();
    assert_eq!(migrated.created_at, "2020-01-01T00:00:00.123456Z");
    assert_eq!(migrated.updated_at, "2021-06-01T12:30:00.000000Z");
    assert_eq!(sorted(migrated.clone()), sorted(result.put[0].clone()));
    // The version is the store's own: the document's updateTime.
    assert_ne!(migrated.version, migrated.updated_at);
    let raw = env.raw("migrated").await.expect("document");
    assert_eq!(
        Timestamp::parse(
            raw["fields"]["updatedAt"]["timestampValue"]
                .as_str()
                .unwrap()
        )
        .unwrap()
        .to_string(),
        "2021-06-01T12:30:00.000000Z"
    );
    let half = env.store.get("half").await.unwrap();
    assert_eq!(half.updated_at, "2022-01-01T00:00:00.000000Z");
    assert!(half.created_at > half.updated_at, "created now");

    // A scan reads the same times back.
    let scanned = scan_all(&env.store, 1, 10, None).await;
    let found = scanned.iter().find(|s| s.item.id == "migrated").unwrap();
    assert_eq!(found.item.created_at, migrated.created_at);
    assert_eq!(found.item.updated_at, migrated.updated_at);
}
