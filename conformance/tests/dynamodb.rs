//! The conformance suite on the host's native DynamoDb store.

conformance::conformance_suite!(Host, DynamoDb, Local);
