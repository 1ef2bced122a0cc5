//! The api component under `spin up`, run from the repository's manifests
//! the way the README tells users to: spin.toml (the spin-sqlite adapter)
//! and spin.dynamodb.toml (settings as `SPIN_VARIABLE_*`). Spin composes
//! the api component with the adapter itself, from
//! `[component.api.dependencies]`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::artefacts::{api_wasm, workspace_root};
use super::backend::{Backend, Runtime};
use super::fixtures::Site;
use super::server::{Launch, serve_options_as_env};

/// `SPIN_BIN`, else `spin` from PATH, checked once to run and to be Spin 4
/// or later (the manifests give the adapter dependency
/// `inherit_configuration`, which Spin 4 brought; Spin 3 refuses the key).
fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = std::env::var_os("SPIN_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("spin"));
        let install = "install Spin with its installer (https://spinframework.dev/install), \
            or run the tests with `cargo xtask test`, which finds or installs one, \
            or point SPIN_BIN at one";
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
            major.is_some_and(|m| m >= 4),
            "{} reports {version:?}, the tests need Spin 4 or later; {install}",
            bin.display()
        );
        bin
    })
}

/// The manifest serving `site`, and the variables it needs.
fn manifest(backend: Backend, site: &Site) -> (&'static str, Vec<(String, String)>) {
    match site {
        Site::Embedded => ("spin.toml", Vec::new()),
        Site::DynamoDb {
            endpoint, table, ..
        } => {
            let settings = [
                ("DYNAMODB_ENDPOINT".to_string(), endpoint.clone()),
                ("DYNAMODB_TABLE".to_string(), table.clone()),
            ];
            let variables = site
                .credentials()
                .into_iter()
                .chain(settings)
                .map(|(name, value)| (format!("SPIN_VARIABLE_{name}"), value))
                .collect();
            ("spin.dynamodb.toml", variables)
        }
        Site::Firestore { .. } | Site::Mirror { .. } => {
            panic!("no Spin manifest is tested on {backend:?}")
        }
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

/// The argument that mounts the app at another route than the manifest's
/// `/...`, e.g. `--spin-route /api/...` (only `spin up` takes it).
pub const ROUTE_ARG: &str = "--spin-route";

/// The repository's `manifest` with its trigger's route replaced, written
/// into `dir` (with the paths of the built components made absolute, since
/// Spin reads them relative to the manifest).
fn rerouted_manifest(manifest: &str, route: &str, dir: &Path) -> PathBuf {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join(manifest)).expect("read the Spin manifest");
    let default_route = "route = \"/...\"";
    assert!(
        text.contains(default_route),
        "{manifest} no longer has `{default_route}`"
    );
    let text = text
        .replace(default_route, &format!("route = {route:?}"))
        .replace("\"target/", &format!("\"{}/target/", root.display()));
    let path = dir.join(format!("rerouted-{manifest}"));
    std::fs::write(&path, text).expect("write the rerouted manifest");
    path
}

/// `spin up` on a free port, with its state (the SQLite database, the
/// component logs) in `dir/spin`, and one log line per request (Spin's
/// `spin_trigger_http` log at info level).
pub(super) fn launch(backend: Backend, site: &Site, dir: &Path, extra_args: &[String]) -> Launch {
    check_same_api_component();
    let (manifest, variables) = manifest(backend, site);
    let (manifest, extra_args) = match extra_args {
        [flag, route, rest @ ..] if flag == ROUTE_ARG => {
            (rerouted_manifest(manifest, route, dir), rest)
        }
        _ => (workspace_root().join(manifest), extra_args),
    };
    let mut command = Command::new(binary());
    command
        .arg("up")
        .arg("--from")
        .arg(manifest)
        .args(["--listen", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(dir.join("spin"));
    let settings = serve_options_as_env(Runtime::SpinUp, extra_args);
    // The cloud manifests default to `ITEMS_AUTH=jwt` with the keys left to
    // fill in; a case that does not configure authentication runs open.
    if !settings.iter().any(|s| s.starts_with("ITEMS_AUTH=")) {
        command.args(["--env", "ITEMS_AUTH=none"]);
    }
    for setting in settings {
        command.arg("--env").arg(setting);
    }
    command
        .envs(variables)
        .env("RUST_LOG", "spin_trigger_http=info")
        .env_remove("SPIN_ALWAYS_BUILD");
    Launch {
        command,
        // "Serving http://127.0.0.1:PORT"
        announces_on_stdout: true,
        prefix: "Serving ",
    }
}
