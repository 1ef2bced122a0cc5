//! A composed component under `wasmtime serve` from wasmtime-cli, run the
//! way docs/deploy.md tells users to run it:
//! `wasmtime serve -Scli --addr 127.0.0.1:0 --env NAME=VALUE.. api-<store>.wasm`.
//! `-Scli` gives the guest wasi:cli (its environment) besides wasi:http;
//! the settings reach it through `--env` only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::artefacts::composed_wasm_of;
use super::backend::{Backend, Runtime, Store};
use super::fixtures::Site;
use super::server::{Launch, serve_options_as_env};

/// The wasmtime-cli release `cargo xtask test` installs (pinned in
/// xtask/src/tools.rs with the toolchain: the newest that builds on Rust 1.95).
pub(super) const VERSION: &str = "48.0.2";

/// `--max-concurrent-requests`, as docs/deploy.md gives it: 100 for an api
/// with one adapter; 50 for api-mirror.wasm, whose four components take
/// twice the core instances per request.
fn max_concurrent_requests(store: Store) -> &'static str {
    match store {
        Store::Mirror => "50",
        _ => "100",
    }
}

/// `WASMTIME_BIN`, else `wasmtime` from PATH, checked once to be
/// wasmtime-cli [`VERSION`].
fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = std::env::var_os("WASMTIME_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("wasmtime"));
        let install = format!(
            "run the tests with `cargo xtask test`, which installs wasmtime-cli {VERSION} \
             into target/tools, or point WASMTIME_BIN at one"
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

pub(super) fn launch(backend: Backend, site: &Site, extra_args: &[String]) -> Launch {
    let mut command = Command::new(binary());
    command.args(["serve", "-Scli", "--addr", "127.0.0.1:0"]);
    // Each request instantiates the composed component (7 core instances,
    // 2 memories); wasmtime's pooling allocator holds 1000 core instances
    // by default, so more than ~140 requests at once would fail with 500.
    // Capped, the rest wait their turn.
    command.args([
        "--max-concurrent-requests",
        max_concurrent_requests(backend.store),
    ]);
    let settings = site
        .credentials()
        .into_iter()
        .chain(site.component_settings())
        .map(|(name, value)| format!("{name}={value}"))
        .chain(serve_options_as_env(Runtime::WasmtimeServe, extra_args));
    for setting in settings {
        command.arg("--env").arg(setting);
    }
    command.arg(composed_wasm_of(backend.store));
    Launch {
        command,
        // "Serving HTTP on http://127.0.0.1:PORT/"
        announces_on_stdout: false,
        prefix: "Serving HTTP on ",
    }
}
