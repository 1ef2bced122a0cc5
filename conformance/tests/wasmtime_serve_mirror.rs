//! The conformance suite on target/components/api-mirror.wasm (api <- mirror
//! <- {Firestore adapter, DynamoDB adapter}) under `wasmtime serve`.

conformance::conformance_suite!(WasmtimeServe, Mirror, Local);
