//! The conformance suite on the DynamoDB adapter component (composed with the api component; the host serves it with --store none).

use conformance::Backend;

conformance::conformance_suite!(Backend::ComposedDynamoDb);
