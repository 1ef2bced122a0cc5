//! The conformance suite on the composed DynamoDB component (api + adapter,
//! served with `--store none`) against moto with SigV4 and IAM enforced:
//! the adapter signs inside WebAssembly as the user holding only the
//! run-time statement of crates/store-dynamodb/iam-policy.json.

conformance::conformance_suite!(HostComposed, DynamoDb, Moto);
