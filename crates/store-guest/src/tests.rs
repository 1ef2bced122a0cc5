//! The export natively: calls go through validation and conversion to a
//! recording store, exactly as a component's caller would reach it.

use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;

use item_model::{
    BatchResult, BatchWrite, Item, ItemPatch, NewItem, Page, PutOutcome, Query, ScanPage,
    ScanRequest,
};

use super::*;

/// Answers from what it was given and records each call with the test
/// thread that made it (tests run in parallel on one static instance).
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(ThreadId, String)>>,
}

fn record(call: String) {
    let recorder = Recorder::instance().expect("the recorder");
    recorder
        .calls
        .lock()
        .unwrap()
        .push((std::thread::current().id(), call));
}

fn calls() -> Vec<String> {
    let me = std::thread::current().id();
    Recorder::instance()
        .unwrap()
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(thread, _)| *thread == me)
        .map(|(_, call)| call.clone())
        .collect()
}

fn stored(item: NewItem, version: &str) -> Item {
    let time = "2026-01-01T00:00:00.000000Z".to_string();
    item.into_item(time.clone(), time, version.to_string())
}

impl BlockingStore for Recorder {
    const NAME: &'static str = "recorder";

    fn instance() -> StoreResult<&'static Self> {
        static RECORDER: OnceLock<Recorder> = OnceLock::new();
        Ok(RECORDER.get_or_init(Recorder::default))
    }
    fn get(&self, id: &str) -> StoreResult<Item> {
        record(format!("get {id}"));
        Err(StoreError::NotFound)
    }
    fn create(&self, item: NewItem) -> StoreResult<Item> {
        record(format!("create {}", item.id));
        Ok(stored(item, "1"))
    }
    fn put(
        &self,
        item: NewItem,
        expected_version: Option<&str>,
    ) -> StoreResult<(Item, PutOutcome)> {
        record(format!("put {} {expected_version:?}", item.id));
        Ok((stored(item, "2"), PutOutcome::Created))
    }
    fn update(
        &self,
        id: &str,
        patch: ItemPatch,
        expected_version: Option<&str>,
    ) -> StoreResult<Item> {
        record(format!(
            "update {id} {:?} {expected_version:?}",
            patch.remove
        ));
        Err(StoreError::VersionMismatch(Some("7".into())))
    }
    fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()> {
        record(format!("delete {id} {expected_version:?}"));
        Ok(())
    }
    fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item> {
        record(format!("increment {id} {attribute} {delta}"));
        Err(StoreError::Unavailable("the backend is down".into()))
    }
    fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult> {
        record(format!("batch {}", writes.len()));
        Ok(BatchResult {
            put: Vec::new(),
            deleted: vec!["b".into()],
        })
    }
    fn apply_once(&self, write: Write, once: Once) -> StoreResult<Applied> {
        record(format!("apply-once {} {}", write.operation(), once.key));
        Ok(Applied {
            written: item_model::Written::Deleted,
            replayed: true,
        })
    }
    fn query(&self, query: Query) -> StoreResult<Page> {
        record(format!(
            "query {:?} {:?} {}",
            query.key, query.order, query.limit
        ));
        Ok(Page::default())
    }
    fn scan(&self, request: ScanRequest) -> StoreResult<ScanPage> {
        record(format!("scan {}/{}", request.segment, request.segments));
        Ok(ScanPage::default())
    }
}

type Exported = Export<Recorder>;

fn new_item(id: &str) -> wit::NewItem {
    wit::NewItem {
        id: id.into(),
        user_id: Some("u1".into()),
        status: None,
        expires_at: None,
        attributes: vec![wit::Attribute {
            name: "price".into(),
            value: wit::Value::Number("12345678901234567890.5".into()),
        }],
    }
}

#[test]
fn calls_reach_the_store_with_values_intact() {
    let created = Exported::create(new_item("a")).unwrap();
    assert_eq!(created.version, "1");
    assert!(matches!(
        &created.attributes[0].value,
        wit::Value::Number(n) if n == "12345678901234567890.5"
    ));
    let (_, outcome) = Exported::put(new_item("a"), Some("1".into())).unwrap();
    assert!(matches!(outcome, wit::PutOutcome::Created));
    assert!(matches!(
        Exported::get("a".into()),
        Err(wit::StoreError::NotFound)
    ));
    let patch = wit::ItemPatch {
        user_id: None,
        status: Some(None),
        expires_at: None,
        set: Vec::new(),
        remove: vec!["price".into()],
    };
    assert!(matches!(
        Exported::update("a".into(), patch, Some("3".into())),
        Err(wit::StoreError::VersionMismatch(Some(v))) if v == "7"
    ));
    assert!(matches!(
        Exported::increment("a".into(), "likes".into(), 2),
        Err(wit::StoreError::Unavailable(_))
    ));
    Exported::delete("a".into(), None).unwrap();
    let batch = Exported::batch(vec![wit::BatchWrite::Delete("b".into())]).unwrap();
    assert_eq!(batch.deleted, ["b"]);
    let query = wit::Query {
        key: wit::IndexKey::Status("active".into()),
        order: wit::Order::Desc,
        limit: 10,
        cursor: None,
    };
    Exported::query(query).unwrap();
    let scan = wit::ScanRequest {
        segment: 2,
        segments: 4,
        limit: 100,
        cursor: None,
        updated_since: Some("2026-01-01T00:00:00.000000Z".into()),
    };
    Exported::scan(scan.clone()).unwrap();
    for bad in [
        wit::ScanRequest {
            segment: 4,
            ..scan.clone()
        },
        wit::ScanRequest {
            segments: 0,
            segment: 0,
            ..scan.clone()
        },
        wit::ScanRequest {
            limit: 0,
            ..scan.clone()
        },
        wit::ScanRequest {
            updated_since: Some("yesterday".into()),
            ..scan.clone()
        },
    ] {
        assert!(matches!(
            Exported::scan(bad),
            Err(wit::StoreError::InvalidInput(_))
        ));
    }
    assert_eq!(
        calls(),
        [
            "create a",
            "put a Some(\"1\")",
            "get a",
            "update a [\"price\"] Some(\"3\")",
            "increment a likes 2",
            "delete a None",
            "batch 1",
            "query Status(\"active\") Desc 10",
            "scan 2/4",
        ]
    );
}

#[test]
fn invalid_input_never_reaches_the_store() {
    let mut bad = new_item("a/b");
    assert!(matches!(
        Exported::create(bad.clone()),
        Err(wit::StoreError::InvalidInput(_))
    ));
    bad.id = "ok".into();
    bad.attributes[0].name = "createdAt".into();
    assert!(matches!(
        Exported::put(bad, None),
        Err(wit::StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        Exported::increment("ok".into(), "id".into(), 1),
        Err(wit::StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        Exported::batch(Vec::new()),
        Err(wit::StoreError::InvalidInput(_))
    ));
    let query = wit::Query {
        key: wit::IndexKey::Status(String::new()),
        order: wit::Order::Asc,
        limit: 0,
        cursor: None,
    };
    assert!(matches!(
        Exported::query(query),
        Err(wit::StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        Exported::delete(String::new(), None),
        Err(wit::StoreError::InvalidInput(_))
    ));
    let once = |key: &str| wit::Once {
        key: key.into(),
        fingerprint: "f".into(),
        expires_at: 1_900_000_000,
    };
    assert!(matches!(
        Exported::apply_once(wit::Write::Create(new_item("a/b")), once("k")),
        Err(wit::StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        Exported::apply_once(wit::Write::Create(new_item("a")), once("k/1")),
        Err(wit::StoreError::InvalidInput(_))
    ));
    assert!(calls().is_empty());
}

#[test]
fn apply_once_reaches_the_store_with_its_key() {
    let once = wit::Once {
        key: "k-1_A".into(),
        fingerprint: "f".into(),
        expires_at: 1_900_000_000,
    };
    let applied = Exported::apply_once(
        wit::Write::Delete(wit::DeleteWrite {
            id: "a".into(),
            expected_version: None,
        }),
        once,
    )
    .unwrap();
    assert!(applied.replayed);
    assert!(matches!(applied.written, wit::Written::Deleted));
    assert_eq!(calls(), ["apply-once delete k-1_A"]);
}
