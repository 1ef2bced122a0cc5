//! One api component everywhere: the file our host serves
//! (target/wasm32-wasip2/release/api.wasm, [`api_wasm`]) is, byte for byte,
//! the api inside each pre-composed component that `wasmtime serve`, Spin
//! without dependencies and SpinKube run (target/components/api-*.wasm,
//! [`composed_wasm`]). wac-graph defines each plugged package by embedding
//! its bytes verbatim as a nested component section, so composing changes
//! nothing in the api: the same code and the same hash on every runtime.

use std::path::Path;

use conformance::harness::{api_wasm, composed_wasm};

/// The 8-byte preamble of a component (as opposed to a core module).
const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
/// The component-model section id of a nested component.
const COMPONENT_SECTION: u8 = 4;

fn leb128_u32(bytes: &[u8], pos: &mut usize) -> usize {
    let mut value = 0usize;
    for shift in (0..35).step_by(7) {
        let byte = bytes[*pos];
        *pos += 1;
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
    }
    panic!("bad LEB128 at {pos}");
}

/// The bytes of each component nested at the top level of `component`.
fn nested_components(component: &[u8]) -> Vec<&[u8]> {
    assert_eq!(component[..8], COMPONENT_PREAMBLE, "not a component");
    let mut nested = Vec::new();
    let mut pos = 8;
    while pos < component.len() {
        let id = component[pos];
        pos += 1;
        let size = leb128_u32(component, &mut pos);
        let body = &component[pos..pos + size];
        if id == COMPONENT_SECTION {
            nested.push(body);
        }
        pos += size;
    }
    assert_eq!(pos, component.len(), "sections end at the end of the file");
    nested
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn composed_components_embed_the_api_component_unchanged() {
    let api = read(&api_wasm());
    assert_eq!(api[..8], COMPONENT_PREAMBLE, "api.wasm is a component");
    for (store, adapter) in [
        ("dynamodb", "dynamodb_adapter"),
        ("firestore", "firestore_adapter"),
    ] {
        let composed_path = composed_wasm(store);
        let composed = read(&composed_path);
        let nested = nested_components(&composed);
        assert_eq!(
            nested.len(),
            2,
            "{}: the api and one adapter",
            composed_path.display()
        );
        assert_eq!(
            nested.iter().filter(|c| **c == api.as_slice()).count(),
            1,
            "{} embeds the exact bytes of {}",
            composed_path.display(),
            api_wasm().display()
        );
        let adapter_path = api_wasm().with_file_name(format!("{adapter}.wasm"));
        let adapter = read(&adapter_path);
        assert!(
            nested.contains(&adapter.as_slice()),
            "{} embeds the exact bytes of {}",
            composed_path.display(),
            adapter_path.display()
        );
    }
}

#[test]
fn the_harness_serves_the_built_api_component() {
    // Without overrides, every host backend serves the file that
    // `cargo xtask build` writes; `cargo xtask test` passes that same path.
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip2/release/api.wasm")
        .canonicalize()
        .expect("cargo xtask build writes target/wasm32-wasip2/release/api.wasm");
    assert_eq!(
        api_wasm().canonicalize().expect("api_wasm exists"),
        built,
        "EDGE_ITEMS_API_WASM points elsewhere"
    );
}

#[test]
fn every_spin_manifest_serves_the_built_api_component() {
    // `spin up` and `spin registry push` take the api from the manifest:
    // the same file, with only the store dependency differing.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for manifest in ["spin.toml", "spin.dynamodb.toml", "spin.firestore.toml"] {
        let text = std::fs::read_to_string(root.join(manifest))
            .unwrap_or_else(|e| panic!("{manifest}: {e}"));
        let api = text
            .split("\n[")
            .find(|table| table.starts_with("component.api]"))
            .unwrap_or_else(|| panic!("{manifest} has no [component.api]"));
        assert!(
            api.lines()
                .any(|l| l.trim() == r#"source = "target/wasm32-wasip2/release/api.wasm""#),
            "{manifest}: [component.api] must serve target/wasm32-wasip2/release/api.wasm:\n{api}"
        );
    }
}
