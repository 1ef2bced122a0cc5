//! The mirror store (`serve --store mirror`) through the loss of a cloud,
//! on real backends: a DynamoDB Local of the test's own (so it can be
//! killed with SIGKILL and restarted on the same data) and the Firestore
//! emulator `cargo xtask test` starts.
//!
//! - The primary is lost mid-run: reads keep answering from the secondary,
//!   marked `Edge-Items-Served-By: secondary`, with every acknowledged
//!   write in them; writes get 503. After the restart and `edge-items
//!   reconcile`, both sides are equal and no acknowledged write is lost.
//! - The secondary is lost and the server dies (SIGKILL) right after
//!   acknowledging writes: the outbox brings them to the secondary when
//!   the server starts again.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{
    api_wasm, composed_wasm, dynamodb_local, edge_items_on_backends, firestore_emulator, run,
    unique, wait_listening, workspace_root,
};

const SERVED_BY: &str = "edge-items-served-by";

/// A DynamoDB Local of this test, keeping its data in a folder so that it
/// can be killed and started again on the same data and port.
struct DynamoDbLocal {
    child: Option<Child>,
    port: u16,
    data: PathBuf,
}

impl DynamoDbLocal {
    fn start(data: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        std::fs::create_dir_all(data).unwrap();
        let mut local = Self {
            child: None,
            port,
            data: data.to_path_buf(),
        };
        local.restart();
        local
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it (again), and waits until it listens.
    fn restart(&mut self) {
        let dir = PathBuf::from(std::env::var_os("DYNAMODB_LOCAL_DIR").expect(
            "DYNAMODB_LOCAL_DIR is not set: run the tests with `cargo xtask test`, \
             which installs DynamoDB Local",
        ));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.join("dynamodb-local.log"))
            .unwrap();
        let child = Command::new("java")
            .arg(format!(
                "-Djava.library.path={}",
                dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(dir.join("DynamoDBLocal.jar"))
            .args(["-sharedDb", "-dbPath"])
            .arg(&self.data)
            .args(["-port", &self.port.to_string()])
            .current_dir(&self.data)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start DynamoDB Local (java)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "DynamoDB Local did not listen within 90 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: the cloud is gone, mid-request if need be.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for DynamoDbLocal {
    fn drop(&mut self) {
        self.kill();
    }
}

fn provision(dir: &Path, table: &str, endpoint: &str) {
    let out = run(
        dir,
        &[
            "provision",
            "dynamodb",
            "--dynamodb-table",
            table,
            "--dynamodb-endpoint",
            endpoint,
        ],
    );
    assert!(out.status.success(), "provisioning {table} failed");
}

/// `edge-items reconcile --dry-run`: compares the two sides, writes
/// nothing; exits 0 when they are equal.
fn compare(dir: &Path, primary: &str, secondary: &str) -> Output {
    let args = [
        "reconcile",
        "--primary",
        primary,
        "--secondary",
        secondary,
        "--dry-run",
    ];
    run(dir, &args)
}

/// Both sides hold the 4 items [`write_every_kind`] leaves, equal.
fn assert_four_items_equal(dir: &Path, primary: &str, secondary: &str) {
    let compared = compare(dir, primary, secondary);
    let stdout = String::from_utf8_lossy(&compared.stdout);
    assert!(compared.status.success(), "the secondary differs: {stdout}");
    assert!(
        stdout.contains("source: 4 items, target: 4 items, differences: 0"),
        "{stdout}"
    );
}

/// A running `serve --store mirror`, killed when dropped.
struct Mirror {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
}

impl Mirror {
    fn start(dir: &Path, primary: &str, secondary: &str) -> Self {
        let outbox = dir.join("outbox.db");
        Self::start_with(dir, primary, secondary, outbox.to_str().unwrap())
    }

    /// With `--mirror-outbox OUTBOX` (a file, or `primary`).
    fn start_with(dir: &Path, primary: &str, secondary: &str, outbox: &str) -> Self {
        let component = api_wasm();
        let args = [
            "--store",
            "mirror",
            "--primary",
            primary,
            "--secondary",
            secondary,
            "--mirror-outbox",
            outbox,
            "--backend-timeout",
            "2s",
            "--component",
            component.to_str().unwrap(),
        ];
        Self::spawn(dir, &args)
    }

    /// The composed mirror (target/components/api-mirror.wasm: Firestore
    /// mirrored onto DynamoDB) on `--store none`, its adapters configured
    /// through `--env`: the Firestore emulator at `firestore`, project
    /// `project`; DynamoDB Local's `table`.
    fn start_composed(dir: &Path, firestore: &str, project: &str, table: &str) -> Self {
        let settings = [
            format!("FIRESTORE_EMULATOR_HOST={firestore}"),
            format!("GOOGLE_CLOUD_PROJECT={project}"),
            format!("AWS_ENDPOINT_URL_DYNAMODB={}", dynamodb_local()),
            format!("EDGE_ITEMS_DYNAMODB_TABLE={table}"),
            "EDGE_ITEMS_BACKEND_TIMEOUT=2s".to_owned(),
            "AWS_ACCESS_KEY_ID".to_owned(),
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            "AWS_REGION".to_owned(),
        ];
        let component = composed_wasm("mirror");
        let mut args = vec![
            "--store",
            "none",
            "--component",
            component.to_str().unwrap(),
        ];
        for setting in &settings {
            args.extend(["--env", setting.as_str()]);
        }
        Self::spawn(dir, &args)
    }

    fn spawn(dir: &Path, args: &[&str]) -> Self {
        let log_path = dir.join(format!("host-{}.log", unique("")));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = edge_items_on_backends(dir)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(["--admin-listen", "127.0.0.1:0"])
            .arg("--cache-dir")
            .arg(workspace_root().join("target/edge-items-cache"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start edge-items");
        let (addr, admin) = wait_listening(&mut child, &log_path);
        let admin = admin.expect("the admin listener");
        Self { child, addr, admin }
    }

    /// A counter or gauge of its metrics (0 when absent).
    async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGKILL: no graceful anything.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and waits for the graceful exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the client was told last about an item: its body, or that it was
/// deleted.
type Acknowledged = BTreeMap<String, Option<Value>>;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The fields a write sets, compared after failover and reconcile (the
/// version and ETag are each store's own).
fn content(item: &Value) -> Value {
    json!({
        "id": item["id"],
        "name": item["name"],
        "userId": item["userId"],
        "status": item["status"],
        "createdAt": item["createdAt"],
        "updatedAt": item["updatedAt"],
    })
}

/// Creates, renames and deletes items of `user`; every answer must be a
/// success, and each is recorded.
async fn write_round(
    http: &reqwest::Client,
    mirror: &Mirror,
    user: &str,
    items: u32,
    acknowledged: &mut Acknowledged,
) {
    for n in 0..items {
        let id = format!("{user}-{n}");
        let created = http
            .post(mirror.url("/items"))
            .json(
                &json!({"id": id, "name": format!("item {n}"), "userId": user, "status": "active"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "create {id}");
        acknowledged.insert(id.clone(), Some(created.json().await.unwrap()));
        if n % 3 == 0 {
            let renamed = http
                .patch(mirror.url(&format!("/items/{id}")))
                .header("content-type", "application/merge-patch+json")
                .body(json!({"name": format!("renamed {n}"), "status": "done"}).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(renamed.status(), 200, "patch {id}");
            acknowledged.insert(id.clone(), Some(renamed.json().await.unwrap()));
        }
        if n % 5 == 0 {
            let deleted = http
                .delete(mirror.url(&format!("/items/{id}")))
                .send()
                .await
                .unwrap();
            assert_eq!(deleted.status(), 204, "delete {id}");
            acknowledged.insert(id, None);
        }
    }
}

/// Every acknowledged write is what the mirror answers now; says whether
/// any answer was failed over.
async fn assert_all_acknowledged(
    http: &reqwest::Client,
    mirror: &Mirror,
    acknowledged: &Acknowledged,
    served_by_secondary: bool,
) {
    for (id, expected) in acknowledged {
        let answer = http
            .get(mirror.url(&format!("/items/{id}")))
            .send()
            .await
            .unwrap();
        let header = answer
            .headers()
            .get(SERVED_BY)
            .map(|v| v.to_str().unwrap().to_owned());
        let status = answer.status().as_u16();
        match expected {
            Some(item) => {
                assert_eq!(status, 200, "{id}");
                let body: Value = answer.json().await.unwrap();
                assert_eq!(content(&body), content(item), "{id}");
            }
            None => assert_eq!(status, 404, "{id} was deleted"),
        }
        let expected_header = served_by_secondary.then(|| "secondary".to_owned());
        assert_eq!(header, expected_header, "{id}: {SERVED_BY}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_survive_the_loss_of_the_primary_and_reconcile_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut dynamodb = DynamoDbLocal::start(&dir.path().join("dynamodb"));
    let table = unique("mirror");
    provision(dir.path(), &table, &dynamodb.endpoint());
    let primary = format!("dynamodb:{table}@{}", dynamodb.endpoint());
    let secondary = format!("firestore:{}/items", unique("mirror").to_lowercase());
    let mirror = Mirror::start(dir.path(), &primary, &secondary);
    let http = client();
    let mut acknowledged = Acknowledged::new();

    write_round(&http, &mirror, "before", 30, &mut acknowledged).await;
    assert_all_acknowledged(&http, &mirror, &acknowledged, false).await;

    // The primary's cloud is lost.
    dynamodb.kill();
    assert_all_acknowledged(&http, &mirror, &acknowledged, true).await;
    let listed = http
        .get(mirror.url("/items?userId=before&limit=100"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    assert_eq!(
        listed.headers().get(SERVED_BY).map(|v| v.to_str().unwrap()),
        Some("secondary")
    );
    let listed: Value = listed.json().await.unwrap();
    let present = acknowledged.values().filter(|v| v.is_some()).count();
    assert_eq!(listed["items"].as_array().unwrap().len(), present);
    let failed_over = mirror
        .metric(r#"edge_items_mirror_events_total{event="read_from_secondary"}"#)
        .await;
    assert!(
        failed_over > acknowledged.len() as f64,
        "every read and the list counted: {failed_over}"
    );
    // Writes are refused (the default policy), and leave nothing behind.
    let refused = http
        .post(mirror.url("/items"))
        .json(&json!({"id": "during-outage", "name": "x", "userId": "during"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json")
    );

    // The primary comes back with its data; writes go on.
    dynamodb.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = http
            .get(mirror.url("/items/before-1"))
            .send()
            .await
            .unwrap();
        if answer.status() == 200 && answer.headers().get(SERVED_BY).is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "the primary is not read again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    write_round(&http, &mirror, "after", 10, &mut acknowledged).await;
    mirror.stop();

    let outbox = dir.path().join("outbox.db");
    let outbox = outbox.to_str().unwrap();
    let reconciled = run(
        dir.path(),
        &[
            "reconcile",
            "--primary",
            &primary,
            "--secondary",
            &secondary,
            "--mirror-outbox",
            outbox,
        ],
    );
    assert!(reconciled.status.success(), "reconcile failed");
    assert!(String::from_utf8_lossy(&reconciled.stdout).contains("equal"));

    // Both sides equal, item by item (migrate's own comparison) ...
    let compared = run(
        dir.path(),
        &[
            "migrate",
            "--from",
            &primary,
            "--to",
            &secondary,
            "--verify-only",
        ],
    );
    assert!(compared.status.success(), "the sides differ");
    assert!(String::from_utf8_lossy(&compared.stdout).contains("differences: 0"));
    // ... and every acknowledged write in them; the refused one nowhere.
    let mirror = Mirror::start(dir.path(), &primary, &secondary);
    assert_all_acknowledged(&http, &mirror, &acknowledged, false).await;
    let phantom = http
        .get(mirror.url("/items/during-outage"))
        .send()
        .await
        .unwrap();
    assert_eq!(phantom.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_acknowledged_just_before_the_process_dies_reach_the_secondary() {
    process_dies_with_writes_in_the_outbox(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_outbox_in_the_primary_too() {
    process_dies_with_writes_in_the_outbox(Some("primary")).await;
}

/// The secondary is lost, writes are acknowledged, the server is killed,
/// and the restarted server's own drain makes the stores equal. `outbox`:
/// `--mirror-outbox`, a file in the test's folder by default.
async fn process_dies_with_writes_in_the_outbox(outbox: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outbox.db");
    let outbox = outbox.unwrap_or(file.to_str().unwrap());
    let mut dynamodb = DynamoDbLocal::start(&dir.path().join("dynamodb"));
    let table = unique("outbox");
    provision(dir.path(), &table, &dynamodb.endpoint());
    let primary_file = dir.path().join("primary.db");
    let primary = format!("embedded:{}", primary_file.display());
    let secondary = format!("dynamodb:{table}@{}", dynamodb.endpoint());
    let mirror = Mirror::start_with(dir.path(), &primary, &secondary, outbox);
    let http = client();
    let mut acknowledged = Acknowledged::new();
    write_round(&http, &mirror, "up", 6, &mut acknowledged).await;

    // The secondary is lost; the primary still acknowledges writes ...
    dynamodb.kill();
    write_round(&http, &mirror, "down", 15, &mut acknowledged).await;
    let deferred = mirror
        .metric(r#"edge_items_mirror_events_total{event="deferred"}"#)
        .await;
    assert!(
        deferred >= 15.0,
        "replications left to the outbox: {deferred}"
    );
    // ... and the process dies right after.
    mirror.kill();
    dynamodb.restart();
    assert!(
        !compare(dir.path(), &primary, &secondary).status.success(),
        "the secondary is behind before the restart"
    );

    // Started again on the same outbox, the server drains it by itself.
    let mirror = Mirror::start_with(dir.path(), &primary, &secondary, outbox);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !compare(dir.path(), &primary, &secondary).status.success() {
        assert!(
            Instant::now() < deadline,
            "the outbox was not drained in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_all_acknowledged(&http, &mirror, &acknowledged, false).await;
}

/// Every kind of write the API makes reaches the secondary exactly:
/// create, put, merge patch, like, batch, keyed writes (and their replays),
/// expiry, delete. Firestore is the primary here, so that every item it
/// takes DynamoDB can hold too, and it keeps the outbox (`--mirror-outbox
/// primary`), whose entries must never show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_write_is_mirrored_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let table = unique("kinds");
    provision(dir.path(), &table, &dynamodb_local());
    let primary = format!("firestore:{}/items", unique("kinds").to_lowercase());
    let secondary = format!("dynamodb:{table}@{}", dynamodb_local());
    let mirror = Mirror::start_with(dir.path(), &primary, &secondary, "primary");
    write_every_kind(&mirror).await;

    assert_four_items_equal(dir.path(), &primary, &secondary);
    mirror.stop();
}

/// Writes of every kind through `mirror`, each answered with a success;
/// leaves 4 items.
async fn write_every_kind(mirror: &Mirror) {
    let http = client();
    let send = |request: reqwest::RequestBuilder| async move {
        let answer = request.send().await.unwrap();
        assert!(answer.status().is_success(), "{answer:?}");
        answer
    };
    let json_body = |value: Value| value.to_string();
    send(http.post(mirror.url("/items")).json(
        &json!({"id": "created", "name": "n", "userId": "u", "status": "active", "price": 1.25, "tags": ["a", {"b": null}]}),
    ))
    .await;
    send(
        http.put(mirror.url("/items/put"))
            .json(&json!({"name": "p", "userId": "u"})),
    )
    .await;
    send(
        http.patch(mirror.url("/items/created"))
            .header("content-type", "application/merge-patch+json")
            .body(json_body(json!({"status": "done", "price": null}))),
    )
    .await;
    send(http.post(mirror.url("/items/created/likes"))).await;
    send(
        http.post(mirror.url("/items/created/likes"))
            .json(&json!({"by": 10})),
    )
    .await;
    send(http.post(mirror.url("/items:batch")).json(&json!({
        "put": [{"id": "batch-1", "name": "b1"}, {"id": "batch-2", "name": "b2", "createdAt": "2020-01-02T03:04:05Z"}],
        "delete": ["put"],
    })))
    .await;
    for _ in 0..2 {
        // The second is a replay: nothing is written again.
        send(
            http.post(mirror.url("/items/batch-1/likes"))
                .header("idempotency-key", "like-once"),
        )
        .await;
    }
    send(
        http.post(mirror.url("/items"))
            .header("idempotency-key", "create-once")
            .json(&json!({"id": "keyed", "name": "k"})),
    )
    .await;
    send(
        http.delete(mirror.url("/items/batch-2"))
            .header("idempotency-key", "delete-once"),
    )
    .await;
    let expires = (std::time::SystemTime::now() + Duration::from_secs(3600))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    send(
        http.post(mirror.url("/items"))
            .json(&json!({"id": "expiring", "expiresAt": expires})),
    )
    .await;
}

/// The composed mirror (api <- mirror <- {Firestore, DynamoDB}) mirrors
/// every kind of write exactly, its outbox in the primary; and served by a
/// host that cannot reach the primary's cloud, it still answers reads,
/// from the secondary and marked so, and refuses writes with 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_composed_mirror_mirrors_writes_and_reads_without_its_primary() {
    let dir = tempfile::tempdir().unwrap();
    let table = unique("composed");
    provision(dir.path(), &table, &dynamodb_local());
    let project = unique("composed").to_lowercase();
    let mirror = Mirror::start_composed(dir.path(), &firestore_emulator(), &project, &table);
    write_every_kind(&mirror).await;
    let http = client();
    let created: Value = http
        .get(mirror.url("/items/created"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    mirror.stop();
    let primary = format!("firestore:{project}/items");
    let secondary = format!("dynamodb:{table}@{}", dynamodb_local());
    assert_four_items_equal(dir.path(), &primary, &secondary);

    // The primary's cloud is out of reach (nothing listens there).
    let unreachable = TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = unreachable.local_addr().unwrap().to_string();
    drop(unreachable);
    let mirror = Mirror::start_composed(dir.path(), &nowhere, &project, &table);
    let read = http.get(mirror.url("/items/created")).send().await.unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(
        read.headers().get(SERVED_BY).map(|v| v.to_str().unwrap()),
        Some("secondary")
    );
    let read: Value = read.json().await.unwrap();
    assert_eq!(content(&read), content(&created));
    let gone = http.get(mirror.url("/items/put")).send().await.unwrap();
    assert_eq!(gone.status(), 404, "deleted by the batch");
    let refused = http
        .post(mirror.url("/items"))
        .json(&json!({"id": "during-outage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
}
