//! The chaos run (issue 12): clients that retry every write with its
//! `Idempotency-Key` until they get a final answer, against a server whose
//! backend traffic goes through `fault-proxy` injecting faults, then a
//! comparison of the store with what the clients were told.
//!
//! The proxy is the one stand-in: DynamoDB Local and the Firestore
//! emulator never throttle, never fail with a 5xx and never lose an
//! answer, so it injects exactly those faults (in each backend's own
//! format) between our server and the real backend; everything it lets
//! through is served by the real backend.
//!
//! What it checks, after injection is switched off:
//! - every acknowledged write is there, exactly as the client was told
//!   (each worker owns its items, so its last answer is the item's state,
//!   version included);
//! - nothing was applied twice: no extra items (a create repeated without
//!   its key would leave one), likes counted exactly on the workers' items
//!   and on one item all of them like;
//! - no 500, every operation got its expected final answer, and each kind
//!   of fault was actually injected.
//!
//! Settings: `EDGE_ITEMS_CHAOS_OPS` (default 2000), `EDGE_ITEMS_CHAOS_RATE`
//! (0.2), `EDGE_ITEMS_CHAOS_SEED` (7). The figures go to stderr and to
//! `target/chaos/<backend>.json`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fault_proxy::{Fault, FaultProxy, Schedule, Settings};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, Runtime, Server, Store, unique};

/// Concurrent clients.
const WORKERS: usize = 8;
/// Sends of one operation before the run fails.
const MAX_ATTEMPTS: u32 = 60;
/// How long one backend request may take in the server under test: short,
/// so that a hung connection costs a second, not the default ten.
const BACKEND_TIMEOUT: &str = "1s";

/// The run's settings, from the environment.
#[derive(Debug, Clone, Copy)]
pub struct ChaosSettings {
    pub ops: usize,
    pub rate: f64,
    pub seed: u64,
}

impl ChaosSettings {
    pub fn from_env() -> Self {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            ops: get("EDGE_ITEMS_CHAOS_OPS")
                .map_or(2000, |v| v.parse().expect("EDGE_ITEMS_CHAOS_OPS")),
            rate: get("EDGE_ITEMS_CHAOS_RATE")
                .map_or(0.2, |v| v.parse().expect("EDGE_ITEMS_CHAOS_RATE")),
            seed: get("EDGE_ITEMS_CHAOS_SEED")
                .map_or(7, |v| v.parse().expect("EDGE_ITEMS_CHAOS_SEED")),
        }
    }
}

/// What every worker adds to the report.
#[derive(Default)]
struct Tally {
    sends: AtomicU64,
    retries: AtomicU64,
    transport_errors: AtomicU64,
    statuses: std::sync::Mutex<BTreeMap<u16, u64>>,
    hot_likes: AtomicU64,
}

impl Tally {
    fn status(&self, status: u16) {
        *self.statuses.lock().unwrap().entry(status).or_default() += 1;
    }
}

/// One operation's final answer.
struct Answer {
    status: StatusCode,
    json: Value,
    text: String,
}

/// Sends one keyed request until it has a final answer: anything but a
/// connection failure, 502, 503, 504 or 409 "key in use", which a client
/// retries with the same key. A 500 fails the run at once.
async fn until_final(
    client: &reqwest::Client,
    tally: &Tally,
    method: Method,
    url: &str,
    body: Option<&Value>,
    headers: &[(&str, String)],
) -> Answer {
    let key = unique("chaos-key");
    for attempt in 1..=MAX_ATTEMPTS {
        tally.sends.fetch_add(1, Ordering::Relaxed);
        if attempt > 1 {
            tally.retries.fetch_add(1, Ordering::Relaxed);
        }
        let mut request = client
            .request(method.clone(), url)
            .timeout(Duration::from_secs(20))
            .header("idempotency-key", &key);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(_) => {
                tally.transport_errors.fetch_add(1, Ordering::Relaxed);
                pause(attempt).await;
                continue;
            }
        };
        let status = response.status();
        tally.status(status.as_u16());
        let text = response.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_ne!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{method} {url}: {text}"
        );
        let again = matches!(status.as_u16(), 502..=504)
            || (status == StatusCode::CONFLICT
                && json["type"] == "urn:edge-items:problem:idempotency-key-in-use");
        if !again {
            return Answer { status, json, text };
        }
        pause(attempt).await;
    }
    panic!("{method} {url}: no final answer after {MAX_ATTEMPTS} sends");
}

/// A short, growing pause between sends (the run measures correctness,
/// not patience).
async fn pause(attempt: u32) {
    let millis = (20 * u64::from(attempt)).min(300);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

#[track_caller]
fn expect(answer: &Answer, status: StatusCode, what: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.text);
}

/// A worker's view of its items: what it was last told about each.
#[derive(Default)]
struct Model {
    items: BTreeMap<String, Value>,
    deleted: BTreeSet<String>,
}

impl Model {
    fn remember(&mut self, item: &Value) {
        let id = item["id"].as_str().expect("an item has an id").to_string();
        self.deleted.remove(&id);
        self.items.insert(id, item.clone());
    }

    fn pick(&self, rng: &mut StdRng) -> Option<String> {
        if self.items.is_empty() {
            return None;
        }
        let n = rng.random_range(0..self.items.len());
        self.items.keys().nth(n).cloned()
    }
}

struct Worker {
    n: usize,
    user: String,
    base: String,
    hot: String,
    client: reqwest::Client,
    tally: Arc<Tally>,
    rng: StdRng,
    model: Model,
    created: usize,
}

impl Worker {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn new_id(&mut self) -> String {
        self.created += 1;
        format!("c{}-{}-{}", self.n, self.created, unique("i"))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Answer {
        until_final(
            &self.client,
            &self.tally,
            method,
            &self.url(path),
            body,
            headers,
        )
        .await
    }

    async fn create(&mut self, with_id: bool) {
        let mut body = json!({"userId": self.user, "name": "chaos", "likes": 0, "n": self.rng.random_range(0..1000)});
        if with_id {
            body["id"] = json!(self.new_id());
        }
        let answer = self.send(Method::POST, "/items", Some(&body), &[]).await;
        expect(&answer, StatusCode::CREATED, "create");
        self.model.remember(&answer.json);
    }

    async fn patch(&mut self, id: &str) {
        let etag = format!(
            "\"{}\"",
            self.model.items[id]["version"].as_str().expect("version")
        );
        let body =
            json!({"status": format!("s{}", self.rng.random_range(0..4)), "note": unique("n")});
        let answer = self
            .send(
                Method::PATCH,
                &format!("/items/{id}"),
                Some(&body),
                &[("if-match", etag)],
            )
            .await;
        expect(&answer, StatusCode::OK, "patch under If-Match");
        self.model.remember(&answer.json);
    }

    async fn like(&mut self, id: &str) {
        let before = self.model.items[id]["likes"].as_i64().unwrap_or(0);
        let answer = self
            .send(Method::POST, &format!("/items/{id}/likes"), None, &[])
            .await;
        expect(&answer, StatusCode::OK, "like");
        assert_eq!(
            answer.json["likes"],
            before + 1,
            "a like counted once: {}",
            answer.text
        );
        self.model.remember(&answer.json);
    }

    async fn like_hot(&mut self) {
        let hot = self.hot.clone();
        let answer = self
            .send(Method::POST, &format!("/items/{hot}/likes"), None, &[])
            .await;
        expect(&answer, StatusCode::OK, "like the shared item");
        self.tally.hot_likes.fetch_add(1, Ordering::Relaxed);
    }

    async fn delete(&mut self, id: &str) {
        let answer = self
            .send(Method::DELETE, &format!("/items/{id}"), None, &[])
            .await;
        expect(&answer, StatusCode::NO_CONTENT, "delete");
        self.model.items.remove(id);
        self.model.deleted.insert(id.to_string());
    }

    async fn batch(&mut self) {
        let mut puts = vec![json!({"userId": self.user, "name": "batched", "likes": 0})];
        puts.push(json!({"id": self.new_id(), "userId": self.user, "name": "batched", "likes": 0}));
        let delete = self.model.pick(&mut self.rng);
        let mut body = json!({"put": puts});
        if let Some(id) = &delete {
            body["delete"] = json!([id]);
        }
        let answer = self
            .send(Method::POST, "/items:batch", Some(&body), &[])
            .await;
        expect(&answer, StatusCode::OK, "batch");
        for item in answer.json["put"].as_array().expect("put") {
            self.model.remember(item);
        }
        if let Some(id) = delete {
            self.model.items.remove(&id);
            self.model.deleted.insert(id);
        }
    }

    async fn run(mut self, ops: usize) -> Model {
        for _ in 0..ops {
            let roll = self.rng.random_range(0..100);
            match (roll, self.model.pick(&mut self.rng)) {
                (0..15, _) | (_, None) => self.create(true).await,
                (15..25, _) => self.create(false).await,
                (25..45, Some(id)) => self.patch(&id).await,
                (45..65, Some(id)) => self.like(&id).await,
                (65..75, _) => self.like_hot().await,
                (75..85, Some(id)) => self.delete(&id).await,
                (_, _) => self.batch().await,
            }
        }
        self.model
    }
}

/// The proxy's format for a store.
fn proxy_backend(store: Store) -> fault_proxy::Backend {
    match store {
        Store::DynamoDb => fault_proxy::Backend::DynamoDb,
        Store::Firestore => fault_proxy::Backend::Firestore,
        Store::Embedded | Store::Mirror => panic!("the chaos run needs a single cloud store"),
    }
}

/// Where a server reaches the backend through `proxy`: a URL for
/// DynamoDB's endpoint, `host:port` for `FIRESTORE_EMULATOR_HOST`.
fn proxied_address(proxy: &FaultProxy, store: Store) -> String {
    match store {
        Store::DynamoDb => proxy.url(),
        _ => proxy.host(),
    }
}

/// The backend's address as `cargo xtask test` passes it.
fn upstream(store: Store) -> String {
    let var = match store {
        Store::DynamoDb => "EDGE_ITEMS_DYNAMODB_ENDPOINT",
        Store::Firestore => "FIRESTORE_EMULATOR_HOST",
        Store::Embedded | Store::Mirror => panic!("the chaos run needs a single cloud store"),
    };
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set; run with `cargo xtask test`"))
}

/// An item's path, its id percent-encoded.
fn item_path(id: &str) -> String {
    let encoded = percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC);
    format!("/items/{encoded}")
}

/// Every id listed for `user`, following the pages.
async fn listed(s: &Server, user: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/items?userId={user}&limit=100");
        if let Some(c) = &cursor {
            path.push_str(&format!(
                "&cursor={}",
                percent_encoding::utf8_percent_encode(c, percent_encoding::NON_ALPHANUMERIC)
            ));
        }
        let page = s.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        for item in page.json["items"].as_array().expect("items") {
            assert!(
                ids.insert(item["id"].as_str().expect("id").to_string()),
                "listed twice"
            );
        }
        match page.json["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return ids,
        }
    }
}

/// Runs the chaos run on `backend` (our host, natively or composed, on
/// DynamoDB Local or the Firestore emulator) and checks the outcome.
pub async fn run(backend: Backend) {
    let settings = ChaosSettings::from_env();
    let started = Instant::now();
    let real = upstream(backend.store);
    let schedule = Schedule::new(settings.seed, settings.rate).with_kinds([
        (Fault::ServerError, 3),
        (Fault::Unavailable, 3),
        (Fault::Throttle, 4),
        (Fault::ResetBeforeForwarding, 3),
        (Fault::ResetAfterForwarding, 4),
        (Fault::Latency, 2),
        (Fault::Hang, 1),
    ]);
    let proxy_settings = Settings {
        latency: Duration::from_millis(100),
        hang: Duration::from_secs(3),
        ..Settings::default()
    };
    let proxy = FaultProxy::start(
        &real,
        proxy_backend(backend.store),
        schedule,
        proxy_settings,
    )
    .await
    .expect("start the fault proxy");
    proxy.set_enabled(false);
    let timeout_env = format!("EDGE_ITEMS_BACKEND_TIMEOUT={BACKEND_TIMEOUT}");
    let args: Vec<&str> = match backend.runtime {
        Runtime::Host => vec!["--backend-timeout", BACKEND_TIMEOUT],
        Runtime::HostComposed => vec!["--env", &timeout_env],
        other => panic!("the chaos run drives our host, not {other:?}"),
    };
    let routed = proxied_address(&proxy, backend.store);
    let s = Server::start_routed(backend, &args, |address| {
        assert_eq!(
            address, real,
            "the proxy forwards to the backend the server would use"
        );
        routed
    });

    let tally = Arc::new(Tally::default());
    let hot = unique("hot");
    s.create(&json!({"id": hot, "likes": 0})).await;
    proxy.set_enabled(true);

    let mut workers = tokio::task::JoinSet::new();
    let per_worker = settings.ops.div_ceil(WORKERS);
    for n in 0..WORKERS {
        let worker = Worker {
            n,
            user: unique(&format!("chaos{n}")),
            base: s.base.clone(),
            hot: hot.clone(),
            client: s.client().clone(),
            tally: tally.clone(),
            rng: StdRng::seed_from_u64(settings.seed.wrapping_mul(1000).wrapping_add(n as u64)),
            model: Model::default(),
            created: 0,
        };
        let user = worker.user.clone();
        workers.spawn(async move { (user, worker.run(per_worker).await) });
    }
    let mut models: HashMap<String, Model> = HashMap::new();
    while let Some(done) = workers.join_next().await {
        let (user, model) = done.expect("a worker panicked");
        models.insert(user, model);
    }
    let stats = proxy.stats();
    proxy.set_enabled(false);
    let run_time = started.elapsed();

    // The store against what the clients were told.
    let mut checked = 0usize;
    for (user, model) in &models {
        for (id, told) in &model.items {
            let now = s.get(&item_path(id)).await;
            assert_eq!(
                now.status,
                StatusCode::OK,
                "acknowledged item {id} is gone: {}",
                now.text
            );
            assert_eq!(&now.json, told, "item {id} is not what its client was told");
            checked += 1;
        }
        for id in &model.deleted {
            let now = s.get(&item_path(id)).await;
            assert_eq!(
                now.status,
                StatusCode::NOT_FOUND,
                "deleted item {id} is back: {}",
                now.text
            );
        }
        let expected: BTreeSet<String> = model.items.keys().cloned().collect();
        let actual = listed(&s, user).await;
        assert_eq!(
            actual, expected,
            "{user}'s items: extra ones were applied twice, missing ones lost"
        );
    }
    let hot_now = s.get(&format!("/items/{hot}")).await;
    let hot_likes = tally.hot_likes.load(Ordering::Relaxed);
    assert_eq!(
        hot_now.json["likes"],
        json!(hot_likes),
        "likes of the shared item: each acknowledged like exactly once"
    );

    let statuses = tally.statuses.lock().unwrap().clone();
    let report = json!({
        "backend": format!("{:?} x {:?}", backend.runtime, backend.store),
        "operations": settings.ops,
        "fault_rate": settings.rate,
        "seed": settings.seed,
        "workers": WORKERS,
        "seconds": run_time.as_secs_f64(),
        "sends": tally.sends.load(Ordering::Relaxed),
        "client_retries": tally.retries.load(Ordering::Relaxed),
        "client_connection_failures": tally.transport_errors.load(Ordering::Relaxed),
        "statuses": statuses,
        "backend_requests": stats.requests,
        "backend_requests_forwarded": stats.forwarded,
        "faults_injected": stats.injected,
        "items_checked": checked,
        "shared_item_likes": hot_likes,
        "lost_acknowledged_writes": 0,
        "writes_applied_twice": 0,
    });
    eprintln!("chaos: {report:#}");
    let dir = crate::harness::workspace_root().join("target/chaos");
    let _ = std::fs::create_dir_all(&dir);
    let name = format!("{:?}-{:?}.json", backend.runtime, backend.store).to_lowercase();
    let _ = std::fs::write(dir.join(name), format!("{report:#}\n"));

    for fault in Fault::ALL {
        assert!(
            stats.injected.get(fault) > 0 || settings.ops < 500,
            "no {fault} was injected in {} backend requests: the run did not test it",
            stats.requests
        );
    }
}

/// Backend requests each API write costs, with and without an
/// `Idempotency-Key`, counted at the proxy (no faults, no contention):
/// `(operation, without key, with key)`.
pub async fn request_costs(backend: Backend) -> Vec<(&'static str, u64, u64)> {
    let real = upstream(backend.store);
    let proxy = FaultProxy::start(
        &real,
        proxy_backend(backend.store),
        Schedule::none(),
        Settings::default(),
    )
    .await
    .expect("start the counting proxy");
    let routed = proxied_address(&proxy, backend.store);
    let s = Server::start_routed(backend, &[], |_| routed);
    let client = s.client().clone();
    let forwarded = || proxy.stats().forwarded;
    let user = unique("cost");
    let mut costs = Vec::new();
    for keyed in [false, true] {
        let id = unique("cost");
        let path = format!("/items/{id}");
        let send =
            async |method: Method, path: &str, body: Option<Value>, if_match: Option<String>| {
                let before = forwarded();
                let mut request = client.request(method, s.url(path));
                if keyed {
                    request = request.header("idempotency-key", unique("k"));
                }
                if let Some(etag) = if_match {
                    request = request.header("if-match", etag);
                }
                if let Some(body) = body {
                    request = request.json(&body);
                }
                let response = request.send().await.expect("send");
                let status = response.status();
                let etag = response
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                assert!(
                    status.is_success(),
                    "{status}: {}",
                    response.text().await.unwrap_or_default()
                );
                (forwarded() - before, etag)
            };
        let (create, etag) = send(
            Method::POST,
            "/items",
            Some(json!({"id": id, "userId": user})),
            None,
        )
        .await;
        let (put, etag) = send(
            Method::PUT,
            &path,
            Some(json!({"userId": user, "n": 1})),
            etag,
        )
        .await;
        let (patch, _) = send(Method::PATCH, &path, Some(json!({"n": 2})), etag).await;
        let (like, _) = send(Method::POST, &format!("{path}/likes"), None, None).await;
        let (batch, _) = send(
            Method::POST,
            "/items:batch",
            Some(json!({"put": [{"userId": user}]})),
            None,
        )
        .await;
        let (delete, _) = send(Method::DELETE, &path, None, None).await;
        costs.push([
            ("POST /items", create),
            ("PUT /items/{id} (If-Match)", put),
            ("PATCH /items/{id} (If-Match)", patch),
            ("POST /items/{id}/likes", like),
            ("POST /items:batch (1 put)", batch),
            ("DELETE /items/{id}", delete),
        ]);
    }
    let table: Vec<(&'static str, u64, u64)> = costs[0]
        .iter()
        .zip(costs[1].iter())
        .map(|((op, plain), (_, keyed))| (*op, *plain, *keyed))
        .collect();
    let report: Vec<Value> = table
        .iter()
        .map(|(op, plain, keyed)| json!({"operation": op, "without_key": plain, "with_key": keyed}))
        .collect();
    eprintln!(
        "backend requests per write on {:?}: {report:#?}",
        backend.store
    );
    let dir = crate::harness::workspace_root().join("target/chaos");
    let _ = std::fs::create_dir_all(&dir);
    let name = format!("cost-{:?}.json", backend.store).to_lowercase();
    let _ = std::fs::write(dir.join(name), format!("{:#}\n", json!(report)));
    table
}
