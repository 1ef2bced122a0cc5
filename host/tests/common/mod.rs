//! What the host's end-to-end tests share: where the api component is, the
//! `edge-items` binary with a clean environment, and waiting for a started
//! server's `listening on` lines.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime};

/// How long a host may take to compile the component and listen.
const START_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The api component, by the conformance suite's convention.
pub(crate) fn api_wasm() -> PathBuf {
    let path = std::env::var_os("EDGE_ITEMS_API_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/wasm32-wasip2/release/api.wasm"));
    assert!(
        path.exists(),
        "{} is missing (EDGE_ITEMS_API_WASM); build it with `cargo xtask build`, or run the tests with `cargo xtask test`",
        path.display()
    );
    path
}

/// `target/components/api-NAME.wasm`, a composition `cargo xtask build`
/// makes (`EDGE_ITEMS_API_<NAME>_WASM` overrides it).
pub(crate) fn composed_wasm(name: &str) -> PathBuf {
    let var = format!("EDGE_ITEMS_API_{}_WASM", name.to_uppercase());
    let path = std::env::var_os(&var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(format!("target/components/api-{name}.wasm")));
    assert!(
        path.exists(),
        "{} is missing ({var}); build it with `cargo xtask build`, or run the tests with `cargo xtask test`",
        path.display()
    );
    path
}

/// `edge-items` with no EDGE_ITEMS_* variable from the test's environment:
/// only the test's flags configure it.
pub(crate) fn edge_items() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edge-items"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("EDGE_ITEMS_") {
            command.env_remove(name);
        }
    }
    command
}

/// Waits for a `serve` started with its stdout piped to say where it
/// listens: the API's address, and the admin listener's if it has one.
/// Kills it and shows `log` when it does not start.
pub(crate) fn wait_listening(child: &mut Child, log: &Path) -> (SocketAddr, Option<SocketAddr>) {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut admin = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let line = line.trim();
            if let Some(addr) = line.strip_prefix("admin listening on http://") {
                admin = addr.parse::<SocketAddr>().ok();
            } else if let Some(addr) = line.strip_prefix("listening on http://") {
                let _ = tx.send((addr.parse::<SocketAddr>().expect("address"), admin));
            }
        }
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(addresses) => addresses,
        Err(_) => {
            let _ = child.kill();
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("edge-items did not start; its log:\n{log}");
        }
    }
}

/// A running `edge-items serve` on a fresh embedded store, killed when
/// dropped; its log is `host.log` in its own folder.
pub(crate) struct Host {
    pub(crate) addr: SocketAddr,
    /// The admin listener, when `--admin-listen` was given.
    pub(crate) admin: Option<SocketAddr>,
    pub(crate) child: Child,
    pub(crate) dir: tempfile::TempDir,
}

impl Host {
    /// Starts the host with `args` added to its defaults.
    pub(crate) fn start(args: &[&str]) -> Host {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("host.log")).expect("log file");
        let mut command = edge_items();
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--store", "embedded", "--data"])
            .arg(dir.path().join("items.db"))
            .arg("--component")
            .arg(api_wasm())
            .arg("--cache-dir")
            .arg(workspace_root().join("target/edge-items-cache"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = command.spawn().expect("start edge-items");
        let (addr, admin) = wait_listening(&mut child, &dir.path().join("host.log"));
        Host {
            addr,
            admin,
            child,
            dir,
        }
    }

    /// Its log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host.log")).unwrap_or_default()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A name no other run uses: letters and digits only, as DynamoDB Local
/// wants of access key ids.
pub(crate) fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{prefix}{}x{nanos}", std::process::id())
}

/// DynamoDB Local's endpoint, which `cargo xtask test` starts.
pub(crate) fn dynamodb_local() -> String {
    std::env::var("EDGE_ITEMS_DYNAMODB_ENDPOINT").expect(
        "EDGE_ITEMS_DYNAMODB_ENDPOINT is not set: run the tests with `cargo xtask test`, \
         which starts DynamoDB Local",
    )
}

/// The Firestore emulator's `host:port`, which `cargo xtask test` starts.
pub(crate) fn firestore_emulator() -> String {
    std::env::var("FIRESTORE_EMULATOR_HOST").expect(
        "FIRESTORE_EMULATOR_HOST is not set: run the tests with `cargo xtask test`, \
         which starts the Firestore emulator",
    )
}

/// `edge-items` in `dir` with the local backends' settings (DynamoDB Local
/// takes any key).
pub(crate) fn edge_items_on_backends(dir: &Path) -> Command {
    let mut command = edge_items();
    command
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env("FIRESTORE_EMULATOR_HOST", firestore_emulator());
    command
}

/// Runs `edge-items ARGS` in `dir` on the local backends, showing its
/// output in the test's.
pub(crate) fn run(dir: &Path, args: &[&str]) -> Output {
    let output = edge_items_on_backends(dir)
        .args(args)
        .output()
        .expect("edge-items runs");
    eprintln!(
        "$ edge-items {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
