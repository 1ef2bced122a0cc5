//! The conformance suite on target/components/api-dynamodb.wasm under
//! `wasmtime serve` (wasmtime-cli), on DynamoDB Local.

use conformance::Backend;

conformance::conformance_suite!(Backend::WasmtimeServeDynamoDb);
