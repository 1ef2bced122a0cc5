//! The store behind each server, made fresh for it by its fixture: a new
//! table on DynamoDB Local or moto, a new project on the Firestore
//! emulator; the embedded store's file is the runtime's, in the server's
//! own directory.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::artefacts::host_binary;
use super::backend::{Backend, Fixture, Store};
use super::moto;

/// The region of every DynamoDB the tests talk to.
const REGION: &str = "us-east-1";

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

/// An AWS access key: a moto IAM user's, or the placeholder DynamoDB Local
/// accepts (it checks none; real keys never appear in tests).
#[derive(Debug, Clone)]
pub struct AwsKey {
    pub id: String,
    pub secret: String,
}

impl AwsKey {
    fn local() -> AwsKey {
        AwsKey {
            id: "local".into(),
            secret: "local".into(),
        }
    }

    /// A key as moto_iam.py prints it.
    pub(crate) fn from_json(v: &Value) -> AwsKey {
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

    /// The environment an AWS client signs with.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.as_str()),
            ("AWS_REGION", REGION),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec()
    }
}

/// A server's store as its fixture prepared it. Each runtime turns this
/// into its own flags, environment or variables.
#[derive(Debug, Clone)]
pub(crate) enum Site {
    Embedded,
    DynamoDb {
        endpoint: String,
        table: String,
        /// The key the server signs with.
        key: AwsKey,
    },
    Firestore {
        emulator_host: String,
        project: String,
    },
    /// Our host's mirror store over two sites.
    Mirror {
        primary: Box<Site>,
        secondary: Box<Site>,
    },
}

impl Site {
    /// The DynamoDB table or Firestore project ("" for the embedded store).
    pub(crate) fn namespace(&self) -> &str {
        match self {
            Site::Embedded => "",
            Site::DynamoDb { table, .. } => table,
            Site::Firestore { project, .. } => project,
            Site::Mirror { primary, .. } => primary.namespace(),
        }
    }

    /// The process environment holding the server's credentials, which
    /// travel like a user's secrets would: never on a command line.
    pub(crate) fn credentials(&self) -> Vec<(String, String)> {
        match self {
            Site::DynamoDb { key, .. } => key.env(),
            Site::Embedded | Site::Firestore { .. } => Vec::new(),
            Site::Mirror { primary, secondary } => {
                let mut both = primary.credentials();
                both.extend(secondary.credentials());
                both
            }
        }
    }

    /// The settings a composed component reads from its environment,
    /// besides the credentials.
    pub(crate) fn component_settings(&self) -> Vec<(String, String)> {
        let pairs: Vec<(&str, &str)> = match self {
            Site::Embedded => Vec::new(),
            Site::Mirror { primary, secondary } => {
                let mut both = primary.component_settings();
                both.extend(secondary.component_settings());
                return both;
            }
            Site::DynamoDb {
                endpoint, table, ..
            } => vec![
                ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
                ("EDGE_ITEMS_DYNAMODB_TABLE", table),
            ],
            Site::Firestore {
                emulator_host,
                project,
            } => vec![
                ("FIRESTORE_EMULATOR_HOST", emulator_host),
                ("GOOGLE_CLOUD_PROJECT", project),
            ],
        };
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
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

/// Makes a fresh store for one server on `backend`. On moto the server
/// signs with `key`, by default the service user's.
pub(crate) fn prepare(backend: Backend, key: Option<&AwsKey>) -> Site {
    let namespace = unique("items").to_lowercase();
    match (backend.store, backend.fixture) {
        (Store::Embedded, _) => Site::Embedded,
        (Store::DynamoDb, Fixture::Local) => {
            let endpoint = required_env("EDGE_ITEMS_DYNAMODB_ENDPOINT", backend);
            let key = AwsKey::local();
            provision_dynamodb_table(&namespace, &endpoint, &key);
            Site::DynamoDb {
                endpoint,
                table: namespace,
                key,
            }
        }
        (Store::DynamoDb, Fixture::Moto) => {
            // Provisioning is a deployment task: the admin does it.
            let moto = moto::shared();
            provision_dynamodb_table(&namespace, &moto.endpoint, &moto.admin);
            Site::DynamoDb {
                endpoint: moto.endpoint.clone(),
                table: namespace,
                key: key.unwrap_or(&moto.service).clone(),
            }
        }
        (Store::Firestore, Fixture::Local) => Site::Firestore {
            emulator_host: required_env("FIRESTORE_EMULATOR_HOST", backend),
            project: namespace,
        },
        (Store::Firestore, Fixture::Moto) => panic!("moto has no Firestore: {backend:?}"),
        (Store::Mirror, Fixture::Local) => Site::Mirror {
            primary: Box::new(prepare(
                Backend::new(backend.runtime, Store::Firestore, Fixture::Local),
                None,
            )),
            secondary: Box::new(prepare(
                Backend::new(backend.runtime, Store::DynamoDb, Fixture::Local),
                None,
            )),
        },
        (Store::Mirror, Fixture::Moto) => panic!("the mirror is tested on local backends"),
    }
}

/// Creates a DynamoDB table with the host's own provisioning command, as a
/// user would.
fn provision_dynamodb_table(table: &str, endpoint: &str, key: &AwsKey) {
    let out = Command::new(host_binary())
        .args(["provision", "dynamodb", "--dynamodb-table", table])
        .args(["--dynamodb-endpoint", endpoint])
        .envs(key.env())
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
