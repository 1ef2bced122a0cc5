//! One SQLite file, two stores: what `spin up -f spin.toml` (the
//! spin-sqlite adapter on Spin's SQLite) writes, our host reads with
//! `edge-items serve --store embedded --data <Spin's database>`, and the
//! reverse, through the same api component over real HTTP. Items must come
//! back identical (times, versions, every attribute's exact form), cursors
//! of one must page the other, and ETags of one must be honoured by the
//! other.
//!
//! Needs the release host, the components (`cargo xtask build`) and Spin 4
//! or later (`SPIN_BIN`, else `spin` on PATH), as the conformance suite.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use conformance::harness::{Response, api_wasm, unique};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn host_binary() -> PathBuf {
    let path = std::env::var_os("EDGE_ITEMS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/release/edge-items"));
    assert!(
        path.exists(),
        "{} is missing; build it with `cargo xtask build`",
        path.display()
    );
    path
}

fn spin_binary() -> PathBuf {
    std::env::var_os("SPIN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("spin"))
}

/// Where `spin up --state-dir DIR` keeps the database labelled `default`.
fn spin_database(state_dir: &Path) -> PathBuf {
    state_dir.join("sqlite_db.db")
}

/// A running server (Spin or our host) in its own process group; dropping
/// it stops the group, as Spin runs its trigger as a child process.
struct Running {
    child: Child,
    base: String,
    client: reqwest::Client,
    log: PathBuf,
}

impl Running {
    /// Starts `command` and waits for the line on stdout that announces its
    /// address (`prefix` then the URL).
    fn start(mut command: Command, prefix: &'static str, log: PathBuf) -> Running {
        let log_file = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .expect("log file")
        };
        command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file());
        let mut child = command.spawn().expect("start the server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.trim().strip_prefix(prefix) {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(base) => Running {
                child,
                base,
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .expect("http client"),
                log,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let output = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("the server did not start; its output:\n{output}");
            }
        }
    }

    /// `spin up -f spin.toml` with its state (the database) in `state_dir`.
    fn spin(state_dir: &Path, log: PathBuf) -> Running {
        let mut command = Command::new(spin_binary());
        command
            .arg("up")
            .arg("--from")
            .arg(workspace_root().join("spin.toml"))
            .args(["--listen", "127.0.0.1:0"])
            .arg("--state-dir")
            .arg(state_dir)
            .env_remove("SPIN_ALWAYS_BUILD");
        Running::start(command, "Serving ", log)
    }

    /// Our host on the embedded store, on the file `data`.
    fn host(data: &Path, log: PathBuf) -> Running {
        let mut command = Command::new(host_binary());
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--component")
            .arg(api_wasm())
            .arg("--cache-dir")
            .arg(workspace_root().join("target/edge-items-cache"))
            .args(["--store", "embedded", "--data"])
            .arg(data);
        Running::start(command, "listening on ", log)
    }

    /// Stops the server the way a person would (SIGINT, Ctrl-C), so that
    /// it closes its database; kills the group if it lingers.
    fn stop(mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-INT", "--", &group]).status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        panic!("the server did not stop within 10 s of SIGINT; its output:\n{log}");
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        self.send_with(method, path, body, &[]).await
    }

    async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            let content_type = if method == Method::PATCH {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            request = request
                .header("content-type", content_type)
                .body(body.to_string());
        }
        Response::read(request.send().await.expect("request")).await
    }

    /// A `GET` that must answer 200; its JSON body.
    async fn get_json(&self, path: &str) -> Value {
        let response = self.send(Method::GET, path, None).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "GET {path}: {}",
            response.text
        );
        response.json
    }

    /// Every item of a list query, page by page (`limit` a page), and the
    /// cursor after the first page.
    async fn list_all(&self, query: &str, limit: u32) -> (Vec<Value>, Option<String>) {
        let mut items = Vec::new();
        let mut first_cursor = None;
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/items?{query}&limit={limit}");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page = self.get_json(&path).await;
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next"].as_str() {
                Some(next) => {
                    first_cursor.get_or_insert_with(|| next.to_string());
                    cursor = Some(next.to_string());
                }
                None => return (items, first_cursor),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Attributes of every kind whose exact form must survive: numbers beyond
/// 64 bits and doubles, text that looks like JSON, nested JSON.
fn varied_item(id: &str, user: &str, status: &str) -> Value {
    json!({
        "id": id,
        "userId": user,
        "status": status,
        "name": format!("Item {id}"),
        "likes": 5,
        "price": 12345678901234567890.5,
        "tiny": 1e-300,
        "flag": false,
        "nothing": null,
        "looksLikeJson": "{\"a\":1}",
        "nested": {"list": [1, {"b": [true, null]}], "ünïcödé": "✓"},
        "expiresAt": "2999-01-01T00:00:00Z"
    })
}

/// What one server wrote and every server must read back the same way.
struct Written {
    /// Every live item, as the writer last returned it.
    items: Vec<Value>,
    /// The user whose items these are.
    user: String,
    /// An id that was deleted.
    deleted: String,
}

/// Creates, replaces, patches, increments, batches and deletes items.
async fn write_items(server: &Running, prefix: &str) -> Written {
    let user = unique(&format!("{prefix}-user"));
    let id = |n: u32| format!("{prefix}-{n}");
    let mut items = Vec::new();
    for n in 0..5 {
        let status = if n % 2 == 0 { "even" } else { "odd" };
        let response = server
            .send(
                Method::POST,
                "/items",
                Some(&varied_item(&id(n), &user, status)),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
        items.push(response.json);
    }
    // A replace, a patch under its ETag, and likes.
    let replaced = server
        .send(
            Method::PUT,
            &format!("/items/{}", id(1)),
            Some(&json!({"userId": user, "status": "odd", "name": "Replaced", "likes": 9007199254740993_i64})),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    items[1] = replaced.json;
    let etag = server
        .send(Method::GET, &format!("/items/{}", id(2)), None)
        .await
        .header("etag")
        .expect("etag")
        .to_string();
    let patched = server
        .send_with(
            Method::PATCH,
            &format!("/items/{}", id(2)),
            Some(&json!({"name": "Patched", "flag": null, "color": "red"})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    items[2] = patched.json;
    let liked = server
        .send(
            Method::POST,
            &format!("/items/{}/likes", id(3)),
            Some(&json!({"by": 10})),
        )
        .await;
    assert_eq!(liked.status, StatusCode::OK, "{}", liked.text);
    assert_eq!(liked.json["likes"], json!(15));
    items[3] = liked.json;
    // A batch that imports an old item and deletes one.
    let batch = server
        .send(
            Method::POST,
            "/items:batch",
            Some(&json!({
                "put": [{"id": id(5), "userId": user, "status": "odd", "createdAt": "2020-01-02T03:04:05Z", "likes": -3}],
                "delete": [id(4)],
            })),
        )
        .await;
    assert_eq!(batch.status, StatusCode::OK, "{}", batch.text);
    items.remove(4);
    items.insert(0, batch.json["put"][0].clone());
    Written {
        items,
        user,
        deleted: id(4),
    }
}

/// Reads everything `written` holds, by id and by both list queries, with
/// paging, and checks it is exactly what the writer returned.
async fn read_items(server: &Running, written: &Written) {
    for item in &written.items {
        let id = item["id"].as_str().expect("id");
        let response = server
            .send(Method::GET, &format!("/items/{id}"), None)
            .await;
        assert_eq!(response.status, StatusCode::OK, "{id}: {}", response.text);
        assert_eq!(&response.json, item, "{id} read back differs");
        let version = item["version"].as_str().expect("version");
        assert_eq!(
            response.header("etag"),
            Some(format!("\"{version}\"").as_str())
        );
    }
    let gone = server
        .send(Method::GET, &format!("/items/{}", written.deleted), None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.text);

    // Creation order, the same from either store, two to a page.
    let (listed, _) = server
        .list_all(&format!("userId={}&order=asc", written.user), 2)
        .await;
    assert_eq!(listed, written.items);
    let odd: Vec<Value> = written
        .items
        .iter()
        .filter(|i| i["status"] == "odd")
        .rev()
        .cloned()
        .collect();
    let (listed_odd, _) = server.list_all("status=odd&order=desc", 100).await;
    let ours: Vec<Value> = listed_odd
        .into_iter()
        .filter(|i| i["userId"] == json!(written.user))
        .collect();
    assert_eq!(ours, odd);
}

/// The second server goes on where the first stopped: a cursor of the
/// first pages it, an ETag of the first is honoured (a stale one is not),
/// and its own writes follow the first's versions and creation order.
async fn continue_writing(first_cursor: &str, server: &Running, written: &mut Written) {
    let page = server
        .get_json(&format!(
            "/items?userId={}&order=asc&limit=2&cursor={first_cursor}",
            written.user
        ))
        .await;
    assert_eq!(page["items"].as_array().unwrap()[..], written.items[2..4]);

    // The replaced item (version 2), so that `"1"` is stale.
    let index = 2;
    let target = written.items[index].clone();
    let id = target["id"].as_str().unwrap().to_string();
    let version = target["version"].as_str().unwrap().to_string();
    let stale = server
        .send_with(
            Method::PATCH,
            &format!("/items/{id}"),
            Some(&json!({"name": "stale"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.text
    );
    let patched = server
        .send_with(
            Method::PATCH,
            &format!("/items/{id}"),
            Some(&json!({"name": "continued"})),
            &[("if-match", &format!("\"{version}\""))],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json["createdAt"], target["createdAt"]);
    assert_eq!(
        patched.json["version"].as_str().unwrap(),
        (version.parse::<u64>().unwrap() + 1).to_string()
    );
    written.items[index] = patched.json;

    let liked = server
        .send(Method::POST, &format!("/items/{id}/likes"), None)
        .await;
    assert_eq!(liked.status, StatusCode::OK, "{}", liked.text);
    assert_eq!(
        liked.json["likes"].as_i64().unwrap(),
        target["likes"].as_i64().unwrap() + 1,
        "{}",
        liked.text
    );
    written.items[index] = liked.json;

    let last = written.items.last().unwrap().clone();
    let created = server
        .send(
            Method::POST,
            "/items",
            Some(&json!({"id": unique("late"), "userId": written.user, "status": "even"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert!(
        created.json["createdAt"].as_str() > last["createdAt"].as_str(),
        "an item created later sorts after the other store's items"
    );
    written.items.push(created.json);
}

#[tokio::test]
async fn spin_writes_the_host_reads_and_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("spin");

    let spin = Running::spin(&state, dir.path().join("spin-1.log"));
    let mut written = write_items(&spin, "from-spin").await;
    let (_, cursor) = spin
        .list_all(&format!("userId={}&order=asc", written.user), 2)
        .await;
    spin.stop();

    let database = spin_database(&state);
    assert!(database.exists(), "Spin left no {}", database.display());
    let host = Running::host(&database, dir.path().join("host.log"));
    read_items(&host, &written).await;
    continue_writing(&cursor.expect("a second page"), &host, &mut written).await;
    read_items(&host, &written).await;
    host.stop();

    let spin = Running::spin(&state, dir.path().join("spin-2.log"));
    read_items(&spin, &written).await;
    spin.stop();
}

#[tokio::test]
async fn the_host_writes_spin_reads_and_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("spin");
    // The host creates the file where Spin looks for its database.
    let database = spin_database(&state);

    let host = Running::host(&database, dir.path().join("host-1.log"));
    let mut written = write_items(&host, "from-host").await;
    let (_, cursor) = host
        .list_all(&format!("userId={}&order=asc", written.user), 2)
        .await;
    host.stop();

    let spin = Running::spin(&state, dir.path().join("spin.log"));
    read_items(&spin, &written).await;
    continue_writing(&cursor.expect("a second page"), &spin, &mut written).await;
    read_items(&spin, &written).await;
    spin.stop();

    let host = Running::host(&database, dir.path().join("host-2.log"));
    read_items(&host, &written).await;
    host.stop();
}
