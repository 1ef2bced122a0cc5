//! The conformance suite on target/components/api-firestore.wasm under
//! `wasmtime serve` (wasmtime-cli), on the Firestore emulator.

use conformance::Backend;

conformance::conformance_suite!(Backend::WasmtimeServeFirestore);
