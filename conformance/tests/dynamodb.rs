//! The conformance suite on the host's native DynamoDb store.

use conformance::Backend;

conformance::conformance_suite!(Backend::DynamoDb);
