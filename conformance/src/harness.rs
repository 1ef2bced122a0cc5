//! Starts the real host binary (`edge-items serve`) with the real api
//! component on a free port, against one storage backend, and talks to it
//! over real HTTP.
//!
//! `cargo xtask test` builds both and passes their paths in
//! `EDGE_ITEMS_BIN` and `EDGE_ITEMS_API_WASM`; without them the default
//! release build paths are used.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A storage backend the suite can run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The host's embedded single-file store.
    Embedded,
    /// The host's native DynamoDB store, on DynamoDB Local
    /// (`EDGE_ITEMS_DYNAMODB_ENDPOINT`), one fresh table per server.
    DynamoDb,
    /// The host's native Firestore store, on the Firestore emulator
    /// (`FIRESTORE_EMULATOR_HOST`), one fresh project per server.
    Firestore,
    /// The api component composed with the DynamoDB adapter component,
    /// served by the host in plain wasi:http mode (`--store none`).
    ComposedDynamoDb,
    /// The api component composed with the Firestore adapter component.
    ComposedFirestore,
    /// The host's native DynamoDB store on moto with SigV4 and IAM
    /// enforced (one moto per test process, one table per server): the
    /// table is provisioned by an admin user, and the host signs as a user
    /// holding only the run-time statement of
    /// crates/store-dynamodb/iam-policy.json.
    MotoDynamoDb,
    /// The composed DynamoDB component (`--store none`) on the same moto,
    /// signing inside the component as the same least-privilege user.
    MotoComposedDynamoDb,
    /// `target/components/api-dynamodb.wasm` under `wasmtime serve` from
    /// wasmtime-cli (`WASMTIME_BIN`, or `wasmtime` on PATH), configured
    /// with `--env`, on DynamoDB Local; one fresh table per server.
    WasmtimeServeDynamoDb,
    /// `target/components/api-firestore.wasm` under `wasmtime serve`, on
    /// the Firestore emulator; one fresh project per server.
    WasmtimeServeFirestore,
    /// `spin up -f spin.toml` (Spin from `SPIN_BIN`, or `spin` on PATH):
    /// the api component with the spin-sqlite adapter as its component
    /// dependency; one fresh state directory, so database, per server.
    SpinEmbedded,
    /// `spin up -f spin.dynamodb.toml` on DynamoDB Local, configured with
    /// `SPIN_VARIABLE_*`; one fresh table per server.
    SpinDynamoDb,
}

impl Backend {
    /// Whether numbers of any size and precision survive (Firestore keeps
    /// only 64-bit integers and doubles, and refuses the rest).
    pub fn keeps_any_number(self) -> bool {
        !matches!(
            self,
            Backend::Firestore | Backend::ComposedFirestore | Backend::WasmtimeServeFirestore
        )
    }

    /// Whether the server is `spin up`.
    pub fn is_spin(self) -> bool {
        matches!(self, Backend::SpinEmbedded | Backend::SpinDynamoDb)
    }

    /// Whether the server is `wasmtime serve` rather than our host.
    pub fn is_wasmtime_serve(self) -> bool {
        matches!(
            self,
            Backend::WasmtimeServeDynamoDb | Backend::WasmtimeServeFirestore
        )
    }

    /// Whether the server writes one log line per request (method, path,
    /// status). Our host does; `wasmtime serve` logs no requests at all,
    /// only the guest's own output, and it is not ours to change.
    pub fn logs_requests(self) -> bool {
        !self.is_wasmtime_serve()
    }

    /// Whether the server exits with status 0 on SIGTERM. Our host shuts
    /// down gracefully; `wasmtime serve` 48 handles only Ctrl-C (SIGINT)
    /// and leaves SIGTERM to its default action, so it dies by the signal.
    pub fn exits_zero_on_sigterm(self) -> bool {
        !self.is_wasmtime_serve()
    }

    /// Asserts the exit status a SIGTERM must give on this backend: success
    /// for our host, death by exactly that signal (no crash, no hang) for a
    /// runtime that does not handle it.
    #[track_caller]
    pub fn assert_sigterm_exit(self, status: std::process::ExitStatus) {
        use std::os::unix::process::ExitStatusExt;
        if self.exits_zero_on_sigterm() {
            assert!(status.success(), "exit status on SIGTERM: {status}");
        } else {
            assert_eq!(
                status.signal(),
                Some(15),
                "exit status on SIGTERM: {status}"
            );
        }
    }
}

/// A backend endpoint that `cargo xtask test` passes in the environment.
fn required_env(var: &str, backend: Backend) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set, so {backend:?} has no server to talk to; \
             run the tests with `cargo xtask test`, which starts it"
        )
    })
}

/// Credentials DynamoDB Local accepts (it checks none); real ones never
/// appear in tests.
const LOCAL_AWS_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "local"),
    ("AWS_SECRET_ACCESS_KEY", "local"),
    ("AWS_REGION", "us-east-1"),
];

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn artefact(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(default));
    assert!(
        path.exists(),
        "{} is missing ({var}); build it with `cargo xtask build`, or run the tests with `cargo xtask test`",
        path.display()
    );
    path
}

/// The api component every run uses: the host serves this file, and the
/// composed components embed its bytes unchanged (tests/same_component.rs).
pub fn api_wasm() -> PathBuf {
    artefact(
        "EDGE_ITEMS_API_WASM",
        "target/wasm32-wasip2/release/api.wasm",
    )
}

/// `target/components/api-<store>.wasm`: the api component composed with
/// the `store` adapter (`dynamodb` or `firestore`) by `cargo xtask build`.
pub fn composed_wasm(store: &str) -> PathBuf {
    let var = format!("EDGE_ITEMS_API_{}_WASM", store.to_uppercase());
    artefact(&var, &format!("target/components/api-{store}.wasm"))
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .build()
        .expect("http client")
}

/// A name no other test in this run uses (for tables, projects, user ids).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a fresh DynamoDB table with the host's own provisioning
/// command, as a user would.
fn provision_dynamodb_table(table: &str, endpoint: &str, aws_env: &[(String, String)]) {
    let bin = artefact("EDGE_ITEMS_BIN", "target/release/edge-items");
    let out = Command::new(bin)
        .args(["provision", "dynamodb", "--dynamodb-table", table])
        .args(["--dynamodb-endpoint", endpoint])
        .envs(aws_env.iter().map(|(k, v)| (k, v)))
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("run edge-items provision");
    assert!(
        out.status.success(),
        "provisioning {table} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running host. Dropping it kills the process.
pub struct Server {
    pub base: String,
    pub backend: Backend,
    child: Child,
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
    /// The table or project this server's data lives in (cloud backends).
    namespace: String,
    /// Environment for the host process (the AWS key it signs with on moto).
    env: Vec<(String, String)>,
    client: reqwest::Client,
}

impl Server {
    /// Starts a host on `backend` with default settings.
    pub fn start(backend: Backend) -> Server {
        Self::start_with(backend, &[])
    }

    /// Starts a host with extra `serve` arguments (e.g. a body limit).
    pub fn start_with(backend: Backend, extra_args: &[&str]) -> Server {
        let key = matches!(
            backend,
            Backend::MotoDynamoDb | Backend::MotoComposedDynamoDb
        )
        .then(|| moto::shared().service.clone());
        Self::start_signed(backend, extra_args, key.as_ref())
    }

    /// Starts a host on [`Backend::MotoDynamoDb`] that signs with `key`
    /// (e.g. a user from [`moto_service_user_without`]).
    pub fn start_on_moto_as(key: &AwsKey) -> Server {
        Self::start_signed(Backend::MotoDynamoDb, &[], Some(key))
    }

    fn start_signed(backend: Backend, extra_args: &[&str], key: Option<&AwsKey>) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let extra_args = extra_args.iter().map(|s| s.to_string()).collect();
        let namespace = unique("items").to_lowercase();
        let mut env = Vec::new();
        match backend {
            Backend::DynamoDb
            | Backend::ComposedDynamoDb
            | Backend::WasmtimeServeDynamoDb
            | Backend::SpinDynamoDb => {
                let endpoint = required_env("EDGE_ITEMS_DYNAMODB_ENDPOINT", backend);
                let local = LOCAL_AWS_ENV.map(|(k, v)| (k.to_string(), v.to_string()));
                provision_dynamodb_table(&namespace, &endpoint, &local);
            }
            Backend::MotoDynamoDb | Backend::MotoComposedDynamoDb => {
                // Provisioning is a deployment task: the admin does it.
                let moto = moto::shared();
                provision_dynamodb_table(&namespace, &moto.endpoint, &moto.admin.env());
                env = key.expect("a key to sign with").env();
            }
            _ => {}
        }
        Self::launch(backend, dir, extra_args, namespace, env)
    }

    fn launch(
        backend: Backend,
        dir: tempfile::TempDir,
        extra_args: Vec<String>,
        namespace: String,
        env: Vec<(String, String)>,
    ) -> Server {
        if backend.is_wasmtime_serve() {
            let (child, base) = wasmtime_serve::spawn(backend, dir.path(), &extra_args, &namespace);
            return Server {
                base,
                backend,
                child,
                dir,
                extra_args,
                namespace,
                env,
                client: http_client(),
            };
        }
        if backend.is_spin() {
            let (child, base) = spin::spawn(backend, dir.path(), &extra_args, &namespace);
            return Server {
                base,
                backend,
                child,
                dir,
                extra_args,
                namespace,
                env,
                client: http_client(),
            };
        }
        let bin = artefact("EDGE_ITEMS_BIN", "target/release/edge-items");
        let wasm = match backend {
            Backend::ComposedDynamoDb | Backend::MotoComposedDynamoDb => composed_wasm("dynamodb"),
            Backend::ComposedFirestore => composed_wasm("firestore"),
            _ => api_wasm(),
        };
        let log_path = dir.path().join("host.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        let mut command = Command::new(&bin);
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--component")
            .arg(&wasm)
            .arg("--cache-dir")
            .arg(workspace_root().join("target/edge-items-cache"))
            .args(&extra_args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        match backend {
            Backend::Embedded => {
                command
                    .arg("--store")
                    .arg("embedded")
                    .arg("--data")
                    .arg(dir.path().join("items.db"));
            }
            Backend::DynamoDb => {
                let endpoint = required_env("EDGE_ITEMS_DYNAMODB_ENDPOINT", backend);
                command
                    .args(["--store", "dynamodb", "--dynamodb-table", &namespace])
                    .args(["--dynamodb-endpoint", &endpoint])
                    .envs(LOCAL_AWS_ENV);
            }
            Backend::Firestore => {
                required_env("FIRESTORE_EMULATOR_HOST", backend);
                command.args(["--store", "firestore", "--firestore-project", &namespace]);
            }
            Backend::ComposedDynamoDb => {
                let endpoint = required_env("EDGE_ITEMS_DYNAMODB_ENDPOINT", backend);
                command.args(["--store", "none"]);
                for (name, value) in LOCAL_AWS_ENV {
                    command.arg("--env").arg(format!("{name}={value}"));
                }
                command
                    .arg("--env")
                    .arg(format!("AWS_ENDPOINT_URL_DYNAMODB={endpoint}"))
                    .arg("--env")
                    .arg(format!("EDGE_ITEMS_DYNAMODB_TABLE={namespace}"));
            }
            Backend::ComposedFirestore => {
                let host = required_env("FIRESTORE_EMULATOR_HOST", backend);
                command
                    .args(["--store", "none"])
                    .arg("--env")
                    .arg(format!("FIRESTORE_EMULATOR_HOST={host}"))
                    .arg("--env")
                    .arg(format!("GOOGLE_CLOUD_PROJECT={namespace}"));
            }
            Backend::MotoDynamoDb => {
                command
                    .args(["--store", "dynamodb", "--dynamodb-table", &namespace])
                    .args(["--dynamodb-endpoint", &moto::shared().endpoint])
                    .env_remove("AWS_SESSION_TOKEN");
            }
            Backend::MotoComposedDynamoDb => {
                // The component gets its settings only through --env; the
                // key is the host process's (`env` above).
                command
                    .args(["--store", "none"])
                    .args([
                        "--env",
                        "AWS_ACCESS_KEY_ID",
                        "--env",
                        "AWS_SECRET_ACCESS_KEY",
                    ])
                    .args(["--env", "AWS_REGION"])
                    .arg("--env")
                    .arg(format!(
                        "AWS_ENDPOINT_URL_DYNAMODB={}",
                        moto::shared().endpoint
                    ))
                    .arg("--env")
                    .arg(format!("EDGE_ITEMS_DYNAMODB_TABLE={namespace}"));
            }
            Backend::WasmtimeServeDynamoDb | Backend::WasmtimeServeFirestore => {
                unreachable!("started by wasmtime_serve::spawn")
            }
            Backend::SpinEmbedded | Backend::SpinDynamoDb => unreachable!("started by spin::spawn"),
        }
        let mut child = command.spawn().expect("start edge-items");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("edge-items did not start on {backend:?}; its log:\n{log}");
            }
        };
        Server {
            base,
            backend,
            child,
            dir,
            extra_args,
            namespace,
            env,
            client: http_client(),
        }
    }

    /// Stops the host (SIGTERM, as a service manager would) and starts it
    /// again on the same data.
    pub fn restart(mut self) -> Server {
        let status = self.terminate();
        self.backend.assert_sigterm_exit(status);
        let backend = self.backend;
        let extra_args = std::mem::take(&mut self.extra_args);
        let namespace = std::mem::take(&mut self.namespace);
        let env = std::mem::take(&mut self.env);
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        drop(self);
        Self::launch(backend, dir, extra_args, namespace, env)
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("edge-items did not exit within 15 s of SIGTERM");
    }

    /// The host's log so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host.log")).unwrap_or_default()
    }

    /// The DynamoDB table or Firestore project of this server's items.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        Response::read(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.send(Method::PUT, path, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.send(Method::PATCH, path, Some(body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.send(Method::DELETE, path, None, &[]).await
    }

    /// Creates an item and returns it (asserting 201).
    pub async fn create(&self, body: &Value) -> Value {
        let r = self.post("/items", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "create {body}: {}", r.text);
        r.json
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.backend.is_spin() && matches!(self.child.try_wait(), Ok(None)) {
            // spin up runs its trigger as a child process, which killing
            // spin up alone would leave running: kill the whole group.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON, or `Null` when it is not JSON.
    pub json: Value,
}

impl Response {
    pub async fn read(response: reqwest::Response) -> Response {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 9457 problem with this status, and returns its detail.
    #[track_caller]
    pub fn assert_problem(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "problem content type for {status}: {}",
            self.text
        );
        assert_eq!(self.json["status"], status, "{}", self.text);
        assert!(self.json["title"].is_string(), "title: {}", self.text);
        assert!(self.json["type"].is_string(), "type: {}", self.text);
        let detail = self.json["detail"].as_str().unwrap_or_default().to_string();
        assert!(
            !detail.is_empty(),
            "a problem needs a detail: {}",
            self.text
        );
        detail
    }
}

/// Runs `conformance/interop/SCRIPT` with python3 and returns the JSON it prints.
pub fn python(script: &str, args: &[&str], envs: &[(&str, &str)]) -> Value {
    let path = workspace_root().join("conformance/interop").join(script);
    let out = Command::new("python3")
        .arg(&path)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {PYTHON_HELP}"));
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}\n{PYTHON_HELP}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

const PYTHON_HELP: &str = "the interop tests need python3 with boto3, moto[server] and \
    google-cloud-firestore; .ci/run installs them (pip install 'moto[server]' boto3 \
    google-cloud-firestore)";

/// An AWS access key of a moto IAM user.
#[derive(Debug, Clone)]
pub struct AwsKey {
    pub id: String,
    pub secret: String,
}

impl AwsKey {
    fn from_json(v: &Value) -> AwsKey {
        let field = |name: &str| {
            v[name]
                .as_str()
                .unwrap_or_else(|| panic!("no {name} in {v}"))
                .to_string()
        };
        AwsKey {
            id: field("AccessKeyId"),
            secret: field("SecretAccessKey"),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.as_str()),
            ("AWS_REGION", "us-east-1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec()
    }
}

/// The keys of the shared moto's admin and service user (to check that no
/// response ever shows them).
pub fn moto_keys() -> [AwsKey; 2] {
    let moto = moto::shared();
    [moto.admin.clone(), moto.service.clone()]
}

/// A new user on the shared moto whose policy is the service's run-time
/// statement without `action` (e.g. `dynamodb:UpdateItem`).
pub fn moto_service_user_without(action: &str) -> AwsKey {
    let moto = moto::shared();
    let name = unique("no-action");
    let spec = format!("{name}:{action}");
    let policy = workspace_root().join(moto::POLICY);
    let admin = moto.admin.env();
    let envs: Vec<(&str, &str)> = admin
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    AwsKey::from_json(&python(
        "moto_iam.py",
        &[&moto.endpoint, &policy.to_string_lossy(), &spec],
        &envs,
    ))
}

mod moto {
    //! One moto server per test process (conformance/interop/moto_server.py).
    //! It stops when its stdin closes, that is when this process exits,
    //! however it exits, so no server outlives the tests.

    use std::io::{BufRead, BufReader};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::OnceLock;

    use super::{AwsKey, PYTHON_HELP, workspace_root};

    /// The policy the service user gets (its run-time statement).
    pub const POLICY: &str = "crates/store-dynamodb/iam-policy.json";

    pub struct Moto {
        pub endpoint: String,
        /// Full access: provisions tables and creates users.
        pub admin: AwsKey,
        /// The run-time statement of [`POLICY`] only.
        pub service: AwsKey,
        /// Kept open for the life of the process (see the module doc).
        _stdin: ChildStdin,
        /// Never waited for: it exits after this process does.
        _child: Child,
    }

    pub fn shared() -> &'static Moto {
        static MOTO: OnceLock<Moto> = OnceLock::new();
        MOTO.get_or_init(start)
    }

    fn start() -> Moto {
        let root = workspace_root();
        let mut child = Command::new("python3")
            .arg(root.join("conformance/interop/moto_server.py"))
            .arg(root.join(POLICY))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {PYTHON_HELP}"));
        let stdin = child.stdin.take().expect("stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read moto_server.py");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            panic!("moto_server.py did not start (its error is above); {PYTHON_HELP}")
        });
        Moto {
            endpoint: v["endpoint"].as_str().expect("endpoint").to_string(),
            admin: AwsKey::from_json(&v["admin"]),
            service: AwsKey::from_json(&v["service"]),
            _stdin: stdin,
            _child: child,
        }
    }
}

mod wasmtime_serve {
    //! A composed component under `wasmtime serve` from wasmtime-cli, run
    //! the way docs/deploy.md tells users to run it:
    //! `wasmtime serve -Scli --addr 127.0.0.1:0 --env NAME=VALUE.. api-<store>.wasm`.
    //! `-Scli` gives the guest wasi:cli (its environment) besides
    //! wasi:http; the settings reach it through `--env` only.

    use std::io::{BufRead, BufReader, Write};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::{OnceLock, mpsc};
    use std::time::Duration;

    use super::{Backend, LOCAL_AWS_ENV, composed_wasm, required_env};

    /// The wasmtime-cli release .ci/run installs (pinned with the toolchain:
    /// the newest that builds on Rust 1.95).
    pub const VERSION: &str = "48.0.8";

    /// `--max-concurrent-requests`, as docs/deploy.md gives it.
    const MAX_CONCURRENT_REQUESTS: &str = "100";

    /// `WASMTIME_BIN`, else `wasmtime` from PATH, checked once to be
    /// wasmtime-cli [`VERSION`].
    fn binary() -> &'static Path {
        static BIN: OnceLock<PathBuf> = OnceLock::new();
        BIN.get_or_init(|| {
            let bin = std::env::var_os("WASMTIME_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("wasmtime"));
            let install = format!(
                "install it with `cargo install wasmtime-cli --version {VERSION} --locked` \
                 (.ci/run does), or point WASMTIME_BIN at one"
            );
            let out = Command::new(&bin)
                .arg("--version")
                .output()
                .unwrap_or_else(|e| panic!("cannot run {} ({e}); {install}", bin.display()));
            let version = String::from_utf8_lossy(&out.stdout);
            assert!(
                version.starts_with(&format!("wasmtime {VERSION}")),
                "{} reports {:?}, the tests need wasmtime-cli {VERSION}; {install}",
                bin.display(),
                version.trim()
            );
            bin
        })
    }

    /// The `--env` settings the component gets on `backend`.
    fn settings(backend: Backend, namespace: &str) -> Vec<String> {
        match backend {
            Backend::WasmtimeServeDynamoDb => {
                let endpoint = required_env("EDGE_ITEMS_DYNAMODB_ENDPOINT", backend);
                let mut env: Vec<String> = LOCAL_AWS_ENV
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                env.push(format!("AWS_ENDPOINT_URL_DYNAMODB={endpoint}"));
                env.push(format!("EDGE_ITEMS_DYNAMODB_TABLE={namespace}"));
                env
            }
            Backend::WasmtimeServeFirestore => {
                let host = required_env("FIRESTORE_EMULATOR_HOST", backend);
                vec![
                    format!("FIRESTORE_EMULATOR_HOST={host}"),
                    format!("GOOGLE_CLOUD_PROJECT={namespace}"),
                ]
            }
            other => unreachable!("{other:?} is not served by wasmtime serve"),
        }
    }

    /// The host's `serve` options the cases use, as the component's own
    /// environment variables.
    fn translate(extra_args: &[String]) -> Vec<String> {
        let mut env = Vec::new();
        let mut args = extra_args.iter();
        while let Some(arg) = args.next() {
            match (arg.as_str(), args.next()) {
                ("--max-body-bytes", Some(n)) => env.push(format!("ITEMS_MAX_BODY_BYTES={n}")),
                _ => panic!("no wasmtime serve equivalent for host arguments {extra_args:?}"),
            }
        }
        env
    }

    /// Starts `wasmtime serve` on a free port; returns it and its base URL
    /// once it listens. Its output goes to `dir/host.log`.
    pub fn spawn(
        backend: Backend,
        dir: &Path,
        extra_args: &[String],
        namespace: &str,
    ) -> (Child, String) {
        let wasm = match backend {
            Backend::WasmtimeServeDynamoDb => composed_wasm("dynamodb"),
            _ => composed_wasm("firestore"),
        };
        let log_path = dir.join("host.log");
        let open_log = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .expect("log file")
        };
        let mut command = Command::new(binary());
        command.args(["serve", "-Scli", "--addr", "127.0.0.1:0"]);
        // Each request instantiates the composed component (7 core
        // instances, 2 memories); wasmtime's pooling allocator holds 1000
        // core instances by default, so more than ~140 requests at once
        // would fail with 500. Capped, the rest wait their turn.
        command.args(["--max-concurrent-requests", MAX_CONCURRENT_REQUESTS]);
        for setting in settings(backend, namespace)
            .into_iter()
            .chain(translate(extra_args))
        {
            command.arg("--env").arg(setting);
        }
        command
            .arg(&wasm)
            .stdin(Stdio::null())
            .stdout(open_log())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start wasmtime serve");
        // wasmtime serve announces its address on stderr:
        // "Serving HTTP on http://127.0.0.1:PORT/".
        let stderr = child.stderr.take().expect("stderr");
        let mut log = open_log();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                if let Some(url) = line.strip_prefix("Serving HTTP on ") {
                    let _ = tx.send(url.trim().trim_end_matches('/').to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(base) => (child, base),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("wasmtime serve did not start on {backend:?}; its output:\n{log}");
            }
        }
    }
}

mod spin {
    //! The api component under `spin up`, run from the repository's
    //! manifests the way the README tells users to: spin.toml (the
    //! spin-sqlite adapter) and spin.dynamodb.toml (settings as
    //! `SPIN_VARIABLE_*`). Spin composes the api component with the
    //! adapter itself, from `[component.api.dependencies]`.

    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::process::CommandExt;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::{OnceLock, mpsc};
    use std::time::Duration;

    use super::{Backend, api_wasm, required_env, workspace_root};

    /// `SPIN_BIN`, else `spin` from PATH, checked once to run and to be
    /// Spin 3 or later (component dependencies came with Spin 3).
    fn binary() -> &'static Path {
        static BIN: OnceLock<PathBuf> = OnceLock::new();
        BIN.get_or_init(|| {
            let bin = std::env::var_os("SPIN_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("spin"));
            let install = "install Spin with its installer (https://spinframework.dev), \
                or here with ../shared/tools/spin/install (.ci/run does), or point SPIN_BIN at one";
            let out = Command::new(&bin)
                .arg("--version")
                .output()
                .unwrap_or_else(|e| panic!("cannot run {} ({e}); {install}", bin.display()));
            let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let major = version
                .strip_prefix("spin ")
                .and_then(|v| v.split('.').next())
                .and_then(|m| m.parse::<u32>().ok());
            assert!(
                major.is_some_and(|m| m >= 3),
                "{} reports {version:?}, the tests need Spin 3 or later; {install}",
                bin.display()
            );
            bin
        })
    }

    /// The manifest of `backend`, and the variables it needs.
    fn manifest(backend: Backend, namespace: &str) -> (&'static str, Vec<(String, String)>) {
        match backend {
            Backend::SpinEmbedded => ("spin.toml", Vec::new()),
            Backend::SpinDynamoDb => {
                let endpoint = required_env("EDGE_ITEMS_DYNAMODB_ENDPOINT", backend);
                let variables = [
                    ("AWS_ACCESS_KEY_ID", "local"),
                    ("AWS_SECRET_ACCESS_KEY", "local"),
                    ("AWS_REGION", "us-east-1"),
                    ("DYNAMODB_ENDPOINT", &endpoint),
                    ("DYNAMODB_TABLE", namespace),
                ];
                let variables = variables
                    .iter()
                    .map(|(k, v)| (format!("SPIN_VARIABLE_{k}"), v.to_string()))
                    .collect();
                ("spin.dynamodb.toml", variables)
            }
            other => unreachable!("{other:?} is not served by spin up"),
        }
    }

    /// The manifests name target/wasm32-wasip2/release/api.wasm; it must be
    /// the very file every other backend serves (`EDGE_ITEMS_API_WASM`).
    fn check_same_api_component() {
        static CHECKED: OnceLock<()> = OnceLock::new();
        CHECKED.get_or_init(|| {
            let named = workspace_root().join("target/wasm32-wasip2/release/api.wasm");
            let named_bytes = std::fs::read(&named)
                .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask build`", named.display()));
            let used = api_wasm();
            assert!(
                named_bytes == std::fs::read(&used).expect("read the api component"),
                "the Spin manifests serve {}, which differs from {}",
                named.display(),
                used.display()
            );
        });
    }

    /// The host's `serve` options the cases use, as `spin up` options.
    fn translate(extra_args: &[String]) -> Vec<String> {
        let mut spin_args = Vec::new();
        let mut args = extra_args.iter();
        while let Some(arg) = args.next() {
            match (arg.as_str(), args.next()) {
                ("--max-body-bytes", Some(n)) => {
                    spin_args.extend(["--env".to_string(), format!("ITEMS_MAX_BODY_BYTES={n}")]);
                }
                _ => panic!("no spin up equivalent for host arguments {extra_args:?}"),
            }
        }
        spin_args
    }

    /// Starts `spin up` on a free port, with its state (the SQLite
    /// database, the component logs) in `dir/spin`; returns it and its base
    /// URL once it listens. Its output goes to `dir/host.log`, with one
    /// line per request (Spin's `spin_trigger_http` log at info level).
    pub fn spawn(
        backend: Backend,
        dir: &Path,
        extra_args: &[String],
        namespace: &str,
    ) -> (Child, String) {
        check_same_api_component();
        let (manifest, variables) = manifest(backend, namespace);
        let log_path = dir.join("host.log");
        let open_log = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .expect("log file")
        };
        let mut command = Command::new(binary());
        command
            // Its own process group, so that dropping the server can stop
            // spin up's trigger process too.
            .process_group(0)
            .arg("up")
            .arg("--from")
            .arg(workspace_root().join(manifest))
            .args(["--listen", "127.0.0.1:0"])
            .arg("--state-dir")
            .arg(dir.join("spin"))
            .args(translate(extra_args))
            .envs(variables)
            .env("RUST_LOG", "spin_trigger_http=info")
            .env_remove("SPIN_ALWAYS_BUILD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(open_log());
        let mut child = command.spawn().expect("start spin up");
        // spin up announces its address on stdout: "Serving http://127.0.0.1:PORT".
        let stdout = child.stdout.take().expect("stdout");
        let mut log = open_log();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                if let Some(url) = line.trim().strip_prefix("Serving ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(base) => (child, base),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("spin up did not start on {backend:?}; its output:\n{log}");
            }
        }
    }
}
