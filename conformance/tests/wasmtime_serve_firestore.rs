//! The conformance suite on target/components/api-firestore.wasm under
//! `wasmtime serve` (wasmtime-cli), on the Firestore emulator.

conformance::conformance_suite!(WasmtimeServe, Firestore, Local);
