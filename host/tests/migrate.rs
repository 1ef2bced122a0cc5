//! `edge-items migrate` end to end, on the real backends `cargo xtask test`
//! starts: 10,000 items of varied shapes go embedded -> DynamoDB Local ->
//! Firestore emulator -> embedded, the first copy killed (SIGKILL) halfway
//! and resumed, each step verified by the command's own `--verify` and the
//! last one compared with the original here, field by field.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use std::time::{Duration, Instant};

use item_store::{
    Attribute, BatchPut, BatchWrite, ItemStore, NewItem, ScanRequest, Timestamp, Value,
};
use store_embedded::EmbeddedStore;

mod common;
use common::{dynamodb_local, edge_items, edge_items_on_backends, run, unique};

const ITEMS: u32 = 10_000;

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let output = run(dir, args);
    assert!(output.status.success(), "edge-items {args:?} failed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Item `n`: a UUID-like id mostly, other ids now and then; every kind of
/// value; some with many attributes, some large, some expiring later.
fn item(n: u32) -> NewItem {
    let id = match n % 50 {
        0 => format!("Item-{n}"),
        1 => format!("élément-{n}"),
        2 => format!("~tail {n}"),
        _ => format!(
            "{:08x}-{:04x}-4000-8000-{:012x}",
            n.wrapping_mul(2_654_435_761),
            n % 65_536,
            n
        ),
    };
    let mut attributes = vec![
        Attribute::new("name", Value::Text(format!("Item {n} \"quoted\" ✓"))),
        Attribute::new("likes", Value::Number((n % 1000).to_string())),
        Attribute::new(
            "price",
            Value::Number(format!("{}.{:02}", n % 500, n % 100)),
        ),
        Attribute::new("done", Value::Bool(n.is_multiple_of(2))),
    ];
    match n % 7 {
        0 => attributes.push(Attribute::new("note", Value::Null)),
        1 => attributes.push(Attribute::new(
            "tags",
            Value::Json(format!(r#"["a{n}","b",{{"depth":{{"n":{n},"x":-0.5}}}}]"#)),
        )),
        2 => attributes.push(Attribute::new("big", Value::Number("1e21".into()))),
        3 => attributes.push(Attribute::new("negative", Value::Number("-42".into()))),
        4 => attributes.push(Attribute::new("text", Value::Text("x".repeat(4096)))),
        5 => attributes.extend(
            (0..60).map(|k| Attribute::new(format!("field{k}"), Value::Number(k.to_string()))),
        ),
        _ => {}
    }
    NewItem {
        id,
        user_id: (!n.is_multiple_of(3)).then(|| format!("user-{}", n % 17)),
        status: (!n.is_multiple_of(4))
            .then(|| ["active", "done", "archived"][(n % 3) as usize].to_owned()),
        expires_at: n.is_multiple_of(11).then_some(4_102_444_800 + i64::from(n)),
        attributes,
    }
}

async fn fill(store: &EmbeddedStore) {
    for start in (0..ITEMS).step_by(100) {
        let writes = (start..start + 100)
            .map(|n| {
                BatchWrite::Put(BatchPut {
                    item: item(n),
                    created_at: Some(
                        Timestamp::from_micros(1_600_000_000_000_000 + i64::from(n) * 1_000_003)
                            .to_string(),
                    ),
                    updated_at: Some(
                        Timestamp::from_micros(1_700_000_000_000_000 + i64::from(n) * 999_983)
                            .to_string(),
                    ),
                })
            })
            .collect();
        store.batch(writes).await.expect("fill the source");
    }
    // Expired, not yet purged: passed over by the copy.
    let mut expired = item(ITEMS);
    expired.id = "expired-item".into();
    expired.expires_at = Some(1);
    store.create(expired).await.expect("an expired item");
}

/// Every item of `store`, by id.
async fn all_items(store: &dyn ItemStore) -> Vec<item_store::Item> {
    let mut items = Vec::new();
    let mut request = ScanRequest::first(0, 1, 1000);
    loop {
        let page = store.scan(request.clone()).await.expect("scan");
        items.extend(
            page.items
                .into_iter()
                .filter(|s| !s.expired)
                .map(|s| s.item),
        );
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    items.sort_by(|a, b| a.id.cmp(&b.id));
    items
}

fn checkpoint_copied(path: &Path) -> u64 {
    let Ok(text) = std::fs::read(path) else {
        return 0;
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return 0;
    };
    json["segments"]
        .as_array()
        .map(|segments| segments.iter().filter_map(|s| s["copied"].as_u64()).sum())
        .unwrap_or(0)
}

/// Runs a copy, kills it once its checkpoint shows `at_least` items
/// written, and says how many the checkpoint had then.
fn kill_halfway(dir: &Path, args: &[&str], checkpoint: &Path, at_least: u64) -> u64 {
    let mut child = edge_items_on_backends(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("edge-items starts");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let copied = checkpoint_copied(checkpoint);
        if copied >= at_least {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
            return checkpoint_copied(checkpoint);
        }
        if let Some(status) = child.try_wait().expect("poll") {
            panic!("the copy ended ({status}) before it could be killed at {at_least} items");
        }
        assert!(Instant::now() < deadline, "the copy made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_items_round_trip_through_every_store_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let source_path = dir.join("source.db");
    let source = EmbeddedStore::open(&source_path).expect("open source");
    fill(&source).await;

    let table = unique("Migrate");
    let endpoint = dynamodb_local();
    run_ok(
        dir,
        &[
            "provision",
            "dynamodb",
            "--dynamodb-table",
            &table,
            "--dynamodb-endpoint",
            &endpoint,
        ],
    );
    let source_spec = format!("embedded:{}", source_path.display());
    let dynamodb_spec = format!("dynamodb:{table}@{endpoint}");
    let firestore_spec = format!("firestore:{}/items", unique("demo-migrate"));
    let final_path: PathBuf = dir.join("final.db");
    let final_spec = format!("embedded:{}", final_path.display());

    // 1. embedded -> DynamoDB, killed halfway, then resumed.
    let checkpoint = dir.join("to-dynamodb.json");
    let checkpoint_arg = checkpoint.display().to_string();
    let copy = [
        "migrate",
        "--from",
        &source_spec,
        "--to",
        &dynamodb_spec,
        "--segments",
        "3",
        "--page-size",
        "25",
        "--checkpoint",
        &checkpoint_arg,
        "--no-count",
    ];
    let at_kill = kill_halfway(dir, &copy, &checkpoint, 2_000);
    assert!(
        at_kill < u64::from(ITEMS),
        "killed before the end: {at_kill}"
    );
    let partial = run(
        dir,
        &[
            "migrate",
            "--from",
            &source_spec,
            "--to",
            &dynamodb_spec,
            "--verify-only",
        ],
    );
    assert!(!partial.status.success(), "a half copy must not verify");
    assert!(String::from_utf8_lossy(&partial.stdout).contains("missing in target"));

    let mut resumed = copy.to_vec();
    resumed.push("--verify");
    let output = run(dir, &resumed);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("resuming"), "{stderr}");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&checkpoint).expect("checkpoint")).expect("json");
    let counted = |field: &str| -> u64 {
        saved["segments"]
            .as_array()
            .expect("segments")
            .iter()
            .map(|s| s[field].as_u64().unwrap_or(0))
            .sum()
    };
    assert_eq!(counted("skipped_expired"), 1, "the expired item, once");
    assert!(counted("copied") >= u64::from(ITEMS));
    assert!(
        saved["segments"]
            .as_array()
            .expect("segments")
            .iter()
            .all(|s| s["done"] == true)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "source: {ITEMS} items, target: {ITEMS} items, differences: 0"
        )),
        "{stdout}"
    );

    // 2. DynamoDB -> Firestore, 3. Firestore -> embedded, each verified.
    for (from, to) in [
        (&dynamodb_spec, &firestore_spec),
        (&firestore_spec, &final_spec),
    ] {
        let stdout = run_ok(dir, &["migrate", "--from", from, "--to", to, "--verify"]);
        assert!(stdout.contains("differences: 0"), "{stdout}");
    }

    // The end equals the start, field by field (numbers by value, as
    // Firestore keeps them as doubles: checked by the verify above).
    let last = EmbeddedStore::open(&final_path).expect("open the last store");
    let (original, copied) = (all_items(&source).await, all_items(&last).await);
    assert_eq!(original.len(), ITEMS as usize);
    assert_eq!(copied.len(), original.len());
    for (a, b) in original.iter().zip(&copied) {
        assert_eq!(
            (
                &a.id,
                &a.created_at,
                &a.updated_at,
                &a.user_id,
                &a.status,
                a.expires_at
            ),
            (
                &b.id,
                &b.created_at,
                &b.updated_at,
                &b.user_id,
                &b.status,
                b.expires_at
            )
        );
        assert_eq!(a.attributes.len(), b.attributes.len(), "{}", a.id);
    }
    let text_of = |item: &item_store::Item| item.attribute("name").cloned();
    assert!(
        original
            .iter()
            .zip(&copied)
            .all(|(a, b)| text_of(a) == text_of(b))
    );

    // A catch-up copies only what changed since.
    let since = Timestamp::now().to_string();
    source
        .increment(&item(5).id, "likes", 1)
        .await
        .expect("a later write");
    let output = run(
        dir,
        &[
            "migrate",
            "--from",
            &source_spec,
            "--to",
            &final_spec,
            "--since",
            &since,
            "--verify",
        ],
    );
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("copied 1 items"));

    // A deletion is not seen by a catch-up: the comparison finds it, and
    // --prune removes it from the target.
    source
        .delete(&item(6).id, None)
        .await
        .expect("a later delete");
    let compare = [
        "migrate",
        "--from",
        &source_spec,
        "--to",
        &final_spec,
        "--verify-only",
    ];
    let output = run(dir, &compare);
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("only in target:    {}", item(6).id)),
        "{stdout}"
    );
    let mut prune = compare.to_vec();
    prune.push("--prune");
    let stdout = run_ok(dir, &prune);
    assert!(stdout.contains("pruned 1 items only in target"), "{stdout}");
    let stdout = run_ok(dir, &compare);
    assert!(stdout.contains("differences: 0"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_firestore_cannot_hold_are_reported_not_rounded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let source_path = dir.join("source.db");
    let source = EmbeddedStore::open(&source_path).expect("open source");
    let mut exact = item(1);
    exact.id = "too-precise".into();
    exact.attributes = vec![Attribute::new(
        "n",
        Value::Number("12345678901234567890123".into()),
    )];
    source.create(exact).await.expect("write");
    source.create(item(2)).await.expect("write");
    let firestore_spec = format!("firestore:{}/items", unique("demo-refuse"));
    let output = run(
        dir,
        &[
            "migrate",
            "--from",
            &format!("embedded:{}", source_path.display()),
            "--to",
            &firestore_spec,
        ],
    );
    assert!(!output.status.success(), "a refused item fails the command");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("copied 1 items"), "{stderr}");
    assert!(stderr.contains("refused too-precise"), "{stderr}");
}

#[test]
fn a_store_is_not_copied_onto_itself() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = edge_items()
        .current_dir(dir.path())
        .args([
            "migrate",
            "--from",
            "embedded:a.db",
            "--to",
            "embedded:a.db",
        ])
        .output()
        .expect("edge-items runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("name the same store"), "{stderr}");
    assert!(!dir.path().join("a.db").exists(), "nothing opened");
}
