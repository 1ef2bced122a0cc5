//! The conformance suite on target/components/api-dynamodb.wasm under
//! `wasmtime serve` (wasmtime-cli), on DynamoDB Local.

conformance::conformance_suite!(WasmtimeServe, DynamoDb, Local);
