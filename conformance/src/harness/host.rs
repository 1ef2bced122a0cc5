//! Our host, `edge-items serve`: either `api.wasm` with a native store
//! ([`Runtime::Host`]) or a composed component with `--store none`
//! ([`Runtime::HostComposed`]), whose adapter gets its settings through
//! `--env`.

use std::path::Path;
use std::process::Command;

use super::artefacts::{api_wasm, composed_wasm_of, host_binary, workspace_root};
use super::backend::{Backend, Runtime};
use super::fixtures::Site;
use super::server::Launch;

pub(super) fn launch(backend: Backend, site: &Site, dir: &Path, extra_args: &[String]) -> Launch {
    let wasm = match backend.runtime {
        Runtime::Host => api_wasm(),
        _ => composed_wasm_of(backend.store),
    };
    let mut command = Command::new(host_binary());
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .arg("--component")
        .arg(&wasm)
        .arg("--cache-dir")
        .arg(workspace_root().join("target/edge-items-cache"))
        .args(extra_args)
        // The key is the host process's: a native store reads it, and a
        // composed component gets it through `--env NAME` below.
        .envs(site.credentials())
        .env_remove("AWS_SESSION_TOKEN")
        .env("RUST_LOG", "info");
    if backend.runtime == Runtime::HostComposed {
        command.args(["--store", "none"]);
        for (name, _) in site.credentials() {
            command.arg("--env").arg(name);
        }
        for (name, value) in site.component_settings() {
            command.arg("--env").arg(format!("{name}={value}"));
        }
    } else {
        match site {
            Site::Embedded => {
                command
                    .args(["--store", "embedded", "--data"])
                    .arg(dir.join("items.db"));
            }
            Site::DynamoDb {
                endpoint, table, ..
            } => {
                command
                    .args(["--store", "dynamodb", "--dynamodb-table", table])
                    .args(["--dynamodb-endpoint", endpoint]);
            }
            Site::Firestore {
                emulator_host,
                project,
            } => {
                command
                    .args(["--store", "firestore", "--firestore-project", project])
                    .env("FIRESTORE_EMULATOR_HOST", emulator_host);
            }
            Site::Mirror { primary, secondary } => {
                command
                    .args(["--store", "mirror", "--primary", &spec(primary)])
                    .args(["--secondary", &spec(secondary)])
                    .arg("--mirror-outbox")
                    .arg(dir.join("outbox.db"));
                for side in [primary, secondary] {
                    if let Site::Firestore { emulator_host, .. } = side.as_ref() {
                        command.env("FIRESTORE_EMULATOR_HOST", emulator_host);
                    }
                }
            }
        }
    }
    Launch {
        command,
        announces_on_stdout: true,
        prefix: "listening on ",
    }
}

/// A site as `--primary` / `--secondary` name it.
fn spec(site: &Site) -> String {
    match site {
        Site::Embedded => panic!("the mirror in the suite has two cloud stores"),
        Site::DynamoDb {
            endpoint, table, ..
        } => format!("dynamodb:{table}@{endpoint}"),
        Site::Firestore { project, .. } => format!("firestore:{project}/items"),
        Site::Mirror { .. } => panic!("a mirror of mirrors"),
    }
}
