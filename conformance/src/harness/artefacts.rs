//! The built files the suite runs: the host binary, the api component and
//! the composed components. `cargo xtask test` builds them and passes their
//! paths in the environment; without it, the release build paths are used.

use std::path::PathBuf;

use super::backend::Store;

pub fn workspace_root() -> PathBuf {
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

/// Our host, `edge-items` (`EDGE_ITEMS_BIN`).
pub(crate) fn host_binary() -> PathBuf {
    artefact("EDGE_ITEMS_BIN", "target/release/edge-items")
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

/// The composed component of a cloud store.
pub(crate) fn composed_wasm_of(store: Store) -> PathBuf {
    match store {
        Store::DynamoDb => composed_wasm("dynamodb"),
        Store::Firestore => composed_wasm("firestore"),
        Store::Mirror => composed_wasm("mirror"),
        Store::Embedded => {
            panic!("no composed component has the {store:?} store")
        }
    }
}
