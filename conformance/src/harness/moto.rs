//! One moto server per test process (conformance/interop/moto_server.py),
//! DynamoDB with SigV4 and IAM enforced. It stops when its stdin closes,
//! that is when this process exits, however it exits, so no server outlives
//! the tests.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::OnceLock;

use super::artefacts::workspace_root;
use super::fixtures::{AwsKey, unique};
use super::interop::{PYTHON_HELP, python, python_command};

/// The policy the service user gets (its run-time statement).
const POLICY: &str = "crates/store-dynamodb/iam-policy.json";

pub(crate) struct Moto {
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

pub(crate) fn shared() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(start)
}

fn start() -> Moto {
    let root = workspace_root();
    let mut child = python_command()
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

/// The keys of the shared moto's admin and service user (to check that no
/// response ever shows them).
pub fn moto_keys() -> [AwsKey; 2] {
    let moto = shared();
    [moto.admin.clone(), moto.service.clone()]
}

/// A new user on the shared moto whose policy is the service's run-time
/// statement without `action` (e.g. `dynamodb:UpdateItem`).
pub fn moto_service_user_without(action: &str) -> AwsKey {
    let moto = shared();
    let spec = format!("{}:{action}", unique("no-action"));
    let policy = workspace_root().join(POLICY);
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
