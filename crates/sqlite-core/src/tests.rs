//! The core on real SQLite (rusqlite, in memory or in a temporary file):
//! the schema, every operation's SQL, expiry, paging and the attributes
//! column (the codec's own round trips are tested in `codec`).

use std::cell::Cell;

use item_model::{
    Attribute, BatchPut, BatchWrite, IndexKey, ItemPatch, NewItem, Order, PutOutcome, Query,
    ScanRequest, StoreError, Timestamp, Value, WriteClock,
};
use rusqlite::Connection;

use crate::Items;
use crate::executor::{Executor, Row, SqlError, SqlValue};
use crate::schema::{self, MigrateError, VERSION};

fn database() -> Connection {
    let conn = Connection::open_in_memory().expect("in-memory database");
    schema::migrate(&conn).expect("migrate");
    conn
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

fn user_version(conn: &Connection) -> i64 {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

fn invalid_input(result: Result<impl std::fmt::Debug, StoreError>, needle: &str) {
    match result {
        Err(StoreError::InvalidInput(message)) => {
            assert!(message.contains(needle), "{message}")
        }
        other => panic!("expected invalid input with {needle:?}, got {other:?}"),
    }
}

// --- schema ---------------------------------------------------------------

#[test]
fn a_new_database_gets_the_schema_and_its_version() {
    let conn = Connection::open_in_memory().unwrap();
    assert_eq!(user_version(&conn), 0);
    schema::migrate(&conn).unwrap();
    assert_eq!(user_version(&conn), VERSION);
    let objects: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE tbl_name = 'items' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for name in [
        "items",
        "items_by_expiry",
        "items_by_status",
        "items_by_user",
        "items_by_user_status",
    ] {
        assert!(objects.iter().any(|o| o == name), "{name} in {objects:?}");
    }
    // Migrating again changes nothing.
    schema::migrate(&conn).unwrap();
    assert_eq!(user_version(&conn), VERSION);
}

#[test]
fn unversioned_tables_are_adopted_with_their_rows() {
    // What the Spin adapter created before the schema had a version.
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE items (id TEXT PRIMARY KEY NOT NULL, created_at TEXT NOT NULL, \
         updated_at TEXT NOT NULL, version INTEGER NOT NULL, user_id TEXT, status TEXT, \
         expires_at INTEGER, attributes TEXT NOT NULL);
         INSERT INTO items VALUES ('a', '2026-01-01T00:00:00.000000Z', \
         '2026-01-01T00:00:00.000000Z', 3, 'u1', NULL, NULL, '[]');",
    )
    .unwrap();
    schema::migrate(&conn).unwrap();
    assert_eq!(user_version(&conn), VERSION);
    let clock = WriteClock::new();
    assert_eq!(Items::new(&conn, &clock).get("a").unwrap().version, "3");
}

#[test]
fn a_version_1_file_gains_the_user_and_status_index_with_its_rows() {
    // What this code wrote before the user-and-status index: version 1.
    let conn = Connection::open_in_memory().unwrap();
    for statement in schema::V1 {
        conn.execute_batch(statement).unwrap();
    }
    conn.pragma_update(None, "user_version", 1).unwrap();
    conn.execute_batch(
        "INSERT INTO items VALUES ('a', '2026-01-01T00:00:00.000000Z', \
         '2026-01-01T00:00:00.000000Z', 1, 'u1', 'open', NULL, '[]');",
    )
    .unwrap();
    let clock = WriteClock::new();
    let items = Items::new(&conn, &clock);
    let key = IndexKey::UserStatus {
        user_id: "u1".into(),
        status: "open".into(),
    };
    let page = items
        .query(&Query {
            key,
            order: Order::Asc,
            limit: 10,
            cursor: None,
        })
        .unwrap();
    assert_eq!(user_version(&conn), VERSION);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, "a");
}

#[test]
fn newer_and_unknown_versions_are_refused() {
    let conn = database();
    conn.pragma_update(None, "user_version", 99).unwrap();
    assert_eq!(
        schema::migrate(&conn),
        Err(MigrateError::Newer {
            found: 99,
            supported: VERSION
        })
    );
    conn.pragma_update(None, "user_version", -1).unwrap();
    assert_eq!(schema::migrate(&conn), Err(MigrateError::Unknown(-1)));
}

#[test]
fn a_database_without_tables_is_migrated_on_first_use() {
    let conn = Connection::open_in_memory().unwrap();
    let clock = WriteClock::new();
    let items = Items::new(&conn, &clock);
    assert_eq!(items.get("a"), Err(StoreError::NotFound));
    assert_eq!(user_version(&conn), VERSION);

    // The same holds for a write as the first statement.
    let conn = Connection::open_in_memory().unwrap();
    let items = Items::new(&conn, &clock);
    assert_eq!(items.create(new_item("a")).unwrap().version, "1");
    assert_eq!(user_version(&conn), VERSION);
}

#[test]
fn a_newer_database_is_refused_on_first_use() {
    let conn = Connection::open_in_memory().unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    let clock = WriteClock::new();
    match Items::new(&conn, &clock).get("a") {
        Err(StoreError::Backend(message)) => assert!(message.contains("newer"), "{message}"),
        other => panic!("expected a schema error, got {other:?}"),
    }
}

#[test]
fn new_databases_use_wal_in_files() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("items.db")).unwrap();
    schema::migrate(&conn).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

// --- operations -------------------------------------------------------------

#[test]
fn create_then_get() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    let created = items.create(new_item("a")).unwrap();
    assert_eq!(created.version, "1");
    assert_eq!(created.created_at, created.updated_at);
    assert!(Timestamp::parse(&created.created_at).is_ok());
    assert_eq!(items.get("a").unwrap(), created);
    assert_eq!(items.get("b"), Err(StoreError::NotFound));
    assert_eq!(items.create(new_item("a")), Err(StoreError::AlreadyExists));
}

#[test]
fn write_times_strictly_increase() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    let times: Vec<String> = (0..50)
        .map(|i| items.create(new_item(&format!("i{i}"))).unwrap().created_at)
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
}

#[test]
fn put_creates_replaces_and_keeps_created_at() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    let (first, outcome) = items.put(new_item("a"), None).unwrap();
    assert_eq!(
        (first.version.as_str(), outcome),
        ("1", PutOutcome::Created)
    );

    let mut replacement = new_item("a");
    replacement.attributes = vec![Attribute::new("name", Value::Text("new".into()))];
    replacement.status = None;
    let (second, outcome) = items.put(replacement, None).unwrap();
    assert_eq!(outcome, PutOutcome::Replaced);
    assert_eq!(second.created_at, first.created_at);
    assert!(second.updated_at > first.updated_at);
    assert_eq!(second.version, "2");
    assert_eq!(second.status, None);
    assert_eq!(second.attribute("likes"), None);
    assert_eq!(items.get("a").unwrap(), second);
}

#[test]
fn put_with_expected_version() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    assert_eq!(
        items.put(new_item("a"), Some("1")),
        Err(StoreError::VersionMismatch(None))
    );
    let created = items.create(new_item("a")).unwrap();
    for wrong in ["7", "01", "+1", "one"] {
        assert_eq!(
            items.put(new_item("a"), Some(wrong)),
            Err(StoreError::VersionMismatch(Some("1".into()))),
            "{wrong}"
        );
    }
    let (item, outcome) = items.put(new_item("a"), Some("1")).unwrap();
    assert_eq!(
        (item.version.as_str(), outcome),
        ("2", PutOutcome::Replaced)
    );
    assert_eq!(item.created_at, created.created_at);
}

#[test]
fn update_patches_and_checks() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    let patch = ItemPatch {
        user_id: Some(Some("u2".into())),
        status: Some(None),
        expires_at: None,
        set: vec![Attribute::new("color", Value::Text("red".into()))],
        remove: vec!["name".into(), "absent".into()],
    };
    assert_eq!(items.update("a", &patch, None), Err(StoreError::NotFound));
    assert_eq!(
        items.update("a", &patch, Some("1")),
        Err(StoreError::VersionMismatch(None))
    );
    let created = items.create(new_item("a")).unwrap();
    assert_eq!(
        items.update("a", &patch, Some("9")),
        Err(StoreError::VersionMismatch(Some("1".into())))
    );
    let updated = items.update("a", &patch, Some("1")).unwrap();
    assert_eq!(updated.version, "2");
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at > created.updated_at);
    assert_eq!(updated.user_id.as_deref(), Some("u2"));
    assert_eq!(updated.status, None);
    assert_eq!(updated.attribute("name"), None);
    assert_eq!(updated.attribute("color"), Some(&Value::Text("red".into())));
    assert_eq!(updated.attribute("likes"), Some(&Value::Number("5".into())));
    assert_eq!(items.get("a").unwrap(), updated);
    assert_eq!(items.update("a", &patch, None).unwrap().version, "3");
}

/// Runs statements on a connection, and before the first `UPDATE` has
/// another writer change the item: a lost race, on purpose.
struct RacingWriter {
    conn: Connection,
    raced: Cell<bool>,
}

impl Executor for RacingWriter {
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        if sql.starts_with("UPDATE") && !self.raced.replace(true) {
            self.conn
                .execute_batch("UPDATE items SET version = version + 1")
                .unwrap();
        }
        Executor::execute(&self.conn, sql, params)
    }
}

#[test]
fn an_update_that_lost_a_race_reads_again_or_reports_the_mismatch() {
    let clock = WriteClock::new();
    let patch = ItemPatch {
        set: vec![Attribute::new("color", Value::Text("red".into()))],
        ..Default::default()
    };
    let racing = RacingWriter {
        conn: database(),
        raced: Cell::new(false),
    };
    let items = Items::new(&racing, &clock);
    items.create(new_item("a")).unwrap();
    // Unconditional: read again and apply on top of the other write.
    let updated = items.update("a", &patch, None).unwrap();
    assert_eq!(updated.version, "3");
    assert_eq!(items.get("a").unwrap(), updated);

    // Conditional: the other write wins, and the mismatch names it.
    racing.raced.set(false);
    assert_eq!(
        items.update("a", &patch, Some("3")),
        Err(StoreError::VersionMismatch(Some("4".into())))
    );
}

#[test]
fn delete_checks_and_removes() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    assert_eq!(items.delete("a", None), Err(StoreError::NotFound));
    assert_eq!(
        items.delete("a", Some("1")),
        Err(StoreError::VersionMismatch(None))
    );
    items.create(new_item("a")).unwrap();
    assert_eq!(
        items.delete("a", Some("2")),
        Err(StoreError::VersionMismatch(Some("1".into())))
    );
    assert_eq!(
        items.delete("a", Some("01")),
        Err(StoreError::VersionMismatch(Some("1".into())))
    );
    items.delete("a", Some("1")).unwrap();
    assert_eq!(items.get("a"), Err(StoreError::NotFound));
    assert_eq!(items.delete("a", None), Err(StoreError::NotFound));
    // A new item under an old id starts over.
    assert_eq!(items.create(new_item("a")).unwrap().version, "1");
}

#[test]
fn increment_counts_in_place_and_appends_new_counters() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    assert_eq!(items.increment("a", "likes", 1), Err(StoreError::NotFound));
    let created = items.create(new_item("a")).unwrap();
    let item = items.increment("a", "likes", 3).unwrap();
    assert_eq!(item.attribute("likes"), Some(&Value::Number("8".into())));
    assert_eq!(item.version, "2");
    assert!(item.updated_at > created.updated_at);
    assert_eq!(item.created_at, created.created_at);
    let item = items.increment("a", "likes", -10).unwrap();
    assert_eq!(item.attribute("likes"), Some(&Value::Number("-2".into())));
    let item = items.increment("a", "views", 1).unwrap();
    let names: Vec<&str> = item.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["name", "likes", "views"]);
    assert_eq!(item.attribute("views"), Some(&Value::Number("1".into())));
    assert_eq!(items.get("a").unwrap(), item);
}

#[test]
fn increment_follows_the_counter_rules() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    let mut item = new_item("a");
    item.attributes = vec![
        Attribute::new("text", Value::Text("5".into())),
        Attribute::new("ratio", Value::Number("0.5".into())),
        Attribute::new("whole-real", Value::Number("1.0".into())),
        Attribute::new("exp", Value::Number("1e2".into())),
        Attribute::new("huge", Value::Number("99999999999999999999".into())),
        Attribute::new("max", Value::Number(i64::MAX.to_string())),
        Attribute::new("min", Value::Number(i64::MIN.to_string())),
        Attribute::new("negative-zero", Value::Number("-0".into())),
        Attribute::new("flag", Value::Bool(true)),
        Attribute::new("nothing", Value::Null),
        Attribute::new("list", Value::Json("[1]".into())),
    ];
    items.create(item).unwrap();
    invalid_input(items.increment("a", "text", 1), "is a string");
    invalid_input(items.increment("a", "flag", 1), "is a boolean");
    invalid_input(items.increment("a", "nothing", 1), "is null");
    invalid_input(items.increment("a", "list", 1), "an array or object");
    invalid_input(items.increment("a", "ratio", 1), "whole number");
    invalid_input(items.increment("a", "whole-real", 1), "whole number");
    invalid_input(items.increment("a", "exp", 1), "whole number");
    invalid_input(items.increment("a", "huge", 1), "range");
    invalid_input(items.increment("a", "max", 1), "overflow");
    invalid_input(items.increment("a", "min", -1), "overflow");
    // Failed increments change nothing.
    assert_eq!(items.get("a").unwrap().version, "1");

    let item = items.increment("a", "negative-zero", 2).unwrap();
    assert_eq!(
        item.attribute("negative-zero"),
        Some(&Value::Number("2".into()))
    );
    let item = items.increment("a", "max", -1).unwrap();
    assert_eq!(
        item.attribute("max"),
        Some(&Value::Number((i64::MAX - 1).to_string()))
    );
    let item = items.increment("a", "min", 0).unwrap();
    assert_eq!(
        item.attribute("min"),
        Some(&Value::Number(i64::MIN.to_string()))
    );
}

#[test]
fn batch_puts_and_deletes() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    items.create(new_item("old")).unwrap();
    items.create(new_item("gone")).unwrap();
    let result = items
        .batch(vec![
            BatchWrite::Put(BatchPut {
                item: new_item("imported"),
                created_at: Some("2020-01-02T03:04:05+01:00".into()),
                updated_at: None,
            }),
            BatchWrite::Put(BatchPut {
                item: new_item("old"),
                created_at: None,
                updated_at: None,
            }),
            BatchWrite::Delete("gone".into()),
            BatchWrite::Delete("never-was".into()),
        ])
        .unwrap();
    assert_eq!(result.put.len(), 2);
    assert_eq!(result.put[0].id, "imported");
    assert_eq!(result.put[0].created_at, "2020-01-02T02:04:05.000000Z");
    assert_eq!(result.put[0].version, "1");
    assert_eq!(result.put[1].id, "old");
    assert_eq!(result.put[1].version, "2");
    assert_eq!(result.put[1].created_at, result.put[1].updated_at);
    assert_eq!(result.deleted, vec!["gone".to_string(), "never-was".into()]);
    assert_eq!(items.get("imported").unwrap(), result.put[0]);
    assert_eq!(items.get("old").unwrap(), result.put[1]);
    assert_eq!(items.get("gone"), Err(StoreError::NotFound));

    // A bad creation time anywhere writes nothing.
    let bad = items.batch(vec![
        BatchWrite::Put(BatchPut {
            item: new_item("x"),
            created_at: None,
            updated_at: None,
        }),
        BatchWrite::Put(BatchPut {
            item: new_item("y"),
            created_at: Some("yesterday".into()),
            updated_at: None,
        }),
    ]);
    assert!(matches!(bad, Err(StoreError::InvalidInput(_))), "{bad:?}");
    assert_eq!(items.get("x"), Err(StoreError::NotFound));
}

#[test]
fn batch_puts_keep_given_times_exactly() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    items.create(new_item("a")).unwrap();
    let result = items
        .batch(vec![BatchWrite::Put(BatchPut {
            item: new_item("a"),
            created_at: Some("2020-01-01T00:00:00.000001Z".into()),
            updated_at: Some("2021-06-01T12:00:00.5Z".into()),
        })])
        .unwrap();
    let stored = items.get("a").unwrap();
    assert_eq!(stored.created_at, "2020-01-01T00:00:00.000001Z");
    assert_eq!(stored.updated_at, "2021-06-01T12:00:00.500000Z");
    assert_eq!(stored, result.put[0]);
    assert_eq!(
        stored.version, "2",
        "a replaced item still gets a new version"
    );
}

/// Every item of every segment, read page by page.
fn scan_all(
    items: &Items<'_, Connection>,
    segments: u32,
    limit: u32,
    since: Option<&str>,
) -> Vec<item_model::Scanned> {
    let mut all = Vec::new();
    for segment in 0..segments {
        let mut request = ScanRequest::first(segment, segments, limit);
        request.updated_since = since.map(str::to_owned);
        loop {
            let page = items.scan(&request).unwrap();
            assert!(page.items.len() <= limit as usize);
            all.extend(page.items);
            match page.next_cursor {
                Some(cursor) => request.cursor = Some(cursor),
                None => break,
            }
        }
    }
    all
}

#[test]
fn scans_read_every_item_once_in_any_segmentation() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    let mut ids: Vec<String> = (0..150u32)
        .map(|n| format!("{:08x}-uuid", n.wrapping_mul(2_654_435_761)))
        .chain(["Z", "-dash", "zz", "é", "~"].map(String::from))
        .collect();
    for id in &ids {
        items.create(new_item(id)).unwrap();
    }
    let mut expired = new_item("expired");
    expired.expires_at = Some(now_seconds() - 10);
    items.create(expired).unwrap();
    ids.push("expired".into());
    ids.sort();
    for (segments, limit) in [(1, 1000), (1, 7), (4, 10), (7, 1), (256, 3)] {
        let scanned = scan_all(&items, segments, limit, None);
        let mut seen: Vec<String> = scanned.iter().map(|s| s.item.id.clone()).collect();
        seen.sort();
        assert_eq!(seen, ids, "{segments} segments, limit {limit}");
        for s in &scanned {
            assert_eq!(s.expired, s.item.id == "expired");
        }
    }
}

#[test]
fn scans_filter_by_update_time_and_refuse_foreign_cursors() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    items.create(new_item("before")).unwrap();
    let since = clock.now().to_string();
    items.create(new_item("after")).unwrap();
    let scanned = scan_all(&items, 1, 10, Some(&since));
    let ids: Vec<_> = scanned.iter().map(|s| s.item.id.as_str()).collect();
    assert_eq!(ids, ["after"]);

    let page = items.scan(&ScanRequest::first(0, 1, 1)).unwrap();
    assert!(page.next_cursor.is_some());
    let mut other = ScanRequest::first(0, 2, 1);
    other.cursor = page.next_cursor;
    invalid_input(items.scan(&other), "different query");
}

#[test]
fn expired_items_are_absent_and_their_ids_free() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    let mut old = new_item("old");
    old.expires_at = Some(now_seconds() - 1);
    items.create(old).unwrap();
    let mut live = new_item("live");
    live.expires_at = Some(now_seconds() + 3600);
    items.create(live).unwrap();

    assert_eq!(items.get("old"), Err(StoreError::NotFound));
    assert_eq!(
        items.update("old", &ItemPatch::default(), None),
        Err(StoreError::NotFound)
    );
    assert_eq!(
        items.increment("old", "likes", 1),
        Err(StoreError::NotFound)
    );
    assert_eq!(items.delete("old", None), Err(StoreError::NotFound));
    assert_eq!(
        items.put(new_item("old"), Some("1")),
        Err(StoreError::VersionMismatch(None))
    );
    let page = items.query(&by_user("u1", Order::Asc, 10, None)).unwrap();
    let ids: Vec<_> = page.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["live"]);

    // An expired id is free again: create and put start over at 1.
    let recreated = items.create(new_item("old")).unwrap();
    assert_eq!(recreated.version, "1");
    let mut again = new_item("old2");
    again.expires_at = Some(now_seconds());
    let expired = items.create(again).unwrap();
    let (item, outcome) = items.put(new_item("old2"), None).unwrap();
    assert_eq!(outcome, PutOutcome::Created);
    assert_eq!(item.version, "1");
    assert!(item.created_at > expired.created_at);
}

#[test]
fn purge_deletes_only_expired_rows() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    for (id, expires_at) in [
        ("past", Some(now_seconds() - 10)),
        ("future", Some(now_seconds() + 3600)),
        ("never", None),
    ] {
        let mut item = new_item(id);
        item.expires_at = expires_at;
        items.create(item).unwrap();
    }
    assert_eq!(items.purge_expired(Timestamp::now()).unwrap(), 1);
    let count: i64 = conn
        .query_row("SELECT count(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 2);
    assert_eq!(items.purge_expired(Timestamp::now()).unwrap(), 0);
}

#[test]
fn query_orders_and_pages() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    let mut ids = Vec::new();
    for i in 0..25 {
        let id = format!("item-{i:02}");
        let mut item = new_item(&id);
        item.status = Some(if i % 2 == 0 { "even" } else { "odd" }.into());
        items.create(item).unwrap();
        ids.push(id);
    }
    let mut other = new_item("someone-else");
    other.user_id = Some("u2".into());
    items.create(other).unwrap();

    for order in [Order::Asc, Order::Desc] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = items.query(&by_user("u1", order, 7, cursor)).unwrap();
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

    let page = items
        .query(&Query {
            key: IndexKey::Status("odd".into()),
            order: Order::Asc,
            limit: 100,
            cursor: None,
        })
        .unwrap();
    assert_eq!(page.items.len(), 12);
    assert!(page.next_cursor.is_none());
    assert!(
        page.items
            .iter()
            .all(|i| i.status.as_deref() == Some("odd"))
    );

    // An exact fit has no next page.
    let page = items.query(&by_user("u1", Order::Asc, 25, None)).unwrap();
    assert_eq!((page.items.len(), page.next_cursor), (25, None));
    assert!(
        items
            .query(&by_user("nobody", Order::Asc, 5, None))
            .unwrap()
            .items
            .is_empty()
    );
}

#[test]
fn paging_resumes_after_its_position_across_writes() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    for id in ["a", "b", "c", "d"] {
        items.create(new_item(id)).unwrap();
    }
    let first = items.query(&by_user("u1", Order::Asc, 2, None)).unwrap();
    assert_eq!(first.items.len(), 2);
    // The last item shown goes away and a new one comes: the next page
    // neither repeats nor skips what stayed.
    items.delete("b", None).unwrap();
    items.create(new_item("e")).unwrap();
    let second = items
        .query(&by_user("u1", Order::Asc, 10, first.next_cursor))
        .unwrap();
    let ids: Vec<_> = second.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["c", "d", "e"]);
}

#[test]
fn query_rejects_foreign_and_damaged_cursors() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    for id in ["a", "b", "c"] {
        items.create(new_item(id)).unwrap();
    }
    let page = items.query(&by_user("u1", Order::Asc, 1, None)).unwrap();
    let cursor = page.next_cursor.expect("more pages");
    for query in [
        by_user("u1", Order::Desc, 1, Some(cursor.clone())),
        by_user("u2", Order::Asc, 1, Some(cursor.clone())),
        by_user("u1", Order::Asc, 1, Some(format!("{cursor}x"))),
        by_user("u1", Order::Asc, 1, Some("garbage".into())),
    ] {
        let result = items.query(&query);
        assert!(
            matches!(result, Err(StoreError::InvalidInput(_))),
            "{result:?}"
        );
    }
}

#[test]
fn queries_read_the_indexes_in_order() {
    let conn = database();
    for (key, index) in [
        (IndexKey::UserId("u".into()), "items_by_user"),
        (IndexKey::Status("s".into()), "items_by_status"),
        (
            IndexKey::UserStatus {
                user_id: "u".into(),
                status: "s".into(),
            },
            "items_by_user_status",
        ),
    ] {
        for order in [Order::Asc, Order::Desc] {
            for after in [None, Some(("2026-01-01T00:00:00.000000Z", "a"))] {
                let (sql, params) = crate::items::query_statement(&key, order, 0, 10, after);
                let plan: Vec<String> =
                    Executor::execute(&conn, &format!("EXPLAIN QUERY PLAN {sql}"), &params)
                        .unwrap()
                        .into_iter()
                        .filter_map(|row| match row.get(3) {
                            Some(SqlValue::Text(detail)) => Some(detail.clone()),
                            _ => None,
                        })
                        .collect();
                let plan = plan.join("; ");
                assert!(plan.contains(index), "{sql}: {plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{sql} sorts: {plan}");
            }
        }
    }
}

#[test]
fn pages_are_bounded_in_bytes_and_page_exactly() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    // 30 items of 600 KB: 6 fit in the 4 MiB budget, the 7th would not.
    let blob = "x".repeat(600 * 1024);
    let mut ids = Vec::new();
    for i in 0..30 {
        let mut item = new_item(&format!("big-{i:02}"));
        item.attributes = vec![Attribute::new("blob", Value::Text(blob.clone()))];
        items.create(item).unwrap();
        ids.push(format!("big-{i:02}"));
    }
    for order in [Order::Asc, Order::Desc] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = items.query(&by_user("u1", order, 100, cursor)).unwrap();
            let bytes: usize = page.items.iter().map(item_model::estimated_size).sum();
            assert!(!page.items.is_empty());
            assert!(bytes <= item_model::PAGE_BYTE_BUDGET, "{bytes}");
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
        assert_eq!(seen, expected, "{order:?}: every item once, in order");
    }
    let first = items.query(&by_user("u1", Order::Asc, 100, None)).unwrap();
    assert_eq!(first.items.len(), 6);
    // Small items still fill a page of the limit, read in several chunks.
    for i in 0..40 {
        items.create(new_item(&format!("small-{i:02}"))).unwrap();
    }
    let page = items.query(&by_user("u1", Order::Desc, 35, None)).unwrap();
    assert_eq!(page.items.len(), 35);
    assert!(page.next_cursor.is_some());
}

// --- rows and values --------------------------------------------------------

#[test]
fn values_keep_their_exact_form() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
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
    item.expires_at = Some(i64::MAX);
    items.create(item).unwrap();
    let read = items.get("a").unwrap();
    assert_eq!(read.attributes, attributes);
    assert_eq!(read.expires_at, Some(i64::MAX));
}

#[test]
fn the_attributes_column_has_its_documented_layout() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    let mut item = new_item("a");
    item.attributes = vec![
        Attribute::new("likes", Value::Number("5".into())),
        Attribute::new("tags", Value::Json("[\"x\"]".into())),
    ];
    items.create(item).unwrap();
    let column: String = conn
        .query_row("SELECT attributes FROM items WHERE id = 'a'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        column,
        r#"[{"n":"likes","v":{"t":"number","v":"5"}},{"n":"tags","v":{"t":"json","v":"[\"x\"]"}}]"#
    );
}

#[test]
fn damaged_rows_are_backend_errors() {
    let (conn, clock) = (database(), WriteClock::new());
    let items = Items::new(&conn, &clock);
    items.create(new_item("a")).unwrap();
    items.create(new_item("b")).unwrap();
    conn.execute_batch(
        "UPDATE items SET attributes = '{' WHERE id = 'a';
         UPDATE items SET version = 'x' WHERE id = 'b';",
    )
    .unwrap();
    for id in ["a", "b"] {
        match items.get(id) {
            Err(StoreError::Backend(message)) => assert!(message.contains("damaged"), "{message}"),
            other => panic!("expected a damaged row, got {other:?}"),
        }
    }
}

#[test]
fn sql_errors_are_classified() {
    assert!(matches!(
        SqlError::from_message("no such table: items"),
        SqlError::MissingSchema(_)
    ));
    assert!(matches!(
        SqlError::from_message("table items has no column named x; no such column: x"),
        SqlError::MissingSchema(_)
    ));
    assert!(matches!(
        SqlError::from_message("no such index: items_by_user_status"),
        SqlError::MissingSchema(_)
    ));
    assert!(matches!(
        SqlError::from_message("database is locked"),
        SqlError::Unavailable(_)
    ));
    assert!(matches!(
        SqlError::from_message("near \"SELEC\": syntax error"),
        SqlError::Failed(_)
    ));
    assert_eq!(
        StoreError::from(SqlError::Unavailable("busy".into())),
        StoreError::Unavailable("busy".into())
    );
    assert_eq!(
        StoreError::from(SqlError::Failed("boom".into())),
        StoreError::Backend("boom".into())
    );
    // rusqlite's failures arrive classified too.
    let conn = database();
    let missing = Executor::execute(&conn, "SELECT id FROM nowhere", &[]);
    assert!(
        matches!(missing, Err(SqlError::MissingSchema(_))),
        "{missing:?}"
    );
    assert!(matches!(
        Executor::execute(&conn, "SELEC 1", &[]),
        Err(SqlError::Failed(_))
    ));
}

#[test]
fn a_busy_file_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("items.db");
    let holder = Connection::open(&path).unwrap();
    schema::migrate(&holder).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let other = Connection::open(&path).unwrap();
    other.busy_timeout(std::time::Duration::ZERO).unwrap();
    let clock = WriteClock::new();
    let result = Items::new(&other, &clock).create(new_item("a"));
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    holder.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn every_value_passes_through_the_rusqlite_executor() {
    let conn = database();
    let values = vec![
        SqlValue::Null,
        SqlValue::Integer(i64::MIN),
        SqlValue::Real(0.5),
        SqlValue::Text("ünï".into()),
        SqlValue::Blob(vec![0, 255]),
    ];
    let rows = Executor::execute(&conn, "SELECT ?1, ?2, ?3, ?4, ?5", &values).unwrap();
    assert_eq!(rows, vec![values]);
}

// --- apply-once -------------------------------------------------------------

fn once(key: &str, fingerprint: &str) -> item_model::Once {
    item_model::Once {
        key: key.into(),
        fingerprint: fingerprint.into(),
        expires_at: now_seconds() + 3600,
    }
}

fn likes(item: &item_model::Item) -> Option<&Value> {
    item.attribute("likes")
}

#[test]
fn a_keyed_write_applies_once_and_replays_its_result() {
    use item_model::{Write, Written};
    let conn = database();
    let clock = WriteClock::new();
    let items = Items::new(&conn, &clock);
    items.create(new_item("a")).unwrap();
    let like = Write::Increment {
        id: "a".into(),
        attribute: "likes".into(),
        delta: 1,
    };
    let first = items.apply_once(like.clone(), &once("k1", "f1")).unwrap();
    assert!(!first.replayed);
    let again = items.apply_once(like.clone(), &once("k1", "f1")).unwrap();
    assert!(again.replayed);
    assert_eq!(again.written, first.written);
    let Written::Item(liked) = &first.written else {
        panic!("{first:?}")
    };
    assert_eq!(likes(liked), Some(&Value::Number("6".into())));
    // Applied once: the stored count is 6, not 7.
    assert_eq!(
        likes(&items.get("a").unwrap()),
        Some(&Value::Number("6".into()))
    );
    // The same key for another request is refused and changes nothing.
    assert_eq!(
        items.apply_once(like.clone(), &once("k1", "f2")),
        Err(StoreError::KeyReused)
    );
    // Another key applies again.
    items.apply_once(like, &once("k2", "f1")).unwrap();
    assert_eq!(
        likes(&items.get("a").unwrap()),
        Some(&Value::Number("7".into()))
    );
}

#[test]
fn every_kind_of_write_replays_exactly() {
    use item_model::Write;
    let conn = database();
    let clock = WriteClock::new();
    let items = Items::new(&conn, &clock);
    let writes = [
        Write::Create(new_item("c")),
        Write::Put {
            item: new_item("c"),
            expected_version: Some("1".into()),
        },
        Write::Update {
            id: "c".into(),
            patch: ItemPatch {
                status: Some(None),
                ..ItemPatch::default()
            },
            expected_version: None,
        },
        Write::Batch(vec![
            BatchWrite::Put(BatchPut {
                item: new_item("d"),
                created_at: None,
                updated_at: None,
            }),
            BatchWrite::Delete("c".into()),
        ]),
        Write::Delete {
            id: "d".into(),
            expected_version: None,
        },
    ];
    for (n, write) in writes.into_iter().enumerate() {
        let key = format!("key{n}");
        let first = items.apply_once(write.clone(), &once(&key, "f")).unwrap();
        let again = items.apply_once(write.clone(), &once(&key, "f")).unwrap();
        assert!(!first.replayed && again.replayed, "{write:?}");
        assert_eq!(first.written, again.written, "{write:?}");
    }
    assert_eq!(items.get("c"), Err(StoreError::NotFound));
    assert_eq!(items.get("d"), Err(StoreError::NotFound));
}

#[test]
fn a_failed_keyed_write_records_nothing() {
    use item_model::Write;
    let conn = database();
    let clock = WriteClock::new();
    let items = Items::new(&conn, &clock);
    let delete = Write::Delete {
        id: "late".into(),
        expected_version: None,
    };
    assert_eq!(
        items.apply_once(delete.clone(), &once("k", "f")),
        Err(StoreError::NotFound)
    );
    items.create(new_item("late")).unwrap();
    let applied = items.apply_once(delete, &once("k", "f")).unwrap();
    assert!(!applied.replayed);
    assert_eq!(items.get("late"), Err(StoreError::NotFound));
}

#[test]
fn an_expired_record_frees_its_key_and_is_purged() {
    use item_model::Write;
    let conn = database();
    let clock = WriteClock::new();
    let items = Items::new(&conn, &clock);
    items.create(new_item("a")).unwrap();
    let like = Write::Increment {
        id: "a".into(),
        attribute: "likes".into(),
        delta: 1,
    };
    let past = item_model::Once {
        expires_at: now_seconds() - 1,
        ..once("k", "f")
    };
    items.apply_once(like.clone(), &past).unwrap();
    // Recorded already expired: the same key applies again.
    assert!(!items.apply_once(like.clone(), &past).unwrap().replayed);
    assert_eq!(
        likes(&items.get("a").unwrap()),
        Some(&Value::Number("7".into()))
    );
    items.purge_expired(Timestamp::now()).unwrap();
    let left: i64 = conn
        .query_row("SELECT count(*) FROM idempotency", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn a_version_2_file_gains_the_idempotency_table_on_first_keyed_write() {
    let conn = Connection::open_in_memory().unwrap();
    for statement in schema::V1.iter().chain(schema::V2) {
        conn.execute_batch(statement).unwrap();
    }
    conn.pragma_update(None, "user_version", 2).unwrap();
    let clock = WriteClock::new();
    let items = Items::new(&conn, &clock);
    let applied = items
        .apply_once(item_model::Write::Create(new_item("a")), &once("k", "f"))
        .unwrap();
    assert!(!applied.replayed);
    assert_eq!(user_version(&conn), VERSION);
}
