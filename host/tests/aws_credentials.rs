//! The host finds AWS credentials as the AWS SDKs do, when no static keys
//! are set: from a profile, from web identity (moto's STS), from container
//! credentials (ECS, EKS Pod Identity) and from the EC2 instance metadata
//! service (IMDSv2); and it renews them before they expire.
//!
//! Real parts: the real `edge-items` binary, each run with its own
//! environment, against DynamoDB Local (`EDGE_ITEMS_DYNAMODB_ENDPOINT`, as
//! `cargo xtask test` starts it) and moto. The instance metadata and
//! container credential endpoints are small fakes here (neither exists
//! outside AWS), speaking the documented protocols.
//!
//! Which key signed is checked through DynamoDB Local, which keeps one
//! database per access key and region: `provision` reports a table
//! `created` under a new key and `already existed` under the key that
//! created it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use fake_endpoint::FakeEndpoint;

mod common;
use common::{api_wasm, unique, wait_listening};

const REGION: &str = "us-east-1";

fn dynamodb_local() -> String {
    std::env::var("EDGE_ITEMS_DYNAMODB_ENDPOINT").expect(
        "EDGE_ITEMS_DYNAMODB_ENDPOINT is not set: run the tests with `cargo xtask test`, \
         which starts DynamoDB Local",
    )
}

/// Credentials as the metadata and container endpoints give them,
/// expiring `lifetime` from now.
fn credentials_json(access_key: &str, lifetime: Duration) -> String {
    let expiry = SystemTime::now() + lifetime;
    let seconds = expiry
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    serde_json::json!({
        "Code": "Success",
        "Type": "AWS-HMAC",
        "AccessKeyId": access_key,
        "SecretAccessKey": "fake-secret",
        "Token": "fake-session-token",
        "Expiration": rfc3339(seconds),
        "LastUpdated": rfc3339(seconds.saturating_sub(lifetime.as_secs())),
    })
    .to_string()
}

/// RFC 3339 for Unix seconds, as AWS writes credential expiry times.
fn rfc3339(unix: u64) -> String {
    let seconds = i64::try_from(unix).expect("a time after 1970");
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .expect("a representable time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formatting")
}

/// `edge-items` with nothing of the caller's AWS setup: no AWS_* or
/// EDGE_ITEMS_* variables, a fresh HOME (no ~/.aws), no instance metadata
/// unless `env` turns it on; then `env`.
fn edge_items(home: &Path, env: &[(&str, String)]) -> Command {
    let mut command = common::edge_items();
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// `edge-items provision dynamodb` for `table`: what it printed, checked
/// to have succeeded.
fn provision(home: &Path, table: &str, env: &[(&str, String)]) -> String {
    let output: Output = edge_items(home, env)
        .args(["provision", "dynamodb", "--dynamodb-endpoint"])
        .arg(dynamodb_local())
        .args(["--dynamodb-table", table])
        .output()
        .expect("run edge-items provision");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "provision failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

/// Whether `table` exists in the database of this static key (DynamoDB
/// Local keeps one per access key and region).
fn exists_for_key(home: &Path, table: &str, access_key: &str) -> bool {
    let keys = [
        ("AWS_ACCESS_KEY_ID", access_key.to_string()),
        ("AWS_SECRET_ACCESS_KEY", "any".to_string()),
        ("AWS_REGION", REGION.to_string()),
    ];
    provision(home, table, &keys).contains("already existed")
}

/// A running `edge-items serve` on DynamoDB Local, killed when dropped.
struct Serving {
    base: String,
    /// The admin listener's base URL (`/metrics`).
    admin: String,
    child: Child,
}

impl Serving {
    fn start(home: &Path, table: &str, env: &[(&str, String)]) -> Serving {
        let mut child = edge_items(home, env)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .args(["--store", "dynamodb"])
            .args([
                "--dynamodb-endpoint",
                &dynamodb_local(),
                "--dynamodb-table",
                table,
            ])
            .arg("--component")
            .arg(api_wasm())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start edge-items serve");
        let (addr, admin) = wait_listening(&mut child, &home.join("no-log"));
        let base = format!("http://{addr}");
        let admin = format!("http://{}", admin.expect("an admin listener"));
        Serving { base, admin, child }
    }

    /// Creates an item and reads it back, both through DynamoDB.
    async fn round_trip(&self, id: &str) {
        let client = reqwest::Client::new();
        let created = client
            .post(format!("{}/items", self.base))
            .json(&serde_json::json!({"id": id, "name": "signed"}))
            .send()
            .await
            .expect("POST");
        assert_eq!(created.status(), 201, "{:?}", created.text().await);
        let got = client
            .get(format!("{}/items/{id}", self.base))
            .send()
            .await
            .expect("GET");
        assert_eq!(got.status(), 200, "{:?}", got.text().await);
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_profile_gives_the_keys_and_the_region() {
    let home = tempfile::tempdir().unwrap();
    let key = unique("AKIDPROFILE");
    std::fs::write(
        home.path().join("config"),
        "[default]\nregion = eu-west-3\n\n[profile edge]\nregion = us-east-1\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join("credentials"),
        format!("[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[edge]\naws_access_key_id = {key}\naws_secret_access_key = profile-secret\n"),
    )
    .unwrap();
    let table = unique("profile");
    let env = [
        (
            "AWS_CONFIG_FILE",
            home.path().join("config").display().to_string(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials").display().to_string(),
        ),
        ("AWS_PROFILE", "edge".to_string()),
    ];
    let out = provision(home.path(), &table, &env);
    assert!(out.contains("(created"), "{out}");
    // The profile's key and region (us-east-1, not the default's eu-west-3)
    // signed: the table is in that key's database, not in another's.
    assert!(exists_for_key(home.path(), &table, &key));
    assert!(!exists_for_key(home.path(), &table, &unique("AKIDOTHER")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_metadata_credentials_are_used_and_renewed() {
    let key = unique("ASIAIMDS");
    let token = "imds-session-token";
    let answered_key = key.clone();
    // IMDSv2 states the token's lifetime in a header of its answer.
    let ttl = &[("x-aws-ec2-metadata-token-ttl-seconds", "21600")];
    let imds = FakeEndpoint::start(ttl, move |seen| {
        match (seen.method.as_str(), seen.path.as_str()) {
            ("PUT", "/latest/api/token")
                if seen
                    .headers
                    .contains_key("x-aws-ec2-metadata-token-ttl-seconds") =>
            {
                (200, token.to_string())
            }
            (_, path)
                if seen
                    .headers
                    .get("x-aws-ec2-metadata-token")
                    .map(String::as_str)
                    != Some(token) =>
            {
                (401, format!("no IMDSv2 token for {path}"))
            }
            ("GET", "/latest/meta-data/iam/security-credentials/") => (200, "edge-role".into()),
            ("GET", "/latest/meta-data/iam/security-credentials/edge-role") => {
                // Short-lived, so that renewal happens within the test.
                (200, credentials_json(&answered_key, Duration::from_secs(8)))
            }
            ("GET", "/latest/meta-data/placement/region") => (200, REGION.into()),
            _ => (404, String::new()),
        }
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let table = unique("imds");
    let env = [
        ("AWS_EC2_METADATA_DISABLED", "false".to_string()),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url()),
        ("AWS_REGION", REGION.to_string()),
    ];
    assert!(provision(home.path(), &table, &env).contains("(created"));
    assert!(exists_for_key(home.path(), &table, &key));

    let fetches =
        |fake: &FakeEndpoint| fake.count("/latest/meta-data/iam/security-credentials/edge-role");
    let serving = Serving::start(home.path(), &table, &env);
    serving.round_trip("first").await;
    let before = fetches(&imds);
    // Valid for 8 s, renewed at half their life: the next request after
    // 5 s must fetch new ones.
    tokio::time::sleep(Duration::from_secs(5)).await;
    serving.round_trip("second").await;
    assert!(
        fetches(&imds) > before,
        "credentials were not renewed: {:?}",
        imds.seen()
    );
    assert!(
        imds.seen()
            .iter()
            .any(|s| s.method == "PUT" && s.path == "/latest/api/token"),
        "IMDSv2 needs a session token first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_credentials_are_used_with_their_authorization_token() {
    let key = unique("ASIACONTAINER");
    let authorization = "pod-identity-token";
    let answered_key = key.clone();
    let endpoint = FakeEndpoint::start(&[], move |seen| {
        match (seen.path.as_str(), seen.headers.get("authorization")) {
            ("/v1/credentials", Some(token)) if token == authorization => (
                200,
                credentials_json(&answered_key, Duration::from_secs(3600)),
            ),
            _ => (403, "{\"message\":\"bad token\"}".into()),
        }
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("eks-pod-identity-token");
    std::fs::write(&token_file, authorization).unwrap();
    let table = unique("container");
    let env = [
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{}/v1/credentials", endpoint.url()),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        ("AWS_REGION", REGION.to_string()),
    ];
    assert!(provision(home.path(), &table, &env).contains("(created"));
    assert!(exists_for_key(home.path(), &table, &key));
    let serving = Serving::start(home.path(), &table, &env);
    serving.round_trip("from-container").await;
    assert!(!endpoint.seen().is_empty());

    // The backend calls are counted on the admin listener.
    let metrics = reqwest::get(format!("{}/metrics", serving.admin))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    let ok_calls = metrics
        .lines()
        .find(|l| {
            l.starts_with("edge_items_backend_requests_total{")
                && l.contains("backend=\"dynamodb\"")
                && l.contains("outcome=\"ok\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(ok_calls.is_some_and(|n| n >= 2), "{metrics}");
}

#[test]
fn web_identity_tokens_are_exchanged_at_sts() {
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("token");
    std::fs::write(&token_file, "a-web-identity-token").unwrap();
    let table = unique("webidentity");
    let env = [
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/edge-items".to_string(),
        ),
        ("AWS_ROLE_SESSION_NAME", "edge-items-test".to_string()),
        ("AWS_ENDPOINT_URL_STS", moto.endpoint.clone()),
        ("AWS_REGION", REGION.to_string()),
    ];
    // Nothing else is configured (no keys, files or metadata), so the only
    // way to a signed request is through moto's AssumeRoleWithWebIdentity.
    let out = provision(home.path(), &table, &env);
    assert!(out.contains("(created"), "{out}");
    let log = std::fs::read_to_string(&moto.log).unwrap_or_default();
    assert!(
        log.contains("POST / HTTP"),
        "moto's STS was not called:\n{log}"
    );
}

#[test]
fn no_credentials_anywhere_fails_at_start_with_a_clear_message() {
    let home = tempfile::tempdir().unwrap();
    let output = edge_items(home.path(), &[("AWS_REGION", REGION.to_string())])
        .args(["provision", "dynamodb", "--dynamodb-endpoint"])
        .arg(dynamodb_local())
        .output()
        .expect("run edge-items");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no AWS credentials"), "{stderr}");
}

/// moto for STS, stopped on drop; its log records the requests.
struct Moto {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

impl Moto {
    fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::env::temp_dir().join(format!("edge-items-sts-moto-{port}.log"));
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("moto log"))
            .spawn()
            .expect("start moto_server (`cargo xtask test` installs it)");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
