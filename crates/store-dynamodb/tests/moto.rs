//! Signatures and permissions, against a moto server that enforces SigV4
//! and IAM (DynamoDB Local checks neither). Each test starts its own moto,
//! because each needs fresh IAM state: the first requests (creating users,
//! policies and keys with `moto_iam.py`) are free, every later one must be
//! signed by a known key whose policy allows the action.

mod common;

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dynamodb_protocol::Credentials;
use item_store::{
    Attribute, BatchWrite, IndexKey, ItemPatch, ItemStore, NewItem, Order, Query, StoreError, Value,
};
use store_dynamodb::{DynamoDbConfig, DynamoDbStore};

/// An access key as moto_iam.py prints it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Key {
    access_key_id: String,
    secret_access_key: String,
}

impl Key {
    fn credentials(&self) -> Credentials {
        Credentials::new(&self.access_key_id, &self.secret_access_key, None).unwrap()
    }
}

/// Requests moto serves before it checks signatures: four per IAM user.
const REQUESTS_PER_USER: usize = 4;

/// A moto server of our own, stopped (with its process group) on drop.
struct Moto {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

impl Moto {
    fn start(users: usize) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::env::temp_dir().join(format!("edge-items-moto-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("moto log");
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env(
                "INITIAL_NO_AUTH_ACTION_COUNT",
                (users * REQUESTS_PER_USER).to_string(),
            )
            .stdout(Stdio::null())
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start moto_server ({e}): install it with \
                     `pip install 'moto[server]' boto3`, see ../shared/BACKENDS.md"
                )
            });
        let mut moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || moto.child.try_wait().ok().flatten().is_some() {
                panic!(
                    "moto_server did not start; its log: {}",
                    std::fs::read_to_string(&moto.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Creates IAM users (`name` or `name:action-to-leave-out`) with the
    /// crate's policy; returns their keys by name.
    fn users(&self, specs: &[String]) -> HashMap<String, Key> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let output = Command::new("python3")
            .arg(dir.join("tests/moto_iam.py"))
            .arg(&self.endpoint)
            .arg(dir.join("iam-policy.json"))
            .args(specs)
            .output()
            .expect("python3 runs moto_iam.py");
        assert!(
            output.status.success(),
            "moto_iam.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("keys")
    }

    fn store(&self, credentials: Credentials, table: &str) -> DynamoDbStore {
        let config = DynamoDbConfig::new("us-east-1", credentials)
            .and_then(|c| c.with_endpoint(&self.endpoint))
            .and_then(|c| c.with_table(table))
            .unwrap()
            .with_max_retries(1);
        DynamoDbStore::new(config).unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // moto_server leads its own process group: stop the group.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn unauthorized(result: Result<impl std::fmt::Debug, StoreError>) -> String {
    match result {
        Err(StoreError::Unauthorized(message)) => message,
        other => panic!("expected unauthorized, got {other:?}"),
    }
}

fn item(id: &str) -> NewItem {
    NewItem {
        id: id.into(),
        user_id: Some("u".into()),
        attributes: vec![Attribute::new("likes", Value::Number("0".into()))],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_least_privilege_policy_suffices_and_signatures_are_checked() {
    let moto = Moto::start(1);
    let keys = moto.users(&["app".into()]);
    let app = &keys["app"];
    let store = moto.store(app.credentials(), "Items");
    assert!(store.provision().await.unwrap().created_table);
    assert!(!store.provision().await.unwrap().created_table);
    // A table made before byUserStatus gets the index with the same policy.
    common::create_older_table(&moto.endpoint, "Items-older", app.credentials()).await;
    let older = moto.store(app.credentials(), "Items-older");
    let provisioned = older.provision().await.unwrap();
    assert_eq!(provisioned.added_indexes, ["byUserStatus"]);
    // And its older items get the key with the same policy.
    let body = serde_json::json!({"TableName": "Items-older", "Item": {
        "itemId": {"S": "old"}, "createdAt": {"S": "2026-01-01T00:00:00.000000Z"},
        "userId": {"S": "u"}, "status": {"S": "open"}}});
    let r = common::raw_call(
        &moto.endpoint,
        "Items-older",
        app.credentials(),
        "PutItem",
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(older.backfill_user_status().await.unwrap().updated, 1);

    let created = store.create(item("a")).await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), created);
    let (replaced, _) = store.put(item("a"), Some("1")).await.unwrap();
    let patch = ItemPatch {
        set: vec![Attribute::new("name", Value::Text("n".into()))],
        ..Default::default()
    };
    store
        .update("a", patch, Some(replaced.version.as_str()))
        .await
        .unwrap();
    let liked = store.increment("a", "likes", 2).await.unwrap();
    assert_eq!(liked.attribute("likes"), Some(&Value::Number("2".into())));
    let page = store
        .query(Query {
            key: IndexKey::UserId("u".into()),
            order: Order::Asc,
            limit: 10,
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let batch = store
        .batch(vec![
            BatchWrite::Delete("a".into()),
            BatchWrite::Delete("never".into()),
        ])
        .await
        .unwrap();
    assert_eq!(batch.deleted.len(), 2);
    store.create(item("b")).await.unwrap();
    store.delete("b", None).await.unwrap();

    // A wrong secret: the signature is refused, and the message names
    // neither the key nor the secret.
    let wrong_secret = Credentials::new(&app.access_key_id, "wrong-secret", None).unwrap();
    let message = unauthorized(moto.store(wrong_secret, "Items").get("a").await);
    assert!(message.contains("signature"), "{message}");
    assert!(
        !message.contains(&app.access_key_id) && !message.contains("wrong-secret"),
        "{message}"
    );
    let unknown = Credentials::new("AKIAIOSFODNN7EXAMPLE", "x", None).unwrap();
    let message = unauthorized(moto.store(unknown, "Items").get("a").await);
    assert!(message.contains("AWS_ACCESS_KEY_ID"), "{message}");
    assert!(!message.contains("AKIAIOSFODNN7EXAMPLE"), "{message}");
}

/// The actions of iam-policy.json, each of which some operation needs.
const ACTIONS: [&str; 12] = [
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "Query",
    "CreateTable",
    "DescribeTable",
    "DescribeTimeToLive",
    "UpdateTimeToLive",
    "UpdateTable",
    "Scan",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_of_the_policy_is_needed() {
    let moto = Moto::start(ACTIONS.len() + 1);
    let mut specs = vec!["full".to_string()];
    specs.extend(ACTIONS.iter().map(|a| format!("no-{a}:dynamodb:{a}")));
    let keys = moto.users(&specs);
    let full = moto.store(keys["full"].credentials(), "Items");
    full.provision().await.unwrap();
    full.create(item("a")).await.unwrap();

    for action in ACTIONS {
        let credentials = keys[&format!("no-{action}")].credentials();
        let store = moto.store(credentials.clone(), "Items");
        // Provisioning a table that does not exist yet reaches CreateTable
        // and UpdateTimeToLive; one without byUserStatus, UpdateTable.
        let new_table = moto.store(credentials, &format!("Items-{action}"));
        let message = match action {
            "GetItem" => unauthorized(store.get("a").await),
            "PutItem" => unauthorized(store.create(item("b")).await),
            "UpdateItem" => unauthorized(store.increment("a", "likes", 1).await),
            "DeleteItem" => unauthorized(store.delete("a", None).await),
            "BatchWriteItem" => {
                unauthorized(store.batch(vec![BatchWrite::Delete("a".into())]).await)
            }
            "Query" => unauthorized(
                store
                    .query(Query {
                        key: IndexKey::UserId("u".into()),
                        order: Order::Desc,
                        limit: 5,
                        cursor: None,
                    })
                    .await,
            ),
            "DescribeTable" | "DescribeTimeToLive" => unauthorized(store.provision().await),
            // The backfill of __userStatus__ after adding byUserStatus.
            "Scan" => unauthorized(store.backfill_user_status().await),
            // A table made before byUserStatus gets it with UpdateTable.
            "UpdateTable" => {
                let table = format!("Items-{action}");
                let full = keys["full"].credentials();
                common::create_older_table(&moto.endpoint, &table, full).await;
                unauthorized(new_table.provision().await)
            }
            _ => unauthorized(new_table.provision().await),
        };
        assert!(
            message.contains(&format!("dynamodb:{action}")) && message.contains("IAM policy"),
            "{action}: {message}"
        );
    }
    // Nothing was changed by the refused calls.
    let item = full.get("a").await.unwrap();
    assert_eq!(item.version, "1");
}
